package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
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
}

// Ratio is Runner/Raw.
func (r Row) Ratio() float64 {
	if r.Raw == 0 {
		return 0
	}
	return r.Runner / r.Raw
}

// Targets (issue 2): runner single stream vs raw, per model size class,
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
	fmt.Fprintf(tw, "model\tmetric\traw tok/s\trunner tok/s\trunner/raw\ttarget\t\n")
	for _, r := range rows {
		target := ""
		if r.Target > 0 {
			mark := "ok"
			if r.Ratio() < r.Target {
				mark = "MISS"
			}
			target = fmt.Sprintf("≥%.2f %s", r.Target, mark)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.3f\t%s\t\n", r.Model, r.Metric, r.Raw, r.Runner, r.Ratio(), target)
	}
	tw.Flush()
	fmt.Fprintf(w, "threads=%d; raw = minimal in-process loop over the engine, same flags; runner = %s\n", threads, note)
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
	logf(cfg.Log, "%s: raw engine", c.Name)
	raw, err := measureRaw(ctx, cfg, c, slotCtx, maxStreams)
	if err != nil {
		return nil, err
	}
	logf(cfg.Log, "%s: runner", c.Name)
	run, err := measureRunner(ctx, cfg, c, raw.promptText, slotCtx, maxStreams)
	if err != nil {
		return nil, err
	}
	single := TargetSingleLarge
	if strings.Contains(c.Name, "260K") || strings.Contains(filepath.Base(c.Path), "260K") {
		single = TargetSingleTiny
	}
	rows := []Row{
		{Model: c.Name, Metric: fmt.Sprintf("prompt (%d tok)", raw.promptTokens), Raw: raw.prompt, Runner: run.prompt},
		{Model: c.Name, Metric: "decode, 1 stream", Raw: raw.decode, Runner: run.decode, Target: single},
	}
	for _, k := range cfg.Streams {
		t := 0.0
		if k == 8 {
			t = TargetAggregate8
		}
		rows = append(rows, Row{Model: c.Name, Metric: fmt.Sprintf("aggregate, %d streams", k), Raw: raw.batched[k], Runner: run.batched[k], Target: t})
	}
	return rows, nil
}

type figures struct {
	promptText   string // the prompt the raw run used, for the runner
	promptTokens int
	prompt       float64
	decode       float64
	batched      map[int]float64
}

// measureRaw is the minimal loop over the engine: what the runner would
// do with zero overhead.
func measureRaw(ctx context.Context, cfg Config, c Case, slotCtx, slots int) (figures, error) {
	f := figures{batched: map[int]float64{}}
	// Like the runner's decode loop: one OS thread drives the context.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m, err := engine.Load(ctx, c.Path, engine.LoadOptions{})
	if err != nil {
		return f, err
	}
	defer m.Close()
	lctx, err := m.NewContext(engine.ContextOptions{SlotContext: slotCtx, Slots: slots, Threads: cfg.Threads})
	if err != nil {
		return f, err
	}
	defer lctx.Close()
	eog := m.EOGTokens()
	b, err := engine.NewBatch(512)
	if err != nil {
		return f, err
	}
	defer b.Free()

	// Prompt, then single-stream decode on sequence 0.
	toks, err := m.Tokenize(promptText(c.PromptTokens), true)
	if err != nil {
		return f, err
	}
	toks = toks[:min(len(toks), c.PromptTokens)]
	f.promptTokens = len(toks)
	f.promptText = strings.TrimSpace(m.Detokenize(toks[1:]))
	// Warm up: the first decodes allocate the compute graph and buffers.
	b.Clear()
	for j := range min(len(toks), 32) {
		b.Add(toks[j], j, 0, false)
	}
	if err := lctx.Decode(b); err != nil {
		return f, err
	}
	lctx.RemoveFrom(0, 0)
	for rep := range repeats {
		prompt, decode, err := rawSingle(lctx, m, b, toks, c.GenTokens, eog)
		if err != nil {
			return f, err
		}
		if rep == 0 || prompt > f.prompt {
			f.prompt = prompt
		}
		f.decode = max(f.decode, decode)
	}
	return rawBatched(cfg, c, f, lctx, m, b, eog)
}

// repeats is how often each figure is measured; the best run counts, which
// filters out the other work of a shared machine.
const repeats = 3

