package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

var short = runner.Request{Prompt: "Once upon a time", MaxTokens: 4}

// modelBlock is one HCL model block with test-friendly settings.
func modelBlock(name, path, extra string) string {
	if !strings.Contains(extra, "keep_alive") {
		extra += "\nkeep_alive = \"forever\""
	}
	return fmt.Sprintf("model %q {\n  path = %q\n  context = 256\n  parallel = 1\n  threads = 1\n%s\n}\n", name, path, extra)
}

func memBlock(budget, reserve string) string {
	return fmt.Sprintf("memory {\n  budget = %q\n  reserve = %q\n}\n", budget, reserve)
}

func loaded(p *Pool) []string {
	var out []string
	for _, m := range p.Models() {
		if m.State == StateReady || m.State == StateLoading {
			out = append(out, m.Name)
		}
	}
	return out
}

// TestEvictionOrder: a pinned model and three others under a budget that
// holds the pinned one and two more; requests in turn evict by priority,
// then least recent use; the pinned one stays; charges stay in the budget.
func TestEvictionOrder(t *testing.T) {
	dir := t.TempDir()
	tiny := testmodel.Gen(t, modelgen.Tiny())
	paths := map[string]string{}
	for _, n := range []string{"pin", "low", "a", "b"} {
		paths[n] = copyModel(t, tiny, dir, n+".gguf")
	}
	// A tiny runner is estimated at about 69 MiB: 240 MiB holds three.
	hcl := memBlock("240MiB", "1MiB") +
		modelBlock("pin", paths["pin"], "pinned = true\npreload = true\npriority = 0") +
		modelBlock("low", paths["low"], "priority = 10") +
		modelBlock("a", paths["a"], "priority = 50\naliases = [\"alpha\"]") +
		modelBlock("b", paths["b"], "priority = 50")
	p := newPool(t, hcl, nil)
	if est := state(t, p, "a").EstimatedBytes; est*3 > 240<<20 || est*4 <= 240<<20 {
		t.Fatalf("estimate %d: the budget must hold three, not four", est)
	}
	waitState(t, p, "pin", StateReady, 20*time.Second)

	// Watch the charged total the whole time.
	stop := make(chan struct{})
	var over []string
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			st := p.Status()
			var sum uint64
			for _, m := range p.Models() {
				sum += m.ChargedBytes
			}
			if st.Used > st.Budget || sum > st.Budget {
				over = append(over, fmt.Sprintf("used %d sum %d budget %d", st.Used, sum, st.Budget))
			}
		}
	}()

	steps := []struct {
		req     string
		want    []string // loaded afterwards, config order
		evicted string
	}{
		{"low", []string{"pin", "low"}, ""},
		{"alpha", []string{"pin", "low", "a"}, ""},
		{"b", []string{"pin", "a", "b"}, "low"}, // lowest priority goes first
		{"a", []string{"pin", "a", "b"}, ""},
		{"low", []string{"pin", "low", "a"}, "b"}, // a and b tie: b is least recently used
		{"b", []string{"pin", "a", "b"}, "low"},   // priority before recency
		{"low", []string{"pin", "low", "b"}, "a"}, // now a is least recently used
	}
	ctx := context.Background()
	for i, s := range steps {
		before := map[string]uint64{}
		for _, m := range p.Models() {
			before[m.Name] = m.Evictions
		}
		res, err := p.Complete(ctx, s.req, short, nil)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, s.req, err)
		}
		if res.Timings.GeneratedTokens == 0 {
			t.Fatalf("step %d: no tokens", i)
		}
		// Evicted runners finish exiting in the background.
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(loaded(p), s.want) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := loaded(p); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (%s): loaded %v, want %v", i, s.req, got, s.want)
		}
		for _, m := range p.Models() {
			d := m.Evictions - before[m.Name]
			if (m.Name == s.evicted) != (d == 1) || d > 1 {
				t.Fatalf("step %d: %s evicted %d times, want evicted %q", i, m.Name, d, s.evicted)
			}
		}
	}
	close(stop)
	watch.Wait()
	if len(over) > 0 {
		t.Fatalf("charges over the budget %d times, first: %s", len(over), over[0])
	}
	if pin := state(t, p, "pin"); pin.Evictions != 0 || pin.State != StateReady || pin.Loads != 1 {
		t.Fatalf("pinned: %+v", pin)
	}
	st := p.Status()
	if st.Loaded != 3 || st.Used > st.Budget {
		t.Fatalf("status %+v", st)
	}
	for _, m := range p.Models() {
		if m.State == StateReady && (m.MeasuredBytes == 0 || m.ChargedBytes < m.MeasuredBytes || m.ChargedBytes < m.EstimatedBytes || m.Pid == 0) {
			t.Fatalf("%s: measured %d charged %d estimated %d pid %d", m.Name, m.MeasuredBytes, m.ChargedBytes, m.EstimatedBytes, m.Pid)
		}
	}
}

