package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/gguf"
)

// Applying a reload (Apply). The pool puts a new config in force without
// dropping a request:
//
//   - Updated models (only live fields changed: threads, priority,
//     keep_alive, pinned, preload, aliases, tier, memory_budget, sampling)
//     take the new values at once; the runner keeps running. A threads
//     change is sent to the runner (the thermal throttle caps it from the
//     new value on). A model that becomes preload is loaded.
//   - Added models are configured (and loaded when preload says so).
//   - A model whose file is missing or bad (config.Model.FileError) is
//     unavailable (modelfile.go). A restart whose only change is the file
//     a loaded model's runner already runs (it appeared after the config
//     was read and a request loaded it) is no restart: the config is
//     recorded and the runner serves on.
//   - Removed models take no new requests; those running and queued finish
//     (up to the drain timeout), then the runner stops and the model is
//     gone. Meanwhile /models lists it with reload "removing".
//   - Restarted models (a field that needs a new runner changed) are
//     swapped: when the budgets and MemAvailable allow both runners at
//     once, a new runner loads beside the old one, which serves until the
//     new one is ready; requests then go to the new one and the old one
//     stops once its requests have finished. When there is no room for
//     both, the model takes no new requests (they queue, bounded as
//     usual), its running requests finish, the old runner stops and the
//     new one loads. A model that is not loaded just takes the new
//     settings for its next load. When the new runner fails to load
//     beside the old one (a bad model file), the old one serves on with the
//     old settings and the model says so (Reload "restart failed",
//     LastError); the new settings are tried again at its next load.
//   - A lowered memory.budget evicts idle models in the eviction order
//     until the charges fit; busy ones are never killed.
//
// The drain timeout is server.request_timeout plus DrainSlack, or
// DefaultDrainTimeout when request_timeout is 0; a request still running
// then fails with a runner-exited error.

// DefaultDrainTimeout bounds a removed or restarted model's drain when
// server.request_timeout is 0 (no limit).
const DefaultDrainTimeout = 10 * time.Minute

// DrainSlack is added to server.request_timeout for the drain timeout, so
// that requests end by their own timeout first.
const DrainSlack = 5 * time.Second

// Reload phases of a model, as ModelStatus.Reload shows them.
const (
	ReloadRemoving = "removing"          // removed from the config; finishing its requests
	ReloadPending  = "restart pending"   // waits for a load or unload under way
	ReloadBeside   = "restarting beside" // the new runner loads beside the old one
	ReloadInPlace  = "restarting"        // draining the old runner, then loading the new one
	ReloadRetiring = "retiring old"      // the new runner serves; the old one finishes its requests
	ReloadFailed   = "restart failed"    // the new runner did not load; the old one serves on
)

// ApplyReport says what Apply did at once; restarts and removals go on in
// the background (see ModelStatus.Reload).
type ApplyReport struct {
	Added      []string `json:"added"`
	Removed    []string `json:"removed"`
	Restarting []string `json:"restarting"`
	Updated    []string `json:"updated"`
	// Evicted are idle models unloaded because memory.budget went down or
	// a model's memory_budget went under its charge.
	Evicted []string `json:"evicted"`
	// Notes are things worth telling about the new config in force.
	Notes []string `json:"notes"`
}

// reloadState is a model's part in applying reloads; guarded by Pool.mu.
type reloadState struct {
	// next is the config a pending restart puts in force, with its GGUF
	// header facts; nil when no restart is pending.
	next       *config.Model
	nextParams gguf.Params
	nextErr    error
	// gen is the Apply that set next; a swap goroutine of an older Apply
	// leaves the model to the newer one.
	gen     uint64
	phase   string
	removed bool
	// extra is the charge of a new runner loading beside the old one.
	extra uint64
	// old are runners replaced by a restart, finishing their requests.
	old []*retiring
}

// retiring is an old runner that still runs requests.
type retiring struct {
	proc   Runner
	active int
	charge uint64
}

// extraChargeLocked is what m holds beyond its own runner's charge: a
// runner loading beside it and old runners still finishing requests.
func (m *model) extraChargeLocked() uint64 {
	u := m.rl.extra
	for _, r := range m.rl.old {
		u += r.charge
	}
	return u
}

// releaseOldLocked books the end of a request that ran in proc when proc is
// a retiring runner of m, and reports whether it was.
func (m *model) releaseOldLocked(proc Runner) bool {
	for _, r := range m.rl.old {
		if r.proc == proc {
			r.active--
			return true
		}
	}
	return false
}

