package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/modelgen"
)

// Case is one model to measure.
type Case struct {
	Name         string
	Path         string
	PromptTokens int // length of the prompt for prompt tok/s
	GenTokens    int // tokens generated per stream
}

// Config sets up a run.
type Config struct {
	Cases   []Case
	Threads int      // CPU threads for both the raw engine and the runner
	Streams []int    // concurrency levels, e.g. 1 2 4 8
	Runner  []string // runner command, e.g. ["bin/jetaid", "runner"]
	Repeats int      // measurements of each figure (0 = 3); the best counts
	Out     io.Writer
	Log     io.Writer // progress lines; nil = discard

	// Target, when set, is measured instead of a runner started for the
	// run: a running jetaid's model (jetai-ctl bench). SlotContext and
	// Slots then give the raw engine the same shape as the target's
	// model; TargetNote replaces the table's "runner = …" footnote.
	Target      Completer
	TargetNote  string
	SlotContext int
	Slots       int
}

// Completer runs one completion. *runner.Process is one.
type Completer interface {
	Complete(ctx context.Context, req runner.Request, onText func(string)) (runner.Result, error)
}

var _ Completer = (*runner.Process)(nil)

// Row is one measured figure.
type Row struct {
	Model  string  `json:"model"`
	Metric string  `json:"metric"`
	Raw    float64 `json:"raw"`    // tokens/s
	Runner float64 `json:"runner"` // tokens/s
	Target float64 `json:"target"` // minimum Runner/Raw ratio, 0 = none
	// PairMin and PairMax bound the runner/raw ratios of the single
	// repeats, each measured back to back: how much the machine moved.
	PairMin float64 `json:"pair_min"`
	PairMax float64 `json:"pair_max"`
	// RawWakeups and RunnerWakeups are the median voluntary context
	// switches per generated token: of this process for the raw loop, of
	// the runner and this process (its client) for the runner; -1 where
	// they are not counted (the prompt row, a target that is not a runner
	// process, no /proc).
	RawWakeups    float64 `json:"raw_wakeups_per_token"`
	RunnerWakeups float64 `json:"runner_wakeups_per_token"`
}

// Ratio is Runner/Raw, the best of each side.
func (r Row) Ratio() float64 {
	if r.Raw == 0 {
		return 0
	}
	return r.Runner / r.Raw
}

// Targets: runner single stream vs raw, per model size class,
// and aggregate at 8 streams vs the raw batched figure.
const (
	TargetSingleLarge = 0.95
	TargetSingleTiny  = 0.80
	TargetAggregate8  = 0.90
)

// PrepareCases returns the standard cases: the real tiny model and, when
// large is set, a generated ~0.8B llama-shaped model quantized to Q4_K_M
// (made once under cacheDir, then reused).
func PrepareCases(tinyPath, cacheDir string, large bool, log io.Writer) ([]Case, error) {
	var cases []Case
	if tinyPath != "" {
		cases = append(cases, Case{Name: "stories260K", Path: tinyPath, PromptTokens: 256, GenTokens: 512})
	}
	if large {
		q, err := LargeModel(cacheDir, log)
		if err != nil {
			return nil, err
		}
		cases = append(cases, Case{Name: "llama-0.8B-Q4_K_M", Path: q, PromptTokens: 128, GenTokens: 64})
	}
	return cases, nil
}

// LargeModel returns the path of the generated 0.8B Q4_K_M model, making it
// if needed.
func LargeModel(cacheDir string, log io.Writer) (string, error) {
	return largeModel(cacheDir, modelgen.Llama08B(), log)
}

// SecondLargeModel is a model of the same shape with other weights, for
// swap measurements.
func SecondLargeModel(cacheDir string, log io.Writer) (string, error) {
	spec := modelgen.Llama08B()
	spec.Seed++
	return largeModel(cacheDir, spec, log)
}

