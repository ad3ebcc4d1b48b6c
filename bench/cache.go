package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/modelgen"
	"golang.org/x/sys/unix"
)

// Targets of the model cache: parking and staging.
const (
	// TargetParkSpeedup: time to first token of a resumed 1,000-token
	// conversation after evict + reload, without parking / with parking.
	TargetParkSpeedup = 5.0
	// TargetStageVsCp: staging throughput / plain cp throughput of the
	// same file.
	TargetStageVsCp = 0.9
)

// CacheConfig sets up the model-cache benchmark.
type CacheConfig struct {
	// Model is the model of the parked conversation; Other is a second
	// model whose load evicts it.
	Model, Other string
	// StageFile is copied by staging and by cp (the bigger the better).
	StageFile string
	// History is the conversation's length in tokens (about).
	History int
	Threads int
	Jetaid  string // jetaid binary (runner)
	Out     io.Writer
	Log     io.Writer
}

// CacheReport holds the measured figures.
type CacheReport struct {
	HistoryTokens            int
	ParkedTTFT, ColdTTFT     time.Duration // first token of the resumed turn
	ParkedCached, ColdCached int           // prompt tokens reused
	ParkedReload, ColdReload time.Duration // evict + reload + first token, wall clock
	StageBytes               int64
	// Cold: the source's pages dropped before each copy (a model on slow
	// storage); Warm: the source in the page cache.
	Cold, Warm stageFigures
}

// stageFigures are MB/s, medians of stageRuns runs; CpSync is cp followed by a
// sync of the copy (staging syncs its copy before it counts as done).
type stageFigures struct {
	StageMBps, CpMBps, CpSync  float64
	StageRuns, CpRuns, CpSyncs []float64
	// HashMS: how long after the copy was usable it was synced, hashed and
	// recorded (in the background).
	HashMS []float64
}