// removedErr is the error for requests still waiting on a removed model
// that is not loaded.
func (m *model) removedErr() error {
	return fmt.Errorf("%w %q: it was removed from the config", ErrUnknownModel, m.cfg.Name)
}

// liveOnto returns running with the live fields (those a reload applies
// without a new runner) taken from want. Any other field, including ones
// added to config.Model later, keeps the running runner's value until a
// restart.
func liveOnto(running, want config.Model) config.Model {
	running.Threads = want.Threads
	running.Aliases = want.Aliases
	running.Priority = want.Priority
	running.MemoryBudget = want.MemoryBudget
	running.KeepAlive = want.KeepAlive
	running.Preload = want.Preload
	running.Pinned = want.Pinned
	running.Tier = want.Tier
	running.Sampling = want.Sampling
	running.Speculative.NGram = want.Speculative.NGram
	running.Speculative.MaxDraft = want.Speculative.MaxDraft
	return running
}

// drainTimeoutLocked is how long a removed or restarted model's requests
// may run on.
func (p *Pool) drainTimeoutLocked() time.Duration {
	if p.drainTimeout > 0 {
		return p.drainTimeout
	}
	if t := p.cfg.Server.RequestTimeout; t > 0 {
		return t + DrainSlack
	}
	return DefaultDrainTimeout
}

// Apply puts cfg in force as plan says; plan must be config.Diff of the
// config the pool runs and cfg. It changes the settings at once and
// returns; removals and restarts finish in the background without failing
// a request (see the comment at the top of apply.go).
func (p *Pool) Apply(cfg *config.Config, plan config.Plan) (ApplyReport, error) {
	rep := ApplyReport{Added: []string{}, Removed: []string{}, Restarting: []string{}, Updated: []string{}, Evicted: []string{}, Notes: []string{}}
	want := map[string]config.Model{}
	for _, mc := range cfg.Models {
		want[mc.Name] = mc
	}
	// GGUF headers are read before taking the lock.
	type header struct {
		params gguf.Params
		err    error
	}
	headers := map[string]header{}
	for _, name := range plan.Added {
		if mc, ok := want[name]; ok {
			pp, err := estimateFile(mc)
			headers[name] = header{pp, err}
		}
	}
	for _, c := range plan.Restarted {
		if mc, ok := want[c.Name]; ok {
			pp, err := estimateFile(mc)
			headers[c.Name] = header{pp, err}
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return rep, ErrClosed
	}
	if p.cfg.Hash != plan.OldHash {
		return rep, fmt.Errorf("pool: the plan is from config %.12s, but the pool runs %.12s", plan.OldHash, p.cfg.Hash)
	}
	p.applyGen++
	gen := p.applyGen
	oldBudget := p.cfg.Memory.Budget
	p.cfg = cfg
	p.applySpareLocked()

	for _, name := range plan.Removed {
		m := p.models[name]
		if m == nil {
			continue
		}
		delete(p.models, name)
		m.rl.removed, m.rl.next, m.rl.phase = true, nil, ReloadRemoving
		rep.Removed = append(rep.Removed, name)
		p.wg.Add(1)
		go p.remove(m)
	}
	for _, name := range plan.Added {
		mc, ok := want[name]
		if !ok {
			continue
		}
		if m := p.models[name]; m != nil {
			// Not in the running config after all: take it as a restart.
			p.restartLocked(m, mc, headers[name].params, headers[name].err, gen)
			rep.Restarting = append(rep.Restarting, name)
			continue
		}
		m := &model{cfg: mc, state: stUnloaded, params: headers[name].params, estErr: headers[name].err}
		if mc.FileError != "" {
			if _, err := checkFile(mc); err != nil {
				p.setUnavailableLocked(m, err.(*UnavailableError), true)
			}
		}
		if m.estErr != nil && m.state != stUnavailable {
			p.warnHeader(name, m.estErr)
		}
		p.models[name] = m
		p.order = append(p.order, m)
		rep.Added = append(rep.Added, name)
		if mc.Preload {
			p.loadLaterLocked(name, "preload")
		}
	}
	threads := false // a runner's thread count must change
	for _, c := range plan.Updated {
		m, mc := p.models[c.Name], want[c.Name]
		if m == nil {
			continue
		}
		rep.Updated = append(rep.Updated, c.Name)
		wasPreload := m.cfg.Preload
		threads = threads || (m.cfg.Threads != mc.Threads && m.proc != nil)
		p.speculativeLiveLocked(m, mc)
		m.cfg = liveOnto(m.cfg, mc)
		if m.crashes.limited && m.state == stFailed {
			// A changed config is a new try.
			m.crashes.reset()
			p.setStateLocked(m, stUnloaded)
		}
		if m.rl.next != nil {
			n := mc
			m.rl.next = &n
		}
		if mc.FileError != "" && m.noRunner() {
			// Its file went away: unavailable now, not at the next
			// request (a running runner has the file open and serves on).
			if _, err := checkFile(mc); err != nil {
				p.setUnavailableLocked(m, err.(*UnavailableError), true)
			}
		}
		if mc.Preload && !wasPreload && m.noRunner() {
			p.loadLaterLocked(c.Name, "preload")
		}
		if mb := uint64(max(mc.MemoryBudget, 0)); mb > 0 && m.charge > mb {
			if m.idle() {
				m.evictions++
				p.beginUnloadLocked(m, fmt.Sprintf("its charge %s is over its new memory_budget %s", human(m.charge), human(mb)))
				rep.Evicted = append(rep.Evicted, c.Name)
			} else {
				rep.Notes = append(rep.Notes, fmt.Sprintf("model %q uses %s, over its new memory_budget %s; it keeps running until it is unloaded", c.Name, human(m.charge), human(mb)))
			}
		}
	}
	for _, c := range plan.Restarted {
		m, mc := p.models[c.Name], want[c.Name]
		if m == nil {
			continue
		}
		if runsAlready(m, mc) {
			// Loaded from a file that appeared (or changed) after its
			// config was read: this config records that very file.
			m.cfg, m.params, m.estErr = mc, headers[c.Name].params, headers[c.Name].err
			rep.Updated = append(rep.Updated, c.Name)
			rep.Notes = append(rep.Notes, fmt.Sprintf("model %q already runs the file now recorded (%s, loaded after the previous config was read): no restart", c.Name, mc.Path))
			continue
		}
		p.restartLocked(m, mc, headers[c.Name].params, headers[c.Name].err, gen)
		rep.Restarting = append(rep.Restarting, c.Name)
	}
	if threads {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.syncThreads(p.ctx)
		}()
	}

	// The listing follows the new file; removed models still finishing
	// their requests come last.
	order := make([]*model, 0, len(p.order))
	for _, mc := range cfg.Models {
		if m := p.models[mc.Name]; m != nil {
			order = append(order, m)
		}
	}
	for _, m := range p.order {
		if m.rl.removed {
			order = append(order, m)
		}
	}
	p.order = order

	if cfg.Memory.Budget < oldBudget {
		before := map[*model]modelState{}
		for _, m := range p.order {
			before[m] = m.state
		}
		p.enforceLocked(nil)
		for _, m := range p.order {
			if before[m] == stReady && m.state == stUnloading {
				rep.Evicted = append(rep.Evicted, m.cfg.Name)
			}
		}
		if used, budget := p.usedLocked(), uint64(cfg.Memory.Budget); used > budget {
			rep.Notes = append(rep.Notes, fmt.Sprintf("models in use hold %s, over the new memory.budget %s; loads evict them when they are idle", human(used), human(budget)))
		}
	}
	p.broadcastLocked()
	return rep, nil
}

