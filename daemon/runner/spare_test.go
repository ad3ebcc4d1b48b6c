package runner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
)

func spawn(t *testing.T) *runner.Process {
	t.Helper()
	p, err := runner.Spawn(runner.Options{Command: testrunner.Command(), Env: testrunner.Env()})
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitSpare(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSpareLoad: a process spawned without a model initialises its engine
// and waits; handed a model, it loads and answers like a started one. Its
// load record has process_start and engine_init 0 (done before the
// hand-over), the rest of the runner's phases as usual; a second model is
// refused.
func TestSpareLoad(t *testing.T) {
	p := spawn(t)
	if p.Spare() {
		t.Fatal("a spare without a model says it loaded as a spare")
	}
	time.Sleep(20 * time.Millisecond) // the hand-over comes well after the engine's init
	opts := runner.Options{Name: "late", Model: testmodel.Path(t), Slots: 1, SlotContext: 128, Threads: threadsForTest, Queue: 4}
	if err := p.Load(opts); err != nil {
		t.Fatal(err)
	}
	if err := p.Load(opts); err == nil || !strings.Contains(err.Error(), "already has model late") {
		t.Fatalf("a second Load: %v", err)
	}
	info := ready(t, p)
	if info.VocabSize != 512 || !p.Spare() {
		t.Fatalf("info %+v, spare %v", info, p.Spare())
	}
	seen := map[string]float64{}
	for _, ph := range p.Phases() {
		seen[ph.Name] = ph.Seconds
	}
	for _, name := range []string{runner.PhaseProcessStart, runner.PhaseEngineInit} {
		if s, ok := seen[name]; !ok || s != 0 {
			t.Errorf("%s: %v (recorded %v), want 0 in a spare", name, s, ok)
		}
	}
	if seen[runner.PhaseMetadata] <= 0 || seen[runner.PhaseContext] <= 0 {
		t.Errorf("phases %+v", p.Phases())
	}
	res, err := p.Complete(context.Background(), runner.Request{Prompt: "Once upon a time", MaxTokens: 8, Sampling: greedy}, nil)
	if err != nil || res.Timings.GeneratedTokens == 0 || res.Text == "" {
		t.Fatalf("%q, %d tokens: %v", res.Text, res.Timings.GeneratedTokens, err)
	}
}

// TestSpareStop: a spare stops at once when asked (it serves no
// /shutdown: stdin's EOF ends it), well before the stop's deadline.
func TestSpareStop(t *testing.T) {
	p := spawn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begin := time.Now()
	p.Stop(ctx)
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("a spare took %v to stop", took)
	}
	if gone, err := p.Exited(); !gone || !strings.Contains(err.Error(), "exit status 0") {
		t.Fatalf("exited %v: %v", gone, err)
	}
}