// TestNoRoom: loads that no eviction can make room for fail at once with a
// NoRoomError naming what is in the way.
func TestNoRoom(t *testing.T) {
	dir := t.TempDir()
	tiny := testmodel.Gen(t, modelgen.Tiny())
	cases := []struct {
		name     string
		hcl      string
		avail    uint64
		model    string
		contains string
	}{
		{"per-model budget", memBlock("1GiB", "1MiB") + modelBlock("m", copyModel(t, tiny, dir, "m1.gguf"), `memory_budget = "8MiB"`), 1 << 40, "m", "own memory_budget"},
		{"bigger than budget", memBlock("20MiB", "1MiB") + modelBlock("m", copyModel(t, tiny, dir, "m2.gguf"), ""), 1 << 40, "m", "bigger than the whole memory budget"},
		{"pinned in the way", memBlock("150MiB", "1MiB") +
			modelBlock("p1", copyModel(t, tiny, dir, "p1.gguf"), "pinned = true\npreload = true") +
			modelBlock("p2", copyModel(t, tiny, dir, "p2.gguf"), "pinned = true\npreload = true") +
			modelBlock("m", copyModel(t, tiny, dir, "m3.gguf"), ""), 1 << 40, "m", `pinned model "p2"`},
		{"memavailable", memBlock("1GiB", "64MiB") + modelBlock("m", copyModel(t, tiny, dir, "m4.gguf"), ""), 80 << 20, "m", "MemAvailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPool(t, c.hcl, func(p *Pool) { p.memAvailable = func() (uint64, bool) { return c.avail, true } })
			for _, m := range p.Models() {
				if m.Preload {
					waitState(t, p, m.Name, StateReady, 20*time.Second)
				}
			}
			_, err := p.Complete(context.Background(), c.model, short, nil)
			var nr *NoRoomError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), c.contains) {
				t.Fatalf("want a NoRoomError saying %q, got %v", c.contains, err)
			}
			t.Log(err)
			if s := state(t, p, c.model); s.State != StateUnloaded || s.LastError == "" {
				t.Fatalf("after no room: %+v", s)
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	real := realModel(t)
	dir := t.TempDir()
	hcl := memBlock("1GiB", "1MiB") +
		modelBlock("brief", copyModel(t, real, dir, "brief.gguf"), `keep_alive = "1s"`) +
		modelBlock("zero", copyModel(t, real, dir, "zero.gguf"), `keep_alive = "0"`) +
		modelBlock("ever", copyModel(t, real, dir, "ever.gguf"), "")
	p := newPool(t, hcl, nil)
	ctx := context.Background()
	for _, n := range []string{"zero", "ever", "brief"} {
		if _, err := p.Complete(ctx, n, short, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The early-unload check counts from brief's own last use, which the
	// observation of its unload can only follow; the waits are generous
	// because stopping a runner on a loaded machine takes its time.
	s := state(t, p, "brief")
	if s.LastUsed == nil {
		t.Fatalf("brief right after use: %+v", s)
	}
	used := *s.LastUsed
	if s.State == StateReady && (s.KeepAliveUntil == nil || s.KeepAliveUntil.Sub(used) != time.Second) {
		t.Fatalf("brief right after use: %+v", s)
	}
	waitState(t, p, "zero", StateUnloaded, 15*time.Second)
	waitState(t, p, "brief", StateUnloaded, 15*time.Second)
	if d := time.Since(used); d < 900*time.Millisecond {
		t.Fatalf("brief unloaded after only %v", d)
	}
	if s := state(t, p, "ever"); s.State != StateReady || s.KeepAliveUntil != nil {
		t.Fatalf("ever: %+v", s)
	}
	// The next request loads it again.
	if _, err := p.Complete(ctx, "brief", short, nil); err != nil {
		t.Fatal(err)
	}
	if s := state(t, p, "brief"); s.Loads != 2 {
		t.Fatalf("brief loads %d", s.Loads)
	}
}

// hold starts a streaming request that stops in its first onText until
// release is closed.
func hold(t *testing.T, p *Pool, model string) (started <-chan struct{}, release chan struct{}, done <-chan error) {
	t.Helper()
	st := make(chan struct{})
	rel := make(chan struct{})
	d := make(chan error, 1)
	var once sync.Once
	go func() {
		_, err := p.Complete(context.Background(), model, runner.Request{Prompt: "Once upon a time", MaxTokens: 20}, func(string) {
			once.Do(func() { close(st); <-rel })
		})
		d <- err
	}()
	return st, rel, d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestQueueFull(t *testing.T) {
	real := realModel(t)
	dir := t.TempDir()
	hcl := `server {
  queue_per_model = 1
  queue_total = 2
}
` + memBlock("1GiB", "1MiB") +
		modelBlock("a", copyModel(t, real, dir, "a.gguf"), "") +
		modelBlock("b", copyModel(t, real, dir, "b.gguf"), "") +
		modelBlock("c", copyModel(t, real, dir, "c.gguf"), "")
	p := newPool(t, hcl, nil)
	ctx := context.Background()

	startedA, releaseA, doneA := hold(t, p, "a")
	<-startedA
	// One waits for a's only slot; its context ends later.
	qctx, qcancel := context.WithCancel(ctx)
	queuedErr := make(chan error, 1)
	go func() {
		_, err := p.Complete(qctx, "a", short, nil)
		queuedErr <- err
	}()
	waitFor(t, "a queued request", func() bool { return state(t, p, "a").Queued == 1 })

	_, err := p.Complete(ctx, "a", short, nil)
	var qf *QueueFullError
	if !errors.As(err, &qf) || qf.Total || qf.Model != "a" || qf.Retry < time.Second {
		t.Fatalf("want a per-model QueueFullError, got %v (%+v)", err, qf)
	}
	t.Log(err)

	startedB, releaseB, doneB := hold(t, p, "b")
	<-startedB
	go p.Complete(ctx, "b", short, nil)
	waitFor(t, "b queued request", func() bool { return p.Status().Queued == 2 })
	_, err = p.Complete(ctx, "c", short, nil)
	if !errors.As(err, &qf) || !qf.Total {
		t.Fatalf("want a total QueueFullError, got %v", err)
	}
	t.Log(err)

	// A waiter whose context ends leaves the queue.
	qcancel()
	if err := <-queuedErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	waitFor(t, "queue to shrink", func() bool { return state(t, p, "a").Queued == 0 && p.Status().Queued == 1 })
	// Now c fits in the total queue (it queues for its load).
	if _, err := p.Complete(ctx, "c", short, nil); err != nil {
		t.Fatal(err)
	}
	close(releaseA)
	close(releaseB)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	if r := state(t, p, "a").Rejected; r != 1 {
		t.Fatalf("a rejected %d", r)
	}
}

func TestUnknownModel(t *testing.T) {
	p := newPool(t, memBlock("1GiB", "1MiB")+modelBlock("m", realModel(t), `aliases = ["mm"]`), nil)
	ctx := context.Background()
	if n, ok := p.Resolve("mm"); !ok || n != "m" {
		t.Fatalf("resolve alias: %q %v", n, ok)
	}
	if _, ok := p.Model("nope"); ok {
		t.Fatal("Model(nope) found")
	}
	_, err := p.Complete(ctx, "nope", short, nil)
	if !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("complete: %v", err)
	}
	for _, f := range []func() error{
		func() error { return p.Load(ctx, "nope") },
		func() error { return p.Unload(ctx, "nope") },
		func() error { _, err := p.Embed(ctx, "nope", "x"); return err },
	} {
		if err := f(); !errors.Is(err, ErrUnknownModel) {
			t.Fatalf("want ErrUnknownModel, got %v", err)
		}
	}
	if e, err := p.Embed(ctx, "mm", "the cat"); err != nil || len(e.Embedding) == 0 {
		t.Fatalf("embed: %v", err)
	}
}

func TestBadModelFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.gguf")
	good, err := os.ReadFile(realModel(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bad, good[:len(good)/2], 0o644)
	p := newPool(t, memBlock("1GiB", "1MiB")+modelBlock("good", realModel(t), "")+modelBlock("bad", bad, ""), nil)
	ctx := context.Background()
	if _, err := p.Complete(ctx, "good", short, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Complete(ctx, "bad", short, nil)
			var lf *LoadFailedError
			if !errors.As(err, &lf) || lf.Model != "bad" {
				t.Errorf("want LoadFailedError, got %v", err)
			}
		}()
		if _, err := p.Complete(ctx, "good", short, nil); err != nil {
			t.Errorf("good: %v", err)
		}
	}
	wg.Wait()
	s := state(t, p, "bad")
	if s.State != StateFailed || s.LastError == "" || s.ChargedBytes != 0 {
		t.Fatalf("bad: %+v", s)
	}
	t.Log(s.LastError)
	if err := p.Load(ctx, "bad"); err == nil {
		t.Fatal("load of a bad file succeeded")
	}
	if s := state(t, p, "good"); s.State != StateReady || s.Requests != 4 || s.Failures != 0 {
		t.Fatalf("good: %+v", s)
	}
}

func TestRunnerKilled(t *testing.T) {
	// The held request must still be generating when the runner dies: 20
	// tokens (hold's) can all be written to the socket before the kill on
	// a loaded machine, and then the request rightly succeeds. Thousands
	// of tokens past end-of-generation take seconds, the kill a moment.
	p := newPool(t, memBlock("1GiB", "1MiB")+fmt.Sprintf(`model "m" {
  path       = %q
  context    = 8192
  parallel   = 1
  threads    = 1
  keep_alive = "forever"
}
`, realModel(t)), nil)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	var once sync.Once
	go func() {
		_, err := p.Complete(context.Background(), "m", runner.Request{Prompt: "Once upon a time", MaxTokens: 8000, IgnoreEOS: true}, func(string) {
			once.Do(func() { close(started); <-release })
		})
		done <- err
	}()
	<-started
	s := state(t, p, "m")
	syscall.Kill(s.Pid, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
	close(release)
	select {
	case err := <-done:
		if !errors.Is(err, runner.ErrExited) {
			t.Fatalf("want ErrExited, got %v", err)
		}
		t.Log(err)
	case <-time.After(15 * time.Second):
		t.Fatal("request still running 15s after its runner was killed")
	}
	s = waitState(t, p, "m", StateUnloaded, 15*time.Second)
	if !strings.Contains(s.LastError, "exited") || s.ChargedBytes != 0 || s.Failures != 1 {
		t.Fatalf("after the kill: %+v", s)
	}
	if _, err := p.Complete(context.Background(), "m", short, nil); err != nil {
		t.Fatal(err)
	}
	if s := state(t, p, "m"); s.Loads != 2 || s.State != StateReady {
		t.Fatalf("after reload: %+v", s)
	}
}

func TestUnloadWaitsForRequest(t *testing.T) {
	p := newPool(t, memBlock("1GiB", "1MiB")+modelBlock("m", realModel(t), "pinned = true"), nil)
	started, release, done := hold(t, p, "m")
	<-started
	// A short context: the unload gives up and the model stays.
	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := p.Unload(sctx, "m")
	cancel()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unload with a busy model and a short context: %v", err)
	}
	if s := state(t, p, "m"); s.State != StateReady {
		t.Fatalf("after a given-up unload: %s", s.State)
	}
	unloaded := make(chan error, 1)
	go func() { unloaded <- p.Unload(context.Background(), "m") }()
	waitFor(t, "unloading", func() bool { return state(t, p, "m").State == StateUnloading })
	select {
	case err := <-unloaded:
		t.Fatalf("unload returned while a request runs: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the running request failed: %v", err)
	}
	if err := <-unloaded; err != nil {
		t.Fatal(err)
	}
	if s := state(t, p, "m"); s.State != StateUnloaded || s.Pid != 0 {
		t.Fatalf("after unload: %+v", s)
	}
}

// TestBusyVictimDrains: with room for one model, a request for b while a
// is busy waits for a's request to finish (a is never killed mid-request),
// then a is evicted; a's next request waits its turn and reloads it.
func TestBusyVictimDrains(t *testing.T) {
	dir := t.TempDir()
	real := realModel(t)
	p := newPool(t, memBlock("100MiB", "1MiB")+
		modelBlock("a", copyModel(t, real, dir, "a.gguf"), "")+
		modelBlock("b", copyModel(t, real, dir, "b.gguf"), ""), nil)
	ctx := context.Background()
	startedA, releaseA, doneA := hold(t, p, "a")
	<-startedA
	bDone := make(chan error, 1)
	go func() { _, err := p.Complete(ctx, "b", short, nil); bDone <- err }()
	waitFor(t, "a draining", func() bool { return state(t, p, "a").Draining })
	aAgain := make(chan error, 1)
	go func() { _, err := p.Complete(ctx, "a", short, nil); aAgain <- err }()
	waitFor(t, "a's second request queued", func() bool { return state(t, p, "a").Queued == 1 })
	if s := state(t, p, "b"); s.State != StateLoading {
		t.Fatalf("b: %s", s.State)
	}
	close(releaseA)
	if err := <-doneA; err != nil {
		t.Fatalf("a's running request: %v", err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("b: %v", err)
	}
	if err := <-aAgain; err != nil {
		t.Fatalf("a again: %v", err)
	}
	// a's second request may win the race to load after a's eviction (then
	// b drains a once more) or follow b (then b is evicted for it): either
	// way every request is served and nothing flaps.
	a, b := state(t, p, "a"), state(t, p, "b")
	if a.Evictions < 1 || a.Loads != 2 || a.Loads+b.Loads > 4 || a.Failures+b.Failures != 0 {
		t.Fatalf("a %+v\nb %+v", a, b)
	}
	if st := p.Status(); st.Used > st.Budget {
		t.Fatalf("status %+v", st)
	}
}

func TestOptimizeAndPerformance(t *testing.T) {
	dir := t.TempDir()
	real := realModel(t)
	p := newPool(t, memBlock("400MiB", "220MiB")+
		modelBlock("old", copyModel(t, real, dir, "old.gguf"), `keep_alive = "1ms"`)+
		modelBlock("lo", copyModel(t, real, dir, "lo.gguf"), "priority = 5")+
		modelBlock("hi", copyModel(t, real, dir, "hi.gguf"), "priority = 90")+
		modelBlock("pin", copyModel(t, real, dir, "pin.gguf"), "priority = 1\npinned = true"), func(p *Pool) {
		p.reapEvery = time.Hour // Optimize, not the reaper, does the work here
	})
	ctx := context.Background()
	for _, n := range []string{"old", "lo", "hi", "pin", "hi"} {
		if _, err := p.Complete(ctx, n, runner.Request{Prompt: "Once upon a time", MaxTokens: 16}, nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond)
	// ~66 MiB each: 4 loaded leave ~136 MiB of headroom; the reserve wants
	// 220, which takes two unloads.
	rep := p.Optimize(ctx)
	t.Logf("%+v", rep)
	if !slices.Equal(rep.Unloaded, []string{"old", "lo"}) || !strings.Contains(rep.Reasons["old"], "keep_alive") ||
		!strings.Contains(rep.Reasons["lo"], "reserve") || rep.FreedBytes == 0 {
		t.Fatalf("optimize: %+v", rep)
	}
	if got := loaded(p); !slices.Equal(got, []string{"hi", "pin"}) {
		t.Fatalf("loaded after optimize: %v", got)
	}
	perf := p.Performance()
	if perf.Overall.Requests != 5 || perf.Overall.Loads != 4 || perf.Overall.Tokens == 0 ||
		perf.Overall.TokensPerSecond.Count != 5 || perf.Overall.TokensPerSecond.P50 <= 0 ||
		perf.Overall.TimeToFirstTokenMS.P99 < perf.Overall.TimeToFirstTokenMS.P50 || perf.Overall.LoadSeconds.Count != 4 {
		t.Fatalf("performance: %+v", perf.Overall)
	}
	if hi := perf.Models[2]; hi.Name != "hi" || hi.Requests != 2 || hi.QueueWaitMS.Count != 2 || hi.LastLoadSeconds <= 0 {
		t.Fatalf("hi: %+v", hi)
	}
}

// TestCloseLeavesNothing: after Close no runner and no pool goroutine is
// left.
func TestCloseLeavesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	cfgText := memBlock("1GiB", "1MiB") + modelBlock("m", realModel(t), "preload = true")
	p := newPool(t, cfgText, nil)
	waitState(t, p, "m", StateReady, 20*time.Second)
	pid := state(t, p, "m").Pid
	started, release, done := hold(t, p, "m")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Log("the running request finished before the runner stopped")
	}
	if p.Ready() {
		t.Fatal("ready after close")
	}
	if _, err := p.Complete(context.Background(), "m", short, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("runner %d still alive", pid)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}
