package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
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
	// The cache's counters (jetai_cache_* metrics): one copy made, one
	// hit, a's conversation parked once and restored once.
	srcSize, _ := os.Stat(a)
	if st := c.Stats(); st.StageMisses != 1 || st.StageHits != 1 || st.StagedBytes != uint64(srcSize.Size()) ||
		st.Parks != 1 || st.Restores != 1 || st.StageFailures+st.ParkFailures+st.RestoreFailures+st.RestoresDropped != 0 ||
		st.ModelFiles != 1 || st.ModelBytes != srcSize.Size() || st.ParkedModels != 0 {
		t.Fatalf("cache stats %+v", st)
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

// TestParkedStateDroppedOrDiscarded: parked state is not restored into a
// model whose context settings changed (and is dropped), and a state file
// that does not load is discarded without failing the load.
func TestParkedStateDroppedOrDiscarded(t *testing.T) {
	real := realModel(t)
	cdir := filepath.Join(t.TempDir(), "cache")
	c, err := cache.Open(cache.Options{Dir: cdir, StageSameDevice: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	greedy := runner.Sampling{Temperature: 0}
	prompt := strings.Repeat("Once upon a time there was a little dog. ", 6)
	// converse runs prompt on a fresh pool whose model has extra settings,
	// then unloads it (parking), and returns the request's cached tokens.
	block := func(ctxTokens int) string {
		return fmt.Sprintf("model \"m\" {\n  path = %q\n  context = %d\n  parallel = 1\n  threads = 1\n  keep_alive = \"forever\"\n}\n", real, ctxTokens)
	}
	converse := func(ctxTokens int) int {
		p := newPool(t, block(ctxTokens), func(p *Pool) { p.opts.Cache = c })
		res, err := p.Complete(ctx, "m", runner.Request{Prompt: prompt, Sampling: greedy, MaxTokens: 8}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Unload(ctx, "m"); err != nil {
			t.Fatal(err)
		}
		return res.Timings.CachedTokens
	}
	converse(256)
	if c.ParkedBytes() == 0 {
		t.Fatal("nothing parked")
	}
	if n := converse(512); n != 0 {
		t.Fatalf("state parked under context 256 restored into context 512: %d tokens cached", n)
	}
	if st := c.Stats(); st.RestoresDropped != 1 || st.Restores != 0 || st.Parks != 2 {
		t.Fatalf("cache stats after a drop: %+v", st)
	}
	// That unload parked new state under context 512; the same settings
	// restore it.
	if n := converse(512); n == 0 {
		t.Fatal("state parked under the same settings was not restored")
	}
	// Corrupt the parked state file: the load goes on, nothing is cached
	// and the state is gone afterwards.
	files, _ := filepath.Glob(filepath.Join(cdir, "parked", "*", "slot-*.state"))
	if len(files) == 0 {
		t.Fatal("no parked state file")
	}
	for _, f := range files {
		os.WriteFile(f, []byte("not a llama.cpp state file"), 0o640)
	}
	p := newPool(t, block(512), func(p *Pool) { p.opts.Cache = c })
	res, err := p.Complete(ctx, "m", runner.Request{Prompt: prompt, Sampling: greedy, MaxTokens: 8}, nil)
	if err != nil {
		t.Fatalf("load with a corrupt parked state: %v", err)
	}
	if res.Timings.CachedTokens != 0 {
		t.Fatalf("%d tokens cached from a corrupt state file", res.Timings.CachedTokens)
	}
	if st := c.Stats(); st.RestoreFailures != 1 || st.Restores != 1 {
		t.Fatalf("cache stats after a corrupt state file: %+v", st)
	}
	if left, _ := filepath.Glob(filepath.Join(cdir, "parked", "*")); len(left) != 0 {
		t.Fatalf("corrupt parked state kept: %v", left)
	}
}

// TestParkedStateKVType: parked state records its KV cache type. A runner
// with the same type restores it; one with another type refuses it, the
// request evaluates its prompt again and is served, and the state is gone.
func TestParkedStateKVType(t *testing.T) {
	model := testmodel.Gen(t, modelgen.Tiny()) // heads of 64: q8_0 fits
	cdir := filepath.Join(t.TempDir(), "cache")
	c, err := cache.Open(cache.Options{Dir: cdir, StageSameDevice: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	greedy := runner.Sampling{Temperature: 0}
	prompt := strings.Repeat("Once upon a time there was a little dog. ", 6)
	// converse runs prompt on a fresh pool whose model has the KV cache
	// type, unloads it (parking) and returns the request's cached tokens
	// and the type the parked manifest records.
	converse := func(kv string) (int, string) {
		hcl := fmt.Sprintf("model \"m\" {\n  path = %q\n  context = 256\n  parallel = 1\n  threads = 1\n  flash_attention = true\n  kv_cache = %q\n  keep_alive = \"forever\"\n}\n", model, kv)
		p := newPool(t, hcl, func(p *Pool) { p.opts.Cache = c })
		res, err := p.Complete(ctx, "m", runner.Request{Prompt: prompt, Sampling: greedy, MaxTokens: 8}, nil)
		if err != nil {
			t.Fatalf("%s: %v", kv, err)
		}
		if res.Timings.GeneratedTokens == 0 {
			t.Fatalf("%s: nothing generated", kv)
		}
		if err := p.Unload(ctx, "m"); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(cdir, "parked", "m-"+parkKeySuffix(t, cdir), "manifest.json"))
		if err != nil {
			t.Fatalf("%s: nothing parked: %v", kv, err)
		}
		var man cache.Manifest
		if err := json.Unmarshal(b, &man); err != nil {
			t.Fatal(err)
		}
		return res.Timings.CachedTokens, man.KVType
	}
	steps := []struct {
		kv     string
		cached bool // the parked conversation was restored
	}{
		{"q8_0", false}, // nothing parked yet
		{"q8_0", true},  // q8_0 state into a q8_0 cache
		{"f16", false},  // q8_0 state refused by an f16 cache
		{"f16", true},
		{"q4_0", false},
	}
	for i, s := range steps {
		n, parked := converse(s.kv)
		if (n > 0) != s.cached {
			t.Fatalf("step %d (%s): %d tokens cached, want restored=%v", i, s.kv, n, s.cached)
		}
		if parked != s.kv {
			t.Fatalf("step %d: manifest records kv_type %q, want %q", i, parked, s.kv)
		}
	}
	// Two refusals (q8_0 into f16, f16 into q4_0), two restores; the
	// refused state was never left behind to be tried again.
	if st := c.Stats(); st.Restores != 2 || st.RestoreFailures != 2 || st.Parks != 5 || st.RestoresDropped != 0 {
		t.Fatalf("cache stats: %+v", st)
	}
}

// parkKeySuffix finds the hash suffix of model "m"'s park directory.
func parkKeySuffix(t *testing.T, cdir string) string {
	t.Helper()
	ds, _ := filepath.Glob(filepath.Join(cdir, "parked", "m-*"))
	if len(ds) != 1 {
		t.Fatalf("park directories of m: %v", ds)
	}
	return strings.TrimPrefix(filepath.Base(ds[0]), "m-")
}
