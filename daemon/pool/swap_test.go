package pool

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// phaseLog is an Observer that keeps the phases it is told of.
type phaseLog struct {
	mu     sync.Mutex
	phases map[string][]string // model → phase names, in order
}

func (l *phaseLog) Request(RequestEvent)           {}
func (l *phaseLog) Load(string, float64, error)    {}
func (l *phaseLog) Unload(string, string, float64) {}
func (l *phaseLog) LoadPhase(model, phase string, s float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.phases == nil {
		l.phases = map[string][]string{}
	}
	l.phases[model] = append(l.phases[model], phase)
}

func (l *phaseLog) of(model string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.phases[model]...)
}

func phaseNames(ps []runner.Phase) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func phaseSeconds(ps []runner.Phase, name string) (float64, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p.Seconds, true
		}
	}
	return 0, false
}

// checkPhaseOrder fails unless names are distinct phases in swap order.
func checkPhaseOrder(t *testing.T, names []string) {
	t.Helper()
	last := -1
	for _, n := range names {
		i := slices.Index(runner.PhaseOrder, n)
		if i < 0 || i <= last {
			t.Fatalf("phases %v: %q unknown or out of order", names, n)
		}
		last = i
	}
}

// TestSwapPhases: with room for one model, a request for b evicts a busy
// a. b's load record names every phase of the swap in order: a's drain
// (at least as long as the test held a's request after b asked), park,
// runner exit, then the runner's own steps, which add up to about the
// load's time, and, once b's first request ran, its prompt. The observer
// gets each phase, and a model loaded without an eviction reports no
// eviction phases.
func TestSwapPhases(t *testing.T) {
	dir := t.TempDir()
	real := realModel(t)
	obs := &phaseLog{}
	p := newPool(t, memBlock("100MiB", "1MiB")+
		modelBlock("a", copyModel(t, real, dir, "a.gguf"), "")+
		modelBlock("b", copyModel(t, real, dir, "b.gguf"), ""), func(p *Pool) { p.opts.Observer = obs })
	ctx := context.Background()
	startedA, releaseA, doneA := hold(t, p, "a")
	<-startedA
	if a := state(t, p, "a"); slices.Contains(phaseNames(a.LoadPhases), runner.PhaseDrain) {
		t.Fatalf("a loaded without an eviction reports eviction phases: %v", phaseNames(a.LoadPhases))
	}
	bDone := make(chan error, 1)
	go func() { _, err := p.Complete(ctx, "b", short, nil); bDone <- err }()
	waitFor(t, "a draining", func() bool { return state(t, p, "a").Draining })
	held := time.Now()
	time.Sleep(50 * time.Millisecond)
	heldFor := time.Since(held).Seconds()
	close(releaseA)
	if err := <-doneA; err != nil {
		t.Fatalf("a: %v", err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("b: %v", err)
	}
	b := state(t, p, "b")
	names := phaseNames(b.LoadPhases)
	checkPhaseOrder(t, names)
	for _, want := range []string{runner.PhaseDrain, runner.PhasePark, runner.PhaseRunnerExit, runner.PhaseStage,
		runner.PhaseProcessStart, runner.PhaseEngineInit, runner.PhaseMetadata, runner.PhaseMmap, runner.PhaseWeights,
		runner.PhaseContext, runner.PhaseFirstPrompt} {
		if !slices.Contains(names, want) {
			t.Errorf("b's phases %v lack %q", names, want)
		}
	}
	if d, _ := phaseSeconds(b.LoadPhases, runner.PhaseDrain); d < heldFor {
		t.Errorf("drain %.3fs, but a's request held b for at least %.3fs", d, heldFor)
	}
	// The runner's phases (process start to ready) and the stage make up
	// the load's time, but for the status pipe's hop and the wake-up.
	var inRunner float64
	for _, ph := range b.LoadPhases {
		if i := slices.Index(runner.PhaseOrder, ph.Name); i >= slices.Index(runner.PhaseOrder, runner.PhaseStage) &&
			i <= slices.Index(runner.PhaseOrder, runner.PhaseReady) {
			inRunner += ph.Seconds
		}
		if ph.Seconds < 0 {
			t.Errorf("phase %s: %.3fs", ph.Name, ph.Seconds)
		}
	}
	if inRunner > b.LoadSeconds+0.001 || inRunner < b.LoadSeconds*0.5 {
		t.Errorf("phases add up to %.3fs of a %.3fs load: %+v", inRunner, b.LoadSeconds, b.LoadPhases)
	}
	if got := obs.of("b"); !slices.Equal(got, names) {
		t.Errorf("observer got %v, record %v", got, names)
	}
	// A second request to b adds no second first_prompt.
	if _, err := p.Complete(ctx, "b", short, nil); err != nil {
		t.Fatal(err)
	}
	if again := phaseNames(state(t, p, "b").LoadPhases); !slices.Equal(again, names) {
		t.Errorf("after a second request: %v, want %v", again, names)
	}
}
