package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
)

// apply parses hcl as the pool's config file and applies the diff.
func apply(t *testing.T, p *Pool, hcl string) (config.Plan, ApplyReport) {
	t.Helper()
	p.mu.Lock()
	old := p.cfg
	p.mu.Unlock()
	cfg, err := config.Parse([]byte(hcl), old.Path)
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	plan := config.Diff(old, cfg)
	rep, err := p.Apply(cfg, plan)
	if err != nil {
		t.Fatal(err)
	}
	return plan, rep
}

// exited says whether the process pid is gone (reaped).
func exited(pid int) bool {
	return syscall.Kill(pid, 0) != nil
}

// withContext changes a modelBlock's context.
func withContext(block string, n int) string {
	return strings.Replace(block, "context = 256", "context = "+strconv.Itoa(n), 1)
}

func loadReady(t *testing.T, p *Pool, name string) int {
	t.Helper()
	if err := p.Load(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return state(t, p, name).Pid
}

// TestApplyLive: a priority and alias change keeps the runner (same pid)
// and shows at once; the new alias resolves and the old one does not.
func TestApplyLive(t *testing.T) {
	real := realModel(t)
	hcl := memBlock("1GiB", "1MiB") + modelBlock("m", real, "priority = 10\naliases = [\"old\"]")
	p := newPool(t, hcl, nil)
	pid := loadReady(t, p, "m")

	plan, rep := apply(t, p, memBlock("1GiB", "1MiB")+modelBlock("m", real, "priority = 90\naliases = [\"new\"]"))
	if len(plan.Updated) != 1 || len(plan.Restarted) != 0 || !slices.Equal(rep.Updated, []string{"m"}) {
		t.Fatalf("plan %s, report %+v", plan, rep)
	}
	s := state(t, p, "m")
	if s.Pid != pid || s.State != StateReady || s.Priority != 90 || !slices.Equal(s.Aliases, []string{"new"}) {
		t.Fatalf("after a live update: pid %d (was %d), %s, priority %d, aliases %v", s.Pid, pid, s.State, s.Priority, s.Aliases)
	}
	if _, ok := p.Resolve("new"); !ok {
		t.Fatal("the new alias does not resolve")
	}
	if _, ok := p.Resolve("old"); ok {
		t.Fatal("the old alias still resolves")
	}
	if _, err := p.Complete(context.Background(), "new", short, nil); err != nil {
		t.Fatal(err)
	}
	if s := state(t, p, "m"); s.Pid != pid || s.Loads != 1 {
		t.Fatalf("the runner changed: pid %d (was %d), loads %d", s.Pid, pid, s.Loads)
	}
}

// TestApplyThreads: a threads change is applied to the running runner
// (same pid, no new load), and the thermal throttle caps the new configured
// value from then on: it lowers from it and gives it back at normal.
func TestApplyThreads(t *testing.T) {
	real := realModel(t)
	block := func(threads int) string {
		return memBlock("1GiB", "1MiB") + strings.Replace(modelBlock("m", real, ""), "threads = 1", fmt.Sprintf("threads = %d", threads), 1)
	}
	p := newPool(t, block(2), nil)
	pid := loadReady(t, p, "m")
	ctx := context.Background()
	threads := func(want int) {
		t.Helper()
		waitFor(t, fmt.Sprintf("the runner to run %d threads", want), func() bool { return state(t, p, "m").Threads == want })
	}
	threads(2)

	plan, rep := apply(t, p, block(1))
	if len(plan.Updated) != 1 || len(plan.Restarted) != 0 || plan.Updated[0].Fields[0].Field != "threads" || !slices.Equal(rep.Updated, []string{"m"}) {
		t.Fatalf("plan %s, report %+v", plan, rep)
	}
	threads(1)

	// Throttled to one thread while configured for one, then the config
	// goes back to two: the throttle keeps the cap, and normal gives the
	// new configured value, not the one the runner started with.
	p.SetThrottle(ctx, Throttle{Level: "throttle", Threads: 1})
	apply(t, p, block(2))
	p.SetThrottle(ctx, Throttle{Level: "throttle", Threads: 1}) // the monitor's next reading
	if n := state(t, p, "m").Threads; n != 1 {
		t.Errorf("threads 2 under a throttle to 1: the runner runs %d", n)
	}
	p.SetThrottle(ctx, Throttle{Level: "normal"})
	threads(2)
	if ts := p.ThrottleStatus(); ts.RunnerThreads["m"] != 2 {
		t.Errorf("throttle status %+v", ts)
	}

	if s := state(t, p, "m"); s.Pid != pid || s.Loads != 1 || s.State != StateReady {
		t.Fatalf("the runner changed: pid %d (was %d), loads %d, %s", s.Pid, pid, s.Loads, s.State)
	}
	if _, err := p.Complete(ctx, "m", short, nil); err != nil {
		t.Fatal(err)
	}
}

// TestApplyRestartBeside: with room for two runners, a context change loads
// a new runner beside the old one; the stream that started before goes on
// in the old runner and completes normally; new requests go to the new
// runner; the old runner exits once its stream is done.
func TestApplyRestartBeside(t *testing.T) {
	real := realModel(t)
	p := newPool(t, memBlock("1GiB", "1MiB")+modelBlock("m", real, ""), nil)
	oldPid := loadReady(t, p, "m")
	started, release, done := hold(t, p, "m")
	<-started

	plan, _ := apply(t, p, memBlock("1GiB", "1MiB")+withContext(modelBlock("m", real, ""), 512))
	if len(plan.Restarted) != 1 || plan.Restarted[0].Fields[0].Field != "context" {
		t.Fatalf("plan: %s", plan)
	}
	var s ModelStatus
	waitFor(t, "the new runner", func() bool { s = state(t, p, "m"); return s.Pid != oldPid && s.State == StateReady })
	if s.Reload != ReloadRetiring || exited(oldPid) {
		t.Fatalf("while the old runner has a stream: reload %q, old runner exited %v", s.Reload, exited(oldPid))
	}
	// A new request is served by the new runner while the old one still
	// holds the stream.
	if _, err := p.Complete(context.Background(), "m", short, nil); err != nil {
		t.Fatal(err)
	}
	if exited(oldPid) {
		t.Fatal("the old runner stopped while its stream was running")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the stream started before the restart: %v", err)
	}
	waitFor(t, "the old runner to exit", func() bool { return exited(oldPid) })
	waitFor(t, "the swap to finish", func() bool { return state(t, p, "m").Reload == "" })
	p.mu.Lock()
	ctxSize, extra := p.models["m"].cfg.Context, p.models["m"].extraChargeLocked()
	p.mu.Unlock()
	if ctxSize != 512 || extra != 0 {
		t.Fatalf("after the swap: context %d, extra charge %d", ctxSize, extra)
	}
}

// TestApplyRestartInPlace: without room for two runners, a restart drains
// the model: the running stream completes, a request that arrives
// meanwhile queues (it is not refused and not sent to the old runner), and
// it is served by the new runner.
func TestApplyRestartInPlace(t *testing.T) {
	real := realModel(t)
	// About 65 MiB per runner here: 100 MiB holds one, not two.
	mem := memBlock("100MiB", "1MiB")
	p := newPool(t, mem+modelBlock("m", real, ""), nil)
	oldPid := loadReady(t, p, "m")
	started, release, done := hold(t, p, "m")
	<-started

	apply(t, p, mem+withContext(modelBlock("m", real, ""), 384))
	waitFor(t, "the restart to begin", func() bool { return state(t, p, "m").Reload == ReloadInPlace })
	queued := make(chan error, 1)
	go func() {
		_, err := p.Complete(context.Background(), "m", short, nil)
		queued <- err
	}()
	waitFor(t, "the request to queue", func() bool { return state(t, p, "m").Queued == 1 })
	time.Sleep(100 * time.Millisecond)
	if s := state(t, p, "m"); s.Pid != oldPid || s.Active != 1 || s.Queued != 1 {
		t.Fatalf("during the drain: %+v", s)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the stream started before the restart: %v", err)
	}
	if err := <-queued; err != nil {
		t.Fatalf("the request queued during the restart: %v", err)
	}
	s := state(t, p, "m")
	if s.Pid == oldPid || s.State != StateReady || !exited(oldPid) || s.Reload != "" {
		t.Fatalf("after the restart: pid %d (old %d, exited %v), %s, reload %q", s.Pid, oldPid, exited(oldPid), s.State, s.Reload)
	}
}

// TestApplyAddRemove: a model added with preload loads; a model removed
// while a stream runs takes no new requests, finishes the stream, then its
// runner stops and it is gone.
func TestApplyAddRemove(t *testing.T) {
	real := realModel(t)
	dir := t.TempDir()
	a, b := copyModel(t, real, dir, "a.gguf"), copyModel(t, real, dir, "b.gguf")
	p := newPool(t, memBlock("1GiB", "1MiB")+modelBlock("a", a, ""), nil)
	pidA := loadReady(t, p, "a")
	started, release, done := hold(t, p, "a")
	<-started

	plan, rep := apply(t, p, memBlock("1GiB", "1MiB")+modelBlock("b", b, "preload = true"))
	if !slices.Equal(plan.Added, []string{"b"}) || !slices.Equal(plan.Removed, []string{"a"}) || !slices.Equal(rep.Removed, []string{"a"}) {
		t.Fatalf("plan %s, report %+v", plan, rep)
	}
	waitState(t, p, "b", StateReady, 30*time.Second)
	if _, err := p.Complete(context.Background(), "a", short, nil); !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("a new request for the removed model: %v", err)
	}
	ms := p.Models()
	if len(ms) != 2 || ms[0].Name != "b" || ms[1].Name != "a" || ms[1].Reload != ReloadRemoving || ms[1].Pid != pidA {
		t.Fatalf("models while a drains: %+v", ms)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the stream on the removed model: %v", err)
	}
	waitFor(t, "a to go", func() bool { return len(p.Models()) == 1 })
	waitFor(t, "a's runner to exit", func() bool { return exited(pidA) })
	if st := p.Status(); st.Models != 1 || st.Loaded != 1 {
		t.Fatalf("status after the removal: %+v", st)
	}
}