func largeModel(cacheDir string, spec modelgen.Spec, log io.Writer) (string, error) {
	q := filepath.Join(cacheDir, strings.TrimSuffix(spec.FileName(), ".gguf")+"-q4_k_m.gguf")
	if _, err := os.Stat(q); err == nil {
		return q, nil
	}
	logf(log, "generating %s (%d parameters) in %s", spec.Name, spec.ParamCount(), cacheDir)
	f16, err := modelgen.Cached(cacheDir, spec)
	if err != nil {
		return "", err
	}
	logf(log, "quantizing to Q4_K_M")
	if err := engine.Quantize(f16, q, "q4_k_m"); err != nil {
		return "", err
	}
	os.Remove(f16) // 1.6 GB we no longer need
	return q, nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// Run measures every case and prints the table.
func Run(ctx context.Context, cfg Config) ([]Row, error) {
	if len(cfg.Streams) == 0 {
		cfg.Streams = []int{1, 2, 4, 8}
	}
	var rows []Row
	for _, c := range cfg.Cases {
		r, err := runCase(ctx, cfg, c)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", c.Name, err)
		}
		rows = append(rows, r...)
	}
	if cfg.Out != nil {
		PrintNote(cfg.Out, rows, cfg.Threads, cfg.TargetNote)
	}
	return rows, nil
}

// Print writes rows as a table.
func Print(w io.Writer, rows []Row, threads int) { PrintNote(w, rows, threads, "") }

// PrintNote writes rows as a table whose footnote says what the runner
// column measured ("" for a runner over its Unix socket).
func PrintNote(w io.Writer, rows []Row, threads int, note string) {
	if note == "" {
		note = "jetaid runner over its Unix socket"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "model\tmetric\traw tok/s\trunner tok/s\trunner/raw\tpairs\twake-ups/tok\ttarget\t\n")
	for _, r := range rows {
		target := ""
		if r.Target > 0 {
			mark := "ok"
			if r.Ratio() < r.Target {
				mark = "MISS"
			}
			target = fmt.Sprintf("≥%.2f %s", r.Target, mark)
		}
		wake := ""
		if r.RawWakeups >= 0 && r.RunnerWakeups >= 0 {
			wake = fmt.Sprintf("%.2f / %.2f", r.RawWakeups, r.RunnerWakeups)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.3f\t%.2f–%.2f\t%s\t%s\t\n", r.Model, r.Metric, r.Raw, r.Runner, r.Ratio(), r.PairMin, r.PairMax, wake, target)
	}
	tw.Flush()
	fmt.Fprintf(w, "threads=%d; raw = minimal in-process loop over the engine, same flags; runner = %s\n", threads, note)
	fmt.Fprintf(w, "tok/s: best of the repeats; runner/raw: best over best; pairs: lowest and highest runner/raw of one repeat, raw and runner back to back\n")
	fmt.Fprintf(w, "wake-ups/tok: voluntary context switches per generated token (median), raw loop / runner and its client\n")
}

func promptText(n int) string {
	// Repeated story text; the engine's tokenizer decides the exact count.
	s := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. "
	return strings.Repeat(s, n/10+1)
}

func shortPrompt(k, i int) string {
	starts := []string{"Once upon a time", "The little dog", "Lily and Ben", "One day, a cat", "The sun was", "Tom had a red ball", "There was a bird", "A girl named Sue"}
	return fmt.Sprintf("%s %d.%d", starts[i%len(starts)], k, i)
}

func runCase(ctx context.Context, cfg Config, c Case) ([]Row, error) {
	maxStreams := 1
	for _, k := range cfg.Streams {
		maxStreams = max(maxStreams, k)
	}
	slotCtx := c.PromptTokens + c.GenTokens + 64
	if cfg.SlotContext > 0 {
		slotCtx, maxStreams = cfg.SlotContext, max(cfg.Slots, 1)
	}
	// Like the runner's decode loop: one OS thread drives the raw context.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	logf(cfg.Log, "%s: raw engine", c.Name)
	raw, err := newRawEngine(ctx, cfg, c, slotCtx, maxStreams)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	logf(cfg.Log, "%s: runner", c.Name)
	p, stop, err := startTarget(ctx, cfg, c, slotCtx, maxStreams)
	if err != nil {
		return nil, err
	}
	defer stop()
	logf(cfg.Log, "%s: raw engine and runner, alternating", c.Name)
	pr, err := measure(ctx, cfg, c, raw, p)
	if err != nil {
		return nil, err
	}
	single := TargetSingleLarge
	if strings.Contains(c.Name, "260K") || strings.Contains(filepath.Base(c.Path), "260K") {
		single = TargetSingleTiny
	}
	rows := []Row{
		pr.row(c.Name, fmt.Sprintf("prompt (%d tok)", raw.promptTokens), "prompt", 0),
		pr.row(c.Name, "decode, 1 stream", "decode", single),
	}
	for _, k := range cfg.Streams {
		t := 0.0
		if k == 8 {
			t = TargetAggregate8
		}
		rows = append(rows, pr.row(c.Name, fmt.Sprintf("aggregate, %d streams", k), fmt.Sprint(k), t))
	}
	return rows, nil
}

// pair is one repeat of a figure: raw and runner tok/s measured one right
// after the other, and the wake-ups per generated token of each side.
type pair struct {
	raw, run         float64
	rawWake, runWake float64 // -1: not counted
}

// pairs holds, per figure, the pairs of each repeat.
type pairs map[string][]pair

// row makes a table row: the best of each side, the range of the ratios
// of the pairs, and the median wake-ups per token.
func (p pairs) row(model, metric, figure string, target float64) Row {
	r := Row{Model: model, Metric: metric, Target: target, RawWakeups: -1, RunnerWakeups: -1}
	var rw, pw []float64
	for i, x := range p[figure] {
		r.Raw, r.Runner = max(r.Raw, x.raw), max(r.Runner, x.run)
		q := 0.0
		if x.raw > 0 {
			q = x.run / x.raw
		}
		if i == 0 || q < r.PairMin {
			r.PairMin = q
		}
		r.PairMax = max(r.PairMax, q)
		if x.rawWake >= 0 {
			rw = append(rw, x.rawWake)
		}
		if x.runWake >= 0 {
			pw = append(pw, x.runWake)
		}
	}
	if len(rw) > 0 {
		r.RawWakeups = median(rw)
	}
	if len(pw) > 0 {
		r.RunnerWakeups = median(pw)
	}
	return r
}

// wakeups counts the voluntary context switches of every thread of
// process pid so far: each is a thread that blocked and was woken again.
// On a box whose cores all run llama.cpp's threads, every wake-up of
// another thread stalls one of them. ok is false where /proc cannot tell.
func wakeups(pid int) (n int, ok bool) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return 0, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread is gone
		}
		_, rest, found := strings.Cut(string(b), "\nvoluntary_ctxt_switches:")
		if !found {
			return 0, false
		}
		line, _, _ := strings.Cut(rest, "\n")
		v, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			return 0, false
		}
		n += v
	}
	return n, true
}

