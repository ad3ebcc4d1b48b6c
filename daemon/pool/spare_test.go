package pool

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// spareBlock is a memory block with warm_spare set.
func spareBlock(budget string, on bool) string {
	return fmt.Sprintf("memory {\n  budget = %q\n  reserve = \"1MiB\"\n  warm_spare = %t\n}\n", budget, on)
}

// waitSpare waits until the pool's spare is in state want and returns it.
func waitSpare(t *testing.T, p *Pool, want string) SpareStatus {
	t.Helper()
	var last *SpareStatus
	waitFake(t, "the spare to be "+want, func() bool {
		last = p.Status().Spare
		return last != nil && last.State == want
	})
	return *last
}

// TestFakeSpare: with warm_spare on, the pool starts a spare, charges its
// measured RSS, hands each load's model to it instead of starting a
// process (the load's record says so), and starts a new spare after each.
// With it off, nothing of the kind: each load starts its own process.
func TestFakeSpare(t *testing.T) {
	paths := tinyModels(t, "a", "b")
	models := modelBlock("a", paths["a"], "") + modelBlock("b", paths["b"], "")
	for _, tc := range []struct {
		name string
		on   bool
	}{{"on", true}, {"off", false}} {
		t.Run(tc.name, func(t *testing.T) {
			// A budget for one model: every request swaps.
			p, f := newFakePool(t, spareBlock("100MiB", tc.on)+models)
			if !tc.on {
				time.Sleep(50 * time.Millisecond)
				if s := p.Status(); s.Spare != nil || s.Used != 0 || len(f.all) != 0 {
					t.Fatalf("warm_spare off: spare %+v, used %d, %d runners started", s.Spare, s.Used, len(f.all))
				}
			}
			for i, name := range []string{"a", "b", "a"} {
				var sp SpareStatus
				if tc.on {
					sp = waitSpare(t, p, "waiting")
					if sp.ChargedBytes != 1<<20 || sp.MeasuredBytes != 1<<20 || sp.Starts != uint64(i+1) || sp.Used != uint64(i) {
						t.Fatalf("step %d: spare %+v, want 1 MiB charged, %d starts, %d used", i, sp, i+1, i)
					}
					var models uint64
					for _, m := range p.Models() {
						models += m.ChargedBytes
					}
					if used := p.Status().Used; used != models+sp.ChargedBytes {
						t.Fatalf("step %d: used %d, want the models' %d plus the spare's %d", i, used, models, sp.ChargedBytes)
					}
				}
				if _, err := p.Complete(context.Background(), name, short, nil); err != nil {
					t.Fatalf("step %d (%s): %v", i, name, err)
				}
				s := state(t, p, name)
				if s.LoadSpare != tc.on {
					t.Fatalf("step %d: load_spare %v, want %v", i, s.LoadSpare, tc.on)
				}
				if tc.on && s.Pid != sp.Pid {
					t.Fatalf("step %d: %s runs in pid %d, the spare was %d", i, name, s.Pid, sp.Pid)
				}
				if r := f.byPid(s.Pid); r == nil || r.opts.Name != name || r.spareLoad != tc.on {
					t.Fatalf("step %d: runner %+v", i, r)
				}
			}
			if tc.on {
				if sp := waitSpare(t, p, "waiting"); sp.Starts != 4 || sp.Used != 3 || sp.Deaths != 0 {
					t.Fatalf("after three swaps: spare %+v", sp)
				}
			} else if n := len(f.all); n != 3 {
				t.Fatalf("warm_spare off: %d runners for three loads", n)
			}
		})
	}
}

