package pool

import (
	"fmt"
	"sort"
	"time"
)

// Eviction: planning which models make room for a load (see the package
// documentation for the order), draining busy victims, and keeping
// measured charges within the budget.

// enforceLocked evicts idle models (never except, never pinned) while the
// charges add up to more than the budget.
func (p *Pool) enforceLocked(except *model) {
	used, budget := p.usedLocked(), uint64(p.cfg.Memory.Budget)
	if used <= budget {
		return
	}
	if p.spare.proc != nil || p.spare.starting {
		// The spare goes before any model.
		used -= p.spare.charge
		p.stopSpareLocked(fmt.Sprintf("measured memory is over the budget (%s of %s)", human(used+p.spare.charge), human(budget)))
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

// idleCandidatesLocked are the idle, unpinned models, lowest priority
// then least recently used first.
func (p *Pool) idleCandidatesLocked(except *model) []*model {
	var out []*model
	for _, m := range p.order {
		if m != except && m.idle() && !m.cfg.Pinned {
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
		case stUnloading:
			pendingFree += o.charge
		case stLoading:
			loading += o.charge
			if o.charge > 0 {
				blockers = append(blockers, fmt.Sprintf("model %q is loading (%s)", o.cfg.Name, human(o.charge)))
			}
		case stReady:
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
	// The warm spare is not counted: the load takes it as its runner,
	// whose memory m's estimate already holds (spare.go).
	avail += p.spare.measured
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
		if o != m && o.state == stLoading && !o.cfg.Pinned {
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
// models as planLocked says, and waiting for busy victims to go idle. It
// returns how the wait divided into draining, parking and runner exits.
func (p *Pool) makeRoom(m *model) (roomTimes, error) {
	rt := roomTimes{waitedAt: time.Now()}
	var evictAt time.Time
	var victims []*model
	err := p.makeRoomWait(m, func(v *model) {
		if evictAt.IsZero() {
			evictAt = time.Now()
		}
		victims = append(victims, v)
	})
	if err != nil || evictAt.IsZero() {
		return rt, err
	}
	end := time.Now()
	rt.evicted = true
	rt.drain = evictAt.Sub(rt.waitedAt)
	p.mu.Lock()
	for _, v := range victims {
		// Victims stop in parallel: the slowest parks for the load.
		rt.park = max(rt.park, v.swap.unloadPark)
	}
	p.mu.Unlock()
	rt.park = min(rt.park, end.Sub(evictAt))
	rt.exit = end.Sub(evictAt) - rt.park
	return rt, nil
}

// makeRoomWait is makeRoom's loop; evicted learns each victim as its
// unload begins.
func (p *Pool) makeRoomWait(m *model, evicted func(*model)) error {
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
				evicted(v)
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