// wakeCounter measures the wake-ups per token of the processes in pids
// over fn (-1 when they cannot be counted).
func wakeCounter(tokens int, fn func() error, pids ...int) (float64, error) {
	before, ok := 0, true
	for _, pid := range pids {
		n, k := wakeups(pid)
		before, ok = before+n, ok && k
	}
	if err := fn(); err != nil {
		return 0, err
	}
	after := 0
	for _, pid := range pids {
		n, k := wakeups(pid)
		after, ok = after+n, ok && k
	}
	if !ok || tokens <= 0 {
		return -1, nil
	}
	return float64(after-before) / float64(tokens), nil
}

// measure takes every figure repeats times, the raw engine and the runner
// one right after the other (which goes first alternates), so that both
// sides of a ratio see the same load of a shared machine. Wake-ups count
// this process for the raw loop, and this process (the client) plus the
// runner for the runner; for a target other than a runner process they
// are not counted.
func measure(ctx context.Context, cfg Config, c Case, raw *rawEngine, p Completer) (pairs, error) {
	pr := pairs{}
	// Warm up: the first decodes allocate the compute graph and buffers.
	if err := raw.warmUp(); err != nil {
		return nil, err
	}
	if _, _, err := runnerSingle(ctx, p, c, raw.promptText, 0); err != nil {
		return nil, err
	}
	self := os.Getpid()
	runPids := []int{-1}
	if proc, ok := p.(*runner.Process); ok {
		runPids = []int{self, proc.Pid()}
	}
	reps := cfg.repeats()
	// both runs the two sides of one pair, taking turns at going first.
	both := func(rep, tokens int, rawFn, runFn func() error) (x pair, err error) {
		rawSide := func() (err error) { x.rawWake, err = wakeCounter(tokens, rawFn, self); return err }
		runSide := func() (err error) { x.runWake, err = wakeCounter(tokens, runFn, runPids...); return err }
		first, second := rawSide, runSide
		if rep%2 == 1 {
			first, second = runSide, rawSide
		}
		if err := first(); err != nil {
			return x, err
		}
		return x, second()
	}
	for rep := range reps {
		var rp, rd, pp, pd float64
		x, err := both(rep, c.GenTokens, func() (err error) {
			rp, rd, err = raw.single(c.GenTokens)
			return err
		}, func() (err error) {
			// Each repeat varies the prompt's first word so that no
			// prefix is reused.
			pp, pd, err = runnerSingle(ctx, p, c, raw.promptText, rep+1)
			return err
		})
		if err != nil {
			return nil, err
		}
		x.raw, x.run = rd, pd
		pr["prompt"] = append(pr["prompt"], pair{raw: rp, run: pp, rawWake: -1, runWake: -1})
		pr["decode"] = append(pr["decode"], x)
	}
	for _, k := range cfg.Streams {
		for rep := range reps {
			var r, q float64
			x, err := both(rep, k*c.GenTokens, func() (err error) {
				r, err = raw.batched(k, c.GenTokens)
				return err
			}, func() (err error) {
				q, err = runnerBatched(ctx, p, k, c.GenTokens, rep)
				return err
			})
			if err != nil {
				return nil, err
			}
			x.raw, x.run = r, q
			pr[fmt.Sprint(k)] = append(pr[fmt.Sprint(k)], x)
		}
	}
	return pr, nil
}