// TestApplyRemoveTimeout: a removed model whose request outlives the drain
// timeout is stopped anyway, and the model goes.
func TestApplyRemoveTimeout(t *testing.T) {
	real := realModel(t)
	p := newPool(t, memBlock("1GiB", "1MiB")+modelBlock("a", real, ""), func(p *Pool) { p.drainTimeout = 200 * time.Millisecond })
	pid := loadReady(t, p, "a")
	started, release, done := hold(t, p, "a")
	<-started
	apply(t, p, memBlock("1GiB", "1MiB"))
	waitFor(t, "a to go", func() bool { return len(p.Models()) == 0 && exited(pid) })
	select {
	case err := <-done:
		t.Fatalf("the request ended before its release: %v", err)
	default:
	}
	close(release)
	<-done // its tokens may all have arrived before the runner stopped
}

// TestApplyBudgetEvicts: a lower memory.budget evicts idle models in the
// eviction order (lowest priority first) until the rest fit; the pinned
// model stays.
func TestApplyBudgetEvicts(t *testing.T) {
	real := realModel(t)
	dir := t.TempDir()
	pin, low, high := copyModel(t, real, dir, "pin.gguf"), copyModel(t, real, dir, "low.gguf"), copyModel(t, real, dir, "high.gguf")
	models := func(budget string) string {
		return memBlock(budget, "1MiB") +
			modelBlock("pin", pin, "pinned = true\npriority = 0") +
			modelBlock("low", low, "priority = 10") +
			modelBlock("high", high, "priority = 90")
	}
	p := newPool(t, models("1GiB"), nil)
	for _, n := range []string{"pin", "low", "high"} {
		loadReady(t, p, n)
	}
	perModel := state(t, p, "low").ChargedBytes
	plan, rep := apply(t, p, models("150MiB"))
	if len(plan.Live) != 1 || plan.Live[0].Field != "memory.budget" {
		t.Fatalf("plan: %s", plan)
	}
	if !slices.Equal(rep.Evicted, []string{"low"}) {
		t.Fatalf("evicted %v, want [low] (each model holds %d bytes)", rep.Evicted, perModel)
	}
	waitState(t, p, "low", StateUnloaded, 10*time.Second)
	for _, n := range []string{"pin", "high"} {
		if s := state(t, p, n); s.State != StateReady {
			t.Fatalf("%s: %s", n, s.State)
		}
	}
	if st := p.Status(); st.Used > st.Budget {
		t.Fatalf("used %d over the budget %d", st.Used, st.Budget)
	}
}

