package pool

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
)

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
	m.state = StateLoading
	m.load = op
	p.wg.Add(1)
	go p.doLoad(m, op)
	p.broadcastLocked()
	return op
}

func (p *Pool) doLoad(m *model, op *loadOp) {
	defer p.wg.Done()
	// The file first: one that is missing or bad fails the load before
	// anything is evicted for it.
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
	err = p.makeRoom(m)
	start := time.Now() // load time is the runner's, not the wait for room
	var proc Runner
	var info runner.ModelInfo
	if err == nil {
		proc, info, err = p.startRunner(m)
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
			m.state = StateUnloaded
		default:
			err = &LoadFailedError{Model: m.cfg.Name, Err: err}
			m.state = StateFailed
		}
		if !errors.Is(err, ErrClosed) {
			m.lastError = err.Error()
			p.eventLocked(Event{Kind: EventLoadFailed, Model: m.cfg.Name, Detail: m.lastError})
			p.log.Warn("model load failed", "model", m.cfg.Name, "err", err)
		}
		m.charge, m.proc, m.info = 0, nil, nil
		op.err = err
		close(op.done)
		p.broadcastLocked()
		p.mu.Unlock()
		p.observeLoad(m, start, err)
		return
	}
	now := time.Now()
	secs := now.Sub(start).Seconds()
	m.proc, m.info, m.state = proc, &info, StateReady
	m.loadedAt, m.lastUsed = now, now
	m.loads++
	m.loadSeconds = secs
	m.win.addLoad(loadSample{at: now, seconds: secs})
	m.lastError, m.unavailable = "", ""
	m.loadedSize, m.loadedMod = config.Size(fi.Size()), fi.ModTime()
	m.measured, m.peak, m.measuring = 0, 0, true
	p.eventLocked(Event{At: now, Kind: EventLoad, Model: m.cfg.Name, Seconds: secs})
	close(op.done)
	p.broadcastLocked()
	p.wg.Add(1)
	go p.monitor(m, proc)
	p.mu.Unlock()
	p.observeLoad(m, start, nil)
	p.log.Info("model loaded", "model", m.cfg.Name, "seconds", secs, "pid", proc.Pid())
	p.measure(m, proc)
}

// startRunner starts m's runner and waits for its model to load.
func (p *Pool) startRunner(m *model) (Runner, runner.ModelInfo, error) {
	return p.spawn(m.cfg, func(proc Runner) {
		p.mu.Lock()
		m.proc = proc // for LoadProgress and Pid
		p.mu.Unlock()
	})
}

