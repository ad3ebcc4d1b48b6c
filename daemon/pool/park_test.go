package pool

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/runner"
)

// TestParkedConversationAndStaging: models load from their staged copy in
// the cache (the second load a hit); a conversation whose model is evicted
// and loaded again resumes with its earlier tokens counted as cached; a
// model with cache = false is neither staged nor parked.
func TestParkedConversationAndStaging(t *testing.T) {
	slow := t.TempDir()
	real := realModel(t)
	a := copyModel(t, real, slow, "a.gguf")
	b := copyModel(t, real, slow, "b.gguf")
	c, err := cache.Open(cache.Options{Dir: filepath.Join(t.TempDir(), "cache"), StageSameDevice: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	hcl := memBlock("100MiB", "1MiB") +
		modelBlock("a", a, "") +
		modelBlock("b", b, "cache = false")
	p := newPool(t, hcl, func(p *Pool) { p.opts.Cache = c })
	if est := state(t, p, "a").EstimatedBytes; est*2 <= 100<<20 || est > 100<<20 {
		t.Fatalf("estimate %d: the budget must hold one model, not two", est)
	}
	ctx := context.Background()
	greedy := runner.Sampling{Temperature: 0}
	prompt := strings.Repeat("Once upon a time there was a little dog. ", 6)
	first, err := p.Complete(ctx, "a", runner.Request{Prompt: prompt, Sampling: greedy, MaxTokens: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sa := state(t, p, "a")
	if sa.Info == nil || !strings.HasPrefix(sa.Info.Path, c.ModelsDir()) {
		t.Fatalf("a loaded from %v, want its copy under %s", sa.Info, c.ModelsDir())
	}
	entries := c.Entries()
	if len(entries) != 1 || entries[0].InUse != 1 || entries[0].Source != a {
		t.Fatalf("cache entries after the first load: %+v", entries)
	}
	staged := entries[0].Created

	// b evicts a: a's conversation is parked.
	if _, err := p.Complete(ctx, "b", runner.Request{Prompt: "Once", Sampling: greedy, MaxTokens: 4}, nil); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, "a", StateUnloaded, 10*time.Second)
	if c.ParkedBytes() == 0 {
		t.Fatal("nothing parked when a was evicted")
	}
	if sb := state(t, p, "b"); sb.Info == nil || sb.Info.Path != b {
		t.Fatalf("b (cache = false) loaded from %v, want %s", sb.Info, b)
	}
	if e := c.Entries(); len(e) != 1 || e[0].InUse != 0 {
		t.Fatalf("after a's runner exited its copy should be unused: %+v", e)
	}

	// a again: the staged copy is a hit and the conversation resumes.
	history := first.Timings.PromptTokens + first.Timings.GeneratedTokens - 1
	res, err := p.Complete(ctx, "a", runner.Request{Prompt: prompt + first.Text + " The end.", Sampling: greedy, MaxTokens: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Timings.CachedTokens < history-1 {
		t.Fatalf("resumed conversation reused %d tokens; %d were parked", res.Timings.CachedTokens, history)
	}
	if e := c.Entries(); len(e) != 1 || !e[0].Created.Equal(staged) {
		t.Fatalf("second load copied again: %+v", e)
	}
	if c.ParkedBytes() != 0 {
		t.Fatal("parked state kept after it was restored")
	}

	// b comes back without parking: nothing cached.
	if _, err := p.Complete(ctx, "b", runner.Request{Prompt: prompt, Sampling: greedy, MaxTokens: 4}, nil); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, "a", StateUnloaded, 10*time.Second)
	if err := p.Unload(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	res, err = p.Complete(ctx, "b", runner.Request{Prompt: prompt + " More.", Sampling: greedy, MaxTokens: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Timings.CachedTokens != 0 {
		t.Fatalf("b (cache = false) reused %d tokens after a reload", res.Timings.CachedTokens)
	}
}