// loadLaterLocked loads name in the background once the pool has started;
// why names the load in a failure's log line.
func (p *Pool) loadLaterLocked(name, why string) {
	if !p.started || p.closing {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.Load(p.ctx, name); err != nil && p.ctx.Err() == nil {
			p.log.Error(why+" load failed", "model", name, "err", err)
		}
	}()
}

// restartLocked makes want m's config: at once when m has no runner,
// otherwise through a swap in the background.
func (p *Pool) restartLocked(m *model, want config.Model, params gguf.Params, perr error, gen uint64) {
	n := want
	m.rl.next, m.rl.nextParams, m.rl.nextErr, m.rl.gen = &n, params, perr, gen
	m.cfg = liveOnto(m.cfg, want)
	if m.noRunner() {
		p.applyNextLocked(m)
		return
	}
	m.rl.phase = ReloadPending
	p.wg.Add(1)
	go p.swap(m, gen)
}

// applyNextLocked puts a pending restart's config in force on a model
// that has no runner. startLoadLocked calls it, so a load never starts with
// settings a reload has replaced.
func (p *Pool) applyNextLocked(m *model) {
	if m.rl.next == nil {
		return
	}
	m.cfg, m.params, m.estErr = *m.rl.next, m.rl.nextParams, m.rl.nextErr
	m.rl.next, m.rl.nextErr, m.rl.phase = nil, nil, ""
	if m.state == stFailed || m.state == stUnavailable {
		// The failure was with the old settings (or the old file); the
		// next load checks the file again.
		p.setStateLocked(m, stUnloaded)
		m.lastError, m.unavailable = "", ""
		m.crashes.reset()
	}
	if m.cfg.FileError != "" && m.state == stUnloaded {
		// The config warned about the new file already.
		if _, err := checkFile(m.cfg); err != nil {
			p.setUnavailableLocked(m, err.(*UnavailableError), true)
		}
	}
	if m.estErr != nil && m.state != stUnavailable {
		p.warnHeader(m.cfg.Name, m.estErr)
	}
}

