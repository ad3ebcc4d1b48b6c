package pool

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

func TestSlots(t *testing.T) {
	tests := []struct {
		parallel int
		share    float64
		want     int
	}{
		{4, 0, 4}, {4, 1, 4}, {4, 0.5, 2}, {3, 0.5, 2}, {1, 0.5, 1}, {8, 0.01, 1}, {0, 0.5, 1},
	}
	for _, tc := range tests {
		m := &model{cfg: config.Model{Parallel: tc.parallel}, slotShare: tc.share}
		if got := m.slots(); got != tc.want {
			t.Errorf("parallel %d share %g: %d slots, want %d", tc.parallel, tc.share, got, tc.want)
		}
	}
}

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{&QueueFullError{}, OutcomeRejected},
		{fmt.Errorf("x: %w", &ThrottledError{}), OutcomeThrottled},
		{&NoRoomError{}, OutcomeNoRoom},
		{&LoadFailedError{Err: errors.New("bad")}, OutcomeLoadFailed},
		{&ModelFailedError{Model: "m"}, OutcomeLoadFailed},
		{&runner.RequestError{Status: 400}, OutcomeInvalid},
		{fmt.Errorf("w: %w", context.DeadlineExceeded), OutcomeTimeout},
		{context.Canceled, OutcomeCanceled},
		{ErrClosed, OutcomeError},
	}
	for _, tc := range tests {
		if got := OutcomeOf(tc.err); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
	}
}

// TestThrottleGate: under throttle a low-priority request waits Delay and
// the top-priority one does not; under shed the low-priority one and any
// load are refused with ThrottledError, counted as rejected and as the
// "throttled" outcome.
func TestThrottleGate(t *testing.T) {
	dir := t.TempDir()
	tiny := testmodel.Gen(t, modelgen.Tiny())
	hcl := modelBlock("high", copyModel(t, tiny, dir, "high.gguf"), "priority = 90\npreload = true") +
		modelBlock("low", copyModel(t, tiny, dir, "low.gguf"), "priority = 10\npreload = true") +
		modelBlock("cold", copyModel(t, tiny, dir, "cold.gguf"), "priority = 90")
	p := newPool(t, hcl, nil)
	waitState(t, p, "high", StateReady, 20*time.Second)
	waitState(t, p, "low", StateReady, 20*time.Second)
	ctx := context.Background()
	req := runner.Request{Prompt: "Once", MaxTokens: 2}

	const delay = 400 * time.Millisecond
	p.SetThrottle(ctx, Throttle{Level: "throttle", Delay: delay, SlotShare: 0.5})
	t0 := time.Now()
	if _, err := p.Complete(ctx, "low", req, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < delay {
		t.Errorf("low-priority request took %v under throttle, want at least the delay %v", d, delay)
	}
	if ts := p.ThrottleStatus(); len(ts.LowPriority) != 1 || ts.LowPriority[0] != "low" || ts.DelaySeconds != delay.Seconds() {
		t.Errorf("throttle status %+v", ts)
	}

	p.SetThrottle(ctx, Throttle{Level: "shed", Shed: true, RetryAfter: 7 * time.Second})
	var te *ThrottledError
	if _, err := p.Complete(ctx, "low", req, nil); !errors.As(err, &te) || te.Retry != 7*time.Second {
		t.Errorf("low while shedding: %v", err)
	}
	if _, err := p.Complete(ctx, "high", req, nil); err != nil {
		t.Errorf("high while shedding: %v", err)
	}
	if err := p.Load(ctx, "cold"); !errors.As(err, &te) {
		t.Errorf("load while shedding: %v", err)
	}
	if _, err := p.Complete(ctx, "cold", req, nil); !errors.As(err, &te) {
		t.Errorf("request needing a load while shedding: %v", err)
	}
	waitState(t, p, "low", StateUnloaded, 20*time.Second)
	perf := p.Performance()
	for _, mp := range perf.Models {
		if mp.Name == "low" && (mp.Rejected != 1 || mp.Outcomes[OutcomeThrottled] != 1 || mp.Outcomes[OutcomeOK] != 1 || mp.Evictions != 1) {
			t.Errorf("low's figures %+v", mp.PerfFigures)
		}
	}
	// Load calls are not requests: low and cold were refused.
	if perf.Overall.Outcomes[OutcomeThrottled] != 2 || perf.Overall.Outcomes[OutcomeOK] != 2 {
		t.Errorf("overall outcomes %v", perf.Overall.Outcomes)
	}

	// Back to normal: everything is served again.
	p.SetThrottle(ctx, Throttle{Level: "normal"})
	if _, err := p.Complete(ctx, "low", req, nil); err != nil {
		t.Errorf("low after recovery: %v", err)
	}
}

// TestThrottleAfterReload: a model that a reload adds while the throttle
// is in force gets its capped slots from the monitor's next call (which
// repeats the same throttle), and the threads applied to a runner whose
// model was removed are forgotten.
func TestThrottleAfterReload(t *testing.T) {
	real := realModel(t)
	dir := t.TempDir()
	a, b := copyModel(t, real, dir, "a.gguf"), copyModel(t, real, dir, "b.gguf")
	block := func(name, path string) string {
		return fmt.Sprintf("model %q {\n  path = %q\n  context = 256\n  parallel = 4\n  threads = 2\n  keep_alive = \"forever\"\n}\n", name, path)
	}
	p := newPool(t, memBlock("1GiB", "1MiB")+block("a", a), nil)
	loadReady(t, p, "a")
	ctx := context.Background()
	thr := Throttle{Level: "throttle", Threads: 1, SlotShare: 0.5}
	p.SetThrottle(ctx, thr)
	if ts := p.ThrottleStatus(); ts.Slots["a"] != 2 || ts.RunnerThreads["a"] != 1 {
		t.Fatalf("a under the throttle: %+v", ts)
	}

	apply(t, p, memBlock("1GiB", "1MiB")+block("b", b))
	waitFor(t, "a to go", func() bool { return len(p.Models()) == 1 })
	p.SetThrottle(ctx, thr) // the monitor's next reading: same level
	if ts := p.ThrottleStatus(); ts.Slots["b"] != 2 {
		t.Errorf("b, added by the reload under the throttle, may run %d at once, want 2: %+v", ts.Slots["b"], ts)
	}
	p.mu.Lock()
	n := len(p.thr.threads)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d runners' threads remembered after a's removal, want none", n)
	}
}
