package pool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// countStarts makes p count the runners it starts (real ones).
func countStarts(n *atomic.Int32) func(p *Pool) {
	return func(p *Pool) {
		p.newRunner = func(o runner.Options) (Runner, error) {
			n.Add(1)
			return startProcess(o)
		}
	}
}

// TestCrashLimitRealRunner: a model with a valid header and NaN weights
// loads, then llama.cpp aborts its runner at the first decode. Each
// request's error names the assertion; after DefaultCrashBurst crashes the
// model is failed with that cause, and requests get ModelFailedError
// without a runner start. Load retries it; a changed file lifts the limit.
func TestCrashLimitRealRunner(t *testing.T) {
	spec := modelgen.Tiny()
	spec.NaN = true
	path := filepath.Join(t.TempDir(), "nan.gguf")
	if err := modelgen.Generate(path, spec); err != nil {
		t.Fatal(err)
	}
	var starts atomic.Int32
	// No warm spare: every process start counted is the model's.
	p := newPool(t, spareBlock("1GiB", false)+modelBlock("nan", path, ""), countStarts(&starts))
	ctx := context.Background()
	crash := func() {
		t.Helper()
		_, err := p.Complete(ctx, "nan", short, nil)
		if !errors.Is(err, runner.ErrExited) || !strings.Contains(err.Error(), "failed") {
			t.Fatalf("want a runner exit naming the failed assertion, got %v", err)
		}
		if strings.Contains(err.Error(), "CPU.0.") {
			t.Fatalf("the error carries the runner's log: %v", err)
		}
		waitFor(t, "the pool to notice the exit", func() bool { return state(t, p, "nan").State != StateReady })
	}
	for range DefaultCrashBurst {
		crash()
	}
	s := state(t, p, "nan")
	if s.State != StateFailed || !strings.Contains(s.LastError, "Assertion") && !strings.Contains(s.LastError, "GGML_ASSERT") {
		t.Fatalf("after %d crashes: %s %q", DefaultCrashBurst, s.State, s.LastError)
	}
	t.Log(s.LastError)
	for range 2 {
		_, err := p.Complete(ctx, "nan", short, nil)
		if !errIs[*ModelFailedError](err) {
			t.Fatalf("want ModelFailedError, got %v", err)
		}
	}
	if n := starts.Load(); n != DefaultCrashBurst {
		t.Fatalf("%d runners started, want %d", n, DefaultCrashBurst)
	}
	// Load retries: the model loads (it only aborts when it computes).
	if err := p.Load(ctx, "nan"); err != nil {
		t.Fatal(err)
	}
	if n := starts.Load(); n != DefaultCrashBurst+1 {
		t.Fatalf("after Load: %d runners started", n)
	}
	for range DefaultCrashBurst {
		crash()
	}
	if _, err := p.Complete(ctx, "nan", short, nil); !errIs[*ModelFailedError](err) {
		t.Fatalf("want ModelFailedError, got %v", err)
	}
	// A changed file: the next request starts a runner again.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	crash()
	if n := starts.Load(); n != 2*DefaultCrashBurst+1 {
		t.Fatalf("%d runners started, want %d", n, 2*DefaultCrashBurst+1)
	}
}

// TestTruncatedHeaderNoRunner: a file with the GGUF magic whose header is
// cut short fails its load with a LoadFailedError naming the header, and
// no runner is started for it.
func TestTruncatedHeaderNoRunner(t *testing.T) {
	good, err := os.ReadFile(testmodel.Gen(t, modelgen.Tiny()))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.gguf")
	if err := os.WriteFile(path, good[:64], 0o644); err != nil {
		t.Fatal(err)
	}
	var starts atomic.Int32
	p := newPool(t, spareBlock("1GiB", false)+modelBlock("cut", path, ""), countStarts(&starts))
	for _, load := range []func() error{
		func() error { return p.Load(context.Background(), "cut") },
		func() error { _, err := p.Complete(context.Background(), "cut", short, nil); return err },
	} {
		err := load()
		var lf *LoadFailedError
		if !errors.As(err, &lf) || !strings.Contains(err.Error(), "GGUF header") {
			t.Fatalf("want a LoadFailedError naming the header, got %v", err)
		}
	}
	if n := starts.Load(); n != 0 {
		t.Fatalf("%d runners started for a truncated header", n)
	}
	if s := state(t, p, "cut"); s.State != StateFailed || !strings.Contains(s.LastError, "GGUF header") {
		t.Fatalf("%s %q", s.State, s.LastError)
	}
}
