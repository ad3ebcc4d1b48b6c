package pool

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
)

// Model states as /models shows them.
const (
	StateUnloaded  = "unloaded"
	StateLoading   = "loading"
	StateReady     = "ready"
	StateUnloading = "unloading"
	// StateFailed: the last load failed (LastError says why; the next
	// request tries again), or the runner crashed too often
	// (ModelFailedError; no load until the file or config changes or a
	// Load retries it).
	StateFailed = "failed"
	// StateUnavailable: the model's file is missing, unreadable or not
	// GGUF (modelfile.go); LastError says which file and what to do.
	StateUnavailable = "unavailable"
)

// modelState is a model's place in its life cycle. It changes only through
// Pool.setStateLocked, which checks the change against transitions.
type modelState uint8

const (
	stUnloaded modelState = iota
	stLoading
	stReady
	stUnloading
	stFailed
	stUnavailable
)

var stateNames = [...]string{
	stUnloaded: StateUnloaded, stLoading: StateLoading, stReady: StateReady,
	stUnloading: StateUnloading, stFailed: StateFailed, stUnavailable: StateUnavailable,
}

func (s modelState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// transitions are the state changes the life cycle allows:
//
//	unloaded, failed, unavailable → loading         a request or Load starts a load
//	unloaded, failed, unavailable → unavailable     the file is (still) bad
//	unloaded, failed, unavailable → unloaded        a reload put new settings in force
//	loading   → ready                               the runner loaded the model
//	loading   → unloaded                            no room, abandoned, or closing
//	loading   → failed, unavailable                 the load failed / the file went bad
//	ready     → ready                               a restart's new runner took over
//	ready     → unloading                           eviction, keep-alive, Unload, restart
//	ready     → unloaded, failed                    the runner exited on its own
//	unloading → unloaded                            the runner stopped
//	unloading → ready                               an Unload gave up (its context ended)
var transitions = [...][]modelState{
	stUnloaded:    {stLoading, stUnavailable, stUnloaded, stFailed},
	stFailed:      {stLoading, stUnavailable, stUnloaded},
	stUnavailable: {stLoading, stUnavailable, stUnloaded},
	stLoading:     {stReady, stUnloaded, stFailed, stUnavailable},
	stReady:       {stReady, stUnloading, stUnloaded, stFailed},
	stUnloading:   {stUnloaded, stReady},
}

func validTransition(from, to modelState) bool {
	if int(from) >= len(transitions) {
		return false
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// setStateLocked moves m to `to` and wakes the waiters. Leaving the
// runner behind (unloaded, failed, unavailable) forgets the runner and
// everything measured of it, in one place. A change the life cycle does
// not allow is a bug: it is logged and counted (tests fail on it), and
// made anyway, since refusing it would strand the model.
func (p *Pool) setStateLocked(m *model, to modelState) {
	if !validTransition(m.state, to) {
		p.badTransitions++
		p.log.Error("pool: state change not allowed", "model", m.cfg.Name, "from", m.state, "to", to)
	}
	m.state = to
	if m.noRunner() {
		m.proc, m.info = nil, nil
		m.charge, m.measured, m.peak = 0, 0, 0
	}
	p.broadcastLocked()
}

// markReadyLocked makes proc, just loaded from the file fi describes
// (size and modification time), m's runner: the ready bookkeeping of a
// load and of a restart's new runner. It starts the runner's monitor and
// returns the load's seconds; the caller measures the runner.
func (p *Pool) markReadyLocked(m *model, proc Runner, info runner.ModelInfo, start time.Time, size config.Size, mod time.Time) float64 {
	now := time.Now()
	secs := now.Sub(start).Seconds()
	p.setStateLocked(m, stReady)
	m.proc, m.info = proc, &info
	m.loadedAt, m.lastUsed = now, now
	m.loads++
	m.loadSeconds = secs
	m.win.addLoad(loadSample{at: now, seconds: secs})
	m.lastError, m.unavailable = "", ""
	m.loadedSize, m.loadedMod = size, mod
	m.measured, m.peak, m.measuring = 0, 0, true
	p.wg.Add(1)
	go p.monitor(m, proc)
	return secs
}

// fileStamp is a file's size and modification time, as fi says.
func fileStamp(fi fs.FileInfo) (config.Size, time.Time) {
	return config.Size(fi.Size()), fi.ModTime()
}

// idle says whether m is ready with nothing running, queued, waiting for
// it or draining it: what eviction of idle models, keep-alive and a
// lowered memory_budget may unload.
func (m *model) idle() bool {
	return m.state == stReady && m.active == 0 && m.queued == 0 && m.waiters == 0 && m.draining == 0
}

// noRunner says whether m has no runner and none is starting: unloaded,
// failed or unavailable. A request or Load starts a load from these states.
func (m *model) noRunner() bool {
	return m.state == stUnloaded || m.state == stFailed || m.state == stUnavailable
}