// TestFakeSpareBudget: a spare starts only into free room (never evicting
// a model for itself), and measured memory over the budget stops the
// spare before any model.
func TestFakeSpareBudget(t *testing.T) {
	paths := tinyModels(t, "a")
	models := modelBlock("a", paths["a"], "")
	p, f := newFakePool(t, spareBlock("1GiB", false)+models)
	need := state(t, p, "a").EstimatedBytes

	// Room for the model and not for a spare beside it (a fake runner's
	// RSS is 1 MiB).
	apply(t, p, spareBlock(fmt.Sprintf("%dKiB", need/1024+512), true)+models)
	waitSpare(t, p, "waiting") // the empty pool has room for it
	if _, err := p.Complete(context.Background(), "a", short, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	sp := p.Status().Spare
	if sp == nil || sp.State != "none" || sp.Starts != 1 || sp.ChargedBytes != 0 {
		// The first spare started into the empty pool; a's load took it.
		t.Fatalf("spare %+v: want none started beside a", sp)
	}
	if s := state(t, p, "a"); s.State != StateReady || s.Evictions != 0 {
		t.Fatalf("a: %s, %d evictions", s.State, s.Evictions)
	}

	// A measurement over the budget stops the spare, not the model.
	apply(t, p, spareBlock("1GiB", true)+models)
	sp2 := waitSpare(t, p, "waiting")
	p.mu.Lock()
	m := p.models["a"]
	p.spare.charge = uint64(p.cfg.Memory.Budget) - m.charge + 1 // as if the spare had grown
	p.enforceLocked(nil)
	stopped := p.spare.proc == nil
	state := m.state
	p.mu.Unlock()
	if !stopped || state != stReady {
		t.Fatalf("over the budget: spare stopped %v, a %s", stopped, state)
	}
	waitFake(t, "the spare's process to stop", func() bool { return f.byPid(sp2.Pid).stopped.Load() })
}

// TestFakeSpareDeath: spares that die are started again after a backoff
// that doubles, never in a loop; the status says why and when; once they
// live again, loads use them.
func TestFakeSpareDeath(t *testing.T) {
	paths := tinyModels(t, "a")
	f := newFakeRunners()
	f.dieSpares = "ggml.c:1: no backend"
	p := newPool(t, spareBlock("1GiB", true)+modelBlock("a", paths["a"], ""), func(p *Pool) {
		p.newRunner = f.start
		p.stopGrace = time.Second
		p.spareBackoff = 40 * time.Millisecond
	})
	time.Sleep(500 * time.Millisecond)
	// 40 + 80 + 160 ms of backoff fit in 500 ms, the next (320 ms) not.
	sp := p.Status().Spare
	if sp == nil || sp.Deaths < 2 || sp.Deaths > 4 || sp.Starts != sp.Deaths {
		t.Fatalf("after 500 ms of dying spares: %+v (want 2–4 deaths, no loop)", sp)
	}
	if sp.State != "backoff" || sp.RetryAt == nil || !strings.Contains(sp.LastError, "no backend") {
		t.Fatalf("spare %+v: want backoff with a retry time and the cause", sp)
	}
	// A load does not wait for the spare.
	if _, err := p.Complete(context.Background(), "a", short, nil); err != nil {
		t.Fatal(err)
	}
	if s := state(t, p, "a"); s.LoadSpare {
		t.Fatal("a load ran in a spare that died")
	}

	// Spares live again: the next one waits (within the backoff, at most
	// 1.3 s from here), and one killed while waiting is replaced.
	f.mu.Lock()
	f.dieSpares = ""
	f.mu.Unlock()
	deadline := time.Now().Add(3 * time.Second)
	for sp = p.Status().Spare; sp.State != "waiting"; sp = p.Status().Spare {
		if time.Now().After(deadline) {
			t.Fatalf("no spare after the backoff: %+v", sp)
		}
		time.Sleep(5 * time.Millisecond)
	}
	deaths := sp.Deaths
	f.byPid(sp.Pid).Kill()
	waitFake(t, "a new spare", func() bool {
		s := p.Status().Spare
		return s.State == "waiting" && s.Pid != sp.Pid
	})
	if s := p.Status().Spare; s.Deaths != deaths+1 {
		t.Fatalf("a spare killed while waiting: deaths %d, want %d", s.Deaths, deaths+1)
	}
}

// TestFakeSpareGone: a spare that dies between being taken and taking
// the model costs the load nothing: a new process loads it, and the model
// is not failed.
func TestFakeSpareGone(t *testing.T) {
	paths := tinyModels(t, "a")
	p, f := newFakePool(t, spareBlock("1GiB", true)+modelBlock("a", paths["a"], ""))
	sp := waitSpare(t, p, "waiting")
	f.mu.Lock()
	f.spareGone = true
	f.mu.Unlock()
	if _, err := p.Complete(context.Background(), "a", short, nil); err != nil {
		t.Fatal(err)
	}
	s := state(t, p, "a")
	if s.State != StateReady || s.LoadSpare || s.Pid == sp.Pid || s.LastError != "" {
		t.Fatalf("a: %s, load_spare %v, pid %d (the dead spare %d), last error %q", s.State, s.LoadSpare, s.Pid, sp.Pid, s.LastError)
	}
}

// TestFakeSpareReload: a reload that turns warm_spare off stops the spare
// (and none starts again); one that turns it on starts one; a reload
// that changes the runners' process settings replaces it.
func TestFakeSpareReload(t *testing.T) {
	paths := tinyModels(t, "a")
	models := modelBlock("a", paths["a"], "")
	p, f := newFakePool(t, spareBlock("1GiB", true)+models)
	sp := waitSpare(t, p, "waiting")

	apply(t, p, spareBlock("1GiB", false)+models)
	if s := p.Status(); s.Spare != nil || s.Used != 0 {
		t.Fatalf("warm_spare off: spare %+v, used %d", s.Spare, s.Used)
	}
	waitFake(t, "the spare to stop", func() bool { return f.byPid(sp.Pid).stopped.Load() })
	time.Sleep(50 * time.Millisecond)
	if n := len(f.all); n != 1 {
		t.Fatalf("%d runners started with warm_spare off", n)
	}

	apply(t, p, spareBlock("1GiB", true)+models)
	sp2 := waitSpare(t, p, "waiting")
	if sp2.Pid == sp.Pid {
		t.Fatal("the stopped spare came back")
	}

	apply(t, p, spareBlock("1GiB", true)+"gpu {\n  backends_dir = \"/nonexistent/backends\"\n}\n"+models)
	sp3 := waitSpare(t, p, "waiting")
	if sp3.Pid == sp2.Pid || !f.byPid(sp2.Pid).stopped.Load() {
		t.Fatalf("other backends: spare pid %d (was %d), old one stopped %v", sp3.Pid, sp2.Pid, f.byPid(sp2.Pid).stopped.Load())
	}
	if got := f.byPid(sp3.Pid).opts.BackendsDir; got != "/nonexistent/backends" {
		t.Fatalf("new spare's backends dir %q", got)
	}
	if _, err := p.Complete(context.Background(), "a", short, nil); err != nil {
		t.Fatal(err)
	}
	if s := state(t, p, "a"); !s.LoadSpare || s.Pid != sp3.Pid {
		t.Fatalf("a: load_spare %v, pid %d, want the spare %d", s.LoadSpare, s.Pid, sp3.Pid)
	}
}

// TestSwapOntoSpare: with real runners and room for one model, a request
// for b evicts a and loads b in the warm spare, which answers with real
// text; b's record says spare, with process_start and engine_init 0 (they
// were done before the load), and a new spare is started after it.
func TestSwapOntoSpare(t *testing.T) {
	dir := t.TempDir()
	real := realModel(t)
	// Room for one model (about 66 MiB each) and a spare beside it.
	p := newPool(t, spareBlock("130MiB", true)+
		modelBlock("a", copyModel(t, real, dir, "a.gguf"), "")+
		modelBlock("b", copyModel(t, real, dir, "b.gguf"), ""), nil)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	spare := func() SpareStatus {
		t.Helper()
		for {
			if sp := p.Status().Spare; sp != nil && sp.State == "waiting" {
				return *sp
			}
			if time.Now().After(deadline) {
				t.Fatalf("no waiting spare: %+v", p.Status().Spare)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	sp := spare()
	if sp.MeasuredBytes == 0 || sp.ChargedBytes != sp.MeasuredBytes {
		t.Fatalf("spare %+v: want its RSS measured and charged", sp)
	}
	if _, err := p.Complete(ctx, "a", short, nil); err != nil {
		t.Fatal(err)
	}
	sp = spare()
	res, err := p.Complete(ctx, "b", short, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text == "" || res.Timings.GeneratedTokens == 0 {
		t.Fatalf("b answered %q (%d tokens)", res.Text, res.Timings.GeneratedTokens)
	}
	b := state(t, p, "b")
	if !b.LoadSpare || b.Pid != sp.Pid {
		t.Fatalf("b: load_spare %v, pid %d; the spare was %d", b.LoadSpare, b.Pid, sp.Pid)
	}
	if a := state(t, p, "a"); a.State == StateReady {
		t.Fatal("a is still loaded beside b")
	}
	names := phaseNames(b.LoadPhases)
	checkPhaseOrder(t, names)
	for _, ph := range []string{runner.PhaseProcessStart, runner.PhaseEngineInit} {
		if s, ok := phaseSeconds(b.LoadPhases, ph); !ok || s != 0 {
			t.Errorf("b's %s: %v s (recorded %v), want 0 in a spare", ph, s, ok)
		}
	}
	for _, ph := range []string{runner.PhaseRunnerExit, runner.PhaseMetadata, runner.PhaseContext} {
		if s, ok := phaseSeconds(b.LoadPhases, ph); !ok || s <= 0 {
			t.Errorf("b's %s: %v s (recorded %v)", ph, s, ok)
		}
	}
	if next := spare(); next.Pid == sp.Pid || next.Used != sp.Used+1 {
		t.Fatalf("after the swap: spare %+v (the used one was pid %d)", next, sp.Pid)
	}
}
