package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// Admission: every request enters through admit, which passes the thermal
// throttle's gate, then waits in the model's queue (bounded) for a free
// slot, starting the model's load when it has no runner.

// admit passes the throttle's gate and acquires a slot of m; a refusal is
// reported to the observer.
func (p *Pool) admit(ctx context.Context, m *model, kind string) (Runner, time.Duration, error) {
	err := p.throttleGate(ctx, m)
	if err == nil {
		var proc Runner
		var waited time.Duration
		if proc, waited, err = p.acquire(ctx, m); err == nil {
			return proc, waited, nil
		}
	}
	p.observe(m, kind, err, runner.Timings{}, nil)
	return nil, 0, err
}

// admits says whether a request may take one of m's slots now.
func (m *model) admits() bool {
	return m.state == stReady && m.active < m.slots() && (m.draining == 0 || min(m.grace, m.queued) > 0)
}

// acquire waits until m is ready with a free slot, starting its load when
// it is not loaded, and takes the slot. It returns how long it waited.
func (p *Pool) acquire(ctx context.Context, m *model) (Runner, time.Duration, error) {
	start := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	queued := false
	leave := func() {
		if queued {
			queued = false
			m.queued--
			p.queued--
			p.broadcastLocked()
		}
	}
	var seen *loadOp
	for {
		if p.closing {
			leave()
			return nil, 0, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			leave()
			return nil, 0, fmt.Errorf("waiting for model %q: %w", m.cfg.Name, err)
		}
		// A draining model admits only requests queued before the drain
		// began.
		if m.state == stReady && m.admits() && (m.draining == 0 || queued) {
			if !queued {
				m.requests++
			} else if m.draining > 0 {
				m.grace--
			}
			leave()
			m.active++
			m.lastUsed = time.Now()
			return m.proc, time.Since(start), nil
		}
		if m.rl.removed && m.state != stReady {
			leave()
			return nil, 0, m.removedErr()
		}
		if err := failedLoad(m, seen); err != nil {
			leave()
			m.failures++
			return nil, 0, err
		}
		if err := p.crashLimitLocked(m); err != nil {
			leave()
			m.rejected++
			return nil, 0, err
		}
		if !queued {
			if lim := p.cfg.Server.QueuePerModel; m.queued >= lim {
				m.rejected++
				return nil, 0, &QueueFullError{Model: m.cfg.Name, Limit: lim, Retry: p.retryAfterLocked(m)}
			}
			if lim := p.cfg.Server.QueueTotal; p.queued >= lim {
				m.rejected++
				return nil, 0, &QueueFullError{Model: m.cfg.Name, Total: true, Limit: lim, Retry: p.retryAfterLocked(m)}
			}
			queued = true
			m.queued++
			p.queued++
			m.requests++
		}
		seen = p.followLoadLocked(m, seen)
		p.waitLocked(ctx)
	}
}

// retryAfterLocked guesses when a queue slot frees: the last load time
// while loading, else the mean request time over the window times the
// queue's depth per slot; at least a second, at most a minute.
func (p *Pool) retryAfterLocked(m *model) time.Duration {
	d := time.Second
	if m.state == stLoading || m.noRunner() {
		d = time.Duration(m.loadSeconds * float64(time.Second))
	} else if n := len(m.win.reqs); n > 0 {
		var sum float64
		for _, s := range m.win.reqs {
			sum += s.dur
		}
		per := sum / float64(n)
		depth := float64(m.queued+m.active) / float64(max(m.cfg.Parallel, 1))
		d = time.Duration(per * depth * float64(time.Second))
	}
	return min(max(d, time.Second), time.Minute)
}