// current says whether gen's restart is still the one to do on m.
func (p *Pool) current(m *model, gen uint64) bool {
	return !p.closing && !m.rl.removed && m.rl.next != nil && m.rl.gen == gen
}

// swap restarts m, which has (or is getting, or is losing) a runner, with
// its pending config.
func (p *Pool) swap(m *model, gen uint64) {
	defer p.wg.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	beside := true // false once a new runner failed beside the old one
	for p.current(m, gen) {
		switch m.state {
		case stUnloaded, stFailed, stUnavailable:
			p.applyNextLocked(m)
			p.broadcastLocked()
			return
		case stReady:
		default: // loading or unloading: wait for it to end
			m.rl.phase = ReloadPending
			p.waitLocked(p.ctx)
			continue
		}
		next, params := *m.rl.next, m.rl.nextParams
		need := EstimateParams(params, next, p.overhead).Total
		if beside && p.fitsBesideLocked(next, need) {
			if done := p.swapBesideLocked(m, gen, next, need); done {
				return
			}
			beside = false
			continue
		}
		p.swapInPlaceLocked(m, gen)
		return
	}
}

// fitsBesideLocked says whether a second runner for next, needing need
// bytes, fits the budgets and MemAvailable now, without evicting anything.
func (p *Pool) fitsBesideLocked(next config.Model, need uint64) bool {
	if mb := uint64(max(next.MemoryBudget, 0)); mb > 0 && need > mb {
		return false
	}
	if p.usedLocked()+need > uint64(p.cfg.Memory.Budget) {
		return false
	}
	avail, ok := p.memAvailable()
	if !ok {
		return true
	}
	var loading uint64
	for _, o := range p.order {
		if o.state == stLoading {
			loading += o.charge
		}
		loading += o.rl.extra
	}
	avail -= min(avail, loading)
	return avail >= need+uint64(p.cfg.Memory.Reserve)
}

// swapBesideLocked loads a runner for next beside m's running one and
// switches m over to it. It reports true when the swap is done, no longer
// wanted, or failed (the old runner serves on); false when it should be
// tried in place.
func (p *Pool) swapBesideLocked(m *model, gen uint64, next config.Model, need uint64) bool {
	oldProc := m.proc
	m.rl.extra, m.rl.phase = need, ReloadBeside
	p.broadcastLocked()
	p.mu.Unlock()
	start := time.Now()
	proc, info, err := p.spawn(next, nil)
	p.mu.Lock()
	m.rl.extra = 0
	if err != nil {
		if p.closing || errors.Is(err, ErrClosed) {
			return true
		}
		if p.current(m, gen) && m.state == stReady && m.proc == oldProc {
			// A broken new model file must not take a working model down:
			// the old runner serves on; next stays pending for the next
			// load (or a newer reload).
			m.rl.phase = ReloadFailed
			m.lastError = fmt.Sprintf("restart with the new settings failed; the previous runner serves on: %v", err)
			m.failures++
			p.log.Error("model restart failed; the previous runner serves on", "model", next.Name, "err", err)
			p.broadcastLocked()
			return true
		}
		return false
	}
	if !p.current(m, gen) || m.state != stReady || m.proc != oldProc {
		// Things moved on while it loaded (a newer reload, an unload):
		// this runner is not wanted; the loop looks again.
		p.stopLater(proc)
		return !p.current(m, gen)
	}
	r := &retiring{proc: oldProc, active: m.active, charge: m.charge}
	m.rl.old = append(m.rl.old, r)
	m.active = 0
	m.cfg, m.params, m.estErr = next, m.rl.nextParams, m.rl.nextErr
	m.rl.next, m.rl.nextErr, m.rl.phase = nil, nil, ReloadRetiring
	secs := p.markReadyLocked(m, proc, info, start, next.FileSize, next.FileModTime)
	m.charge = need
	p.log.Info("model restarted beside the old runner", "model", next.Name, "seconds", secs, "pid", proc.Pid(), "old_pid", oldProc.Pid(), "old_requests", r.active)
	p.wg.Add(1)
	go p.retire(m, r)
	p.broadcastLocked()
	p.mu.Unlock()
	p.measure(m, proc)
	p.mu.Lock()
	return true
}

