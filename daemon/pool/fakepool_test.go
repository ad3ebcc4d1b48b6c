package pool

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// tinyModels copies the generated tiny model once per name (distinct files
// for distinct models); fake runners never read them, the estimate does.
func tinyModels(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	tiny := testmodel.Gen(t, modelgen.Tiny())
	paths := map[string]string{}
	for _, n := range names {
		paths[n] = copyModel(t, tiny, dir, n+".gguf")
	}
	return paths
}

// evictions counts each model's evictions.
func evictions(p *Pool) map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range p.Models() {
		out[m.Name] = m.Evictions
	}
	return out
}

// TestFakeEvictionOrder: under a budget that holds three tiny models (about
// 69 MiB each), loads evict the lowest priority first, then among equals
// an idle model before a busy one, then the least recently used; a pinned
// model never.
func TestFakeEvictionOrder(t *testing.T) {
	paths := tinyModels(t, "pin", "low", "a", "b", "c")
	hcl := memBlock("240MiB", "1MiB") +
		modelBlock("pin", paths["pin"], "pinned = true\npreload = true\npriority = 0") +
		modelBlock("low", paths["low"], "priority = 10") +
		modelBlock("a", paths["a"], "priority = 50") +
		modelBlock("b", paths["b"], "priority = 50") +
		modelBlock("c", paths["c"], "priority = 50")
	p, f := newFakePool(t, hcl)
	waitState(t, p, "pin", StateReady, 5*time.Second)
	ctx := context.Background()

	for i, s := range []struct {
		req     string
		want    []string // loaded afterwards, config order
		evicted string
	}{
		{"low", []string{"pin", "low"}, ""},
		{"a", []string{"pin", "low", "a"}, ""},
		{"b", []string{"pin", "a", "b"}, "low"}, // lowest priority first, the pinned one never
		{"a", []string{"pin", "a", "b"}, ""},
		{"low", []string{"pin", "low", "a"}, "b"}, // a and b tie: b is least recently used
		{"b", []string{"pin", "a", "b"}, "low"},   // priority before recency
	} {
		before := evictions(p)
		if _, err := p.Complete(ctx, s.req, short, nil); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.req, err)
		}
		waitFake(t, "evictions to finish", func() bool { return slices.Equal(loaded(p), s.want) })
		for name, n := range evictions(p) {
			if d := n - before[name]; (name == s.evicted) != (d == 1) || d > 1 {
				t.Fatalf("step %d (%s): %s evicted %d times, want %q evicted", i, s.req, name, d, s.evicted)
			}
		}
	}

	// Idle before busy: a is the least recently used but runs a request;
	// b, idle, goes for c.
	f.forget()
	release := f.holdRequests("a")
	busy := completeBg(p, "a")
	if got := <-f.entered; got != "a" {
		t.Fatalf("entered %s", got)
	}
	if _, err := p.Complete(ctx, "b", short, nil); err != nil {
		t.Fatal(err)
	}
	before := evictions(p)
	if _, err := p.Complete(ctx, "c", short, nil); err != nil {
		t.Fatal(err)
	}
	waitFake(t, "b's eviction", func() bool { return slices.Equal(loaded(p), []string{"pin", "a", "c"}) })
	if after := evictions(p); after["b"] != before["b"]+1 || after["a"] != before["a"] {
		t.Fatalf("evictions %v, then %v: want b evicted, not the busy a", before, after)
	}
	release()
	if err := <-busy; err != nil {
		t.Fatalf("the busy model's request: %v", err)
	}
	if s := state(t, p, "pin"); s.Evictions != 0 || s.State != StateReady || s.Loads != 1 {
		t.Fatalf("pinned: %+v", s)
	}
}

// TestFakePinnedBlocks: when only evicting the pinned model would make
// room, the load fails at once with a NoRoomError naming it.
func TestFakePinnedBlocks(t *testing.T) {
	paths := tinyModels(t, "pin", "a")
	p, f := newFakePool(t, memBlock("100MiB", "1MiB")+
		modelBlock("pin", paths["pin"], "pinned = true\npreload = true\npriority = 0")+
		modelBlock("a", paths["a"], "priority = 90"))
	waitState(t, p, "pin", StateReady, 5*time.Second)
	_, err := p.Complete(context.Background(), "a", short, nil)
	if !errIs[*NoRoomError](err) || !strings.Contains(err.Error(), `pinned model "pin"`) {
		t.Fatalf("want a NoRoomError naming the pinned model, got %v", err)
	}
	if s := state(t, p, "pin"); s.State != StateReady || s.Evictions != 0 {
		t.Fatalf("pinned: %+v", s)
	}
	if n := f.starts("a"); n != 0 {
		t.Fatalf("%d runners started for a", n)
	}
}