// rawEngine is the minimal loop over the engine: what the runner would do
// with zero overhead. Its methods must run on the goroutine that made it,
// locked to its OS thread.
type rawEngine struct {
	m            *engine.Model
	lctx         *engine.Context
	b            *engine.Batch
	eog          []int
	toks         []int  // the single-stream prompt
	long         []int  // a prompt that fills most of a slot (the KV figures)
	promptText   string // the same as text, for the runner
	promptTokens int
}

func newRawEngine(ctx context.Context, cfg Config, c Case, slotCtx, slots int) (*rawEngine, error) {
	m, err := engine.Load(ctx, c.Path, engine.LoadOptions{})
	if err != nil {
		return nil, err
	}
	r := &rawEngine{m: m, eog: m.EOGTokens()}
	if r.lctx, err = m.NewContext(engine.ContextOptions{SlotContext: slotCtx, Slots: slots, Threads: cfg.Threads}); err != nil {
		r.close()
		return nil, err
	}
	if r.b, err = engine.NewBatch(512); err != nil {
		r.close()
		return nil, err
	}
	toks, err := m.Tokenize(promptText(c.PromptTokens), true)
	if err != nil {
		r.close()
		return nil, err
	}
	r.toks = toks[:min(len(toks), c.PromptTokens)]
	r.promptTokens = len(r.toks)
	r.promptText = strings.TrimSpace(m.Detokenize(r.toks[1:]))
	return r, nil
}

func (r *rawEngine) close() {
	if r.b != nil {
		r.b.Free()
	}
	if r.lctx != nil {
		r.lctx.Close()
	}
	r.m.Close()
}

func (r *rawEngine) warmUp() error {
	r.b.Clear()
	for j := range min(len(r.toks), 32) {
		r.b.Add(r.toks[j], j, 0, false)
	}
	defer r.lctx.RemoveFrom(0, 0)
	return r.lctx.Decode(r.b)
}

// repeats is how often each figure is measured by default; the best run
// counts, which filters out the other work of a shared machine.
const repeats = 3

func (cfg Config) repeats() int {
	if cfg.Repeats > 0 {
		return cfg.Repeats
	}
	return repeats
}

// single decodes the prompt on sequence 0, then gen tokens.
func (r *rawEngine) single(gen int) (prompt, decode float64, err error) {
	lctx, m, b, toks, eog := r.lctx, r.m, r.b, r.toks, r.eog
	defer lctx.RemoveFrom(0, 0)
	s, err := m.NewSampler(engine.SamplingParams{Temperature: 0})
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	start := time.Now()
	for i := 0; i < len(toks); i += b.Cap() {
		b.Clear()
		end := min(i+b.Cap(), len(toks))
		for j := i; j < end; j++ {
			b.Add(toks[j], j, 0, j == len(toks)-1)
		}
		if err := lctx.Decode(b); err != nil {
			return 0, 0, err
		}
	}
	tok, err := sampleMasked(lctx, s, b.Len()-1, eog)
	if err != nil {
		return 0, 0, err
	}
	prompt = float64(len(toks)) / time.Since(start).Seconds()
	start = time.Now()
	pos := len(toks)
	for range gen - 1 {
		b.Clear()
		b.Add(tok, pos, 0, true)
		pos++
		if err := lctx.Decode(b); err != nil {
			return 0, 0, err
		}
		if tok, err = sampleMasked(lctx, s, 0, eog); err != nil {
			return 0, 0, err
		}
		m.Piece(tok)
	}
	decode = float64(gen-1) / time.Since(start).Seconds()
	return prompt, decode, nil
}