// spawn starts a runner for mc (a model's config, or the one a restart puts
// in force) and waits for its model to load; started, when set, learns the
// process as soon as it runs.
func (p *Pool) spawn(mc config.Model, started func(Runner)) (Runner, runner.ModelInfo, error) {
	if _, err := checkFile(mc); err != nil {
		return nil, runner.ModelInfo{}, err
	}
	p.mu.Lock()
	queue := p.cfg.Server.QueuePerModel
	p.mu.Unlock()
	path, release := p.stageModel(mc)
	opts := runner.Options{
		Name: mc.Name, Model: path, SlotContext: mc.Context, Slots: mc.Parallel,
		Threads: mc.Threads, GPULayers: mc.GPULayers, FlashAttention: mc.FlashAttention,
		Queue: queue, Command: p.opts.RunnerCommand, Env: p.opts.RunnerEnv,
		Dir: p.opts.SocketDir, Log: p.runLog,
	}
	for _, a := range mc.Adapters {
		opts.Adapters = append(opts.Adapters, runner.Adapter{Path: a.Path, Scale: float32(a.Scale)})
	}
	proc, err := p.newRunner(opts)
	if err != nil {
		release()
		return nil, runner.ModelInfo{}, err
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
	p.restore(mc, proc)
	return proc, info, nil
}

// monitor notices a runner that exits on its own.
func (p *Pool) monitor(m *model, proc Runner) {
	defer p.wg.Done()
	<-proc.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.proc != proc || m.state != StateReady {
		return // an unload or eviction stopped it
	}
	m.state, m.proc, m.info = StateUnloaded, nil, nil
	m.charge, m.measured, m.peak = 0, 0, 0
	if !p.closing {
		_, why := proc.Exited()
		m.lastError = fmt.Sprintf("runner exited unexpectedly: %v", why)
		p.eventLocked(Event{Kind: EventExit, Model: m.cfg.Name, Detail: m.lastError})
		p.log.Error("runner exited", "model", m.cfg.Name, "err", why)
	}
	p.broadcastLocked()
}

// measure reads proc's RSS and updates m's charge; it may evict idle
// models when the measurement pushes the total over the budget.
func (p *Pool) measure(m *model, proc Runner) {
	rss, err := proc.RSS()
	p.mu.Lock()
	defer p.mu.Unlock()
	m.measuring = false
	m.lastMeas = time.Now()
	if err != nil || m.proc != proc || (m.state != StateReady && m.state != StateUnloading) {
		return
	}
	m.measured = rss
	m.peak = max(m.peak, rss)
	est := p.estimateLocked(m)
	if base := est.Weights + est.KV + est.Compute; rss > base && rss-base > p.overhead {
		p.overhead = rss - base
		est = p.estimateLocked(m)
	}
	m.charge = max(est.Total, m.peak)
	p.enforceLocked(m)
}

// enforceLocked evicts idle models (never except, never pinned) while the
// charges add up to more than the budget.
func (p *Pool) enforceLocked(except *model) {
	used, budget := p.usedLocked(), uint64(p.cfg.Memory.Budget)
	if used <= budget {
		return
	}
	for _, c := range p.idleCandidatesLocked(except) {
		if used <= budget {
			break
		}
		used -= c.charge
		c.evictions++
		p.beginUnloadLocked(c, fmt.Sprintf("measured memory is over the budget (%s of %s)", human(used+c.charge), human(budget)))
	}
}

// idleCandidatesLocked are the ready, unpinned models with nothing running,
// queued or waiting, lowest priority then least recently used first.
func (p *Pool) idleCandidatesLocked(except *model) []*model {
	var out []*model
	for _, m := range p.order {
		if m != except && m.state == StateReady && !m.cfg.Pinned && m.active == 0 && m.queued == 0 && m.waiters == 0 && m.draining == 0 {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.cfg.Priority != b.cfg.Priority {
			return a.cfg.Priority < b.cfg.Priority
		}
		return a.lastUsed.Before(b.lastUsed)
	})
	return out
}

// plan is a way to make room for a load.
type plan struct {
	fits     bool     // room is there, or will be once victims are gone
	pending  bool     // wait for unloads already under way
	victims  []*model // to evict, in order
	busy     []*model // victims with requests running or queued: drain first
	blockers []string // why it cannot fit, when !fits
}

// planLocked finds the victims whose eviction makes need bytes of room
// for m. See the package documentation for the order.
func (p *Pool) planLocked(m *model, need, avail uint64, haveAvail bool) plan {
	budget, reserve := uint64(p.cfg.Memory.Budget), uint64(p.cfg.Memory.Reserve)
	var used, pendingFree, loading uint64
	var cands []*model
	var blockers []string
	for _, o := range p.order {
		if o == m {
			continue
		}
		used += o.charge + o.extraChargeLocked()
		switch o.state {
		case StateUnloading:
			pendingFree += o.charge
		case StateLoading:
			loading += o.charge
			if o.charge > 0 {
				blockers = append(blockers, fmt.Sprintf("model %q is loading (%s)", o.cfg.Name, human(o.charge)))
			}
		case StateReady:
			switch {
			case o.cfg.Pinned:
				blockers = append(blockers, fmt.Sprintf("pinned model %q (%s)", o.cfg.Name, human(o.charge)))
			case o.busy() && o.cfg.Priority > m.cfg.Priority:
				blockers = append(blockers, fmt.Sprintf("busy model %q of higher priority %d (%d requests running, %s)", o.cfg.Name, o.cfg.Priority, o.active, human(o.charge)))
			default:
				cands = append(cands, o)
			}
		}
	}
	// Loads under way are charged but not yet resident.
	avail -= min(avail, loading)
	fits := func(freed uint64) bool {
		if used-freed+need > budget {
			return false
		}
		return !haveAvail || avail+freed >= need+reserve
	}
	if fits(0) {
		return plan{fits: true}
	}
	freed := pendingFree
	if fits(freed) {
		return plan{fits: true, pending: true}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.cfg.Priority != b.cfg.Priority {
			return a.cfg.Priority < b.cfg.Priority
		}
		if a.busy() != b.busy() {
			return !a.busy()
		}
		return a.lastUsed.Before(b.lastUsed)
	})
	var pl plan
	pl.pending = pendingFree > 0
	for _, c := range cands {
		pl.victims = append(pl.victims, c)
		if c.busy() {
			pl.busy = append(pl.busy, c)
		}
		freed += c.charge
		if fits(freed) {
			pl.fits = true
			return pl
		}
	}
	// Loads under way become evictable once ready: wait for them rather
	// than fail.
	var later uint64
	for _, o := range p.order {
		if o != m && o.state == StateLoading && !o.cfg.Pinned {
			later += o.charge
		}
	}
	if later > 0 && fits(freed+later) {
		return plan{fits: true, pending: true}
	}
	if haveAvail && avail+freed < need+reserve {
		blockers = append(blockers, fmt.Sprintf("the system has %s available (MemAvailable) and memory.reserve keeps %s free", human(avail), human(reserve)))
	}
	if len(blockers) == 0 {
		blockers = append(blockers, "evicting every other model would not free enough")
	}
	pl.blockers = blockers
	return pl
}

