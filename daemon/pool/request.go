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
	p.firstPrompt(m, proc, err, res.Timings)
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
func (p *Pool) runnerErr(m *model, proc Runner, err error) error {
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

// release gives back the slot that acquire took and books the request.
func (p *Pool) release(ctx context.Context, m *model, proc Runner, err error, s sample) {
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
	if m.proc == proc && m.state == stReady && !m.measuring && now.Sub(m.lastMeas) >= p.measureEvery {
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
