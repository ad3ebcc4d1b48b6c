package pool

import (
	"context"
	"fmt"
	"time"
)

// Unloading: stopping runners (eviction, keep-alive, Unload, Optimize)
// and the keep-alive reaper.

// beginUnloadLocked stops v's runner in the background.
func (p *Pool) beginUnloadLocked(v *model, reason string) {
	p.setStateLocked(v, stUnloading)
	proc, cfg := v.proc, v.cfg
	p.eventLocked(Event{Kind: unloadKind(reason), Model: v.cfg.Name, Detail: reason})
	p.log.Info("unloading model", "model", v.cfg.Name, "reason", reason)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		parkStart := time.Now()
		p.park(context.Background(), cfg, proc)
		start := time.Now()
		p.stopRunner(proc)
		p.mu.Lock()
		v.swap.unloadPark, v.swap.unloadExit = start.Sub(parkStart), time.Since(start)
		p.finishUnloadLocked(v, proc)
		p.mu.Unlock()
		p.observeUnload(v, reason, start)
	}()
}

// finishUnloadLocked books the end of proc, stopped by an unload, unless
// something else has taken v over since.
func (p *Pool) finishUnloadLocked(v *model, proc Runner) {
	if v.proc == proc && v.state == stUnloading {
		p.setStateLocked(v, stUnloaded)
	}
	p.broadcastLocked()
}

// idleExpiredLocked says whether keep-alive unloads m now.
func (p *Pool) idleExpiredLocked(m *model, now time.Time) bool {
	return !p.closing && m.idle() && !m.cfg.Pinned && m.cfg.KeepAlive >= 0 && now.Sub(m.lastUsed) >= m.cfg.KeepAlive
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
		p.waitLocked(ctx)
		return ctx.Err()
	}
	for {
		switch m.state {
		case stUnloaded, stFailed, stUnavailable:
			return nil
		case stReady:
			proc := m.proc
			p.setStateLocked(m, stUnloading)
			for m.active > 0 {
				if err := wait(); err != nil {
					if m.proc == proc && m.state == stUnloading {
						p.setStateLocked(m, stReady)
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
		for m.state == stUnloading && ctx.Err() == nil {
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
