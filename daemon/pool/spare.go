package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// The warm spare (memory.warm_spare): one runner process kept started,
// its engine initialised, awaiting a model. A load hands its model to the
// spare instead of starting a process (spawnTimed: the only difference
// between the two is who started the process), which saves the process
// start and the engine's init. The spare never holds a model: once handed
// one it is that model's runner, and the pool starts another spare when
// nothing loads, new runners are measured and no first prompt runs, so
// that the start never competes with a load. Its measured RSS counts
// against memory.budget; it starts only into room that is free, and is the
// first thing stopped when the charges go over the budget. A spare that
// dies or fails to start is started again after a backoff that doubles,
// never in a loop.

// Spare timing.
const (
	// DefaultSpareCharge is a spare's charge until one has been measured
	// (an idle runner measured 11 to 21 MiB RSS on x86-64, mostly the
	// binary's pages shared with jetaid).
	DefaultSpareCharge = 16 << 20
	// SpareBackoff is the wait before a new spare after the first death
	// or failed start; it doubles with each one in a row, up to
	// SpareBackoffMax.
	SpareBackoff    = time.Second
	SpareBackoffMax = 5 * time.Minute
	// spareWaitTimeout bounds a spare's start to its waiting report.
	spareWaitTimeout = time.Minute
)