// TestFakeDrain: a load that needs the room of a busy model of equal
// priority drains it: the running request finishes, a new request for the
// drained model queues instead of running in it, and after the swap
// everything is served.
func TestFakeDrain(t *testing.T) {
	paths := tinyModels(t, "a", "b")
	p, f := newFakePool(t, memBlock("100MiB", "1MiB")+
		modelBlock("a", paths["a"], "priority = 10")+
		modelBlock("b", paths["b"], "priority = 10"))
	release := f.holdRequests("a")
	first := completeBg(p, "a")
	<-f.entered
	aPid := state(t, p, "a").Pid
	forB := completeBg(p, "b")
	waitFake(t, "a to drain", func() bool { return state(t, p, "a").Draining })
	if s := state(t, p, "b"); s.State != StateLoading {
		t.Fatalf("b while a drains: %s", s.State)
	}
	// A new request for the draining model waits; it does not run in it.
	second := completeBg(p, "a")
	waitFake(t, "the second request to queue", func() bool { return state(t, p, "a").Queued == 1 })
	select {
	case name := <-f.entered:
		t.Fatalf("a request entered %s while a drains", name)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("the running request: %v", err)
	}
	if err := <-forB; err != nil {
		t.Fatalf("b: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the request queued during the drain: %v", err)
	}
	if r := f.byPid(aPid); !r.stopped.Load() || r.served.Load() != 1 {
		t.Fatalf("a's first runner: stopped %v, served %d; want stopped after 1", r.stopped.Load(), r.served.Load())
	}
	// a is evicted for b at least once; when a's reload for the queued
	// request wins the race for the room b waited for, b drains a again.
	if s := state(t, p, "a"); s.Evictions < 1 || s.Failures != 0 || s.Requests != 2 {
		t.Fatalf("a: %+v", s)
	}
}

// TestFakeSwapBeside: a restart with room for both runners loads the new
// one beside the old one; new requests go to the new runner while the old
// one finishes its request, then the old one stops.
func TestFakeSwapBeside(t *testing.T) {
	paths := tinyModels(t, "m")
	p, f := newFakePool(t, memBlock("1GiB", "1MiB")+modelBlock("m", paths["m"], ""))
	oldPid := loadReady(t, p, "m")
	old := f.byPid(oldPid)
	// Hold the one request that runs in the old runner.
	release := f.holdRequests("m")
	running := completeBg(p, "m")
	<-f.entered
	f.mu.Lock()
	delete(f.hold, "m") // later requests do not wait
	f.mu.Unlock()

	plan, _ := apply(t, p, memBlock("1GiB", "1MiB")+withContext(modelBlock("m", paths["m"], ""), 512))
	if len(plan.Restarted) != 1 {
		t.Fatalf("plan: %s", plan)
	}
	var s ModelStatus
	waitFake(t, "the new runner", func() bool { s = state(t, p, "m"); return s.Pid != oldPid && s.State == StateReady })
	if s.Reload != ReloadRetiring || old.stopped.Load() {
		t.Fatalf("while the old runner has a request: reload %q, old runner stopped %v", s.Reload, old.stopped.Load())
	}
	neu := f.byPid(s.Pid)
	if neu.opts.SlotContext != 512 || old.opts.SlotContext != 256 {
		t.Fatalf("contexts: old %d, new %d", old.opts.SlotContext, neu.opts.SlotContext)
	}
	if _, err := p.Complete(context.Background(), "m", short, nil); err != nil {
		t.Fatal(err)
	}
	<-f.entered
	if neu.served.Load() != 1 || old.served.Load() != 0 || old.stopped.Load() {
		t.Fatalf("served: new %d, old %d; old stopped %v", neu.served.Load(), old.served.Load(), old.stopped.Load())
	}
	release()
	if err := <-running; err != nil {
		t.Fatalf("the request in the old runner: %v", err)
	}
	waitFake(t, "the old runner to stop", func() bool { return old.stopped.Load() && state(t, p, "m").Reload == "" })
	if old.served.Load() != 1 || neu.stopped.Load() || f.starts("m") != 2 {
		t.Fatalf("old served %d, new stopped %v, %d runners started", old.served.Load(), neu.stopped.Load(), f.starts("m"))
	}
}

