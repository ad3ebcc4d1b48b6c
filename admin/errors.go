package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error is an answer other than success: the HTTP status and a code
// scripts can match, and a message people can act on. A Backend returns it
// (or an error with Code and HTTPStatus methods) to choose the status.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, when set, goes out as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common codes. Errors from the daemon's parts bring their own (the
// pool's "queue_full", "thermal_shed", "model_not_found", …).
const (
	CodeBadRequest   = "bad_request"
	CodeNotFound     = "not_found"
	CodeForbidden    = "forbidden"
	CodeRejected     = "rejected"
	CodeBusy         = "busy"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
	CodeNotSupported = "not_supported"
	CodeTimeout      = "timeout"
)

// clientError is an error that knows how it reaches a client.
type clientError interface {
	error
	Code() string
	HTTPStatus() int
}

type retryHinter interface {
	RetryAfter() time.Duration
}

// asError is err as an answer: an *Error as it is, an error with its own
// code and status as those, anything else with status and code.
func asError(err error, status int, code string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ce clientError
	switch {
	case errors.As(err, &ce):
		e = &Error{Status: ce.HTTPStatus(), Code: ce.Code(), Message: err.Error()}
		if rh, ok := ce.(retryHinter); ok {
			e.RetryAfter = rh.RetryAfter()
		}
		return e
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Message: err.Error()}
	}
	return &Error{Status: status, Code: code, Message: err.Error()}
}

func statusOf(e *Error) int {
	if e.Status >= 400 && e.Status <= 599 {
		return e.Status
	}
	return http.StatusInternalServerError
}
