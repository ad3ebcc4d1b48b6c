package admin

import (
	"fmt"
	"net/http"
)

// Error is an answer other than success: the HTTP status and a code
// scripts can match, and a message people can act on. A Backend returns it
// to choose the status; other errors become 500.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common codes.
const (
	CodeBadRequest   = "bad_request"
	CodeNotFound     = "not_found"
	CodeForbidden    = "forbidden"
	CodeRejected     = "rejected"
	CodeBusy         = "busy"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
	CodeNotSupported = "not_supported"
)

func statusOf(e *Error) int {
	if e.Status >= 400 && e.Status <= 599 {
		return e.Status
	}
	return http.StatusInternalServerError
}