// makeRoom reserves m's estimate against the budget, evicting other
// models as planLocked says, and waiting for busy victims to go idle.
func (p *Pool) makeRoom(m *model) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	drained := map[*model]bool{}
	defer func() {
		for v := range drained {
			v.undrain()
		}
		if len(drained) > 0 {
			p.broadcastLocked()
		}
	}()
	for {
		if p.closing {
			return ErrClosed
		}
		need, budget := p.estimateLocked(m).Total, uint64(p.cfg.Memory.Budget)
		noRoom := func(blockers ...string) error {
			return &NoRoomError{Model: m.cfg.Name, Need: need, Budget: budget, Used: p.usedLocked(), Blockers: blockers}
		}
		if mb := uint64(max(m.cfg.MemoryBudget, 0)); mb > 0 && need > mb {
			return noRoom(fmt.Sprintf("its estimate (%s) is over its own memory_budget (%s)", human(need), human(mb)))
		}
		if need > budget {
			return noRoom(fmt.Sprintf("it is bigger than the whole memory budget (%s)", human(budget)))
		}
		avail, haveAvail := p.memAvailable()
		pl := p.planLocked(m, need, avail, haveAvail)
		if !pl.fits {
			return noRoom(pl.blockers...)
		}
		if !pl.pending && len(pl.victims) == 0 {
			m.charge = need
			return nil
		}
		// Drain exactly the busy victims of this plan.
		want := map[*model]bool{}
		for _, v := range pl.busy {
			want[v] = true
		}
		for v := range drained {
			if !want[v] {
				v.undrain()
				delete(drained, v)
			}
		}
		for v := range want {
			if !drained[v] {
				v.drain()
				drained[v] = true
			}
		}
		if len(pl.busy) == 0 {
			for _, v := range pl.victims {
				v.evictions++
				p.beginUnloadLocked(v, fmt.Sprintf("evicted to make room for %q", m.cfg.Name))
			}
		}
		if m.queued == 0 && m.waiters == 0 {
			return errAbandoned
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-p.ctx.Done():
		}
		p.mu.Lock()
	}
}

// busy says whether m has work that eviction must wait for: requests
// running, or requests queued that it will still admit (all of them unless
// it is draining, then those queued before the drain began).
func (m *model) busy() bool {
	if m.active > 0 {
		return true
	}
	if m.draining == 0 {
		return m.queued > 0
	}
	return min(m.grace, m.queued) > 0
}

func (m *model) drain() {
	if m.draining == 0 {
		m.grace = m.queued
	}
	m.draining++
}

func (m *model) undrain() {
	m.draining--
	if m.draining == 0 {
		m.grace = 0
	}
}

// admits says whether a request may take one of m's slots now.
func (m *model) admits() bool {
	return m.state == StateReady && m.active < m.slots() && (m.draining == 0 || min(m.grace, m.queued) > 0)
}

// beginUnloadLocked stops v's runner in the background.
func (p *Pool) beginUnloadLocked(v *model, reason string) {
	v.state = StateUnloading
	proc, cfg := v.proc, v.cfg
	p.broadcastLocked()
	p.eventLocked(Event{Kind: unloadKind(reason), Model: v.cfg.Name, Detail: reason})
	p.log.Info("unloading model", "model", v.cfg.Name, "reason", reason)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.park(context.Background(), cfg, proc)
		start := time.Now()
		p.stopRunner(proc)
		p.mu.Lock()
		p.finishUnloadLocked(v, proc)
		p.mu.Unlock()
		p.observeUnload(v, reason, start)
	}()
}

func (p *Pool) finishUnloadLocked(v *model, proc Runner) {
	if v.proc == proc {
		v.state, v.proc, v.info = StateUnloaded, nil, nil
		v.charge, v.measured, v.peak = 0, 0, 0
	}
	p.broadcastLocked()
}

// idleExpiredLocked says whether keep-alive unloads m now.
func (p *Pool) idleExpiredLocked(m *model, now time.Time) bool {
	return !p.closing && m.state == StateReady && m.active == 0 && m.queued == 0 && m.waiters == 0 &&
		m.draining == 0 && !m.cfg.Pinned && m.cfg.KeepAlive >= 0 && now.Sub(m.lastUsed) >= m.cfg.KeepAlive
}

