package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// ReloadConfig sets up the config hot reload figures: the time from saving
// the config file (a temporary file renamed over it, as editors save) to
// the new config in force, for a change applied in place (a priority) and
// for one that restarts the model's runner (its context).
type ReloadConfig struct {
	Jetaid string // jetaid binary
	Model  string // the tiny model
	// Large, when set, is a bigger model whose restart shows the load
	// time that dominates a restart.
	Large  string
	Rounds int // per figure; default 10
	Out    io.Writer
	Log    io.Writer
}

// ReloadReport holds the figures: save-to-in-force latencies over the
// rounds.
type ReloadReport struct {
	InPlace      Latencies
	Restart      Latencies
	RestartLarge Latencies
}

// Latencies summarise one figure's rounds.
type Latencies struct {
	N             int
	P50, P90, Max time.Duration
}

func summarise(ds []time.Duration) Latencies {
	if len(ds) == 0 {
		return Latencies{}
	}
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Latencies{N: len(s), P50: at(0.5), P90: at(0.9), Max: s[len(s)-1]}
}

// reloadModel is the model block the rounds rewrite.
func reloadModel(path string, priority, context int) string {
	return fmt.Sprintf(`model "m" {
  path = %q
  context = %d
  parallel = 1
  threads = 1
  priority = %d
  preload = true
  keep_alive = "forever"
}`, path, context, priority)
}

// modelState is the part of GET /models that the reload figures read.
type modelState struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Priority int    `json:"priority"`
	Pid      int    `json:"pid"`
	Reload   string `json:"reload"`
}

func (d *daemonProc) modelM(ctx context.Context) (modelState, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/models", nil)
	resp, err := d.client.Do(req)
	if err != nil {
		return modelState{}, err
	}
	defer resp.Body.Close()
	var body struct {
		Models []modelState `json:"models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return modelState{}, err
	}
	for _, m := range body.Models {
		if m.Name == "m" {
			return m, nil
		}
	}
	return modelState{}, fmt.Errorf("model m is not listed")
}

// save replaces the config as editors do and returns when the rename is
// done: the moment the new config is saved.
func (d *daemonProc) save(models string) (time.Time, error) {
	tmp := filepath.Join(filepath.Dir(d.conf), ".jetai.hcl.tmp")
	if err := os.WriteFile(tmp, []byte(d.confHead+models+"\n"), 0o644); err != nil {
		return time.Time{}, err
	}
	if err := os.Rename(tmp, d.conf); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// until polls m's state every millisecond until done says the new config
// is in force, and returns the time since saved.
func (d *daemonProc) until(ctx context.Context, saved time.Time, limit time.Duration, done func(modelState) bool) (time.Duration, error) {
	deadline := saved.Add(limit)
	for time.Now().Before(deadline) {
		m, err := d.modelM(ctx)
		if err == nil && done(m) {
			return time.Since(saved), nil
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("the reload was not in force %v after the save", limit)
}

// RunReload measures and prints the reload figures. jetaid runs with its
// default watch settings (100 ms debounce).
func RunReload(ctx context.Context, cfg ReloadConfig) (ReloadReport, error) {
	var rep ReloadReport
	if cfg.Rounds <= 0 {
		cfg.Rounds = 10
	}
	dir, err := os.MkdirTemp("", "jetai-bench-reload-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	hc := HTTPConfig{Jetaid: cfg.Jetaid, Log: cfg.Log}

	measure := func(model string, rounds int, inPlace, restart *[]time.Duration) error {
		d, err := startDaemon(ctx, hc, dir, "reload", reloadModel(model, 50, 256), "8GiB")
		if err != nil {
			return err
		}
		defer d.stop()
		prio, ctxSize := 50, 256
		for i := 0; inPlace != nil && i < rounds; i++ {
			before, err := d.modelM(ctx)
			if err != nil {
				return err
			}
			prio = 51 + i%40
			saved, err := d.save(reloadModel(model, prio, ctxSize))
			if err != nil {
				return err
			}
			lat, err := d.until(ctx, saved, 10*time.Second, func(m modelState) bool { return m.Priority == prio })
			if err != nil {
				return err
			}
			if after, _ := d.modelM(ctx); after.Pid != before.Pid {
				return fmt.Errorf("a priority change restarted the runner (pid %d → %d)", before.Pid, after.Pid)
			}
			*inPlace = append(*inPlace, lat)
			time.Sleep(50 * time.Millisecond)
		}
		for i := 0; restart != nil && i < rounds; i++ {
			before, err := d.modelM(ctx)
			if err != nil {
				return err
			}
			ctxSize = 768 - ctxSize // 256 and 512 in turn
			saved, err := d.save(reloadModel(model, prio, ctxSize))
			if err != nil {
				return err
			}
			// In force: a new runner serves (the old one may still be
			// finishing requests).
			lat, err := d.until(ctx, saved, 5*time.Minute, func(m modelState) bool {
				return m.Pid != 0 && m.Pid != before.Pid && m.State == "ready"
			})
			if err != nil {
				return err
			}
			*restart = append(*restart, lat)
			// Let the old runner go before the next round.
			if _, err := d.until(ctx, time.Now(), time.Minute, func(m modelState) bool { return m.Reload == "" }); err != nil {
				return err
			}
		}
		return nil
	}

	logf(cfg.Log, "config reload: %d rounds in place and with a runner restart (%s)", cfg.Rounds, filepath.Base(cfg.Model))
	var inPlace, restart, large []time.Duration
	if err := measure(cfg.Model, cfg.Rounds, &inPlace, &restart); err != nil {
		return rep, fmt.Errorf("reload figures: %w", err)
	}
	rep.InPlace, rep.Restart = summarise(inPlace), summarise(restart)
	if cfg.Large != "" {
		logf(cfg.Log, "config reload: runner restart of %s", filepath.Base(cfg.Large))
		if err := measure(cfg.Large, 3, nil, &large); err != nil {
			return rep, fmt.Errorf("reload figures (large model): %w", err)
		}
		rep.RestartLarge = summarise(large)
	}
	if cfg.Out != nil {
		printReload(cfg.Out, cfg, rep)
	}
	return rep, nil
}

func printReload(w io.Writer, cfg ReloadConfig, r ReloadReport) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	row := func(what string, l Latencies) {
		if l.N == 0 {
			return
		}
		fmt.Fprintf(w, "  %-62s %3d   %8s %8s %8s\n", what, l.N, ms(l.P50), ms(l.P90), ms(l.Max))
	}
	fmt.Fprintf(w, "\nConfig reload: file saved (rename) → new config in force, jetaid's default 100 ms debounce\n")
	fmt.Fprintf(w, "  %-62s %3s   %8s %8s %8s\n", "change", "n", "p50", "p90", "max")
	row("priority (in place; same runner)", r.InPlace)
	row("context (runner restart, "+filepath.Base(cfg.Model)+")", r.Restart)
	if cfg.Large != "" {
		row("context (runner restart, 0.8B Q4_K_M, file in page cache)", r.RestartLarge)
	}
}