// RunCache measures parking and staging and prints the figures.
func RunCache(ctx context.Context, cfg CacheConfig) (CacheReport, error) {
	var rep CacheReport
	if cfg.History <= 0 {
		cfg.History = 1000
	}
	dir, err := os.MkdirTemp("", "jetai-bench-cache-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)

	for _, parked := range []bool{true, false} {
		logf(cfg.Log, "cache: resumed %d-token conversation after evict + reload, parking %v", cfg.History, parked)
		r, err := resumeAfterEvict(ctx, cfg, filepath.Join(dir, fmt.Sprintf("park-%v", parked)), parked)
		if err != nil {
			return rep, fmt.Errorf("parking=%v: %w", parked, err)
		}
		rep.HistoryTokens = r.history
		if parked {
			rep.ParkedTTFT, rep.ParkedCached, rep.ParkedReload = r.ttft, r.cached, r.reload
		} else {
			rep.ColdTTFT, rep.ColdCached, rep.ColdReload = r.ttft, r.cached, r.reload
		}
	}

	if cfg.StageFile != "" {
		logf(cfg.Log, "cache: staging %s vs cp", filepath.Base(cfg.StageFile))
		st, err := os.Stat(cfg.StageFile)
		if err != nil {
			return rep, err
		}
		rep.StageBytes = st.Size()
		if err := stageVsCp(ctx, cfg.StageFile, dir, true, &rep.Cold); err != nil {
			return rep, err
		}
		if err := stageVsCp(ctx, cfg.StageFile, dir, false, &rep.Warm); err != nil {
			return rep, err
		}
	}
	if cfg.Out != nil {
		PrintCache(cfg.Out, rep)
	}
	return rep, nil
}

// PrintCache writes the report.
func PrintCache(w io.Writer, r CacheReport) {
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISS"
	}
	speed := float64(r.ColdTTFT) / float64(max(r.ParkedTTFT, 1))
	fmt.Fprintf(w, "\nmodel cache\n")
	fmt.Fprintf(w, "resumed %d-token conversation after evict + reload: first token %.1f ms parked (%d tokens cached) vs %.1f ms cold (%d cached): %.1f× (target ≥%.0f× %s)\n",
		r.HistoryTokens, ms(r.ParkedTTFT), r.ParkedCached, ms(r.ColdTTFT), r.ColdCached, speed, TargetParkSpeedup, mark(speed >= TargetParkSpeedup))
	fmt.Fprintf(w, "  evict + reload + first token, wall clock: %.0f ms parked vs %.0f ms cold\n", ms(r.ParkedReload), ms(r.ColdReload))
	if r.StageBytes > 0 {
		for _, c := range []struct {
			what string
			f    stageFigures
			goal bool
		}{{"source not in the page cache", r.Cold, true}, {"source in the page cache", r.Warm, false}} {
			f := c.f
			ratio := f.StageMBps / f.CpMBps
			target := "no target: cp is served by the page cache and does not sync"
			if c.goal {
				target = fmt.Sprintf("target ≥%.1f× %s", TargetStageVsCp, mark(ratio >= TargetStageVsCp))
			}
			fmt.Fprintf(w, "staging %s, %s: %.0f MB/s (until usable) vs cp %.0f MB/s: %.2f× (%s); vs cp + sync %.0f MB/s: %.2f×\n",
				human(uint64(r.StageBytes)), c.what, f.StageMBps, f.CpMBps, ratio, target, f.CpSync, f.StageMBps/f.CpSync)
			fmt.Fprintf(w, "  runs MB/s: stage %v, cp %v, cp+sync %v (medians above; same disk); synced, hashed and recorded %v ms after each staged copy was usable\n",
				round1(f.StageRuns), round1(f.CpRuns), round1(f.CpSyncs), round1(f.HashMS))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func human(n uint64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func round1(v []float64) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = fmt.Sprintf("%.0f", x)
	}
	return out
}

type resumed struct {
	history, cached int
	ttft, reload    time.Duration
}

// resumeAfterEvict runs a conversation on Model, evicts it by loading
// Other (the budget holds one), then continues the conversation and times
// its first token. With parked false the model has cache = false, so
// nothing is parked and the history is decoded again.
func resumeAfterEvict(ctx context.Context, cfg CacheConfig, dir string, parked bool) (resumed, error) {
	var r resumed
	c, err := cache.Open(cache.Options{Dir: filepath.Join(dir, "cache"), StageSameDevice: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return r, err
	}
	defer c.Close()
	hcl := func(budget string) string {
		return fmt.Sprintf(`memory {
  budget  = %q
  reserve = "1MiB"
}
model "m" {
  path       = %q
  context    = %d
  parallel   = 1
  threads    = %d
  keep_alive = "forever"
  cache      = %v
}
model "other" {
  path       = %q
  context    = %d
  parallel   = 1
  threads    = %d
  keep_alive = "forever"
}
`, budget, cfg.Model, 2*cfg.History+512, cfg.Threads, parked, cfg.Other, 2*cfg.History+512, cfg.Threads)
	}
	newPool := func(budget string) (*pool.Pool, error) {
		conf, err := config.Parse([]byte(hcl(budget)), filepath.Join(dir, "jetai.hcl"))
		if err != nil {
			return nil, err
		}
		return pool.New(pool.Options{Config: conf, RunnerCommand: []string{cfg.Jetaid, "runner"}, SocketDir: dir, Cache: c,
			Log: slog.New(slog.DiscardHandler)})
	}
	// A budget that holds either model but not both.
	probe, err := newPool("1000GiB")
	if err != nil {
		return r, err
	}
	est := map[string]uint64{}
	for _, m := range probe.Models() {
		est[m.Name] = m.EstimatedBytes
	}
	probe.Close(ctx)
	// Other is the same size class as m: half again the larger estimate
	// leaves room for the measured overhead, never for both.
	budget := max(est["m"], est["other"]) * 3 / 2
	if budget >= est["m"]+est["other"] {
		return r, fmt.Errorf("the evicting model (%d bytes) is too small next to the conversation's (%d bytes)", est["other"], est["m"])
	}
	p, err := newPool(fmt.Sprintf("%dKiB", budget/1024+1))
	if err != nil {
		return r, err
	}
	p.Start()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		p.Close(cctx)
		cancel()
	}()

	sampling := runner.Sampling{Temperature: 0}
	// The history: a prompt of about History tokens (the story text
	// repeated; one copy measures its length) and a short answer.
	unit := promptText(0)
	first, err := p.Complete(ctx, "m", runner.Request{Prompt: unit, Sampling: sampling, MaxTokens: 1}, nil)
	if err != nil {
		return r, err
	}
	text := strings.Repeat(unit, max(1, cfg.History/max(first.Timings.PromptTokens-1, 1)))
	hist, err := p.Complete(ctx, "m", runner.Request{Prompt: text, Sampling: sampling, MaxTokens: 16, IgnoreEOS: true}, nil)
	if err != nil {
		return r, err
	}
	r.history = hist.Timings.PromptTokens + hist.Timings.GeneratedTokens
	if _, err := p.Complete(ctx, "other", runner.Request{Prompt: "Once upon a time", Sampling: sampling, MaxTokens: 4}, nil); err != nil {
		return r, err
	}
	if err := waitUnloaded(ctx, p, "m"); err != nil {
		return r, err
	}
	// Evict and resume cyclesPerCase times; the medians count.
	conv := text + hist.Text
	var ttfts, reloads []float64
	for i := range cyclesPerCase {
		if i > 0 {
			if _, err := p.Complete(ctx, "other", runner.Request{Prompt: "Once upon a time", Sampling: sampling, MaxTokens: 4}, nil); err != nil {
				return r, err
			}
			if err := waitUnloaded(ctx, p, "m"); err != nil {
				return r, err
			}
		}
		conv += " The next day,"
		start := time.Now()
		var firstTok time.Time
		res, err := p.Complete(ctx, "m", runner.Request{Prompt: conv, Sampling: sampling, MaxTokens: 8, IgnoreEOS: true},
			func(string) {
				if firstTok.IsZero() {
					firstTok = time.Now()
				}
			})
		if err != nil {
			return r, err
		}
		conv += res.Text
		reloads = append(reloads, float64(firstTok.Sub(start)))
		ttfts = append(ttfts, res.Timings.FirstTokenMS*float64(time.Millisecond))
		r.cached = res.Timings.CachedTokens
	}
	r.ttft, r.reload = time.Duration(median(ttfts)), time.Duration(median(reloads))
	return r, nil
}

// stageRuns is how many copies each way stageVsCp times.
const stageRuns = 5

// cyclesPerCase is how many evict + resume cycles each case runs.
const cyclesPerCase = 3

func waitUnloaded(ctx context.Context, p *pool.Pool, name string) error {
	for {
		if s, _ := p.Model(name); s.State == pool.StateUnloaded {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stageVsCp copies src stageRuns times each by staging and by cp (and cp +
// sync), alternating, and keeps the medians in MB/s. With cold set, the
// source's pages are dropped from the page cache before every copy (as for
// a model on slow storage that was not read lately); otherwise they are
// all cached.
func stageVsCp(ctx context.Context, src, dir string, cold bool, rep *stageFigures) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	mbps := func(d time.Duration) float64 { return float64(st.Size()) / 1e6 / d.Seconds() }
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	prepare := func() {
		if cold {
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		} else {
			f.Seek(0, io.SeekStart)
			io.Copy(io.Discard, f)
		}
	}
	for i := range stageRuns {
		prepare()
		cdir := filepath.Join(dir, fmt.Sprintf("stage-%d", i))
		c, err := cache.Open(cache.Options{Dir: cdir, StageSameDevice: true, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		t := time.Now()
		h, err := c.Stage(ctx, src, nil)
		if err != nil {
			return err
		}
		rep.StageRuns = append(rep.StageRuns, mbps(time.Since(t)))
		h.Release()
		t = time.Now()
		c.Flush() // waits for the background sync, sha256 and record
		rep.HashMS = append(rep.HashMS, ms(time.Since(t)))
		if _, err := os.Stat(h.Path + ".json"); err != nil {
			return fmt.Errorf("staged copy of %s was not sealed: %w", src, err)
		}
		c.Close()
		os.RemoveAll(cdir)

		prepare()
		dst := filepath.Join(dir, fmt.Sprintf("cp-%d.gguf", i))
		t = time.Now()
		if out, err := exec.CommandContext(ctx, "cp", src, dst).CombinedOutput(); err != nil {
			return fmt.Errorf("cp: %v: %s", err, out)
		}
		rep.CpRuns = append(rep.CpRuns, mbps(time.Since(t)))
		os.Remove(dst)

		prepare()
		t = time.Now()
		if out, err := exec.CommandContext(ctx, "cp", src, dst).CombinedOutput(); err != nil {
			return fmt.Errorf("cp: %v: %s", err, out)
		}
		if out, err := exec.CommandContext(ctx, "sync", dst).CombinedOutput(); err != nil {
			return fmt.Errorf("sync: %v: %s", err, out)
		}
		rep.CpSyncs = append(rep.CpSyncs, mbps(time.Since(t)))
		os.Remove(dst)
	}
	rep.StageMBps, rep.CpMBps, rep.CpSync = median(rep.StageRuns), median(rep.CpRuns), median(rep.CpSyncs)
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// CacheModels picks the cache benchmark's files: the conversation runs on
// the generated 0.8B Q4_K_M model when large is set (else the generated
// 27M-parameter F16 model), the evicting model is another of the same
// shape, and staging copies the first.
func CacheModels(cacheDir string, large bool, log io.Writer) (model, other, stage string, err error) {
	if large {
		if model, err = LargeModel(cacheDir, log); err == nil {
			other, err = SecondLargeModel(cacheDir, log)
		}
		return model, other, model, err
	}
	spec := modelgen.Small()
	if model, err = modelgen.Cached(cacheDir, spec); err == nil {
		spec.Seed++
		other, err = modelgen.Cached(cacheDir, spec)
	}
	return model, other, model, err
}
