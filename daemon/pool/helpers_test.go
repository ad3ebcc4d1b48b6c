package pool

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
)

// The test binary doubles as the runner executable.
func TestMain(m *testing.M) {
	testrunner.ServeIfRunner()
	os.Exit(m.Run())
}

// copyModel copies src into dir as name (distinct files for distinct models).
func copyModel(t *testing.T, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// newPool parses hcl (with {{dir}} replaced by a temp dir holding the
// models) and builds a started pool that tests close at cleanup.
func newPool(t *testing.T, hcl string, setup func(p *Pool)) *Pool {
	t.Helper()
	cfg, err := config.Parse([]byte(hcl), filepath.Join(t.TempDir(), "jetai.hcl"))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	p, err := New(Options{
		Config: cfg, RunnerCommand: testrunner.Command(), RunnerEnv: testrunner.Env(),
		RunnerLog: testWriter{t},
		// Above any runner's real overhead (a race-enabled test binary
		// included), so estimates, not measurements, decide the tests.
		RunnerOverhead: 64 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	// MemAvailable of the test machine must not decide the tests.
	p.memAvailable = func() (uint64, bool) { return 1 << 40, true }
	// Shorter intervals keep the tests quick.
	p.reapEvery, p.measureEvery, p.stopGrace = 50*time.Millisecond, 0, 5*time.Second
	if setup != nil {
		setup(p)
	}
	p.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.badTransitions > 0 {
			t.Errorf("%d state changes the life cycle does not allow (see the log)", p.badTransitions)
		}
	})
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	if testing.Verbose() {
		w.t.Logf("runner: %s", strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func realModel(t *testing.T) string { return testmodel.Path(t) }

func state(t *testing.T, p *Pool, name string) ModelStatus {
	t.Helper()
	s, ok := p.Model(name)
	if !ok {
		t.Fatalf("no model %q", name)
	}
	return s
}

// waitState waits until the model is in want.
func waitState(t *testing.T, p *Pool, name, want string, within time.Duration) ModelStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := state(t, p, name)
		if s.State == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("model %s is %s after %v, want %s (last error %q)", name, s.State, within, want, s.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