// TestApplyUnloadedRestart: a model that is not loaded takes restart
// settings at once, with no runner started.
func TestApplyUnloadedRestart(t *testing.T) {
	real := realModel(t)
	p := newPool(t, memBlock("1GiB", "1MiB")+modelBlock("m", real, ""), nil)
	apply(t, p, memBlock("1GiB", "1MiB")+withContext(modelBlock("m", real, ""), 320))
	s := state(t, p, "m")
	if s.State != StateUnloaded || s.Pid != 0 || s.Reload != "" {
		t.Fatalf("%+v", s)
	}
	p.mu.Lock()
	c := p.models["m"].cfg.Context
	p.mu.Unlock()
	if c != 320 {
		t.Fatalf("context %d", c)
	}
}

// TestApplyUnderLoad: four clients send requests without pause while the
// config is reloaded again and again (restarts and live changes); not one
// request fails. With room for two runners the restarts swap beside the
// old runner; without, they drain and queue.
func TestApplyUnderLoad(t *testing.T) {
	real := realModel(t)
	for _, tc := range []struct{ name, budget string }{{"beside", "1GiB"}, {"in place", "100MiB"}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memBlock(tc.budget, "1MiB")
			p := newPool(t, mem+modelBlock("m", real, ""), nil)
			loadReady(t, p, "m")
			stop := make(chan struct{})
			errs := make(chan error, 1000)
			var wg sync.WaitGroup
			var done atomic.Int64
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := p.Complete(context.Background(), "m", short, nil); err != nil {
							errs <- err
						}
						done.Add(1)
					}
				}()
			}
			pid := state(t, p, "m").Pid
			for i := range 6 {
				block := modelBlock("m", real, "priority = "+strconv.Itoa(10+i))
				if i%2 == 0 {
					block = withContext(block, 256+128*(i/2+1))
				}
				apply(t, p, mem+block)
				time.Sleep(150 * time.Millisecond)
			}
			waitFor(t, "the last restart", func() bool { s := state(t, p, "m"); return s.Reload == "" && s.State == StateReady })
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("a request failed during reloads: %v", err)
			}
			s := state(t, p, "m")
			if s.Pid == pid || s.Priority != 15 || done.Load() < 4 {
				t.Fatalf("after the reloads: pid %d (first %d), priority %d, %d requests", s.Pid, pid, s.Priority, done.Load())
			}
			t.Logf("%d requests, %d loads", done.Load(), s.Loads)
		})
	}
}

