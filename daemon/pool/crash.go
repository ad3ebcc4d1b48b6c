package pool

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// Crash limit. A model whose runner crashes (exits on its own, or fails
// its load) CrashBurst times within CrashInterval is StateFailed with a
// ModelFailedError: requests for it fail at once instead of starting a
// runner that will crash again, as systemd's StartLimitBurst and
// StartLimitIntervalSec stop a unit that keeps failing. The model is
// loaded again once its file changes (size or modification time), a
// reload changes its config, or Load (jetai-ctl load) retries it.

// Crash limit defaults.
const (
	DefaultCrashBurst    = 3
	DefaultCrashInterval = time.Minute
)

// ModelFailedError is a request for a model that has crashed its runner
// too often. Clients get 503 and the cause; there is no Retry-After, since
// the model needs a person (a new file, a config change, jetai-ctl load),
// not time.
type ModelFailedError struct {
	Model    string        `json:"model"`
	Crashes  int           `json:"crashes"`
	Interval time.Duration `json:"interval"`
	// Cause is why the last runner died: the llama.cpp assertion, a Go
	// crash line, or the load error.
	Cause string `json:"cause"`
}

func (e *ModelFailedError) Error() string {
	return fmt.Sprintf("model %q failed: its runner crashed %d times within %s (last cause: %s); it is not loaded again until its file or config changes, or `jetai-ctl load %s` retries it",
		e.Model, e.Crashes, e.Interval, e.Cause, e.Model)
}

// Code is the error's code in API answers.
func (e *ModelFailedError) Code() string { return "model_failed" }

// HTTPStatus is the status API answers carry.
func (e *ModelFailedError) HTTPStatus() int { return http.StatusServiceUnavailable }

// crashLog is a model's recent crashes; guarded by Pool.mu.
type crashLog struct {
	at []time.Time // within the interval, oldest first
	// limited: the limit was reached; err is what requests get, and size
	// and mod the model file's stamp then.
	limited bool
	err     *ModelFailedError
	size    int64
	mod     time.Time
}

func (c *crashLog) reset() { *c = crashLog{} }

// crashedLocked books a crash of m's runner with its cause and reports
// whether m has now reached the crash limit; if so, m.lastError says so
// and the caller puts m in StateFailed.
func (p *Pool) crashedLocked(m *model, cause string) bool {
	if p.crashBurst <= 0 {
		return false
	}
	now := time.Now()
	c := &m.crashes
	keep := c.at[:0]
	for _, t := range c.at {
		if now.Sub(t) < p.crashInterval {
			keep = append(keep, t)
		}
	}
	c.at = append(keep, now)
	if len(c.at) < p.crashBurst {
		return false
	}
	c.limited = true
	c.err = &ModelFailedError{Model: m.cfg.Name, Crashes: len(c.at), Interval: p.crashInterval, Cause: cause}
	c.size, c.mod = -1, time.Time{}
	if fi, err := os.Stat(m.cfg.Path); err == nil {
		c.size, c.mod = fi.Size(), fi.ModTime()
	}
	m.lastError = c.err.Error()
	p.eventLocked(Event{Kind: EventLoadFailed, Model: m.cfg.Name, Detail: m.lastError})
	p.log.Error("model failed: crash limit reached; requests are refused until its file or config changes or it is loaded on request",
		"model", m.cfg.Name, "crashes", len(c.at), "interval", p.crashInterval, "cause", cause)
	return true
}

// crashLimitLocked returns the ModelFailedError for a request when m is
// held by the crash limit. A model file changed since lifts the limit.
func (p *Pool) crashLimitLocked(m *model) error {
	c := &m.crashes
	if !c.limited || m.state != stFailed {
		return nil
	}
	if fi, err := os.Stat(m.cfg.Path); err == nil && (fi.Size() != c.size || !fi.ModTime().Equal(c.mod)) {
		p.log.Info("failed model's file changed; loading it again", "model", m.cfg.Name)
		c.reset()
		return nil
	}
	return c.err
}

// headerError is a model file whose GGUF header cannot be read
// (truncated, corrupt): it is not given to a runner.
type headerError struct {
	path string
	err  error
}

func (e *headerError) Error() string {
	return fmt.Sprintf("the GGUF header of %s cannot be read: %v", e.path, e.err)
}

func (e *headerError) Unwrap() error { return e.err }

// headerErr is the error that refuses m's load before a runner starts:
// its file's GGUF header cannot be read. A header that reads but lacks
// metadata the estimate wants is no reason: llama.cpp decides.
func headerErr(m *model) error {
	var he *headerError
	if errors.As(m.estErr, &he) {
		return he
	}
	return nil
}
