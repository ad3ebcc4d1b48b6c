package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/testhub"
)

// PullConfig sets up the download figures: jetaid pulling a model from a
// local hub (internal/testhub: the Hub's API, a redirect to a "CDN" that
// honours Range) against curl fetching the same URL from the same servers
// into the same directory; the bytes fetched twice after a connection cut
// at 40%; and the time from the download's end to the model's first answer
// (the --add step: a trial load, the drop-in, a reload, the load, a token).
type PullConfig struct {
	Jetaid string // jetaid binary
	Model  string // the file served (the generated 0.8B Q4_K_M)
	Curl   string // curl binary; default "curl"
	Rounds int    // throughput rounds of each side, back to back; default 3
	Out    io.Writer
	Log    io.Writer
}

// PullReport holds the figures.
type PullReport struct {
	Size int64
	// bytes/s per round: jetaid's pull, curl, curl then fsync (sync FILE)
	Jetai, Curl, CurlSync []float64
	CutAt                 int64
	Twice                 int64 // bytes served minus the file's size, with the cut
	Ranged                int   // requests with a Range, with the cut
	ToAnswer              time.Duration
	AddStep               time.Duration // of ToAnswer: the --add step (trial load, drop-in, reload)
}

// benchTB runs testhub outside a test.
type benchTB struct {
	cleanups []func()
	err      error
}

func (b *benchTB) Helper()           {}
func (b *benchTB) Fatal(args ...any) { b.err = fmt.Errorf("%s", fmt.Sprint(args...)); panic(b) }
func (b *benchTB) Cleanup(f func())  { b.cleanups = append(b.cleanups, f) }
func (b *benchTB) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

