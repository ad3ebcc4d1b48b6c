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

// writeError writes e as JSON with its status (and Retry-After), in
// Ollama's shape under /api/.
func writeError(w http.ResponseWriter, e *Error) {
	if ollamaShaped(w) {
		writeOllamaError(w, e) // ollama.go
		return
	}
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

// clientError is an error that knows how it reaches a client: the pool's
// and the runner's errors implement it.
type clientError interface {
	error
	Code() string
	HTTPStatus() int
}

// retryHinter is a clientError that says when to try again.
type retryHinter interface {
	RetryAfter() time.Duration
}

// errorFor turns an error from the pool (or this package) into an answer:
// the error's own code and status when it has them. timeout is the
// request timeout, for the message when it fired.
func errorFor(ctx context.Context, err error, timeout time.Duration) *Error {
	var (
		ae  *Error
		ce  clientError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ce):
		e := &Error{Status: ce.HTTPStatus(), Code: ce.Code(), Message: err.Error()}
		if rh, ok := ce.(retryHinter); ok {
			e.RetryAfter = rh.RetryAfter()
		}
		switch e.Code {
		case "model_not_found", "model_unavailable":
			e.Param = "model"
		case runner.CodeNoChatTemplate:
			e.Message += " (POST /v1/completions and POST /inference take a plain prompt)"
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
	default:
		return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
	}
}

func tooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Message: fmt.Sprintf("the request body is larger than the server's limit of %d bytes (server.max_body)", limit)}
}