// swapInPlaceLocked drains m (new requests queue), stops its runner and
// loads the pending config. The queued requests follow that load.
func (p *Pool) swapInPlaceLocked(m *model, gen uint64) {
	proc := m.proc
	m.rl.phase = ReloadInPlace
	m.drain()
	p.broadcastLocked()
	ctx, cancel := context.WithTimeout(p.ctx, p.drainTimeoutLocked())
	defer cancel()
	for m.state == stReady && m.proc == proc && m.busy() && ctx.Err() == nil && p.current(m, gen) {
		p.waitLocked(ctx)
	}
	m.undrain()
	if !p.current(m, gen) || m.state != stReady || m.proc != proc {
		if p.current(m, gen) && m.noRunner() {
			p.applyNextLocked(m)
		}
		p.broadcastLocked()
		return
	}
	if m.active > 0 {
		p.log.Warn("restart drain timed out; stopping the old runner with requests running", "model", m.cfg.Name, "requests", m.active)
	}
	p.setStateLocked(m, stUnloading)
	p.mu.Unlock()
	p.stopRunner(proc)
	p.mu.Lock()
	p.finishUnloadLocked(m, proc)
	p.applyNextLocked(m)
	if !p.closing && m.state == stUnloaded {
		// It was loaded, so it is loaded again, whether or not requests
		// wait for it.
		p.log.Info("model restarting in place", "model", m.cfg.Name, "queued", m.queued)
		p.loadLaterLocked(m.cfg.Name, "restart")
	}
}

// retire stops an old runner once its requests have finished, or at the
// drain timeout.
func (p *Pool) retire(m *model, r *retiring) {
	defer p.wg.Done()
	p.mu.Lock()
	ctx, cancel := context.WithTimeout(p.ctx, p.drainTimeoutLocked())
	defer cancel()
	for r.active > 0 && ctx.Err() == nil {
		select {
		case <-r.proc.Done():
			cancel()
		default:
			p.waitLocked(ctx)
		}
	}
	if r.active > 0 && !p.closing {
		p.log.Warn("old runner drain timed out; stopping it with requests running", "model", m.cfg.Name, "requests", r.active)
	}
	p.mu.Unlock()
	p.stopRunner(r.proc)
	p.mu.Lock()
	m.rl.old = slices.DeleteFunc(m.rl.old, func(o *retiring) bool { return o == r })
	if len(m.rl.old) == 0 && m.rl.phase == ReloadRetiring {
		m.rl.phase = ""
	}
	p.broadcastLocked()
	p.mu.Unlock()
	p.log.Info("old runner stopped", "model", m.cfg.Name, "pid", r.proc.Pid())
}

// remove drains a model removed from the config, stops its runner and
// drops it.
func (p *Pool) remove(m *model) {
	defer p.wg.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, p.drainTimeoutLocked())
	defer cancel()
	for !p.closing {
		// A load or unload under way ends on its own (a load is bounded by
		// the pool's life); a busy runner gets the drain timeout.
		if m.state == stLoading || m.state == stUnloading {
			p.waitLocked(p.ctx)
			continue
		}
		if m.state == stReady && (m.active > 0 || m.queued > 0 || m.waiters > 0) && ctx.Err() == nil {
			p.waitLocked(ctx)
			continue
		}
		break
	}
	if m.state == stReady && !p.closing {
		if m.active > 0 {
			p.log.Warn("removed model's drain timed out; stopping its runner with requests running", "model", m.cfg.Name, "requests", m.active)
		}
		proc := m.proc
		p.setStateLocked(m, stUnloading)
		p.mu.Unlock()
		p.stopRunner(proc)
		p.mu.Lock()
		p.finishUnloadLocked(m, proc)
	}
	// Old runners of an earlier restart have their own timeout.
	for len(m.rl.old) > 0 && !p.closing {
		p.waitLocked(p.ctx)
	}
	p.order = slices.DeleteFunc(p.order, func(o *model) bool { return o == m })
	p.broadcastLocked()
	p.log.Info("model removed", "model", m.cfg.Name)
}

// stopLater stops an unwanted runner in the background.
func (p *Pool) stopLater(proc Runner) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.stopRunner(proc)
	}()
}
