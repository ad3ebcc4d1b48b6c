package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jetai/jetai/daemon/runner"
)

// SwapConfig sets up the model swap measurement: two models of the same
// size under a budget that holds one, parallel 1, context 2048, requests
// alternating between them, each evicting the other model and loading its
// own. Jetaid is measured, and Baseline (another jetaid build, e.g. one
// from main) the same way in the same run, round by round in turn, so the
// two are compared side by side on the same machine state.
type SwapConfig struct {
	Jetaid   string // the jetaid binary measured
	Baseline string // another jetaid binary measured alike ("" = none)
	A, B     string // two model files of the same size
	Rounds   int    // swapping requests per binary (the first, a plain load, is not counted)
	Threads  int
	// Cold also measures loads with both files dropped from the page cache
	// (posix_fadvise DONTNEED) before each request, against a sequential
	// direct-I/O read of the same file (dd iflag=direct).
	Cold     bool
	Out, Log io.Writer
}

// SwapRun is one binary's figures, each a list over the rounds.
type SwapRun struct {
	Binary  string
	Cold    bool
	Request []float64            // whole request: eviction, load, prompt, 4 tokens (seconds)
	Load    []float64            // the load's own time, as /models says (load_seconds)
	Phases  map[string][]float64 // load_phases, where the binary reports them
	RSS     []float64            // the loaded runner's measured memory (bytes)
}

// SwapReport holds every run and the direct-I/O read figure.
type SwapReport struct {
	Runs       []SwapRun
	FileBytes  int64
	DirectRead time.Duration // dd iflag=direct of A, 0 when not measured
}

// swapPrompt is about two dozen tokens of the generated models' vocabulary.
const swapPrompt = "Once upon a time there was a little robot who lived in a small town by the sea and liked to count the waves"

// RunSwap measures and prints the swap report.
func RunSwap(ctx context.Context, cfg SwapConfig) (SwapReport, error) {
	var rep SwapReport
	if cfg.Rounds < 2 {
		cfg.Rounds = 6
	}
	st, err := os.Stat(cfg.A)
	if err != nil {
		return rep, err
	}
	rep.FileBytes = st.Size()
	dir, err := os.MkdirTemp("", "jetai-bench-swap-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	bins := []string{cfg.Jetaid}
	if cfg.Baseline != "" {
		bins = append(bins, cfg.Baseline)
	}
	modes := []bool{false}
	if cfg.Cold {
		modes = append(modes, true)
	}
	for _, cold := range modes {
		logf(cfg.Log, "swap: %s page cache", map[bool]string{false: "warm", true: "cold"}[cold])
		runs, err := swapRuns(ctx, cfg, dir, bins, cold)
		if err != nil {
			return rep, err
		}
		rep.Runs = append(rep.Runs, runs...)
	}
	if cfg.Cold {
		if rep.DirectRead, err = directRead(ctx, cfg.A); err != nil {
			logf(cfg.Log, "swap: dd iflag=direct: %v (cold figure without its reference)", err)
		}
	}
	PrintSwap(cfg.Out, cfg, rep)
	return rep, nil
}

// dropCache drops path's pages from the page cache.
func dropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// readAll reads path once, so its pages are in the page cache.
func readAll(path string) {
	if f, err := os.Open(path); err == nil {
		io.Copy(io.Discard, f)
		f.Close()
	}
}

// directRead times a sequential direct-I/O read of path: the disk's
// speed, without the page cache.
func directRead(ctx context.Context, path string) (time.Duration, error) {
	dropCache(path)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "dd", "if="+path, "of=/dev/null", "bs=4M", "iflag=direct").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return time.Since(start), nil
}