// crashAndSettle sends a request that crashes m's runner and waits until
// the pool has noticed the exit.
func crashAndSettle(t *testing.T, p *Pool, model, cause string) {
	t.Helper()
	_, err := p.Complete(context.Background(), model, short, nil)
	if !errors.Is(err, runner.ErrExited) || !strings.Contains(err.Error(), cause) {
		t.Fatalf("want a runner exit naming %q, got %v", cause, err)
	}
	waitFake(t, "the pool to notice the exit", func() bool { return state(t, p, model).State != StateReady })
}

// TestFakeCrashLimit: a model whose runner crashes at every request is
// started DefaultCrashBurst times, then it is failed with the cause:
// requests get a ModelFailedError at once and start no runner, until Load
// retries it or its file changes.
func TestFakeCrashLimit(t *testing.T) {
	paths := tinyModels(t, "m")
	p, f := newFakePool(t, memBlock("1GiB", "1MiB")+modelBlock("m", paths["m"], ""))
	const cause = "ggml-cpu.c:9120: ggml_compute_forward_soft_max_f32: Assertion `!isnan(wp[i])' failed."
	f.crash["m"] = cause
	for range DefaultCrashBurst {
		crashAndSettle(t, p, "m", cause)
	}
	s := state(t, p, "m")
	if s.State != StateFailed || !strings.Contains(s.LastError, cause) || !strings.Contains(s.LastError, "jetai-ctl load m") {
		t.Fatalf("after %d crashes: %s, %q", DefaultCrashBurst, s.State, s.LastError)
	}
	if st := p.Status(); st.Failed != 1 {
		t.Fatalf("status: %+v", st)
	}
	for range 3 {
		_, err := p.Complete(context.Background(), "m", short, nil)
		var mf *ModelFailedError
		if !errors.As(err, &mf) || mf.Code() != "model_failed" || mf.HTTPStatus() != 503 || mf.Cause != cause || mf.Crashes != DefaultCrashBurst {
			t.Fatalf("want ModelFailedError with the cause, got %v", err)
		}
	}
	if n := f.starts("m"); n != DefaultCrashBurst {
		t.Fatalf("%d runners started, want %d", n, DefaultCrashBurst)
	}

	// An explicit load retries it.
	if err := p.Load(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
	if s := state(t, p, "m"); s.State != StateReady || f.starts("m") != DefaultCrashBurst+1 {
		t.Fatalf("after Load: %s, %d starts", s.State, f.starts("m"))
	}
	for range DefaultCrashBurst {
		crashAndSettle(t, p, "m", cause)
	}
	if s := state(t, p, "m"); s.State != StateFailed {
		t.Fatalf("after crashing again: %s", s.State)
	}

	// A new file is a new try.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(paths["m"], later, later); err != nil {
		t.Fatal(err)
	}
	delete(f.crash, "m")
	if _, err := p.Complete(context.Background(), "m", short, nil); err != nil {
		t.Fatalf("after the file changed: %v", err)
	}
	// Load's runner took the first of the second round of crashes.
	if n := f.starts("m"); n != 2*DefaultCrashBurst+1 {
		t.Fatalf("%d runners started, want %d", n, 2*DefaultCrashBurst+1)
	}
}

// TestFakeCrashLimitConfigChange: a reload that changes a failed model's
// config lifts the limit.
func TestFakeCrashLimitConfigChange(t *testing.T) {
	paths := tinyModels(t, "m")
	hcl := memBlock("1GiB", "1MiB") + modelBlock("m", paths["m"], "")
	p, f := newFakePool(t, hcl)
	f.crash["m"] = "llama.cpp:1: boom"
	for range DefaultCrashBurst {
		crashAndSettle(t, p, "m", "llama.cpp:1: boom")
	}
	delete(f.crash, "m")
	if _, err := p.Complete(context.Background(), "m", short, nil); !errIs[*ModelFailedError](err) {
		t.Fatalf("want ModelFailedError, got %v", err)
	}
	for i, block := range []string{
		modelBlock("m", paths["m"], "priority = 7"),       // a live field
		withContext(modelBlock("m", paths["m"], ""), 512), // a restart
	} {
		if i == 1 {
			f.crash["m"] = "llama.cpp:1: boom"
			for range DefaultCrashBurst {
				crashAndSettle(t, p, "m", "llama.cpp:1: boom")
			}
			delete(f.crash, "m")
		}
		apply(t, p, memBlock("1GiB", "1MiB")+block)
		if _, err := p.Complete(context.Background(), "m", short, nil); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
}
