package runner_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
)

// TestLoadPhases: a real runner reports the steps of its load with its
// ready line, in order, each non-negative, adding up to no more than the
// time from Start to ready and to most of it; nothing before ready or
// after a failed load.
func TestLoadPhases(t *testing.T) {
	model := testmodel.Path(t)
	begin := time.Now()
	p := start(t, model, 1, 64)
	if ph := p.Phases(); ph != nil {
		t.Fatalf("phases before ready: %v", ph)
	}
	ready(t, p)
	took := time.Since(begin).Seconds()
	phases := p.Phases()
	var names []string
	var sum float64
	for _, ph := range phases {
		names = append(names, ph.Name)
		if ph.Seconds < 0 {
			t.Errorf("phase %s: %.4fs", ph.Name, ph.Seconds)
		}
		sum += ph.Seconds
	}
	want := []string{runner.PhaseProcessStart, runner.PhaseEngineInit, runner.PhaseCheck, runner.PhaseMetadata,
		runner.PhaseMmap, runner.PhaseWeights, runner.PhaseModelInfo, runner.PhaseContext, runner.PhaseReady}
	if !slices.Equal(names, want) {
		t.Fatalf("phases %v, want %v", names, want)
	}
	if sum > took || sum < took/2 {
		t.Errorf("phases add up to %.3fs of %.3fs from Start to ready: %+v", sum, took, phases)
	}

	bad, err := runner.Start(runner.Options{Name: "bad", Model: "/nonexistent.gguf", Slots: 1, SlotContext: 64,
		Command: testrunner.Command(), Env: testrunner.Env()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bad.WaitReady(ctx); err == nil {
		t.Fatal("a missing model loaded")
	}
	if ph := bad.Phases(); ph != nil {
		t.Errorf("phases of a failed load: %v", ph)
	}
}
