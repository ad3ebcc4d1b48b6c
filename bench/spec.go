package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/daemon/runner/speculate"
)

// SpecConfig sets up the speculative decoding figures: the mechanism's
// bounds on the raw engine (an oracle proposer that replays an earlier
// greedy run: acceptance 1; a proposer that is always wrong: acceptance
// 0), and the n-gram proposer's real acceptance and speed on stories260K
// through the runner and jetaid. Every figure is speculation off against
// on, measured back to back in one run.
type SpecConfig struct {
	Tiny     string // stories260K.gguf; "" skips its rows
	Large    string // the generated 0.8B Q4_K_M; "" skips the bounds
	Jetaid   string // jetaid binary (runner and HTTP rows)
	Text     string // stories whose passages make the copying prompts
	Threads  int
	Gen      int // tokens generated per request on stories260K (0 = 256)
	LargeGen int // tokens generated per run of the bounds (0 = 64)
	Repeats  int // off-and-on pairs measured (0 = 3)
	Out      io.Writer
	Log      io.Writer
}

// SpecRow is one figure: tokens/s with speculation off and on.
type SpecRow struct {
	Level      string  `json:"level"` // "engine", "runner" or "jetaid"
	Model      string  `json:"model"`
	Case       string  `json:"case"`
	Drafted    int     `json:"drafted"`
	Accepted   int     `json:"accepted"`
	Generated  int     `json:"generated"`
	Off        float64 `json:"off"` // tokens/s
	On         float64 `json:"on"`
	Target     float64 `json:"target"` // minimum On/Off; 0 = none
	Acceptance float64 `json:"acceptance"`
	// Same says whether the output with speculation was the one without
	// (engine rows, greedy).
	Same bool `json:"same"`
	// Ratios are on/off of each repeat.
	Ratios []float64 `json:"ratios"`
}

// Ratio is the median of on/off over the repeats, each measured back to
// back (the box's speed drifts between repeats more than between the two
// runs of one); On/Off without repeats.
func (r SpecRow) Ratio() float64 {
	if len(r.Ratios) > 0 {
		q := slices.Clone(r.Ratios)
		slices.Sort(q)
		if len(q)%2 == 1 {
			return q[len(q)/2]
		}
		return (q[len(q)/2-1] + q[len(q)/2]) / 2
	}
	if r.Off == 0 {
		return 0
	}
	return r.On / r.Off
}

// pair records one repeat: tokens/s off and on, back to back.
func (r *SpecRow) pair(off, on float64) {
	r.Off, r.On = max(r.Off, off), max(r.On, on)
	if off > 0 {
		r.Ratios = append(r.Ratios, on/off)
	}
}

func (r *SpecRow) accept() {
	r.Acceptance = math.NaN()
	if r.Drafted > 0 {
		r.Acceptance = float64(r.Accepted) / float64(r.Drafted)
	}
}

// Targets of the figures.
const (
	specCeilingTarget = 2.0  // acceptance 1, single stream, 0.8B
	specFloorTarget   = 0.95 // always wrong, adaptation on
	specCopyTarget    = 1.3  // stories260K copying prompt, end to end
	specBusyTarget    = 0.95 // 8 busy slots
)

// RunSpec measures and prints the figures.
func RunSpec(ctx context.Context, cfg SpecConfig) ([]SpecRow, error) {
	if cfg.Repeats <= 0 {
		cfg.Repeats = repeats
	}
	var rows, ngram []SpecRow
	if cfg.Tiny != "" {
		logf(cfg.Log, "speculative: n-gram drafts on stories260K, runner and jetaid")
		var err error
		if ngram, err = specNGram(ctx, cfg); err != nil {
			return rows, fmt.Errorf("speculative n-gram: %w", err)
		}
	}
	if cfg.Large != "" {
		logf(cfg.Log, "speculative: bounds on the raw engine, %s", filepath.Base(cfg.Large))
		r, err := specBounds(ctx, cfg, ngramAcceptance(ngram))
		if err != nil {
			return rows, fmt.Errorf("speculative bounds: %w", err)
		}
		rows = append(rows, r...)
	}
	rows = append(rows, ngram...)
	PrintSpec(cfg.Out, rows, cfg)
	return rows, nil
}