// TestApplyRestartFails: a restart onto a file that does not load (valid
// GGUF magic, truncated) leaves the old runner serving with the old
// settings and says so; fixing the file in a later reload restarts it.
func TestApplyRestartFails(t *testing.T) {
	real := realModel(t)
	dir := t.TempDir()
	good, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(bad, good[:len(good)/2], 0o644)
	mem := memBlock("1GiB", "1MiB")
	p := newPool(t, mem+modelBlock("m", real, ""), nil)
	pid := loadReady(t, p, "m")

	apply(t, p, mem+modelBlock("m", bad, ""))
	waitFor(t, "the failed restart", func() bool { return state(t, p, "m").Reload == ReloadFailed })
	s := state(t, p, "m")
	if s.Pid != pid || s.State != StateReady || !strings.Contains(s.LastError, "previous runner serves on") {
		t.Fatalf("after a failed restart: %+v", s)
	}
	if _, err := p.Complete(context.Background(), "m", short, nil); err != nil {
		t.Fatalf("the previous runner does not serve: %v", err)
	}
	apply(t, p, mem+withContext(modelBlock("m", real, ""), 512))
	waitFor(t, "the fixed restart", func() bool { s := state(t, p, "m"); return s.Pid != pid && s.State == StateReady && s.Reload == "" })
	if s := state(t, p, "m"); s.LastError != "" {
		t.Fatalf("after the fix: %+v", s)
	}
}
