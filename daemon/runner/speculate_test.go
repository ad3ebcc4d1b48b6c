package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// startSpec starts a runner with n-gram drafts of at most maxDraft tokens;
// with maxDraft 0 it drafts nothing, and like every runner with a proposer
// its products are batch-invariant, so it is the reference output.
func startSpec(t *testing.T, model string, slots, ctx, maxDraft int) *runner.Process {
	t.Helper()
	p := startOpts(t, runner.Options{Name: "spec", Model: model, Slots: slots, SlotContext: ctx, Threads: threadsForTest, Queue: 16,
		NGram: true, MaxDraft: maxDraft})
	ready(t, p)
	return p
}

// copyPrompt is a passage and the start of its repetition: the model's
// continuation copies it, and n-gram drafts are accepted.
const copyPrompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog Max. " +
	"One day, Lily and Max found a big red ball under a tree.\n" +
	"Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog Max. " +
	"One day, Lily and Max found a big red ball under a tree.\n" +
	"Once upon a time, there was"

func seed(n uint32) *uint32 { return &n }

// runAll runs every request at once (several slots busy) and returns the
// results in order.
func runAll(t *testing.T, p *runner.Process, reqs []runner.Request) []runner.Result {
	return run(t, p, reqs, true)
}

// runMixed runs the greedy requests at once (when concurrent) on one
// runner and every other request alone on a fresh runner; the results are
// in request order. Requests at once take KV cells in an order set by
// timing, and attention sums over a sequence's cells in cell order: its
// last bits, and a sampled draw near a boundary of the distribution, can
// depend on that, with or without speculation.
func runMixed(t *testing.T, start func() *runner.Process, reqs []runner.Request, concurrent bool) []runner.Result {
	t.Helper()
	var at, one []int
	for i, r := range reqs {
		if concurrent && r.Sampling.Temperature == 0 {
			at = append(at, i)
		} else {
			one = append(one, i)
		}
	}
	out := make([]runner.Result, len(reqs))
	if len(at) > 0 {
		var rs []runner.Request
		for _, i := range at {
			rs = append(rs, reqs[i])
		}
		for k, r := range run(t, start(), rs, true) {
			out[at[k]] = r
		}
	}
	for _, i := range one {
		out[i] = run(t, start(), reqs[i:i+1], false)[0]
	}
	return out
}

