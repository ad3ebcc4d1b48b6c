package pool

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jetai/jetai/internal/bytesize"
)

// ErrUnknownModel is wrapped by errors for a model name or alias that the
// config does not have.
var ErrUnknownModel = errors.New("unknown model")

// ErrClosed is returned once Close has begun.
var ErrClosed = errors.New("model pool is shutting down")

// QueueFullError is a request refused because too many requests already
// wait: for this model (Total false) or over all models (Total true).
type QueueFullError struct {
	Model      string        `json:"model"`
	Total      bool          `json:"total"`
	Limit      int           `json:"limit"`
	RetryAfter time.Duration `json:"retry_after"`
}

func (e *QueueFullError) Error() string {
	if e.Total {
		return fmt.Sprintf("too many requests are waiting over all models (queue_total is %d); retry in %s", e.Limit, roundRetry(e.RetryAfter))
	}
	return fmt.Sprintf("too many requests are waiting for model %q (queue_per_model is %d); retry in %s", e.Model, e.Limit, roundRetry(e.RetryAfter))
}

func roundRetry(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return d.Round(time.Second)
}

// NoRoomError is a load that no eviction can make room for. Blockers says
// what is in the way, one phrase each.
type NoRoomError struct {
	Model    string   `json:"model"`
	Need     uint64   `json:"need"`
	Budget   uint64   `json:"budget"`
	Used     uint64   `json:"used"`
	Blockers []string `json:"blockers"`
}

func (e *NoRoomError) Error() string {
	msg := fmt.Sprintf("no room to load model %q: it needs about %s; the budget is %s with %s in use", e.Model, human(e.Need), human(e.Budget), human(e.Used))
	if len(e.Blockers) > 0 {
		msg += "; in the way: " + strings.Join(e.Blockers, "; ")
	}
	return msg
}

// LoadFailedError is a model its runner could not load (a bad file, a
// runner that would not start or died while loading).
type LoadFailedError struct {
	Model string `json:"model"`
	Err   error  `json:"-"`
}

func (e *LoadFailedError) Error() string {
	return fmt.Sprintf("model %q failed to load: %v", e.Model, e.Err)
}

func (e *LoadFailedError) Unwrap() error { return e.Err }

// human formats a byte count with a binary unit.
func human(b uint64) string { return bytesize.IEC(b) }
