package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TargetSpecialCPU is the most runner CPU that refusing the 400 KB
// special-token body may cost.
const TargetSpecialCPU = 50 * time.Millisecond

// SpecialConfig configures RunSpecial: a jetaid on Model (one slot of
// 1,024 tokens, one thread) gets /inference bodies of special-token text
// ("</s>x" repeated) of each size, none of which can fit.
type SpecialConfig struct {
	Jetaid   string
	Model    string
	SizesKB  []int
	Repeats  int // requests per size (0 = 3); the median counts
	Out, Log io.Writer
}

// SpecialRow is one body's figures.
type SpecialRow struct {
	Bytes     int           `json:"bytes"`
	Status    int           `json:"status"`
	ErrorType string        `json:"error_type"`
	RunnerCPU time.Duration `json:"runner_cpu"`
	Wall      time.Duration `json:"wall"`
}

// RunSpecial measures what refusing special-token text costs the runner:
// the CPU time of the runner process (utime+stime from /proc, in ticks of
// 10 ms) per body, and the time to the answer; the median of the repeats. Before the split of special tokens became linear this grew
// about 4× per doubling of the body.
func RunSpecial(ctx context.Context, cfg SpecialConfig) ([]SpecialRow, error) {
	dir, err := os.MkdirTemp("", "jetai-bench-special-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	models := fmt.Sprintf("model \"m\" {\n  path = %q\n  context = 1024\n  parallel = 1\n  threads = 1\n  preload = true\n}\n", cfg.Model)
	d, err := startDaemon(ctx, HTTPConfig{Jetaid: cfg.Jetaid, Log: cfg.Log}, dir, "special", models, "4GiB")
	if err != nil {
		return nil, err
	}
	defer d.stop()
	runnerPID, err := childPID(d.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	if cfg.Repeats <= 0 {
		cfg.Repeats = 3
	}
	repeats := cfg.Repeats
	var rows []SpecialRow
	for _, kb := range cfg.SizesKB {
		// As Python's json.dumps writes it: "<" and ">" as they are.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(map[string]any{"model": "m", "prompt": strings.Repeat("</s>x", kb*1000/5), "max_tokens": 4})
		var runs []SpecialRow
		for range repeats {
			r, err := d.specialOnce(ctx, runnerPID, buf.Bytes())
			if err != nil {
				return rows, err
			}
			runs = append(runs, r)
		}
		slices.SortFunc(runs, func(a, b SpecialRow) int { return int(a.RunnerCPU - b.RunnerCPU) })
		rows = append(rows, runs[len(runs)/2])
	}
	printSpecial(cfg.Out, cfg, rows)
	return rows, nil
}

// specialOnce sends one body and measures the runner's CPU time for it.
func (d *daemonProc) specialOnce(ctx context.Context, runnerPID int, body []byte) (SpecialRow, error) {
	before, err := cpuSeconds(runnerPID)
	if err != nil {
		return SpecialRow{}, err
	}
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/inference", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return SpecialRow{}, fmt.Errorf("/inference with %d bytes: %w", len(body), err)
	}
	var answer struct {
		Error struct {
			Type string `json:"type"`
			Code string `json:"code"`
		} `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	wall := time.Since(start)
	after, err := cpuSeconds(runnerPID)
	if err != nil {
		return SpecialRow{}, err
	}
	kind := answer.Error.Code
	if kind == "" {
		kind = answer.Error.Type
	}
	return SpecialRow{Bytes: len(body), Status: resp.StatusCode, ErrorType: kind,
		RunnerCPU: time.Duration((after - before) * float64(time.Second)), Wall: wall}, nil
}

// childPID finds the one child process of pid (jetaid's runner).
func childPID(pid int) (int, error) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			return strconv.Atoi(filepath.Base(filepath.Dir(f)))
		}
	}
	return 0, fmt.Errorf("jetaid (pid %d) has no runner process", pid)
}

func printSpecial(w io.Writer, cfg SpecialConfig, rows []SpecialRow) {
	fmt.Fprintf(w, "\nSpecial-token text (\"</s>x\" repeated) against a 1,024-token slot (jetaid, %s; target: 400 KB answered 400 under %v of runner CPU; median of %d)\n", cfg.Model, TargetSpecialCPU, cfg.Repeats)
	for _, r := range rows {
		mark := ""
		if r.Bytes >= 400_000 {
			mark = "  ok"
			if r.Status != http.StatusBadRequest || r.RunnerCPU >= TargetSpecialCPU {
				mark = "  MISSED"
			}
		}
		fmt.Fprintf(w, "  %7d bytes: %d %s, runner CPU %.0f ms, answered in %.0f ms%s\n",
			r.Bytes, r.Status, r.ErrorType, ms(r.RunnerCPU), ms(r.Wall), mark)
	}
}