// run runs the requests at once or one after the other.
func run(t *testing.T, p *runner.Process, reqs []runner.Request, concurrent bool) []runner.Result {
	t.Helper()
	out := make([]runner.Result, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		one := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out[i], errs[i] = p.Complete(ctx, r, nil)
		}
		if concurrent {
			wg.Go(one)
		} else {
			one()
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// TestSpeculativeSameOutput is speculative decoding's main test: with it
// on, every request's output is the one without it, token for token:
// greedy and seeded sampling, with penalties, under a grammar, with stop
// strings, several slots at once, on the real tiny model and on a
// generated one. Each request runs on a runner that speculates, with
// speculation turned off per request on that runner, and on a runner
// started without it.
func TestSpeculativeSameOutput(t *testing.T) {
	jsonGrammar := `root ::= "{" ws "\"name\":" ws "\"" [a-zA-Z ]{1,20} "\"" ws "}"
ws ::= [ ]?`
	sampled := runner.Sampling{Temperature: 0.8, TopK: 40, TopP: 0.95, Seed: seed(42)}
	penalised := runner.Sampling{Temperature: 0.7, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 64, Seed: seed(7)}
	for _, tc := range []struct {
		name  string
		model func(t *testing.T) string
		// Greedy requests run at once (several slots drafting in one
		// batch) where concurrent is set; sampled ones always one after
		// the other (see runMixed). A random model's flat distributions
		// turn any last-bit difference into another token, so its
		// greedy requests run one after the other too.
		concurrent bool
	}{
		{"stories260K", func(t *testing.T) string { return testmodel.Path(t) }, true},
		{"generated F16", func(t *testing.T) string { return testmodel.Gen(t, modelgen.Tiny()) }, false},
		// Q4_K and Q6_K weights: jetai's own matrix kernels where the CPU
		// has them (engine.KQuantKernels), ggml's elsewhere.
		{"generated Q4_K_M", quantized(modelgen.Tiny(), "q4_k_m"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := tc.model(t)
			// Each group runs at once on fresh runners: a slot's reused
			// prefix is decoded in other batches than a fresh prompt, and
			// on a random model's flat distributions that alone may tip a
			// sampled token, speculation or not.
			groups := [][]runner.Request{{
				{Prompt: copyPrompt, Sampling: greedy, MaxTokens: 120},
				{Prompt: testmodel.GoldenPrompt, Sampling: greedy, MaxTokens: 200, IgnoreEOS: true},
				{Prompt: copyPrompt, Sampling: sampled, MaxTokens: 120},
				{Prompt: copyPrompt, Sampling: penalised, MaxTokens: 100},
			}, {
				{Prompt: copyPrompt, Sampling: runner.Sampling{Temperature: 0.9, Seed: seed(3), Grammar: jsonGrammar}, MaxTokens: 40},
				{Prompt: copyPrompt, Sampling: greedy, MaxTokens: 30, Stop: []string{"Max"}},
				// A stop string that ends inside the copied passage: the
				// text ends where it starts, however many tokens the
				// last verification accepted after it.
				{Prompt: copyPrompt, Sampling: greedy, MaxTokens: 120, Stop: []string{"named Li"}},
				{Prompt: copyPrompt, Sampling: sampled, MaxTokens: 120, Stop: []string{"park"}},
			}}
			drafted, accepted := 0, 0
			for gi, reqs := range groups {
				// 8 slots for 4 requests: speculation steps back when more
				// than half of the slots generate.
				plain := func() *runner.Process { return startSpec(t, model, 8, 1024, 0) }
				spec := func() *runner.Process { return startSpec(t, model, 8, 1024, 8) }
				want := runMixed(t, plain, reqs, tc.concurrent)
				got := runMixed(t, spec, reqs, tc.concurrent)
				off := make([]runner.Request, len(reqs))
				for i, r := range reqs {
					r.Speculative = new(bool)
					off[i] = r
				}
				gotOff := runMixed(t, spec, off, tc.concurrent)
				for i := range reqs {
					what := fmt.Sprintf("group %d request %d", gi, i)
					same(t, what, want[i], got[i])
					same(t, what+" (speculative false)", want[i], gotOff[i])
					if gotOff[i].Timings.DraftedTokens != 0 {
						t.Fatalf("%s: speculative false drafted %d tokens", what, gotOff[i].Timings.DraftedTokens)
					}
					drafted += got[i].Timings.DraftedTokens
					accepted += got[i].Timings.AcceptedTokens
				}
				if gi == 0 && tc.name == "stories260K" {
					// The copying prompt's continuation starts with the
					// passage: the test is void unless drafts were accepted.
					if got[0].Timings.AcceptedTokens < 10 {
						t.Fatalf("copying prompt: %d of %d tokens accepted from %d drafted", got[0].Timings.AcceptedTokens, got[0].Timings.GeneratedTokens, got[0].Timings.DraftedTokens)
					}
					if i := strings.Index(want[0].Text, "named Li"); i < 0 {
						t.Fatalf("the copying prompt's continuation %q does not repeat the passage", want[0].Text)
					}
				}
				if gi == 1 && tc.name == "stories260K" {
					if i := strings.Index(want[0].Text, "named Li"); i >= 0 && got[2].Text != want[0].Text[:i] {
						t.Fatalf("stop inside an accepted run: %q", got[2].Text)
					}
				}
			}
			if drafted == 0 {
				t.Fatal("nothing was drafted")
			}
			t.Logf("drafted %d, accepted %d", drafted, accepted)
		})
	}
}

// quantized returns a function that generates spec's model and
// quantizes it to typ.
func quantized(spec modelgen.Spec, typ string) func(t *testing.T) string {
	return func(t *testing.T) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), typ+".gguf")
		if err := engine.Quantize(testmodel.Gen(t, spec), out, typ); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

func same(t *testing.T, what string, want, got runner.Result) {
	t.Helper()
	if got.Text != want.Text || got.FinishReason != want.FinishReason || got.Timings.GeneratedTokens != want.Timings.GeneratedTokens {
		t.Fatalf("%s: speculative output differs:\n got %q (%s, %d tokens, %d/%d accepted)\nwant %q (%s, %d tokens)", what,
			got.Text, got.FinishReason, got.Timings.GeneratedTokens, got.Timings.AcceptedTokens, got.Timings.DraftedTokens,
			want.Text, want.FinishReason, want.Timings.GeneratedTokens)
	}
}

func startDraft(t *testing.T, model, draft string, slots, ctx, maxDraft int) *runner.Process {
	t.Helper()
	p := startOpts(t, runner.Options{
		Name: "draft", Model: model, Slots: slots, SlotContext: ctx, Threads: threadsForTest, Queue: 16,
		Draft: draft, MaxDraft: maxDraft,
	})
	ready(t, p)
	return p
}

// TestSpeculativeDraftModel: a draft model in the runner proposes, the
// target verifies, and the output is the one without speculation. A model
// that drafts for itself is accepted whole under greedy decoding; a
// smaller generated model with the same vocabulary mostly is not, and the
// output is the same either way.
func TestSpeculativeDraftModel(t *testing.T) {
	story := testmodel.Path(t)
	small := modelgen.Tiny()
	smaller := small
	smaller.Embd, smaller.FF, smaller.Layers, smaller.Heads, smaller.HeadsKV, smaller.Seed = 256, 256, 1, 2, 1, 2
	tiny, tinyDraft := testmodel.Gen(t, small), testmodel.Gen(t, smaller)
	sampled := runner.Sampling{Temperature: 0.8, TopK: 40, Seed: seed(5)}
	for _, tc := range []struct {
		name, model, draft string
		concurrent         bool
		minRate            float64
	}{
		{"itself", story, story, true, 0.8},
		{"smaller", tiny, tinyDraft, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs := []runner.Request{
				{Prompt: testmodel.GoldenPrompt, Sampling: greedy, MaxTokens: 150, IgnoreEOS: true},
				{Prompt: copyPrompt, Sampling: greedy, MaxTokens: 100, Stop: []string{"ball"}},
				{Prompt: copyPrompt, Sampling: sampled, MaxTokens: 100},
			}
			want := run(t, startSpec(t, tc.model, 8, 1024, 0), reqs, tc.concurrent)
			p := startDraft(t, tc.model, tc.draft, 8, 1024, 6)
			// Twice: the second time the slots and the draft's cache
			// reuse the prompts' prefixes.
			for round := range 2 {
				got := run(t, p, reqs, false)
				for i := range reqs {
					same(t, fmt.Sprintf("round %d request %d", round, i), want[i], got[i])
				}
				// A slot that learnt that the drafts do not pay may draft
				// nothing the second time.
				g := got[0].Timings
				if (round == 0 || tc.minRate > 0) && g.DraftedTokens == 0 || float64(g.AcceptedTokens) < tc.minRate*float64(g.DraftedTokens) {
					t.Fatalf("greedy: %d of %d drafted tokens accepted", g.AcceptedTokens, g.DraftedTokens)
				}
				t.Logf("round %d: greedy %d/%d accepted", round, g.AcceptedTokens, g.DraftedTokens)
			}
		})
	}
}

