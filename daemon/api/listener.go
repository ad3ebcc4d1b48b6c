package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
)

// Listener wraps the REST port's listener so that the answers net/http
// writes by itself, before any handler runs, are JSON errors in the API's
// shape like every other answer. net/http refuses a request it cannot
// parse (no Host in HTTP/1.1, a bad header byte, conflicting
// Content-Length headers, an HTTP/2.0 or HTTP/9.9 request line, headers
// over http.Server.MaxHeaderBytes, an unknown Transfer-Encoding) by
// writing a plain-text answer straight onto the connection and closing
// it; that write is recognised by its fixed form (see plainToJSON) and
// replaced. Everything else passes through untouched.
func Listener(ln net.Listener) net.Listener { return &jsonListener{ln} }

type jsonListener struct{ net.Listener }

func (l *jsonListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonConn{Conn: c}, nil
}

type jsonConn struct{ net.Conn }

func (c *jsonConn) Write(b []byte) (int, error) {
	if out, ok := plainToJSON(b); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// SyscallConn gives the file descriptor to those that look at it (the
// connection cap asks whether bytes are waiting).
func (c *jsonConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite half-closes, as net/http does after some refusals so that
// the client reads the answer before the connection goes.
func (c *jsonConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// net/http's own refusals are one write each of
//
//	"HTTP/1.1 " + status [+ ": " + reason] + plainHeaders + text
//
// with a one-line text and no Date header (every answer of a handler has
// one), so a handler's answer never takes this form.
const plainHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// expectationFailed begins net/http's answer (empty, without a
// Content-Type) to an Expect header other than 100-continue; no handler
// of this package answers 417.
const expectationFailed = "HTTP/1.1 417 Expectation Failed\r\n"

// plainToJSON returns the JSON answer that replaces b when b is one of
// net/http's own refusals.
func plainToJSON(b []byte) ([]byte, bool) {
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) || len(b) < 12 {
		return nil, false
	}
	if bytes.HasPrefix(b, []byte(expectationFailed)) && bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		return jsonRefusal(http.StatusExpectationFailed, "expectation_failed", "the Expect header can only be 100-continue"), true
	}
	i := bytes.Index(b, []byte(plainHeaders))
	if i < 0 {
		return nil, false
	}
	text := b[i+len(plainHeaders):]
	if bytes.ContainsAny(b[:i], "\n") || bytes.ContainsAny(text, "\r\n") {
		return nil, false
	}
	status, err := strconv.Atoi(string(b[9:12]))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	// The text is "400 Bad Request: missing required Host header", or the
	// status alone.
	_, reason, _ := bytes.Cut(text, []byte(": "))
	code, msg := "bad_request", string(reason)
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		code, msg = "headers_too_large", "the request's headers are larger than the server's limit"
	case http.StatusNotImplemented:
		code, msg = "unsupported_transfer_encoding", "the request's Transfer-Encoding is not supported; send the body with Content-Length or chunked"
	case http.StatusHTTPVersionNotSupported:
		code, msg = "http_version_not_supported", "the request line names an HTTP version this server does not speak; use HTTP/1.1 (or HTTP/1.0)"
	case http.StatusBadRequest:
		switch msg {
		case "":
			msg = "malformed request: its request line or headers cannot be parsed (a bad byte, conflicting Content-Length headers, a bad chunked body or the like)"
		case "missing required Host header":
			msg = "missing required Host header: HTTP/1.1 requests must have one"
		}
	default:
		code = "bad_request"
		if msg == "" {
			msg = http.StatusText(status)
		}
	}
	return jsonRefusal(status, code, msg), true
}

// jsonRefusal is a whole answer that closes the connection, with the
// API's error body.
func jsonRefusal(status int, code, msg string) []byte {
	// All of them are about the request, whatever their status.
	e := &Error{Status: status, Type: "invalid_request_error", Code: code, Message: msg}
	body, _ := json.Marshal(e.body())
	body = append(body, '\n')
	out := make([]byte, 0, 160+len(body))
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(status)...)
	out = append(out, "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n\r\n"...)
	return append(out, body...)
}
