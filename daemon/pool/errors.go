package pool

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jetai/jetai/internal/bytesize"
)

// The pool's errors say how they reach a client: each has Code (a
// snake_case string scripts match), HTTPStatus and, where waiting helps,
// RetryAfter. The REST API and the admin socket read these methods (with
// errors.As onto an interface of their own) instead of keeping a map.

// ErrUnknownModel is wrapped by errors for a model name or alias that the
// config does not have.
var ErrUnknownModel error = &codedError{msg: "unknown model", code: "model_not_found", status: http.StatusNotFound}

// ErrClosed is returned once Close has begun.
var ErrClosed error = &codedError{msg: "model pool is shutting down", code: "stopping", status: http.StatusServiceUnavailable, retry: 5 * time.Second}

// codedError is a sentinel error with its client-facing code and status.
type codedError struct {
	msg, code string
	status    int
	retry     time.Duration
}

func (e *codedError) Error() string             { return e.msg }
func (e *codedError) Code() string              { return e.code }
func (e *codedError) HTTPStatus() int           { return e.status }
func (e *codedError) RetryAfter() time.Duration { return e.retry }

// QueueFullError is a request refused because too many requests already
// wait: for this model (Total false) or over all models (Total true).
type QueueFullError struct {
	Model string        `json:"model"`
	Total bool          `json:"total"`
	Limit int           `json:"limit"`
	Retry time.Duration `json:"retry_after"`
}

func (e *QueueFullError) Code() string { return "queue_full" }

// HTTPStatus is 429 for a model's queue, 503 when the daemon as a whole
// is full.
func (e *QueueFullError) HTTPStatus() int {
	if e.Total {
		return http.StatusServiceUnavailable
	}
	return http.StatusTooManyRequests
}

func (e *QueueFullError) RetryAfter() time.Duration { return max(e.Retry, time.Second) }

func (e *QueueFullError) Error() string {
	if e.Total {
		return fmt.Sprintf("too many requests are waiting over all models (queue_total is %d); retry in %s", e.Limit, roundRetry(e.Retry))
	}
	return fmt.Sprintf("too many requests are waiting for model %q (queue_per_model is %d); retry in %s", e.Model, e.Limit, roundRetry(e.Retry))
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

func (e *LoadFailedError) Code() string    { return "load_failed" }
func (e *LoadFailedError) HTTPStatus() int { return http.StatusBadGateway }

func (e *NoRoomError) Code() string    { return "no_room" }
func (e *NoRoomError) HTTPStatus() int { return http.StatusInsufficientStorage }

// UnavailableError has no RetryAfter: its file needs a person, not time.
func (e *UnavailableError) Code() string    { return "model_unavailable" }
func (e *UnavailableError) HTTPStatus() int { return http.StatusServiceUnavailable }

// ThrottledError: code thermal_shed, 503, retry when the policy expects
// the board to have cooled.
func (e *ThrottledError) Code() string              { return "thermal_shed" }
func (e *ThrottledError) HTTPStatus() int           { return http.StatusServiceUnavailable }
func (e *ThrottledError) RetryAfter() time.Duration { return max(e.Retry, time.Second) }

// human formats a byte count with a binary unit.
func human(b uint64) string { return bytesize.IEC(b) }