// swapRuns starts one daemon per binary, each with the two models, and
// runs the rounds on them in turn (a request to each binary's daemon,
// then the next round), so both see the same state of a shared machine.
func swapRuns(ctx context.Context, cfg SwapConfig, dir string, bins []string, cold bool) ([]SwapRun, error) {
	for _, f := range []string{cfg.A, cfg.B} {
		readAll(f)
	}
	st, err := os.Stat(cfg.A)
	if err != nil {
		return nil, err
	}
	// Room for one model with its KV cache and compute buffers, not two.
	budget := fmt.Sprintf("%dMiB", (st.Size()*3/2)>>20+256)
	models := ""
	for _, m := range []struct{ name, path string }{{"a", cfg.A}, {"b", cfg.B}} {
		models += fmt.Sprintf("model %q {\n  path = %q\n  context = 2048\n  parallel = 1\n  threads = %d\n  keep_alive = \"forever\"\n  cache = false\n}\n",
			m.name, m.path, cfg.Threads)
	}
	runs := make([]SwapRun, len(bins))
	daemons := make([]*daemonProc, len(bins))
	defer func() {
		for _, d := range daemons {
			if d != nil {
				d.stop()
			}
		}
	}()
	for i, bin := range bins {
		runs[i] = SwapRun{Binary: bin, Cold: cold, Phases: map[string][]float64{}}
		name := fmt.Sprintf("swap-%d-%t", i, cold)
		if daemons[i], err = startDaemon(ctx, HTTPConfig{Jetaid: bin, Log: cfg.Log}, dir, name, models, budget); err != nil {
			return nil, fmt.Errorf("swap %s: %w", bin, err)
		}
	}
	order := []string{"a"}
	for i := range cfg.Rounds {
		order = append(order, []string{"b", "a"}[i%2])
	}
	for i, name := range order {
		for k, d := range daemons {
			if cold {
				dropCache(cfg.A)
				dropCache(cfg.B)
			}
			start := time.Now()
			if _, err := d.complete(ctx, name, swapPrompt, 4); err != nil {
				return nil, fmt.Errorf("swap %s: %w", bins[k], err)
			}
			took := time.Since(start).Seconds()
			if i == 0 {
				continue
			}
			ms, err := d.loadRecords(ctx)
			if err != nil {
				return nil, err
			}
			m, ok := ms[name]
			if !ok {
				return nil, fmt.Errorf("model %s not in /models", name)
			}
			if other := order[i-1]; ms[other].State == "ready" {
				return nil, fmt.Errorf("model %s is still loaded after the swap to %s: the budget holds both", other, name)
			}
			run := &runs[k]
			run.Request = append(run.Request, took)
			run.Load = append(run.Load, m.LoadSeconds)
			run.RSS = append(run.RSS, float64(m.MeasuredBytes))
			for _, ph := range m.LoadPhases {
				run.Phases[ph.Name] = append(run.Phases[ph.Name], ph.Seconds)
			}
			// A warm spare starts after a load: let it settle before the
			// other build's turn, so that its start takes no CPU from that
			// build's swap.
			if err := d.settleSpare(ctx, 5*time.Second); err != nil {
				return nil, fmt.Errorf("swap %s: %w", bins[k], err)
			}
		}
	}
	return runs, nil
}

// settleSpare waits, up to limit, until the daemon's warm spare runner
// waits for a model (GET /status, pool.spare), or is in backoff, or has
// had no room for 100 ms; a build without one returns at once.
func (d *daemonProc) settleSpare(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	noneSince := time.Time{}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/status", nil)
		resp, err := d.client.Do(req)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		var body struct {
			Pool struct {
				Spare *struct {
					State string `json:"state"`
				} `json:"spare"`
			} `json:"pool"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		sp := body.Pool.Spare
		if sp == nil || sp.State == "waiting" || sp.State == "backoff" || time.Now().After(deadline) {
			return nil
		}
		if sp.State != "none" {
			noneSince = time.Time{}
		} else if noneSince.IsZero() {
			noneSince = time.Now()
		} else if time.Since(noneSince) > 100*time.Millisecond {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// loadRecord is the part of GET /models the swap bench reads.
type loadRecord struct {
	Name          string         `json:"name"`
	State         string         `json:"state"`
	LoadSeconds   float64        `json:"load_seconds"`
	MeasuredBytes uint64         `json:"measured_bytes"`
	LoadPhases    []runner.Phase `json:"load_phases"`
}

func (d *daemonProc) loadRecords(ctx context.Context) (map[string]loadRecord, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/models", nil)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Models []loadRecord `json:"models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := map[string]loadRecord{}
	for _, m := range body.Models {
		out[m.Name] = m
	}
	return out, nil
}

// complete runs a non-streamed /inference of maxTokens tokens.
func (d *daemonProc) complete(ctx context.Context, model, prompt string, maxTokens int) (int, error) {
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": maxTokens,
		"temperature": 0, "ignore_eos": true})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/inference", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/inference %s: %s: %s", model, resp.Status, b)
	}
	var out struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	err = json.Unmarshal(b, &out)
	return out.Usage.PromptTokens, err
}