// batched decodes k sequences, each a short prompt then gen tokens, and
// returns the aggregate tok/s.
func (r *rawEngine) batched(k, gen int) (float64, error) {
	lctx, m, b, eog := r.lctx, r.m, r.b, r.eog
	greedy := engine.SamplingParams{Temperature: 0}
	samplers := make([]*engine.Sampler, k)
	next := make([]int, k)
	posK := make([]int, k)
	idx := make([]int, k)
	defer func() {
		for i := range k {
			if samplers[i] != nil {
				samplers[i].Close()
			}
			lctx.RemoveFrom(i, 0)
		}
	}()
	start := time.Now()
	b.Clear()
	for i := range k {
		var err error
		if samplers[i], err = m.NewSampler(greedy); err != nil {
			return 0, err
		}
		pt, err := m.Tokenize(shortPrompt(k, i), true)
		if err != nil {
			return 0, err
		}
		for j, t := range pt {
			idx[i] = b.Add(t, j, i, j == len(pt)-1)
		}
		posK[i] = len(pt)
	}
	if err := lctx.Decode(b); err != nil {
		return 0, err
	}
	var err error
	for i := 0; i < k && err == nil; i++ {
		next[i], err = sampleMasked(lctx, samplers[i], idx[i], eog)
	}
	for n := 0; n < gen-1 && err == nil; n++ {
		b.Clear()
		for i := range k {
			idx[i] = b.Add(next[i], posK[i], i, true)
			posK[i]++
		}
		if err := lctx.Decode(b); err != nil {
			return 0, err
		}
		for i := 0; i < k && err == nil; i++ {
			if next[i], err = sampleMasked(lctx, samplers[i], idx[i], eog); err == nil {
				m.Piece(next[i])
			}
		}
	}
	if err != nil {
		return 0, err
	}
	return float64(k*gen) / time.Since(start).Seconds(), nil
}

// sampleMasked samples past end-of-generation tokens, as ignore_eos does.
func sampleMasked(c *engine.Context, s *engine.Sampler, i int, eog []int) (int, error) {
	c.Ban(i, eog)
	return s.Sample(c, i)
}

// startTarget starts the runner measured for the case, or returns
// cfg.Target.
func startTarget(ctx context.Context, cfg Config, c Case, slotCtx, slots int) (Completer, func(), error) {
	if cfg.Target != nil {
		return cfg.Target, func() {}, nil
	}
	proc, err := runner.Start(runner.Options{
		Name: c.Name, Model: c.Path, SlotContext: slotCtx, Slots: slots, Threads: cfg.Threads,
		Queue: slots, Command: cfg.Runner,
	})
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		proc.Stop(sctx)
	}
	if _, err := proc.WaitReady(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return proc, stop, nil
}

var greedySampling = runner.Sampling{Temperature: 0}

// runnerSingle is one request: prompt tok/s up to the first token, decode
// tok/s after it. rep varies the prompt's first word.
func runnerSingle(ctx context.Context, p Completer, c Case, prompt string, rep int) (promptTPS, decode float64, err error) {
	var first time.Time
	start := time.Now()
	res, err := p.Complete(ctx, runner.Request{Prompt: fmt.Sprintf("%d %s", rep, prompt), Sampling: greedySampling, MaxTokens: c.GenTokens, IgnoreEOS: true},
		func(string) {
			if first.IsZero() {
				first = time.Now()
			}
		})
	if err != nil {
		return 0, 0, err
	}
	end := time.Now()
	return float64(res.Timings.PromptTokens) / first.Sub(start).Seconds(), float64(res.Timings.GeneratedTokens-1) / end.Sub(first).Seconds(), nil
}

// runnerBatched runs k requests at once and returns the aggregate tok/s.
func runnerBatched(ctx context.Context, p Completer, k, gen, rep int) (float64, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int
	var firstErr error
	start := time.Now()
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Complete(ctx, runner.Request{Prompt: shortPrompt(k, i) + strings.Repeat(" ", rep), Sampling: greedySampling, MaxTokens: gen, IgnoreEOS: true}, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			total += r.Timings.GeneratedTokens
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(total) / time.Since(start).Seconds(), nil
}