// SpareStatus is the warm spare as status shows it.
type SpareStatus struct {
	// State is starting (the process runs, its engine initialises),
	// waiting (ready for a model) or backoff (the last one died or failed
	// to start; the next starts at RetryAt).
	State         string     `json:"state"`
	Pid           int        `json:"pid,omitempty"`
	MeasuredBytes uint64     `json:"measured_bytes,omitempty"` // RSS once waiting
	ChargedBytes  uint64     `json:"charged_bytes"`
	Starts        uint64     `json:"starts"` // spares started
	Used          uint64     `json:"used"`   // spares that took a model
	Deaths        uint64     `json:"deaths"` // spares that died or failed to start
	RetryAt       *time.Time `json:"retry_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
}

// spareState is the pool's spare; guarded by Pool.mu.
type spareState struct {
	proc     Runner // nil when there is none
	key      string // runner.Options.ProcessKey of the spare
	starting bool   // a spare's process is being started (proc still nil)
	abandon  bool   // while starting: stop it once started
	ready    bool   // proc waits for a model
	charge   uint64 // what the spare counts against the budget
	measured uint64
	lastRSS  uint64 // the last spare's measured RSS: the next one's charge until measured
	failures int    // deaths and failed starts in a row
	retryAt  time.Time
	lastErr  string

	starts, used, deaths uint64
}

// processOptionsLocked are the runner options every runner process of
// this pool starts with: the process's settings, no model.
func (p *Pool) processOptionsLocked() runner.Options {
	return runner.Options{
		BackendsDir: p.cfg.GPU.BackendsDir, Command: p.opts.RunnerCommand, Env: p.opts.RunnerEnv,
		Dir: p.opts.SocketDir, Log: p.runLog,
	}
}

// spareChargeLocked is what a new spare will be charged until measured.
func (p *Pool) spareChargeLocked() uint64 {
	if p.spare.lastRSS > 0 {
		return p.spare.lastRSS
	}
	return DefaultSpareCharge
}

// spareStartable says whether a spare should start now; when not, after
// is a time to look again (zero: at the next state change).
func (p *Pool) spareStartableLocked(now time.Time) (ok bool, after time.Time) {
	if !p.started || p.closing || !p.cfg.Memory.WarmSpare || p.spare.proc != nil || p.spare.starting {
		return false, time.Time{}
	}
	if now.Before(p.spare.retryAt) {
		return false, p.spare.retryAt
	}
	for _, m := range p.order {
		// Never beside a load or the first prompt of a new runner, nor
		// before a new runner's first measurement (on unified memory
		// MemAvailable's fall across the load is part of it).
		if m.state == stLoading || (m.swap.firstPrompt != nil && m.active > 0) ||
			(m.state == stReady && m.lastMeas.Before(m.loadedAt)) {
			return false, time.Time{}
		}
	}
	need := p.spareChargeLocked()
	if p.usedLocked()+need > uint64(p.cfg.Memory.Budget) {
		return false, time.Time{}
	}
	if avail, ok := p.memAvailable(); ok && avail < need+uint64(p.cfg.Memory.Reserve) {
		// MemAvailable moves without a state change: look again later.
		return false, now.Add(p.reapEvery * 4)
	}
	return true, time.Time{}
}

// keepSpare starts a spare whenever one is wanted, until Close.
func (p *Pool) keepSpare() {
	defer p.wg.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closing {
		ok, after := p.spareStartableLocked(time.Now())
		if ok {
			p.startSpareLocked()
			continue
		}
		var timer <-chan time.Time
		var t *time.Timer
		if !after.IsZero() {
			t = time.NewTimer(time.Until(after))
			timer = t.C
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-timer:
		case <-p.ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		p.mu.Lock()
	}
}

// startSpareLocked starts a spare's process (p.mu released meanwhile).
func (p *Pool) startSpareLocked() {
	opts := p.processOptionsLocked()
	p.spare.starting = true
	p.spare.charge = p.spareChargeLocked()
	p.mu.Unlock()
	proc, err := p.newRunner(opts)
	p.mu.Lock()
	abandon := p.spare.abandon
	p.spare.starting, p.spare.abandon = false, false
	p.spare.starts++
	if err != nil {
		p.spare.charge = 0
		p.spareFailedLocked(fmt.Errorf("start: %w", err))
		return
	}
	if abandon || p.closing || !p.cfg.Memory.WarmSpare || opts.ProcessKey() != p.processOptionsLocked().ProcessKey() {
		// Stopped, closed or reconfigured while it started.
		p.spare.charge = 0
		p.broadcastLocked()
		go proc.Kill()
		return
	}
	p.spare.proc, p.spare.key, p.spare.ready, p.spare.measured = proc, opts.ProcessKey(), false, 0
	p.broadcastLocked()
	p.wg.Add(1)
	go p.watchSpare(proc)
}

// watchSpare measures the spare once it waits for a model and notices
// its death while it is still the spare.
func (p *Pool) watchSpare(proc Runner) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, spareWaitTimeout)
	err := proc.WaitSpare(ctx)
	cancel()
	var rss uint64
	if err == nil {
		rss, err = proc.RSS()
	}
	p.mu.Lock()
	if p.spare.proc == proc {
		if err != nil {
			p.mu.Unlock()
			proc.Kill() // a spare that does not get ready in time is no spare
			p.mu.Lock()
		} else {
			p.spare.ready, p.spare.measured, p.spare.lastRSS = true, rss, rss
			p.spare.charge = rss
			p.log.Debug("warm spare ready", "pid", proc.Pid(), "rss", rss)
			p.enforceLocked(nil)
			p.broadcastLocked()
		}
	}
	p.mu.Unlock()
	<-proc.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spare.proc != proc {
		return // taken by a load (now a model's runner) or stopped
	}
	p.spare.proc, p.spare.ready, p.spare.charge, p.spare.measured = nil, false, 0, 0
	if p.closing {
		p.broadcastLocked()
		return
	}
	why := err
	if why == nil {
		_, why = proc.Exited()
	}
	p.spareFailedLocked(why)
}

// spareFailedLocked records a spare's death or failed start and backs off
// the next start.
func (p *Pool) spareFailedLocked(err error) {
	p.spare.deaths++
	p.spare.failures++
	backoff := min(p.spareBackoff<<min(p.spare.failures-1, 20), SpareBackoffMax)
	p.spare.retryAt = time.Now().Add(backoff)
	p.spare.lastErr = err.Error()
	p.log.Warn("warm spare runner died", "err", err, "retry_in", backoff)
	p.broadcastLocked()
}

// takeSpare hands the spare to a load of opts, or returns nil when there
// is none that fits (a spare started with other process settings is
// stopped: it could never take a model of this config).
func (p *Pool) takeSpare(opts runner.Options) Runner {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc := p.spare.proc
	if proc == nil {
		return nil
	}
	if done, _ := proc.Exited(); done {
		return nil // watchSpare records it
	}
	p.spare.proc, p.spare.ready, p.spare.charge, p.spare.measured = nil, false, 0, 0
	if p.spare.key != opts.ProcessKey() {
		go proc.Kill()
		p.broadcastLocked()
		return nil
	}
	p.spare.used++
	p.spare.failures = 0 // a spare that served its purpose ends a run of deaths
	p.broadcastLocked()
	return proc
}

// stopSpareLocked stops the spare, if any (the setting turned off, other
// process settings, memory needed, Close).
func (p *Pool) stopSpareLocked(why string) {
	if p.spare.starting {
		// startSpareLocked stops it once its process runs.
		p.spare.abandon, p.spare.charge = true, 0
		p.broadcastLocked()
	}
	proc := p.spare.proc
	if proc == nil {
		return
	}
	p.spare.proc, p.spare.ready, p.spare.charge, p.spare.measured = nil, false, 0, 0
	p.log.Info("warm spare stopped", "pid", proc.Pid(), "reason", why)
	p.broadcastLocked()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), p.stopGrace)
		defer cancel()
		proc.Stop(ctx)
	}()
}

// applySpareLocked stops a spare the new config does not want: the
// setting off, or other process settings (the keeper starts a new one).
func (p *Pool) applySpareLocked() {
	switch {
	case p.spare.proc == nil:
		// One starting checks the config itself once its process runs.
	case !p.cfg.Memory.WarmSpare:
		p.stopSpareLocked("memory.warm_spare is off")
	case p.spare.key != p.processOptionsLocked().ProcessKey():
		p.stopSpareLocked("the runners' settings changed")
	}
	if !p.cfg.Memory.WarmSpare {
		p.spare.failures, p.spare.retryAt = 0, time.Time{}
	}
}

// spareStatusLocked is the spare for status; nil when the setting is off
// and none runs.
func (p *Pool) spareStatusLocked() *SpareStatus {
	s := &p.spare
	if !p.cfg.Memory.WarmSpare && s.proc == nil && !s.starting {
		return nil
	}
	out := &SpareStatus{ChargedBytes: s.charge, MeasuredBytes: s.measured, Starts: s.starts, Used: s.used,
		Deaths: s.deaths, LastError: s.lastErr}
	switch {
	case s.proc != nil && s.ready:
		out.State = "waiting"
	case s.proc != nil || s.starting:
		out.State = "starting"
	case time.Now().Before(s.retryAt):
		out.State = "backoff"
		out.RetryAt = tp(s.retryAt)
	default:
		out.State = "none" // no room for it, or a load or first prompt runs
	}
	if s.proc != nil {
		out.Pid = s.proc.Pid()
	}
	return out
}