// PrintSwap writes the swap table: medians over the rounds.
func PrintSwap(w io.Writer, cfg SwapConfig, r SwapReport) {
	fmt.Fprintf(w, "\nmodel swap: %s and %s (%.0f MiB each), budget for one, parallel 1, context 2048, alternating requests of %d rounds (medians, seconds)\n",
		filepath.Base(cfg.A), filepath.Base(cfg.B), float64(r.FileBytes)/(1<<20), cfg.Rounds)
	label := func(run SwapRun) string {
		s := "this build"
		if run.Binary == cfg.Baseline && cfg.Baseline != "" {
			s = "baseline"
		}
		if run.Cold {
			s += ", cold"
		}
		return s
	}
	for _, run := range r.Runs {
		fmt.Fprintf(w, "  %-22s load %.3f  whole request %.3f  runner RSS %s\n", label(run), median(run.Load), median(run.Request), human(uint64(median(run.RSS))))
	}
	var warm, base, cold, coldBase *SwapRun
	for i := range r.Runs {
		run := &r.Runs[i]
		isBase := cfg.Baseline != "" && run.Binary == cfg.Baseline
		switch {
		case !run.Cold && !isBase:
			warm = run
		case !run.Cold && isBase:
			base = run
		case run.Cold && !isBase:
			cold = run
		default:
			coldBase = run
		}
	}
	if warm != nil {
		l, req := median(warm.Load), median(warm.Request)
		fmt.Fprintf(w, "  load from the page cache %.3f s (≤0.4 %s), whole request %.3f s (≤1.0 %s)\n", l, okMiss(l <= 0.4), req, okMiss(req <= 1.0))
		if base != nil {
			ratio := median(base.Load) / l
			fmt.Fprintf(w, "  load vs baseline: %.2f× faster (≥3 %s); whole request %.2f× faster\n", ratio, okMiss(ratio >= 3), median(base.Request)/req)
		}
		printPhases(w, warm, base)
	}
	if cold != nil && r.DirectRead > 0 {
		mbps := func(s float64) float64 { return float64(r.FileBytes) / 1e6 / s }
		dd := mbps(r.DirectRead.Seconds())
		// The runner's share of a cold load is the part that reads the file.
		l := median(cold.Load)
		ratio := mbps(l) / dd
		fmt.Fprintf(w, "  cold load %.3f s = %.0f MB/s; dd iflag=direct %.3f s = %.0f MB/s; load/dd %.2f (≥0.8 %s)\n",
			l, mbps(l), r.DirectRead.Seconds(), dd, ratio, okMiss(ratio >= 0.8))
		if coldBase != nil {
			fmt.Fprintf(w, "  baseline cold load %.3f s = %.0f MB/s (load/dd %.2f)\n", median(coldBase.Load), mbps(median(coldBase.Load)), mbps(median(coldBase.Load))/dd)
		}
		printPhases(w, cold, coldBase)
	}
}

func okMiss(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// printPhases writes the median of each phase, in swap order, for run
// (and the baseline's when it reports them).
func printPhases(w io.Writer, run, base *SwapRun) {
	if len(run.Phases) == 0 {
		return
	}
	names := make([]string, 0, len(run.Phases))
	for n := range run.Phases {
		names = append(names, n)
	}
	rank := map[string]int{}
	for i, n := range runner.PhaseOrder {
		rank[n] = i + 1
	}
	sort.SliceStable(names, func(i, j int) bool { return rank[names[i]] < rank[names[j]] })
	var parts []string
	for _, n := range names {
		s := fmt.Sprintf("%s %.3f", n, median(run.Phases[n]))
		if base != nil && len(base.Phases[n]) > 0 {
			s += fmt.Sprintf(" (baseline %.3f)", median(base.Phases[n]))
		}
		parts = append(parts, s)
	}
	fmt.Fprintf(w, "  phases%s: %s\n", map[bool]string{false: "", true: " (cold)"}[run.Cold], strings.Join(parts, ", "))
}