// PrintSpec writes the table.
func PrintSpec(w io.Writer, rows []SpecRow, cfg SpecConfig) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "\nspeculative decoding (threads %d, %d repeats of off and on back to back; tok/s: the best of each side; on/off: the median of the repeats' ratios)\n", cfg.Threads, cfg.Repeats)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "level\tmodel\tcase\tacceptance\taccepted/generated\toff tok/s\ton tok/s\ton/off\ttarget\tsame output\t")
	for _, r := range rows {
		acc, share, target := "-", "-", ""
		if !math.IsNaN(r.Acceptance) {
			acc = fmt.Sprintf("%.2f", r.Acceptance)
		}
		if r.Generated > 0 {
			share = fmt.Sprintf("%.2f", float64(r.Accepted)/float64(r.Generated))
		}
		if r.Target > 0 {
			mark := "ok"
			if r.Ratio() < r.Target {
				mark = "MISSED"
			}
			target = fmt.Sprintf("≥%.2f× %s", r.Target, mark)
		}
		same := "-"
		if r.Level == "engine" {
			same = map[bool]string{true: "yes", false: "NO"}[r.Same]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.2f×\t%s\t%s\t\n", r.Level, r.Model, r.Case, acc, share, r.Off, r.On, r.Ratio(), target, same)
	}
	tw.Flush()
	fmt.Fprintln(w, "acceptance: accepted/drafted; accepted/generated: the share of tokens that cost no decode step of their own")
	fmt.Fprintln(w, "oracle: replays the greedy output of an earlier run (acceptance 1; benchmark only); always wrong: acceptance 0")
}

// ngramAcceptance is the acceptance of the n-gram drafts over the runner's
// sequential rows on stories260K (accepted of drafted tokens); 0 when
// nothing was drafted.
func ngramAcceptance(rows []SpecRow) float64 {
	drafted, accepted := 0, 0
	for _, r := range rows {
		if r.Level == "runner" && !strings.Contains(r.Case, "busy") {
			drafted += r.Drafted
			accepted += r.Accepted
		}
	}
	if drafted == 0 {
		return 0
	}
	return float64(accepted) / float64(drafted)
}

// --- bounds: raw engine, oracle and always-wrong proposers ---

// specEngine decodes one greedy stream with drafts, as the runner's
// verifier does: the stream's next token and the drafts in one batch, the
// sampler at every position while the draws equal the drafts, the KV of
// the rejected drafts removed.
type specEngine struct {
	m      *engine.Model
	lctx   *engine.Context
	b      *engine.Batch
	prompt []int
	eog    []int
}

// stepCost is a step's decode time over the moving average of steps
// without drafts (which it updates when drafted is false); 0 when that is
// not known yet. The runner's scheduler does the same.
func stepCost(d time.Duration, drafted bool, base *time.Duration) float64 {
	if !drafted {
		if *base == 0 {
			*base = d
		} else {
			*base = (*base*7 + d) / 8
		}
		return 0
	}
	if *base == 0 {
		return 0
	}
	return float64(d) / float64(*base)
}

// proposeFunc drafts up to k tokens after out (the stream's output so far).
type proposeFunc func(out []int, k int, dst []int) []int

// run generates gen tokens with at most k drafts a step (0: none); ctl,
// when set, adapts the draft length. It returns the output, decode tok/s
// (first token excluded, as everywhere in the bench) and the drafts.
func (e *specEngine) run(gen, k int, ctl *speculate.Controller, propose proposeFunc) (out []int, tps float64, drafted, accepted int, err error) {
	lctx, b := e.lctx, e.b
	defer lctx.RemoveFrom(0, 0)
	s, err := e.m.NewSampler(engine.SamplingParams{Temperature: 0})
	if err != nil {
		return nil, 0, 0, 0, err
	}
	defer s.Close()
	b.Clear()
	for i, t := range e.prompt {
		b.Add(t, i, 0, i == len(e.prompt)-1)
	}
	if err := lctx.Decode(b); err != nil {
		return nil, 0, 0, 0, err
	}
	tok, err := sampleMasked(lctx, s, b.Len()-1, e.eog)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	out = append(out, tok)
	pos := len(e.prompt)
	if ctl != nil {
		// As a runner's slot does: a new request keeps what was learnt
		// about the cost of verification.
		ctl.Start(k)
	}
	var draft []int
	var base time.Duration // moving average of a step without drafts
	start := time.Now()
	for step := 0; len(out) < gen; step++ {
		n := k
		// As the runner does: with adaptation, a step without drafts
		// now and then prices the steps with them.
		if ctl != nil && (base == 0 || step%baseRefresh == 0) {
			n = 0
		} else if ctl != nil {
			n = ctl.Len()
		}
		n = min(n, gen-len(out)-1)
		draft = draft[:0]
		if n > 0 {
			draft = propose(out, n, draft)
		}
		b.Clear()
		b.Add(out[len(out)-1], pos, 0, true)
		for i, d := range draft {
			b.Add(d, pos+1+i, 0, true)
		}
		t0 := time.Now()
		if err := lctx.Decode(b); err != nil {
			return nil, 0, 0, 0, err
		}
		took := time.Since(t0)
		cost := stepCost(took, len(draft) > 0, &base)
		acc := 0
		for i := 0; ; i++ {
			t, err := sampleMasked(lctx, s, i, e.eog)
			if err != nil {
				return nil, 0, 0, 0, err
			}
			out = append(out, t)
			if i < len(draft) && t == draft[i] {
				acc++
				continue
			}
			break
		}
		pos += 1 + acc
		if acc < len(draft) {
			lctx.RemoveFrom(0, pos)
		}
		drafted += len(draft)
		accepted += acc
		if ctl != nil {
			ctl.Observe(len(draft), acc, cost)
		}
	}
	tps = float64(len(out)-1) / time.Since(start).Seconds()
	return out[:gen], tps, drafted, accepted, nil
}

