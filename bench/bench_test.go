package bench

import (
	"math"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPairsRow(t *testing.T) {
	pr := pairs{
		"8": {
			{raw: 100, run: 90, rawWake: 1, runWake: 3},
			{raw: 80, run: 96, rawWake: 2, runWake: 2},
			{raw: 120, run: 60, rawWake: 0.5, runWake: 5},
		},
		"prompt": {{raw: 10, run: 5, rawWake: -1, runWake: -1}},
	}
	tests := []struct {
		figure                 string
		raw, run, lo, hi       float64
		rawWakeups, runWakeups float64
	}{
		// best of each side: 120 and 96; pair ratios 0.9, 1.2, 0.5; median wake-ups
		{"8", 120, 96, 0.5, 1.2, 1, 3},
		{"prompt", 10, 5, 0.5, 0.5, -1, -1},
		{"none", 0, 0, 0, 0, -1, -1},
	}
	for _, tc := range tests {
		r := pr.row("m", "metric", tc.figure, 0.9)
		got := []float64{r.Raw, r.Runner, r.PairMin, r.PairMax, r.RawWakeups, r.RunnerWakeups}
		want := []float64{tc.raw, tc.run, tc.lo, tc.hi, tc.rawWakeups, tc.runWakeups}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-9 {
				t.Errorf("%s: row %+v, want raw %v runner %v pairs %v–%v wake-ups %v/%v", tc.figure, r, tc.raw, tc.run, tc.lo, tc.hi, tc.rawWakeups, tc.runWakeups)
				break
			}
		}
	}
}

func TestPrintMarksTargets(t *testing.T) {
	var b strings.Builder
	Print(&b, []Row{
		{Model: "m", Metric: "aggregate, 8 streams", Raw: 100, Runner: 95, Target: 0.9, PairMin: 0.8, PairMax: 1, RawWakeups: 0.8, RunnerWakeups: 2.5},
		{Model: "m", Metric: "decode, 1 stream", Raw: 100, Runner: 70, Target: 0.8, RawWakeups: -1, RunnerWakeups: -1},
	}, 2)
	out := b.String()
	for _, want := range []string{"≥0.90 ok", "≥0.80 MISS", "0.80–1.00", "0.80 / 2.50", "threads=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWakeups(t *testing.T) {
	n, ok := wakeups(os.Getpid())
	if !ok {
		t.Fatal("no wake-up count for this process from /proc")
	}
	// Each sleep blocks this thread, and its wake-up is one voluntary
	// context switch; other threads only add to the count.
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for range 20 {
			syscall.Nanosleep(&syscall.Timespec{Nsec: 100_000}, nil)
		}
	}()
	<-done
	if m, _ := wakeups(os.Getpid()); m < n+20 {
		t.Fatalf("20 sleeps, wake-ups %d then %d", n, m)
	}
	if _, ok := wakeups(-1); ok {
		t.Fatal("a process that does not exist has a wake-up count")
	}
}

func TestPrintSpecialMarksTarget(t *testing.T) {
	var b strings.Builder
	printSpecial(&b, SpecialConfig{Model: "m", Repeats: 3}, []SpecialRow{
		{Bytes: 50_041, Status: 400, ErrorType: "context_overflow", RunnerCPU: 10 * time.Millisecond},
		{Bytes: 400_041, Status: 400, ErrorType: "context_overflow", RunnerCPU: 20 * time.Millisecond},
		{Bytes: 400_041, Status: 400, ErrorType: "context_overflow", RunnerCPU: 20 * time.Second},
		{Bytes: 400_041, Status: 413, ErrorType: "body_too_large"},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 || strings.HasSuffix(lines[1], "ok") || !strings.HasSuffix(lines[2], "  ok") ||
		!strings.HasSuffix(lines[3], "MISSED") || !strings.HasSuffix(lines[4], "MISSED") {
		t.Fatalf("marks:\n%s", b.String())
	}
	if !strings.Contains(lines[2], "400041 bytes: 400 context_overflow, runner CPU 20 ms") {
		t.Fatalf("row: %q", lines[2])
	}
}
