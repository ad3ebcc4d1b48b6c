package pool

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// TestSpeculativeModel: a model with a draft model is charged for it,
// speculates (drafted and accepted tokens in its answers, /models and
// /performance), takes a new max_draft without a restart and restarts for
// a new draft.
func TestSpeculativeModel(t *testing.T) {
	real := realModel(t)
	draft := filepath.Join(t.TempDir(), "draft.gguf")
	b, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(draft, b, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := func(s string) string { return memBlock("2GiB", "1MiB") + modelBlock("m", real, s) }
	p := newPool(t, spec("speculative {\n  draft = \""+draft+"\"\n  ngram = false\n  max_draft = 4\n}"), nil)
	e := state(t, p, "m").Estimate
	if e.Draft == 0 || e.Total < e.Weights+e.KV+e.Compute+e.Draft {
		t.Fatalf("estimate without the draft: %+v", e)
	}
	greedy := runner.Request{Prompt: "Once upon a time", MaxTokens: 60}
	res, err := p.Complete(context.Background(), "m", greedy, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The draft is the model itself: its greedy drafts are accepted but
	// where rounding differs between a batch of one and the verifier's.
	if res.Timings.DraftedTokens == 0 || float64(res.Timings.AcceptedTokens) < 0.8*float64(res.Timings.DraftedTokens) {
		t.Fatalf("timings %+v", res.Timings)
	}
	s := state(t, p, "m")
	if s.Speculative == nil || s.Speculative.DraftedTokens != uint64(res.Timings.DraftedTokens) || s.Speculative.AcceptanceRate < 0.8 || s.Speculative.MaxDraft != 4 {
		t.Fatalf("status %+v", s.Speculative)
	}
	if perf := p.Performance(); perf.Models[0].AcceptedTokens != uint64(res.Timings.AcceptedTokens) || perf.Overall.DraftedTokens != uint64(res.Timings.DraftedTokens) {
		t.Fatalf("performance %+v", perf.Models[0].SpeculativeFigures)
	}

	// max_draft: live, sent to the runner.
	pid := s.Pid
	apply(t, p, spec("speculative {\n  draft = \""+draft+"\"\n  max_draft = 2\n}"))
	p.mu.Lock()
	proc := p.models["m"].proc
	p.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := proc.Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if h.MaxDraft == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runner max_draft %d, want 2", h.MaxDraft)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if state(t, p, "m").Pid != pid {
		t.Fatal("a max_draft change restarted the runner")
	}

	// A new draft (none): a new runner.
	_, rep := apply(t, p, spec("speculative {\n  max_draft = 2\n}"))
	if len(rep.Restarting) != 1 {
		t.Fatalf("report %+v", rep)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if s := state(t, p, "m"); s.Pid != 0 && s.Pid != pid && s.State == "ready" && s.Reload == "" {
			if s.Estimate.Draft != 0 {
				t.Fatalf("estimate still charges a draft: %+v", s.Estimate)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart: %+v", state(t, p, "m"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
