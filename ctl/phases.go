package ctl

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/bytesize"
)

const modelsHelp = `Lists every configured model: state, memory charged against the budget (~ an estimate
before the first load), requests running and queued, tokens/s over the last window.
-v adds, for each model that has loaded, where its last load's time went: the eviction
that made room for it (drain, park, runner_exit), the runner's own steps (process_start,
engine_init, metadata, model_mmap, weights, context, ...; process_start and
engine_init are 0 for a load in the warm spare runner, which had them done), the
restore of parked conversations and its first prompt. The same record is in GET /models (load_phases)
and in the "model loaded" log line.`

func modelsFlags(fs *flag.FlagSet, e *Env) {
	fs.BoolVar(&e.verbose, "v", false, "also show the phases of each model's last load")
}

// printLoadPhases writes one block per model with a load record: its
// phases in milliseconds, each with its share of the record's total.
func printLoadPhases(w io.Writer, ms []admin.Model) {
	for _, m := range ms {
		if len(m.LoadPhases) == 0 {
			continue
		}
		var total float64
		for _, p := range m.LoadPhases {
			total += p.Seconds
		}
		spare := ""
		if m.LoadSpare {
			spare = " (in the warm spare: its process and engine were ready)"
		}
		fmt.Fprintf(w, "\n%s: last load %.0f ms in the runner%s, %.0f ms with the eviction and the first prompt\n",
			m.Name, m.LoadSeconds*1000, spare, total*1000)
		t := newTable(w)
		t.row("  PHASE", "MS", "SHARE")
		for _, p := range m.LoadPhases {
			share := 0.0
			if total > 0 {
				share = p.Seconds / total * 100
			}
			t.row("  "+p.Name, fmt.Sprintf("%.1f", p.Seconds*1000), fmt.Sprintf("%.0f%% %s", share, strings.Repeat("#", int(share/5))))
		}
		t.flush()
	}
}

// spareLine is the warm spare for `jetai-ctl status`: its state, memory
// and how often spares started, took a model and died.
func spareLine(sp *admin.Spare) string {
	s := sp.State
	if sp.Pid > 0 {
		s += fmt.Sprintf(" (pid %d)", sp.Pid)
	}
	if sp.ChargedBytes > 0 {
		s += ", " + bytesize.IEC(sp.ChargedBytes) + " charged"
	}
	s += fmt.Sprintf("; %d started, %d used, %d died", sp.Starts, sp.Used, sp.Deaths)
	if sp.RetryAt != nil {
		s += ", next at " + sp.RetryAt.Format(time.TimeOnly)
	}
	if sp.LastError != "" {
		s += "; last error: " + sp.LastError
	}
	return s
}
