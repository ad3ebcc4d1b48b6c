package pool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// Complete runs a completion on model (a name or alias), loading it first
// if needed. onText, when not nil, receives the text as it is generated.
// Errors: ErrUnknownModel, QueueFullError, NoRoomError, LoadFailedError,
// UnavailableError (the model's file is missing or bad),
// ErrClosed, ctx's error, runner.RequestError (a request the runner
// refused) and errors wrapping runner.ErrExited (the runner died).
func (p *Pool) Complete(ctx context.Context, model string, req runner.Request, onText func(string)) (runner.Result, error) {
	start := time.Now()
	m, err := p.lookup(model)
	if err != nil {
		return runner.Result{}, err
	}
	proc, waited, err := p.admit(ctx, m, "completion")
	if err != nil {
		return runner.Result{}, err
	}
	var first time.Time
	began := time.Now()
	res, err := proc.Complete(ctx, req, func(s string) {
		if first.IsZero() {
			first = time.Now()
		}
		if onText != nil {
			onText(s)
		}
	})
	err = p.runnerErr(m, proc, err)
	s := sample{at: time.Now(), tokens: res.Timings.GeneratedTokens, tps: math.NaN(), ttft: math.NaN(), queue: runner.Ms(waited), dur: time.Since(began).Seconds()}
	if !first.IsZero() {
		s.ttft = runner.Ms(first.Sub(start))
	}
	if res.Timings.GenerationMS > 0 && res.Timings.GeneratedTokens > 1 {
		s.tps = float64(res.Timings.GeneratedTokens) / (res.Timings.GenerationMS / 1000)
	}
	p.release(ctx, m, proc, err, s)
	p.observe(m, "completion", err, res.Timings, &s)
	return res, err
}

// Embed returns the embedding of input from model, loading it if needed.
func (p *Pool) Embed(ctx context.Context, model, input string) (runner.EmbedResult, error) {
	m, err := p.lookup(model)
	if err != nil {
		return runner.EmbedResult{}, err
	}
	proc, waited, err := p.admit(ctx, m, "embedding")
	if err != nil {
		return runner.EmbedResult{}, err
	}
	began := time.Now()
	res, err := proc.Embed(ctx, input)
	err = p.runnerErr(m, proc, err)
	s := sample{at: time.Now(), tps: math.NaN(), ttft: math.NaN(), queue: runner.Ms(waited), dur: time.Since(began).Seconds()}
	p.release(ctx, m, proc, err, s)
	p.observe(m, "embedding", err, runner.Timings{}, &s)
	return res, err
}

// runnerErr makes an error from a runner that has died wrap
// runner.ErrExited.
func (p *Pool) runnerErr(m *model, proc *runner.Process, err error) error {
	if err == nil || errors.Is(err, runner.ErrExited) {
		return err
	}
	var re *runner.RequestError
	if errors.As(err, &re) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if gone, why := proc.Exited(); gone {
		return fmt.Errorf("model %q: %w (request error: %v)", m.cfg.Name, why, err)
	}
	return err
}

// acquire waits until m is ready with a free slot, starting its load when
// it is not loaded, and takes the slot. It returns how long it waited.
func (p *Pool) acquire(ctx context.Context, m *model) (*runner.Process, time.Duration, error) {
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
		if m.state == StateReady && m.admits() && (m.draining == 0 || queued) {
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
		if m.rl.removed && m.state != StateReady {
			leave()
			return nil, 0, m.removedErr()
		}
		if err := failedLoad(m, seen); err != nil {
			leave()
			m.failures++
			return nil, 0, err
		}
		if !queued {
			if lim := p.cfg.Server.QueuePerModel; m.queued >= lim {
				m.rejected++
				return nil, 0, &QueueFullError{Model: m.cfg.Name, Limit: lim, RetryAfter: p.retryAfterLocked(m)}
			}
			if lim := p.cfg.Server.QueueTotal; p.queued >= lim {
				m.rejected++
				return nil, 0, &QueueFullError{Model: m.cfg.Name, Total: true, Limit: lim, RetryAfter: p.retryAfterLocked(m)}
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
	if m.state == StateLoading || m.noRunner() {
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

// release gives back the slot that acquire took and books the request.
func (p *Pool) release(ctx context.Context, m *model, proc *runner.Process, err error, s sample) {
	now := time.Now()
	p.mu.Lock()
	if !m.releaseOldLocked(proc) {
		m.active--
	}
	m.lastUsed = now
	m.tokens += uint64(s.tokens)
	if err != nil {
		var re *runner.RequestError
		switch {
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			// The client went away or ran out of time.
		case errors.As(err, &re) && re.Status >= 400 && re.Status < 500:
			// The runner refused the request itself (no chat template, a
			// prompt longer than the context, a bad grammar): the
			// client's mistake, not the model failing.
		default:
			m.failures++
		}
	} else {
		m.win.add(s)
	}
	measure := false
	if m.proc == proc && m.state == StateReady && !m.measuring && now.Sub(m.lastMeas) >= p.measureEvery {
		m.measuring, measure = true, true
	}
	if m.cfg.KeepAlive == 0 && p.idleExpiredLocked(m, now) {
		p.beginUnloadLocked(m, "idle with keep_alive 0")
	}
	p.broadcastLocked()
	p.mu.Unlock()
	if measure {
		p.measure(m, proc)
	}
}
