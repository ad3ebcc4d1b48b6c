package pool

import (
	"io"
	"log/slog"
	"testing"

	"github.com/jetai/jetai/config"
)

// TestTransitions: the life cycle's allowed changes, and a change it does
// not allow is counted (and made, so the model is not stranded).
func TestTransitions(t *testing.T) {
	for _, tc := range []struct {
		from, to modelState
		ok       bool
	}{
		{stUnloaded, stLoading, true},
		{stFailed, stLoading, true},
		{stUnavailable, stLoading, true},
		{stLoading, stReady, true},
		{stLoading, stFailed, true},
		{stReady, stReady, true}, // a restart's new runner
		{stReady, stUnloading, true},
		{stReady, stFailed, true}, // crash limit
		{stUnloading, stReady, true},
		{stUnloading, stUnloaded, true},
		{stUnloaded, stReady, false}, // no runner loaded
		{stUnloaded, stUnloading, false},
		{stFailed, stReady, false},
		{stLoading, stUnloading, false},
		{stUnloading, stLoading, false},
		{stUnloading, stFailed, false},
	} {
		if got := validTransition(tc.from, tc.to); got != tc.ok {
			t.Errorf("%s → %s: allowed %v, want %v", tc.from, tc.to, got, tc.ok)
		}
	}

	p := &Pool{log: slog.New(slog.NewTextHandler(io.Discard, nil)), wake: make(chan struct{})}
	m := &model{cfg: config.Model{Name: "m"}, state: stUnloading, proc: &fakeRunner{}, charge: 5, measured: 4, peak: 4}
	p.setStateLocked(m, stUnloaded)
	if p.badTransitions != 0 || m.proc != nil || m.charge != 0 || m.measured != 0 || m.peak != 0 {
		t.Fatalf("unloading → unloaded: bad %d, proc %v, charge %d", p.badTransitions, m.proc, m.charge)
	}
	p.setStateLocked(m, stReady)
	if p.badTransitions != 1 || m.state != stReady {
		t.Fatalf("unloaded → ready: bad %d, state %s", p.badTransitions, m.state)
	}
	if s := stUnavailable.String(); s != StateUnavailable {
		t.Fatalf("wire name %q", s)
	}
}
