package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
)

// Error is an answer other than success. Every endpoint renders it in
// OpenAI's shape, {"error": {"message", "type", "param", "code"}}, so one
// client-side check works for the seed endpoints and /v1 alike.
type Error struct {
	Status     int
	Type       string // invalid_request_error, authentication_error, ...
	Code       string // machine-readable: model_not_found, context_overflow, ...
	Param      string // the offending field, when there is one
	Message    string // a sentence a person can act on
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// body is the error as it goes on the wire, in a plain answer or as a
// stream's last event alike; the type is never empty.
func (e *Error) body() errorBody {
	if e.Type == "" {
		e.Type = typeFor(e.Status)
	}
	b := errorBody{Error: errorFields{Message: e.Message, Type: e.Type}}
	if e.Param != "" {
		p := e.Param
		b.Error.Param = &p
	}
	if e.Code != "" {
		c := e.Code
		b.Error.Code = &c
	}
	return b
}

func badRequest(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Param: param, Message: fmt.Sprintf(format, args...)}
}

func typeFor(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status < 500:
		return "invalid_request_error"
	default:
		return "server_error"
	}
}

// writeError writes e as JSON with its status (and Retry-After).
func writeError(w http.ResponseWriter, e *Error) {
	if e.Type == "" {
		e.Type = typeFor(e.Status)
	}
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	writeJSON(w, e.Status, e.body())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"cannot encode the answer","type":"server_error","param":null,"code":"internal"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// errorFor maps an error from the pool (or this package) onto an answer.
// timeout is the request timeout, for the message when it fired.
func errorFor(ctx context.Context, err error, timeout time.Duration) *Error {
	var (
		ae  *Error
		qf  *pool.QueueFullError
		nr  *pool.NoRoomError
		lf  *pool.LoadFailedError
		ue  *pool.UnavailableError
		th  *pool.ThrottledError
		re  *runner.RequestError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, pool.ErrUnknownModel):
		return &Error{Status: http.StatusNotFound, Code: "model_not_found", Param: "model", Message: err.Error()}
	case errors.Is(err, pool.ErrClosed):
		return &Error{Status: http.StatusServiceUnavailable, Code: "stopping", Message: "the daemon is shutting down; retry shortly", RetryAfter: 5 * time.Second}
	case errors.As(err, &qf):
		status := http.StatusTooManyRequests
		if qf.Total {
			status = http.StatusServiceUnavailable
		}
		ra := qf.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		return &Error{Status: status, Code: "queue_full", Message: err.Error(), RetryAfter: ra}
	case errors.As(err, &th):
		return &Error{Status: http.StatusServiceUnavailable, Code: "thermal_shed", Message: err.Error(), RetryAfter: max(th.RetryAfter, time.Second)}
	case errors.As(err, &nr):
		return &Error{Status: http.StatusInsufficientStorage, Code: "no_room", Message: err.Error()}
	case errors.As(err, &lf):
		return &Error{Status: http.StatusBadGateway, Code: "load_failed", Message: err.Error()}
	case errors.As(err, &ue):
		// No Retry-After: the file needs a person, not time.
		return &Error{Status: http.StatusServiceUnavailable, Code: "model_unavailable", Param: "model", Message: err.Error()}
	case errors.As(err, &re):
		e := &Error{Status: re.Status, Code: re.Code, Message: re.Msg}
		if e.Status < 400 || e.Status > 599 {
			e.Status = http.StatusBadGateway
		}
		if re.Code == runner.CodeNoChatTemplate {
			e.Message += " (POST /v1/completions and POST /inference take a plain prompt)"
		}
		if re.Code == runner.CodeBusy {
			e.Status, e.RetryAfter = http.StatusTooManyRequests, time.Second
		}
		if re.Code == runner.CodeStopping {
			e.Status, e.RetryAfter = http.StatusServiceUnavailable, time.Second
		}
		return e
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		msg := "the request timed out"
		if timeout > 0 {
			msg = fmt.Sprintf("the request took longer than the server's limit of %s (server.request_timeout)", timeout)
		}
		return &Error{Status: http.StatusGatewayTimeout, Code: "timeout", Message: msg}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this. 499 as nginx logs it.
		return &Error{Status: 499, Code: "cancelled", Message: "the client closed the request"}
	case errors.Is(err, runner.ErrExited):
		return &Error{Status: http.StatusBadGateway, Code: "runner_exited", Message: err.Error()}
	default:
		return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
	}
}

func tooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Message: fmt.Sprintf("the request body is larger than the server's limit of %d bytes (server.max_body)", limit)}
}
