package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
)

// Loading a model: the load itself (file and header checks, room, the
// runner), watching and measuring the runner once it is ready, and the
// public Load.

// errAbandoned ends a load that waits for room when nobody waits for the
// load any more.
var errAbandoned = errors.New("load abandoned: no request waits for it any more")

func isDone(op *loadOp) bool {
	select {
	case <-op.done:
		return true
	default:
		return false
	}
}

// startLoadLocked begins loading m, which has no runner (noRunner).
func (p *Pool) startLoadLocked(m *model) *loadOp {
	p.applyNextLocked(m)
	op := &loadOp{done: make(chan struct{})}
	m.load = op
	p.setStateLocked(m, stLoading)
	p.wg.Add(1)
	go p.doLoad(m, op)
	return op
}

func (p *Pool) doLoad(m *model, op *loadOp) {
	defer p.wg.Done()
	// The file first: one that is missing or bad, or whose GGUF header
	// cannot be read, fails the load before anything is evicted for it
	// and before a runner starts.
	fi, err := p.refreshFile(m)
	if err != nil {
		p.mu.Lock()
		p.setUnavailableLocked(m, err.(*UnavailableError), false)
		op.err = err
		close(op.done)
		p.broadcastLocked()
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	err = headerErr(m)
	p.mu.Unlock()
	spawned := false // a runner was started: its failure counts as a crash
	var room roomTimes
	if err == nil {
		room, err = p.makeRoom(m)
	}
	start := time.Now() // load time is the runner's, not the wait for room
	var proc Runner
	var info runner.ModelInfo
	var st spawnTimes
	if err == nil {
		spawned = true
		p.noteLoadStart(m)
		proc, info, err = p.startRunner(m, &st)
	}
	p.mu.Lock()
	if err == nil && p.closing {
		err = ErrClosed
		p.mu.Unlock()
		p.stopRunner(proc)
		p.mu.Lock()
	}
	if err != nil {
		var nr *NoRoomError
		var ue *UnavailableError
		switch {
		case errors.As(err, &ue):
			// The file went away while the load waited for room.
			p.setUnavailableLocked(m, ue, false)
			op.err = err
			close(op.done)
			p.broadcastLocked()
			p.mu.Unlock()
			return
		case errors.As(err, &nr), errors.Is(err, ErrClosed), errors.Is(err, errAbandoned):
			// Not the model's fault: it stays unloaded.
			p.setStateLocked(m, stUnloaded)
		default:
			err = &LoadFailedError{Model: m.cfg.Name, Err: err}
			p.setStateLocked(m, stFailed)
		}
		if !errors.Is(err, ErrClosed) {
			m.lastError = err.Error()
			p.eventLocked(Event{Kind: EventLoadFailed, Model: m.cfg.Name, Detail: m.lastError})
			p.log.Warn("model load failed", "model", m.cfg.Name, "err", err)
			if spawned && m.state == stFailed {
				p.crashedLocked(m, err.Error())
			}
		}
		op.err = err
		close(op.done)
		p.broadcastLocked()
		p.mu.Unlock()
		p.observeLoad(m, start, err)
		return
	}
	size, mod := fileStamp(fi)
	secs := p.markReadyLocked(m, proc, info, start, size, mod)
	phases := loadPhases(room, st, proc)
	p.recordPhasesLocked(m, proc, phases)
	m.swap.spare = st.spare
	p.eventLocked(Event{At: m.loadedAt, Kind: EventLoad, Model: m.cfg.Name, Seconds: secs})
	close(op.done)
	p.mu.Unlock()
	p.observeLoad(m, start, nil)
	p.log.Info("model loaded", "model", m.cfg.Name, "seconds", secs, "pid", proc.Pid(), "spare", st.spare, "phases", phaseText(phases))
	p.measure(m, proc)
}

// startRunner starts m's runner and waits for its model to load; st
// learns the times spawn measures.
func (p *Pool) startRunner(m *model, st *spawnTimes) (Runner, runner.ModelInfo, error) {
	return p.spawnTimed(m.cfg, func(proc Runner) {
		p.mu.Lock()
		m.proc = proc // for LoadProgress and Pid
		p.mu.Unlock()
	}, st)
}

// spawn starts a runner for mc (a model's config, or the one a restart puts
// in force) and waits for its model to load; started, when set, learns the
// process as soon as it runs.
func (p *Pool) spawn(mc config.Model, started func(Runner)) (Runner, runner.ModelInfo, error) {
	return p.spawnTimed(mc, started, &spawnTimes{})
}

// spawnTimed is spawn, recording its own times in st.
func (p *Pool) spawnTimed(mc config.Model, started func(Runner), st *spawnTimes) (Runner, runner.ModelInfo, error) {
	begin := time.Now()
	if _, err := checkFile(mc); err != nil {
		return nil, runner.ModelInfo{}, err
	}
	p.mu.Lock()
	queue := p.cfg.Server.QueuePerModel
	opts := p.processOptionsLocked() // as the warm spare's (spare.go)
	p.mu.Unlock()
	gpuLayers := mc.GPULayers
	if gpuLayers == config.GPULayersAuto {
		gpuLayers = runner.GPULayersAuto
	}
	path, release := p.stageModel(mc)
	opts.Name, opts.Model, opts.SlotContext, opts.Slots = mc.Name, path, mc.Context, mc.Parallel
	opts.Threads, opts.GPULayers, opts.FlashAttention, opts.KVType = mc.Threads, gpuLayers, mc.FlashAttention, mc.KVCache
	opts.Queue = queue
	for _, a := range mc.Adapters {
		opts.Adapters = append(opts.Adapters, runner.Adapter{Path: a.Path, Scale: float32(a.Scale)})
	}
	st.stage = time.Since(begin)
	opts.NGram, opts.Draft, opts.MaxDraft = specOptions(mc.Speculative)
	opts.Mmproj, opts.MmprojOffload = mc.Mmproj, mc.MmprojOffload
	if path == mc.Path { // a staged copy is another file: its runner checks it
		opts.Checked = checkedVersion(mc.Path)
	}
	// The warm spare, or a new process: either way the model is handed
	// over by Load. A spare that died just before is not the model's
	// failure: a new process takes its place.
	proc := p.takeSpare(opts)
	if proc != nil {
		if err := proc.Load(opts); err != nil {
			p.log.Warn("warm spare could not take the model; starting a runner", "model", mc.Name, "err", err)
			proc.Kill()
			<-proc.Done()
			proc = nil
		}
	}
	st.spare = proc != nil
	if proc == nil {
		var err error
		if proc, err = p.newRunner(opts); err != nil {
			release()
			return nil, runner.ModelInfo{}, err
		}
		if err := proc.Load(opts); err != nil {
			proc.Kill()
			<-proc.Done()
			release()
			return nil, runner.ModelInfo{}, err
		}
	}
	go func() { <-proc.Done(); release() }() // the staged copy is in use while the runner lives
	if started != nil {
		started(proc)
	}
	info, err := proc.WaitReady(p.ctx)
	if err != nil {
		proc.Kill()
		<-proc.Done()
		if p.ctx.Err() != nil {
			err = ErrClosed
		}
		return nil, info, err
	}
	restoreAt := time.Now()
	st.restored = p.restore(mc, proc)
	st.restore = time.Since(restoreAt)
	return proc, info, nil
}

// monitor notices a runner that exits on its own. Repeated crashes put
// the model in StateFailed (crash.go).
func (p *Pool) monitor(m *model, proc Runner) {
	defer p.wg.Done()
	<-proc.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.proc != proc || m.state != stReady {
		return // an unload or eviction stopped it
	}
	if p.closing {
		p.setStateLocked(m, stUnloaded)
		return
	}
	_, why := proc.Exited()
	m.lastError = "runner exited unexpectedly: " + strings.TrimPrefix(why.Error(), runner.ErrExited.Error()+": ")
	p.eventLocked(Event{Kind: EventExit, Model: m.cfg.Name, Detail: m.lastError})
	p.log.Error("runner exited", "model", m.cfg.Name, "err", why)
	cause := proc.Cause()
	if cause == "" {
		cause = why.Error()
	}
	if p.crashedLocked(m, cause) {
		p.setStateLocked(m, stFailed)
		return
	}
	p.setStateLocked(m, stUnloaded)
}

// measure reads proc's RSS and updates m's charge; it may evict idle
// models when the measurement pushes the total over the budget.
func (p *Pool) measure(m *model, proc Runner) {
	rss, err := proc.RSS()
	p.mu.Lock()
	defer p.mu.Unlock()
	m.measuring = false
	m.lastMeas = time.Now()
	if err != nil || m.proc != proc || (m.state != stReady && m.state != stUnloading) {
		return
	}
	m.measured = rss
	m.peak = max(m.peak, rss)
	est := p.estimateLocked(m)
	if base := est.Weights + est.KV + est.Compute; rss > base && rss-base > p.overhead {
		p.overhead = rss - base
		est = p.estimateLocked(m)
	}
	m.charge = max(est.Total, m.peak+p.gpuChargeLocked(m, rss))
	p.enforceLocked(m)
	p.enforceGPULocked(m)
	p.broadcastLocked() // the warm spare waits for a new runner's measurement
}

// failedLoad returns the error of the load op a waiter followed when that
// load has failed and the model is still not loaded.
func failedLoad(m *model, seen *loadOp) error {
	if m.noRunner() && seen != nil && isDone(seen) {
		return seen.err
	}
	return nil
}

// followLoadLocked starts m's load when it has no runner (unloaded, failed
// or unavailable: the file is checked again) and returns the load op a
// waiter follows.
func (p *Pool) followLoadLocked(m *model, seen *loadOp) *loadOp {
	switch {
	case m.noRunner():
		return p.startLoadLocked(m)
	case m.state == stLoading:
		return m.load
	}
	return seen
}

// waitLocked releases p.mu until the pool's state changes or ctx ends.
func (p *Pool) waitLocked(ctx context.Context) {
	wake := p.wake
	p.mu.Unlock()
	select {
	case <-wake:
	case <-ctx.Done():
	}
	p.mu.Lock()
}

// Load loads model (a name or alias) and waits until it is ready or its
// load failed (LoadFailedError, NoRoomError) or ctx ends. A model already
// ready returns at once.
func (p *Pool) Load(ctx context.Context, name string) error {
	m, err := p.lookup(name)
	if err != nil {
		return err
	}
	if err := p.loadGate(m); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.crashes.limited {
		// An explicit load is how a person says "try it again".
		p.log.Info("loading a failed model on request", "model", m.cfg.Name)
		m.crashes.reset()
	}
	m.waiters++
	defer func() {
		m.waiters--
		p.broadcastLocked()
	}()
	var seen *loadOp
	for {
		if p.closing {
			return ErrClosed
		}
		if m.state == stReady {
			return nil
		}
		if m.rl.removed {
			return m.removedErr()
		}
		if err := failedLoad(m, seen); err != nil {
			return err
		}
		if seen != nil && isDone(seen) && seen.err == nil {
			// The load this call followed made the model ready; an
			// unload or eviction since is not this call's to undo (a
			// background load would otherwise fight eviction).
			return nil
		}
		seen = p.followLoadLocked(m, seen)
		p.waitLocked(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("load model %q: %w", m.cfg.Name, ctx.Err())
		}
	}
}