// RunPull measures and prints the download figures.
func RunPull(ctx context.Context, cfg PullConfig) (rep PullReport, err error) {
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Curl == "" {
		cfg.Curl = "curl"
	}
	st, err := os.Stat(cfg.Model)
	if err != nil {
		return rep, err
	}
	rep.Size = st.Size()
	tb := &benchTB{}
	defer tb.close()
	defer func() {
		if v := recover(); v != nil {
			if v != any(tb) {
				panic(v)
			}
			err = tb.err
		}
	}()
	hub := testhub.New(tb)
	file := filepath.Base(cfg.Model)
	// One repo a round, so that each pull downloads (a file in the cache
	// already is not fetched again).
	for i := 0; i <= cfg.Rounds+1; i++ {
		hub.AddRepo(tb, fmt.Sprintf("bench/r%d-GGUF", i), map[string]string{file: cfg.Model}, false)
	}
	dir, err := os.MkdirTemp("", "jetai-bench-pull-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	pullBlock := fmt.Sprintf("pull {\n  hf_endpoint = %q\n}\n", hub.URL)
	d, err := startDaemon(ctx, HTTPConfig{Jetaid: cfg.Jetaid, Log: cfg.Log}, dir, "pull", pullBlock, "6GiB")
	if err != nil {
		return rep, err
	}
	defer d.stop()
	c := admin.NewClient(filepath.Join(dir, "pull.sock"))
	defer c.Close()

	for i := 1; i <= cfg.Rounds; i++ {
		// curl: the resolve URL, following the redirect, into the same disk.
		out := filepath.Join(dir, "curl.gguf")
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, cfg.Curl, "-sSfL", "-o", out, fmt.Sprintf("%s/bench/r%d-GGUF/resolve/main/%s", hub.URL, i, file))
		cmd.Stderr = cfg.Log
		if err := cmd.Run(); err != nil {
			return rep, fmt.Errorf("curl: %w", err)
		}
		rep.Curl = append(rep.Curl, float64(rep.Size)/time.Since(t0).Seconds())
		os.Remove(out)
		// The same with the file on disk at the end, as jetaid's is.
		t0 = time.Now()
		cmd = exec.CommandContext(ctx, cfg.Curl, "-sSfL", "-o", out, fmt.Sprintf("%s/bench/r%d-GGUF/resolve/main/%s", hub.URL, i, file))
		cmd.Stderr = cfg.Log
		if err := cmd.Run(); err != nil {
			return rep, fmt.Errorf("curl: %w", err)
		}
		if err := syncFile(out); err != nil {
			return rep, err
		}
		rep.CurlSync = append(rep.CurlSync, float64(rep.Size)/time.Since(t0).Seconds())
		os.Remove(out)
		t0 = time.Now()
		r, err := c.Pull(ctx, admin.PullRequest{Source: fmt.Sprintf("hf.co/bench/r%d-GGUF/%s", i, file)}, nil)
		if err != nil {
			return rep, fmt.Errorf("pull: %w", err)
		}
		rep.Jetai = append(rep.Jetai, float64(rep.Size)/time.Since(t0).Seconds())
		logf(cfg.Log, "round %d: curl %.0f MiB/s, curl + fsync %.0f MiB/s, jetaid %.0f MiB/s (%d files)", i, rep.Curl[i-1]/(1<<20), rep.CurlSync[i-1]/(1<<20), rep.Jetai[i-1]/(1<<20), len(r.Files))
	}

	// A cut at 40%, then --add and the first answer.
	rep.CutAt = rep.Size * 40 / 100
	hub.SetFault("", &testhub.Fault{CutAt: rep.CutAt})
	last := cfg.Rounds + 1
	source := fmt.Sprintf("hf.co/bench/r%d-GGUF/%s", last, file)
	var downloaded time.Time
	r, err := c.Pull(ctx, admin.PullRequest{Source: source, Add: "pulled"}, func(ev admin.PullEvent) {
		if ev.Phase == admin.PullAdd && downloaded.IsZero() {
			downloaded = time.Now()
		}
	})
	if err != nil {
		return rep, fmt.Errorf("pull --add: %w", err)
	}
	if downloaded.IsZero() {
		downloaded = time.Now()
	}
	rep.AddStep = time.Since(downloaded)
	cut := hub.Stats(fmt.Sprintf("bench/r%d-GGUF/", last))
	rep.Twice, rep.Ranged = cut.Served-cut.Size, cut.Ranged
	if r.DropIn == "" {
		return rep, fmt.Errorf("pull --add wrote no drop-in: %+v", r)
	}
	for {
		n, err := d.stream(ctx, "pulled", "Hello", 1, func() {})
		if err == nil && n > 0 {
			break
		}
		if time.Since(downloaded) > 3*time.Minute {
			return rep, fmt.Errorf("the pulled model does not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rep.ToAnswer = time.Since(downloaded)
	printPull(cfg.Out, cfg, rep)
	return rep, nil
}

func printPull(w io.Writer, cfg PullConfig, r PullReport) {
	best := func(v []float64) float64 {
		b := 0.0
		for _, x := range v {
			b = max(b, x)
		}
		return b
	}
	j, c, cs := best(r.Jetai), best(r.Curl), best(r.CurlSync)
	fmt.Fprintf(w, "\n## Pull (%s, %s, local hub + CDN on loopback; best of %d rounds each, back to back)\n\n", filepath.Base(cfg.Model), human(uint64(r.Size)), len(r.Jetai))
	fmt.Fprintf(w, "| figure | jetaid pull | curl -L | ratio |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| download throughput (MiB/s) | %.0f | %.0f | %.2f× |\n", j/(1<<20), c/(1<<20), j/c)
	fmt.Fprintf(w, "| the same, curl's file fsynced too | %.0f | %.0f | %.2f× |\n", j/(1<<20), cs/(1<<20), j/cs)
	fmt.Fprintf(w, "\n| figure | value |\n|---|---|\n")
	fmt.Fprintf(w, "| bytes fetched twice after a cut at 40%% (%s) | %s (%d ranged request) |\n", human(uint64(r.CutAt)), bytesOrZero(r.Twice), r.Ranged)
	fmt.Fprintf(w, "| download complete → first token of the pulled model | %.2f s (the reload took jetai.d/pulled.hcl) |\n", r.ToAnswer.Seconds())
	fmt.Fprintf(w, "| of which the --add step: the engine's trial load, the drop-in, the reload | %.2f s |\n", r.AddStep.Seconds())
	if avg, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(w, "\nLoad average at the end: %s on %d CPUs.\n", strings.Join(strings.Fields(string(avg))[:3], " "), runtime.NumCPU())
	}
	fmt.Fprintf(w, "\njetaid's side includes the hub's listing, the space check, the sha256 (hashed as the bytes arrive), fsync and the cache record; curl's is the bytes only.\n")
}

func bytesOrZero(n int64) string {
	if n <= 0 {
		return "0 B"
	}
	return strings.TrimSpace(fmt.Sprintf("%d B (%.2f MiB)", n, float64(n)/(1<<20)))
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
