package pool

import (
	"strconv"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// Swap phases: every load keeps a record of where its time went, from the
// eviction that made room for it to its first request's prompt (see
// runner.PhaseOrder). The pool times the eviction (drain, park, runner
// exit), the staging of the file and the restore of parked conversations;
// the runner reports its own steps with its ready line.

// PhaseObserver is an Observer that also takes each phase of a load (and
// the load's first prompt once it has run), for per-phase histograms.
type PhaseObserver interface {
	LoadPhase(model, phase string, seconds float64)
}

// phaseReporter is a runner that reports the phases of its load
// (*runner.Process does).
type phaseReporter interface {
	Phases() []runner.Phase
}

// swapState is a model's part in swaps; guarded by Pool.mu.
type swapState struct {
	// phases of the last load, first_prompt included once it ran.
	phases []runner.Phase
	// firstPrompt is the runner whose first completion's prompt the
	// record still waits for; nil once it has it.
	firstPrompt Runner
	// unloadPark and unloadExit are how long the last unload of this
	// model took to park its conversations and to stop its runner.
	unloadPark, unloadExit time.Duration
	// spare says the last load ran in the warm spare (spare.go).
	spare bool
}

// roomTimes are the parts of waiting for room: the drain of busy victims,
// and once they were evicted, parking their conversations and stopping
// their runners.
type roomTimes struct {
	evicted  bool
	drain    time.Duration
	park     time.Duration
	exit     time.Duration
	waitedAt time.Time // when the wait for room began
}

// phases returns the room phases a load reports: none when nothing was
// evicted for it.
func (r roomTimes) phases() []runner.Phase {
	if !r.evicted {
		return nil
	}
	return []runner.Phase{
		{Name: runner.PhaseDrain, Seconds: r.drain.Seconds()},
		{Name: runner.PhasePark, Seconds: r.park.Seconds()},
		{Name: runner.PhaseRunnerExit, Seconds: r.exit.Seconds()},
	}
}

// spawnTimes are what spawn times around the runner's own phases.
type spawnTimes struct {
	stage    time.Duration // from spawn's start to the exec: file check, model-cache staging
	spare    bool          // the load ran in the warm spare
	restore  time.Duration
	restored bool // parked conversations were restored
}

// loadPhases assembles a load's record: room, stage, the runner's phases
// and the restore.
func loadPhases(room roomTimes, st spawnTimes, proc Runner) []runner.Phase {
	out := room.phases()
	out = append(out, runner.Phase{Name: runner.PhaseStage, Seconds: st.stage.Seconds()})
	if pr, ok := proc.(phaseReporter); ok {
		out = append(out, pr.Phases()...)
	}
	if st.restored {
		out = append(out, runner.Phase{Name: runner.PhaseRestore, Seconds: st.restore.Seconds()})
	}
	return out
}

// recordPhasesLocked keeps phases as m's last load, waiting for the first
// prompt of proc, and reports them to the observer.
func (p *Pool) recordPhasesLocked(m *model, proc Runner, phases []runner.Phase) {
	m.swap.phases = phases
	m.swap.firstPrompt = proc
	if o, ok := p.opts.Observer.(PhaseObserver); ok {
		for _, ph := range phases {
			o.LoadPhase(m.cfg.Name, ph.Name, ph.Seconds)
		}
	}
}

// firstPrompt completes m's load record with the prompt time of the first
// completion that proc ran since it loaded.
func (p *Pool) firstPrompt(m *model, proc Runner, err error, tm runner.Timings) {
	if err != nil || tm.PromptTokens == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.swap.firstPrompt != proc || m.proc != proc {
		return
	}
	m.swap.firstPrompt = nil
	ph := runner.Phase{Name: runner.PhaseFirstPrompt, Seconds: tm.PromptMS / 1000}
	m.swap.phases = append(m.swap.phases, ph)
	if o, ok := p.opts.Observer.(PhaseObserver); ok {
		o.LoadPhase(m.cfg.Name, ph.Name, ph.Seconds)
	}
}

// phasesCopy is m's last load record, for status.
func (m *model) phasesCopy() []runner.Phase {
	if len(m.swap.phases) == 0 {
		return nil
	}
	return append([]runner.Phase(nil), m.swap.phases...)
}

// phaseText renders phases for a log line: "drain=0 park=0.012 …", in
// seconds.
func phaseText(phases []runner.Phase) string {
	var b []byte
	for i, ph := range phases {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, ph.Name...)
		b = append(b, '=')
		b = strconv.AppendFloat(b, ph.Seconds, 'f', 3, 64)
	}
	return string(b)
}
