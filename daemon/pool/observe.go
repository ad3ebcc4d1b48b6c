package pool

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// Observer receives the pool's events, for metrics. Its methods must be
// quick, must not block and must not call the pool: they may be called
// with the pool's lock held.
type Observer interface {
	Request(RequestEvent)
	// Load is a finished load: its time in the runner, and its error.
	Load(model string, seconds float64, err error)
	// Unload is a runner stopped: why, and how long stopping took.
	Unload(model, reason string, seconds float64)
}

// Outcomes of a request, as RequestEvent.Outcome names them.
const (
	OutcomeOK         = "ok"
	OutcomeRejected   = "rejected"    // queue full
	OutcomeThrottled  = "throttled"   // shed for heat
	OutcomeNoRoom     = "no_room"     // no memory even after eviction
	OutcomeLoadFailed = "load_failed" // its model would not load
	OutcomeInvalid    = "invalid"     // the runner refused the request
	OutcomeCanceled   = "canceled"    // the client went away
	OutcomeTimeout    = "timeout"
	OutcomeError      = "error" // the runner died, the pool closed, …
)

// Outcomes lists every outcome.
var Outcomes = []string{OutcomeOK, OutcomeRejected, OutcomeThrottled, OutcomeNoRoom, OutcomeLoadFailed,
	OutcomeInvalid, OutcomeCanceled, OutcomeTimeout, OutcomeError}

// RequestEvent is one finished (or refused) request. Durations that the
// request did not have are NaN.
type RequestEvent struct {
	Model           string
	Kind            string // "completion" or "embedding"
	Outcome         string
	PromptTokens    int
	GeneratedTokens int
	QueueSeconds    float64 // waiting for a load or a slot
	TTFTSeconds     float64 // from the pool's call to the first text
	TokenSeconds    float64 // mean time per generated token
}

// OutcomeOf classifies a request's error.
func OutcomeOf(err error) string {
	var (
		qf *QueueFullError
		th *ThrottledError
		nr *NoRoomError
		lf *LoadFailedError
		ue *UnavailableError
		mf *ModelFailedError
		re *runner.RequestError
	)
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &qf):
		return OutcomeRejected
	case errors.As(err, &th):
		return OutcomeThrottled
	case errors.As(err, &nr):
		return OutcomeNoRoom
	case errors.As(err, &lf), errors.As(err, &ue), errors.As(err, &mf):
		return OutcomeLoadFailed
	case errors.As(err, &re):
		return OutcomeInvalid
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	}
	return OutcomeError
}

// counts are a model's request outcomes and prompt tokens; guarded by
// Pool.mu.
type counts struct {
	outcomes     map[string]uint64
	promptTokens uint64
	spec         specCounts
}

// fill sets f's counts from c and adds them to the overall figures o.
func (c *counts) fill(f, o *PerfFigures) {
	f.Outcomes = map[string]uint64{}
	for _, k := range Outcomes {
		f.Outcomes[k] = c.outcomes[k]
		o.Outcomes[k] += c.outcomes[k]
	}
	f.PromptTokens = c.promptTokens
	o.PromptTokens += c.promptTokens
	c.spec.fill(f, o)
}

// observe counts one request and reports it to the observer; s is nil
// when it never reached a runner.
func (p *Pool) observe(m *model, kind string, err error, tm runner.Timings, s *sample) {
	outcome := OutcomeOf(err)
	p.mu.Lock()
	if m.counts.outcomes == nil {
		m.counts.outcomes = map[string]uint64{}
	}
	m.counts.outcomes[outcome]++
	m.counts.promptTokens += uint64(tm.PromptTokens)
	m.counts.spec.add(tm)
	p.mu.Unlock()
	o := p.opts.Observer
	if o == nil {
		return
	}
	ev := RequestEvent{Model: m.cfg.Name, Kind: kind, Outcome: outcome,
		PromptTokens: tm.PromptTokens, GeneratedTokens: tm.GeneratedTokens,
		QueueSeconds: math.NaN(), TTFTSeconds: math.NaN(), TokenSeconds: math.NaN()}
	if s != nil {
		ev.QueueSeconds = s.queue / 1000
		ev.TTFTSeconds = s.ttft / 1000
	}
	if tm.GeneratedTokens > 0 && tm.GenerationMS > 0 {
		ev.TokenSeconds = tm.GenerationMS / 1000 / float64(tm.GeneratedTokens)
	}
	o.Request(ev)
}

func (p *Pool) observeLoad(m *model, start time.Time, err error) {
	if o := p.opts.Observer; o != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, errAbandoned) {
		o.Load(m.cfg.Name, time.Since(start).Seconds(), err)
	}
}

func (p *Pool) observeUnload(m *model, reason string, start time.Time) {
	if o := p.opts.Observer; o != nil {
		o.Unload(m.cfg.Name, reason, time.Since(start).Seconds())
	}
}