// TestSpeculativeLiveSettings: a runner whose threads are cut (the thermal
// throttle) drafts nothing until they are back; max_draft 0 and ngram off
// sent to a running runner turn drafting off, and back on.
func TestSpeculativeLiveSettings(t *testing.T) {
	p := startOpts(t, runner.Options{
		Name: "live", Model: testmodel.Path(t), Slots: 2, SlotContext: 1024, Threads: 2, Queue: 4,
		NGram: true, MaxDraft: 8,
	})
	ready(t, p)
	ctx := context.Background()
	req := runner.Request{Prompt: copyPrompt, Sampling: greedy, MaxTokens: 60}
	drafted := func() int {
		t.Helper()
		r, err := p.Complete(ctx, req, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Timings.DraftedTokens
	}
	if drafted() == 0 {
		t.Fatal("no drafts")
	}
	steps := []struct {
		what  string
		set   func() error
		draft bool
	}{
		{"threads cut", func() error { return p.SetThreads(ctx, 1) }, false},
		{"threads back", func() error { return p.SetThreads(ctx, 2) }, true},
		{"max_draft 0", func() error { return p.SetSpeculative(ctx, true, 0) }, false},
		{"max_draft 3", func() error { return p.SetSpeculative(ctx, true, 3) }, true},
		{"ngram off", func() error { return p.SetSpeculative(ctx, false, 3) }, false},
	}
	for _, s := range steps {
		if err := s.set(); err != nil {
			t.Fatal(err)
		}
		if n := drafted(); (n > 0) != s.draft {
			t.Fatalf("%s: %d tokens drafted", s.what, n)
		}
	}
	h, err := p.Health(ctx)
	if err != nil || h.MaxDraft != 3 || h.NGram || h.DraftedTokens == 0 || h.AcceptedTokens == 0 {
		t.Fatalf("health %+v %v", h, err)
	}
}
