package runner

import (
	"net/http"
	"time"
)

// Errors from a runner say how they reach a client: Code, HTTPStatus and,
// where waiting helps, RetryAfter. The daemon's surfaces (REST API, admin
// socket) read these methods instead of keeping their own map.

// ErrExited is wrapped by errors from a runner that is gone.
var ErrExited error = exitedError{}

type exitedError struct{}

func (exitedError) Error() string   { return "runner exited" }
func (exitedError) Code() string    { return "runner_exited" }
func (exitedError) HTTPStatus() int { return http.StatusBadGateway }

// Code is the runner's reason for refusing the request.
func (e *RequestError) Code() string { return e.Reason }

// HTTPStatus is the runner's status: 429 when all its slots and its queue
// are taken, 503 while it stops, 502 when the runner sent no usable one.
func (e *RequestError) HTTPStatus() int {
	switch {
	case e.Reason == CodeBusy:
		return http.StatusTooManyRequests
	case e.Reason == CodeStopping:
		return http.StatusServiceUnavailable
	case e.Status < 400 || e.Status > 599:
		return http.StatusBadGateway
	}
	return e.Status
}

// RetryAfter is a second for a busy or stopping runner, 0 otherwise.
func (e *RequestError) RetryAfter() time.Duration {
	if e.Reason == CodeBusy || e.Reason == CodeStopping {
		return time.Second
	}
	return 0
}
