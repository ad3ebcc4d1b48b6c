package pull

import (
	"fmt"
	"net/http"
	"time"
)

// Error is a pull failure that knows how it reaches a client.
type Error struct {
	code   string
	status int
	msg    string
	retry  time.Duration
}

func (e *Error) Error() string   { return e.msg }
func (e *Error) Code() string    { return e.code }
func (e *Error) HTTPStatus() int { return e.status }

// RetryAfter is the hint of an upstream that asked to slow down.
func (e *Error) RetryAfter() time.Duration { return e.retry }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{code: code, status: status, msg: fmt.Sprintf(format, args...)}
}

// Codes of pull errors.
const (
	CodeNotFound = "not_found"         // no such repo, file, quant or tag
	CodeGated    = "gated"             // the repo wants a token (or a better one)
	CodeNoSpace  = "cache_full"        // too little disk or max_size
	CodeChecksum = "checksum_mismatch" // the bytes are not the declared ones
	CodeUpstream = "upstream"          // the hub failed, or the link did past every retry
	CodeCanceled = "canceled"
)

// ChecksumError: a downloaded file's sha256 is not the declared one.
type ChecksumError struct {
	File, Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 mismatch: the hub declares %s, the downloaded bytes hash to %s; the partial file was deleted and nothing was added", e.File, e.Want, e.Got)
}
func (e *ChecksumError) Code() string    { return CodeChecksum }
func (e *ChecksumError) HTTPStatus() int { return http.StatusBadGateway }