// baseRefresh is how often, in steps, an adapting stream decodes without
// drafts to price the steps with them (the runner's scheduler does the
// same).
const baseRefresh = 64

// specBounds measures the mechanism on the raw engine: the oracle's
// ceiling, the always-wrong floor, and, when acceptance is above 0, drafts
// right with that probability per token (the n-gram acceptance measured
// on stories260K) with adaptation on.
func specBounds(ctx context.Context, cfg SpecConfig, acceptance float64) ([]SpecRow, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	gen := cfg.LargeGen
	if gen <= 0 {
		gen = 64
	}
	// As a runner with speculation on: the products are batch-invariant,
	// so the output with drafts must be the output without them. The
	// benchmarks after this one run as the engine does by default.
	engine.SetBatchInvariant(true)
	defer engine.SetBatchInvariant(false)
	m, err := engine.Load(ctx, cfg.Large, engine.LoadOptions{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	lctx, err := m.NewContext(engine.ContextOptions{SlotContext: 512, Slots: 1, Threads: cfg.Threads})
	if err != nil {
		return nil, err
	}
	defer lctx.Close()
	b, err := engine.NewBatch(512)
	if err != nil {
		return nil, err
	}
	defer b.Free()
	prompt, err := m.Tokenize(promptText(32), true)
	if err != nil {
		return nil, err
	}
	e := &specEngine{m: m, lctx: lctx, b: b, prompt: prompt[:min(len(prompt), 32)], eog: m.EOGTokens()}
	ref, _, _, _, err := e.run(gen, 0, nil, nil)
	if err != nil {
		return nil, err
	}
	vocab := m.Info().VocabSize
	// The oracle replays the output without drafts.
	oracle := func(out []int, k int, dst []int) []int {
		return append(dst, ref[len(out):min(len(out)+k, len(ref))]...)
	}
	// wrong proposes tokens of the same text from elsewhere: words the
	// model produces, never the one that follows. (Arbitrary token ids
	// make contexts whose attention underflows into denormal floats, and
	// their decodes are several times slower than any text's.)
	wrongAt := func(p int) int {
		want := ref[p]
		t := ref[(p+len(ref)/2)%len(ref)]
		for j := 1; t == want && j < len(ref); j++ {
			t = ref[(p+len(ref)/2+j)%len(ref)]
		}
		if t == want {
			t = (want + 1) % vocab
		}
		return t
	}
	wrong := func(out []int, k int, dst []int) []int {
		for i := range min(k, len(ref)-len(out)) {
			dst = append(dst, wrongAt(len(out)+i))
		}
		return dst
	}
	// atRate drafts the oracle's tokens, each right with probability
	// acceptance (a wrong one is a token of the text from elsewhere); a
	// fixed seed makes the runs alike.
	rng := rand.New(rand.NewPCG(1, 2))
	atRate := func(out []int, k int, dst []int) []int {
		start := len(dst)
		dst = oracle(out, k, dst)
		for i := start; i < len(dst); i++ {
			if rng.Float64() >= acceptance {
				dst[i] = wrongAt(len(out) + i - start)
			}
		}
		return dst
	}
	type variant struct {
		name    string
		k       int
		adapt   bool
		propose proposeFunc
		target  float64
	}
	variants := []variant{
		{"oracle, max_draft 2", 2, false, oracle, 0},
		{"oracle, max_draft 4", 4, false, oracle, 0},
		{"oracle, max_draft 8", 8, false, oracle, specCeilingTarget},
		{"always wrong, max_draft 8, adaptation off", 8, false, wrong, 0},
		{"always wrong, max_draft 8, adaptation on", 8, true, wrong, specFloorTarget},
	}
	if acceptance > 0 {
		variants = append(variants, variant{fmt.Sprintf("each draft right at %.2f (stories260K n-gram), adaptation on", acceptance), 8, true, atRate, 0})
	}
	var rows []SpecRow
	for _, v := range variants {
		r := SpecRow{Level: "engine", Model: specModelName(cfg.Large), Case: v.name, Target: v.target, Same: true}
		var ctl *speculate.Controller
		if v.adapt {
			ctl = &speculate.Controller{}
		}
		for range cfg.Repeats {
			_, off, _, _, err := e.run(gen, 0, nil, nil)
			if err != nil {
				return nil, err
			}
			out, on, d, a, err := e.run(gen, v.k, ctl, v.propose)
			if err != nil {
				return nil, err
			}
			r.Same = r.Same && slices.Equal(out, ref)
			r.pair(off, on)
			r.Drafted, r.Accepted, r.Generated = d, a, gen
		}
		r.accept()
		logf(cfg.Log, "  %s: %.1f → %.1f tok/s", v.name, r.Off, r.On)
		rows = append(rows, r)
	}
	return rows, nil
}

func specModelName(path string) string {
	if strings.HasSuffix(path, "-q4_k_m.gguf") && strings.Contains(path, "jetai-llama-0.8b") {
		return "llama-0.8B-Q4_K_M"
	}
	return strings.TrimSuffix(filepath.Base(path), ".gguf")
}

// --- n-gram drafts on stories260K: runner and jetaid ---

// copyPrompts are passages of the stories text, each followed by its own
// start: a model that copies continues with the passage.
func copyPrompts(text string, n int) []string {
	var out []string
	for _, para := range strings.Split(text, "\n\n") {
		para = strings.TrimSpace(para)
		words := strings.Fields(para)
		if len(words) < 40 {
			continue
		}
		passage := strings.Join(words[:min(len(words), 120)], " ")
		out = append(out, passage+"\n\n"+strings.Join(words[:8], " "))
		if len(out) == n {
			break
		}
	}
	return out
}

// specTotals sums speculative figures over requests.
type specTotals struct {
	gen, drafted, accepted int
	genMS                  float64
}

func (t *specTotals) add(tm runner.Timings) {
	t.gen += tm.GeneratedTokens
	t.drafted += tm.DraftedTokens
	t.accepted += tm.AcceptedTokens
	t.genMS += tm.GenerationMS
}

// tps is decode tokens/s from the runner's timings (first token excluded).
func (t specTotals) tps(requests int) float64 {
	if t.genMS <= 0 {
		return 0
	}
	return float64(t.gen-requests) / (t.genMS / 1000)
}

func specNGram(ctx context.Context, cfg SpecConfig) ([]SpecRow, error) {
	gen := cfg.Gen
	if gen <= 0 {
		gen = 256
	}
	text, err := os.ReadFile(cfg.Text)
	if err != nil {
		return nil, err
	}
	copies := copyPrompts(string(text), 8)
	if len(copies) < 8 {
		return nil, fmt.Errorf("%s: fewer than 8 passages for copying prompts", cfg.Text)
	}
	const slots = 8
	p, err := runner.Start(runner.Options{Name: "spec", Model: cfg.Tiny, SlotContext: 1024, Slots: slots, Threads: cfg.Threads,
		Queue: slots, NGram: true, MaxDraft: 8, Command: []string{cfg.Jetaid, "runner"}})
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p.Stop(sctx)
		cancel()
	}()
	if _, err := p.WaitReady(ctx); err != nil {
		return nil, err
	}
	off := false
	request := func(prompt string, spec bool) runner.Request {
		r := runner.Request{Prompt: prompt, Sampling: benchSampling, MaxTokens: gen}
		if !spec {
			r.Speculative = &off
		}
		return r
	}
	// sequential runs the prompts one at a time, off then on, and keeps
	// each side's best repeat.
	sequential := func(name string, prompts []string, target float64) (SpecRow, error) {
		r := SpecRow{Level: "runner", Model: "stories260K", Case: name, Target: target}
		for range cfg.Repeats {
			var off float64
			for _, spec := range []bool{false, true} {
				var t specTotals
				for _, pr := range prompts {
					res, err := p.Complete(ctx, request(pr, spec), nil)
					if err != nil {
						return r, err
					}
					t.add(res.Timings)
				}
				tps := t.tps(len(prompts))
				if !spec {
					off = tps
					continue
				}
				r.pair(off, tps)
				r.Drafted, r.Accepted, r.Generated = t.drafted, t.accepted, t.gen
			}
		}
		r.accept()
		logf(cfg.Log, "  runner %s: %.0f → %.0f tok/s, acceptance %.2f", name, r.Off, r.On, r.Acceptance)
		return r, nil
	}
	var rows []SpecRow
	r, err := sequential("stories (16 prompts, greedy)", StoryPrompts, 0)
	if err != nil {
		return nil, err
	}
	rows = append(rows, r)
	if r, err = sequential("copying prompts (8, greedy)", copies, specCopyTarget); err != nil {
		return nil, err
	}
	rows = append(rows, r)

	// 8 busy slots: the copying prompts at once, aggregate tokens/s.
	busy := SpecRow{Level: "runner", Model: "stories260K", Case: "8 busy slots, copying prompts", Target: specBusyTarget}
	for range cfg.Repeats {
		var off float64
		for _, spec := range []bool{false, true} {
			var mu sync.Mutex
			var t specTotals
			var wg sync.WaitGroup
			var firstErr error
			start := time.Now()
			for _, pr := range copies {
				wg.Go(func() {
					res, err := p.Complete(ctx, request(pr, spec), nil)
					mu.Lock()
					defer mu.Unlock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					t.add(res.Timings)
				})
			}
			wg.Wait()
			if firstErr != nil {
				return nil, firstErr
			}
			tps := float64(t.gen) / time.Since(start).Seconds()
			if !spec {
				off = tps
				continue
			}
			busy.pair(off, tps)
			busy.Drafted, busy.Accepted, busy.Generated = t.drafted, t.accepted, t.gen
		}
	}
	busy.accept()
	logf(cfg.Log, "  runner 8 busy slots: %.0f → %.0f tok/s", busy.Off, busy.On)
	rows = append(rows, busy)

	// jetaid over HTTP: the copying prompts, one at a time, with
	// "speculative": false against the model's speculative block.
	dir, err := os.MkdirTemp("", "jetai-bench-spec-")
	if err != nil {
		return rows, err
	}
	defer os.RemoveAll(dir)
	d, err := startDaemon(ctx, HTTPConfig{Jetaid: cfg.Jetaid, Log: nil}, dir, "spec", fmt.Sprintf(`model "m" {
  path = %q
  context = 1024
  parallel = 2
  threads = %d
  preload = true
  keep_alive = "forever"
  speculative {
    ngram = true
    max_draft = 8
  }
}`, cfg.Tiny, cfg.Threads), "1GiB")
	if err != nil {
		return rows, err
	}
	defer d.stop()
	hr := SpecRow{Level: "jetaid", Model: "stories260K", Case: "copying prompts (8, greedy), over HTTP", Target: specCopyTarget}
	for range cfg.Repeats {
		var off float64
		for _, spec := range []bool{false, true} {
			var t specTotals
			start := time.Now()
			for _, pr := range copies {
				tm, err := d.specInference(ctx, pr, gen, spec)
				if err != nil {
					return rows, err
				}
				t.add(tm)
			}
			// End to end: the client's wall time, prompt included.
			tps := float64(t.gen) / time.Since(start).Seconds()
			if !spec {
				off = tps
				continue
			}
			hr.pair(off, tps)
			hr.Drafted, hr.Accepted, hr.Generated = t.drafted, t.accepted, t.gen
		}
	}
	hr.accept()
	logf(cfg.Log, "  jetaid copying prompts: %.0f → %.0f tok/s", hr.Off, hr.On)
	rows = append(rows, hr)
	return rows, nil
}

// specInference runs one non-streamed /inference and returns its timings.
func (d *daemonProc) specInference(ctx context.Context, prompt string, maxTokens int, spec bool) (runner.Timings, error) {
	body, _ := json.Marshal(map[string]any{"model": "m", "prompt": prompt, "max_tokens": maxTokens,
		"temperature": benchSampling.Temperature, "top_k": benchSampling.TopK, "top_p": benchSampling.TopP,
		"min_p": benchSampling.MinP, "repeat_penalty": benchSampling.RepeatPenalty, "speculative": spec})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/inference", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return runner.Timings{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	if resp.StatusCode != http.StatusOK {
		return runner.Timings{}, fmt.Errorf("/inference: %s: %s", resp.Status, b)
	}
	var out struct {
		Timings runner.Timings `json:"timings"`
	}
	err = json.Unmarshal(b, &out)
	return out.Timings, err
}