func (p *Pool) reaper() {
	defer p.wg.Done()
	t := time.NewTicker(p.reapEvery)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		p.mu.Lock()
		for _, m := range p.order {
			if p.idleExpiredLocked(m, now) {
				p.beginUnloadLocked(m, "idle past keep_alive "+m.cfg.KeepAlive.String())
			}
		}
		p.mu.Unlock()
	}
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
	case m.state == StateLoading:
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
		if m.state == StateReady {
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

// Unload stops model's runner once the requests running in it have
// finished. New requests wait meanwhile (and load the model again
// afterwards). If ctx ends first the model stays loaded and Unload returns
// an error. Pinned models may be unloaded this way.
func (p *Pool) Unload(ctx context.Context, name string) error {
	m, err := p.lookup(name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	wait := func() error {
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
		}
		p.mu.Lock()
		return ctx.Err()
	}
	for {
		switch m.state {
		case StateUnloaded, StateFailed, StateUnavailable:
			return nil
		case StateReady:
			proc := m.proc
			m.state = StateUnloading
			p.broadcastLocked()
			for m.active > 0 {
				if err := wait(); err != nil {
					if m.proc == proc && m.state == StateUnloading {
						m.state = StateReady
						p.broadcastLocked()
					}
					return fmt.Errorf("unload model %q: %d requests still running: %w", m.cfg.Name, m.active, err)
				}
			}
			cfg := m.cfg
			p.mu.Unlock()
			p.park(context.Background(), cfg, proc)
			start := time.Now()
			p.stopRunner(proc)
			p.observeUnload(m, "unload requested", start)
			p.mu.Lock()
			p.finishUnloadLocked(m, proc)
			p.eventLocked(Event{Kind: EventUnload, Model: m.cfg.Name, Detail: "unloaded on request"})
			p.log.Info("model unloaded", "model", m.cfg.Name)
			return nil
		default: // loading, unloading
			if err := wait(); err != nil {
				return fmt.Errorf("unload model %q: %w", m.cfg.Name, err)
			}
		}
	}
}

// Optimize unloads idle models past their keep-alive, then, while the
// memory headroom (budget minus charges, or MemAvailable if smaller) is
// under memory.reserve, idle unpinned models, lowest priority and least
// recently used first. It waits (bounded by ctx) for those runners to exit.
func (p *Pool) Optimize(ctx context.Context) OptimizeReport {
	rep := OptimizeReport{Unloaded: []string{}, Reasons: map[string]string{}}
	avail, haveAvail := p.memAvailable()
	now := time.Now()
	p.mu.Lock()
	var gone []*model
	for _, m := range p.order {
		if p.idleExpiredLocked(m, now) {
			rep.Unloaded = append(rep.Unloaded, m.cfg.Name)
			rep.Reasons[m.cfg.Name] = fmt.Sprintf("idle for %s, past keep_alive %s", now.Sub(m.lastUsed).Round(time.Millisecond), m.cfg.KeepAlive)
			rep.FreedBytes += m.charge
			gone = append(gone, m)
			p.beginUnloadLocked(m, "optimize: keep-alive")
		}
	}
	budget, reserve := uint64(p.cfg.Memory.Budget), uint64(p.cfg.Memory.Reserve)
	used := p.usedLocked() - rep.FreedBytes
	headroom := func() uint64 {
		h := budget - min(budget, used)
		if haveAvail {
			h = min(h, avail+rep.FreedBytes)
		}
		return h
	}
	for _, c := range p.idleCandidatesLocked(nil) {
		h := headroom()
		if h >= reserve {
			break
		}
		rep.Unloaded = append(rep.Unloaded, c.cfg.Name)
		rep.Reasons[c.cfg.Name] = fmt.Sprintf("memory headroom %s is under the reserve %s", human(h), human(reserve))
		rep.FreedBytes += c.charge
		used -= c.charge
		gone = append(gone, c)
		c.evictions++
		p.beginUnloadLocked(c, "optimize: headroom under reserve")
	}
	for _, m := range gone {
		for m.state == StateUnloading && ctx.Err() == nil {
			wake := p.wake
			p.mu.Unlock()
			select {
			case <-wake:
			case <-ctx.Done():
			}
			p.mu.Lock()
		}
	}
	p.mu.Unlock()
	return rep
}

// stopRunner stops proc, killing it if it has not exited within the pool's
// stop grace. Call it without p.mu held.
func (p *Pool) stopRunner(proc Runner) {
	ctx, cancel := context.WithTimeout(context.Background(), p.stopGrace)
	defer cancel()
	proc.Stop(ctx)
}