func rawSingle(lctx *engine.Context, m *engine.Model, b *engine.Batch, toks []int, gen int, eog []int) (prompt, decode float64, err error) {
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

func rawBatched(cfg Config, c Case, f figures, lctx *engine.Context, m *engine.Model, b *engine.Batch, eog []int) (figures, error) {
	greedy := engine.SamplingParams{Temperature: 0}
	// Batched decode: k sequences, each a short prompt then GenTokens.
	for _, k := range cfg.Streams {
		for range repeats {
			samplers := make([]*engine.Sampler, k)
			next := make([]int, k)
			posK := make([]int, k)
			idx := make([]int, k)
			start := time.Now()
			b.Clear()
			for i := range k {
				samplers[i], _ = m.NewSampler(greedy)
				pt, _ := m.Tokenize(shortPrompt(k, i), true)
				for j, t := range pt {
					idx[i] = b.Add(t, j, i, j == len(pt)-1)
				}
				posK[i] = len(pt)
			}
			if err := lctx.Decode(b); err != nil {
				return f, err
			}
			var err error
			for i := 0; i < k && err == nil; i++ {
				next[i], err = sampleMasked(lctx, samplers[i], idx[i], eog)
			}
			for n := 0; n < c.GenTokens-1 && err == nil; n++ {
				b.Clear()
				for i := range k {
					idx[i] = b.Add(next[i], posK[i], i, true)
					posK[i]++
				}
				if err := lctx.Decode(b); err != nil {
					return f, err
				}
				for i := 0; i < k && err == nil; i++ {
					if next[i], err = sampleMasked(lctx, samplers[i], idx[i], eog); err == nil {
						m.Piece(next[i])
					}
				}
			}
			el := time.Since(start)
			for i := range k {
				samplers[i].Close()
				lctx.RemoveFrom(i, 0)
			}
			if err != nil {
				return f, err
			}
			f.batched[k] = max(f.batched[k], float64(k*c.GenTokens)/el.Seconds())
		}
	}
	return f, nil
}

// sampleMasked samples past end-of-generation tokens, as ignore_eos does.
func sampleMasked(c *engine.Context, s *engine.Sampler, i int, eog []int) (int, error) {
	c.Ban(i, eog)
	return s.Sample(c, i)
}

func measureRunner(ctx context.Context, cfg Config, c Case, prompt string, slotCtx, slots int) (figures, error) {
	f := figures{batched: map[int]float64{}}
	var p Completer = cfg.Target
	if p == nil {
		proc, err := runner.Start(runner.Options{
			Name: c.Name, Model: c.Path, SlotContext: slotCtx, Slots: slots, Threads: cfg.Threads,
			Queue: slots, Command: cfg.Runner,
		})
		if err != nil {
			return f, err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			proc.Stop(sctx)
		}()
		if _, err := proc.WaitReady(ctx); err != nil {
			return f, err
		}
		p = proc
	}
	greedy := runner.Sampling{Temperature: 0}

	// Single stream: prompt tok/s up to the first token, decode tok/s after.
	// Each repeat varies the prompt's first word so that no prefix is reused.
	for rep := range repeats + 1 {
		var first time.Time
		start := time.Now()
		res, err := p.Complete(ctx, runner.Request{Prompt: fmt.Sprintf("%d %s", rep, prompt), Sampling: greedy, MaxTokens: c.GenTokens, IgnoreEOS: true},
			func(string) {
				if first.IsZero() {
					first = time.Now()
				}
			})
		if err != nil {
			return f, err
		}
		if rep == 0 {
			continue // warm-up, as for the raw loop
		}
		end := time.Now()
		f.promptTokens = res.Timings.PromptTokens
		f.prompt = max(f.prompt, float64(res.Timings.PromptTokens)/first.Sub(start).Seconds())
		f.decode = max(f.decode, float64(res.Timings.GeneratedTokens-1)/end.Sub(first).Seconds())
	}

	for _, k := range cfg.Streams {
		for rep := range repeats {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var total int
			var firstErr error
			start := time.Now()
			for i := range k {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := p.Complete(ctx, runner.Request{Prompt: shortPrompt(k, i) + strings.Repeat(" ", rep), Sampling: greedy, MaxTokens: c.GenTokens, IgnoreEOS: true}, nil)
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
				return f, firstErr
			}
			f.batched[k] = max(f.batched[k], float64(total)/time.Since(start).Seconds())
		}
	}
	return f, nil
}
