package ctl

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/bytesize"
)

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table { return &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)} }

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

func (t *table) kv(k, v string) { fmt.Fprintf(t.tw, "%s:\t%s\n", k, v) }

func (t *table) flush() error { return t.tw.Flush() }

func printModels(w io.Writer, ms []admin.Model) {
	t := newTable(w)
	t.row("NAME", "STATE", "MEMORY", "ACTIVE", "QUEUED", "TOK/S", "REQUESTS", "PRIORITY", "KEEP-ALIVE", "PID")
	for _, m := range ms {
		state := m.State
		if m.State == admin.StateLoading {
			state = fmt.Sprintf("loading %d%%", int(m.LoadProgress*100))
		}
		if m.Draining {
			state += " (draining)"
		}
		prio := fmt.Sprint(m.Priority)
		if m.Pinned {
			prio += " pinned"
		}
		pid := "-"
		if m.Pid > 0 {
			pid = fmt.Sprint(m.Pid)
		}
		mem := bytesize.IEC(m.ChargedBytes)
		if m.ChargedBytes == 0 {
			mem = "~" + bytesize.IEC(m.EstimatedBytes)
		}
		if m.State == admin.StateUnavailable {
			mem = "-" // no file to estimate from
		}
		t.row(m.Name, state, mem, fmt.Sprint(m.Active), fmt.Sprint(m.Queued), fmt.Sprintf("%.1f", m.TokensPerSecond),
			fmt.Sprint(m.Requests), prio, m.KeepAlive, pid)
	}
	t.flush()
	for _, m := range ms {
		if (m.State == "failed" || m.State == admin.StateUnavailable) && m.LastError != "" {
			fmt.Fprintf(w, "%s: %s\n", m.Name, m.LastError)
		}
	}
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func roundDur(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d > time.Hour:
		return d.Round(time.Minute).String()
	case d > time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// cacheUsed is the model cache's fill: "1.2 GiB / 8.0 GiB" (no bound: the
// bytes alone).
func cacheUsed(c *admin.CacheUsage) string {
	if c.MaxBytes > 0 {
		return fmt.Sprintf("%s / %s", bytesize.IEC(uint64(c.UsedBytes)), bytesize.IEC(uint64(c.MaxBytes)))
	}
	return bytesize.IEC(uint64(c.UsedBytes))
}

// cacheUsage is status's cache line: fill, what fills it, and where.
func cacheUsage(c *admin.CacheUsage) string {
	bound := "no max_size"
	if c.MaxBytes > 0 {
		bound = "max_size " + bytesize.IEC(uint64(c.MaxBytes))
	}
	return fmt.Sprintf("%s used of %s in %s: %d model files, parked conversations of %d models (%s)",
		bytesize.IEC(uint64(c.UsedBytes)), bound, c.Dir, c.ModelFiles, c.ParkedModels, bytesize.IEC(uint64(c.ParkedBytes)))
}
