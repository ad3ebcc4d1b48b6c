package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Client talks to a daemon's admin socket.
type Client struct {
	Socket string
	// AnswerTimeout is how long the daemon has to start answering a
	// request that reads or sets something (GET, PUT), and a status probe
	// sent before each operation (POST: load, reload, import, …), whose
	// own answer may take long. Past it the daemon counts as hung: an
	// UnreachableError. NewClient sets DefaultAnswerTimeout; 0: no limit.
	AnswerTimeout time.Duration
	hc            *http.Client
}

// DefaultAnswerTimeout is Client.AnswerTimeout's default: far above a
// healthy daemon's answer (milliseconds), below systemd's watchdog (20 s
// in the packaged unit), which restarts a hung daemon.
const DefaultAnswerTimeout = 15 * time.Second

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	d := net.Dialer{Timeout: 3 * time.Second}
	return &Client{Socket: path, AnswerTimeout: DefaultAnswerTimeout, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}}}
}

// Close closes the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// UnreachableError means the daemon could not be talked to at all: no
// socket, nobody listening, or no permission to connect.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func (e *UnreachableError) Error() string {
	group := DefaultGroup
	switch {
	case errors.Is(e.Err, syscall.ENOENT):
		return fmt.Sprintf("no admin socket at %s: is jetaid running? try: systemctl status jetaid (or give the socket with --socket or JETAI_SOCKET)", e.Socket)
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing answers on %s: jetaid is not running (stale socket); try: systemctl status jetaid", e.Socket)
	case errors.Is(e.Err, syscall.EACCES), errors.Is(e.Err, syscall.EPERM):
		return fmt.Sprintf("permission denied on %s: run jetai-ctl as root or as a member of group %s (sudo usermod -aG %s $USER, then log in again)", e.Socket, group, group)
	}
	var na *noAnswerError
	if errors.As(e.Err, &na) {
		return fmt.Sprintf("jetaid on %s accepted the connection but did not answer within %s: it is hung or overloaded; try: systemctl status jetaid; journalctl -u jetaid (systemd's watchdog restarts a hung jetaid)", e.Socket, na.after)
	}
	return fmt.Sprintf("cannot reach jetaid on %s: %v; is jetaid running? try: systemctl status jetaid", e.Socket, e.Err)
}

// noAnswerError: the daemon took the request but sent no answer in time.
type noAnswerError struct{ after time.Duration }

func (e *noAnswerError) Error() string { return fmt.Sprintf("no answer within %s", e.after) }

// APIError is an error answer from the daemon: its HTTP status, code,
// message and Retry-After.
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *APIError) Error() string { return e.Message }

// Forbidden reports whether the daemon refused the caller's credentials
// (a 403 "forbidden"; a 403 with another code is about something else,
// such as a gated repo refusing a pull).
func (e *APIError) Forbidden() bool {
	return e.Status == http.StatusForbidden && (e.Code == CodeForbidden || e.Code == "")
}

// do sends one request; out receives the JSON body of a 2xx answer, and
// also of the statuses in okAlso (a rejected reload still has a body).
func (c *Client) do(ctx context.Context, method, path string, in, out any, okAlso ...int) (int, error) {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	ok := resp.StatusCode/100 == 2
	for _, s := range okAlso {
		ok = ok || resp.StatusCode == s
	}
	if !ok {
		return resp.StatusCode, readError(resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: bad answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	if method == http.MethodPost && c.AnswerTimeout > 0 {
		// An operation's answer may rightly take long (a load with
		// wait, a reload); a status answer may not.
		resp, err := c.send(ctx, http.MethodGet, "/v1/status", nil)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://jetaid"+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.roundTrip(req, method != http.MethodPost)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var na *noAnswerError
		if errors.As(err, &na) {
			return nil, &UnreachableError{Socket: c.Socket, Err: na}
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, &UnreachableError{Socket: c.Socket, Err: op.Err}
		}
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EACCES) {
			return nil, &UnreachableError{Socket: c.Socket, Err: err}
		}
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, c.Socket, err)
	}
	return resp, nil
}

// roundTrip sends req; when bounded, the answer's headers must come within
// AnswerTimeout (the body, a stream maybe, is not bounded).
func (c *Client) roundTrip(req *http.Request, bounded bool) (*http.Response, error) {
	if !bounded || c.AnswerTimeout <= 0 {
		return c.hc.Do(req)
	}
	limit := c.AnswerTimeout
	ctx, cancel := context.WithCancelCause(req.Context())
	t := time.AfterFunc(limit, func() { cancel(&noAnswerError{after: limit}) })
	resp, err := c.hc.Do(req.WithContext(ctx))
	if !t.Stop() && req.Context().Err() == nil {
		// The timer fired: whatever came back came too late.
		if resp != nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, context.Cause(ctx)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, func() { cancel(nil) }}
	return resp, nil
}

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func readError(resp *http.Response) error {
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Message == "" {
		eb.Error = Error{Code: "http_" + fmt.Sprint(resp.StatusCode), Message: fmt.Sprintf("daemon answered %s: %s", resp.Status, strings.TrimSpace(string(b)))}
	}
	ae := &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		ae.RetryAfter = time.Duration(s) * time.Second
	}
	return ae
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	_, err := c.do(ctx, "GET", "/v1/status", nil, &s)
	return s, err
}

// Models returns every configured model.
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	var out struct {
		Models []Model `json:"models"`
	}
	_, err := c.do(ctx, "GET", "/v1/models", nil, &out)
	return out.Models, err
}

// Load starts loading a model; with wait it returns once it is ready.
func (c *Client) Load(ctx context.Context, name string, wait bool) (LoadResult, error) {
	var r LoadResult
	_, err := c.do(ctx, "POST", "/v1/models/"+url.PathEscape(name)+"/load", LoadRequest{Wait: wait}, &r)
	return r, err
}

// Unload unloads a model once its running requests finish.
func (c *Client) Unload(ctx context.Context, name string) (LoadResult, error) {
	var r LoadResult
	_, err := c.do(ctx, "POST", "/v1/models/"+url.PathEscape(name)+"/unload", nil, &r)
	return r, err
}

// Optimize unloads what keep-alive and the memory reserve say should go.
func (c *Client) Optimize(ctx context.Context) (OptimizeReport, error) {
	var r OptimizeReport
	_, err := c.do(ctx, "POST", "/v1/optimize", nil, &r)
	return r, err
}

// Reload asks the daemon to re-read its config; a rejected config is a
// result with OK false, not an error.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var r ReloadResult
	_, err := c.do(ctx, "POST", "/v1/reload", nil, &r, http.StatusUnprocessableEntity)
	return r, err
}

// Validate asks the daemon whether the file at path is a usable config.
func (c *Client) Validate(ctx context.Context, path string) (ValidateResult, error) {
	var r ValidateResult
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	_, err = c.do(ctx, "POST", "/v1/validate", ValidateRequest{Path: path, Content: string(b)}, &r, http.StatusUnprocessableEntity)
	return r, err
}

// LogLevel returns the daemon's log level.
func (c *Client) LogLevel(ctx context.Context) (string, error) {
	var l LogLevel
	_, err := c.do(ctx, "GET", "/v1/log-level", nil, &l)
	return l.Level, err
}

// SetLogLevel changes the daemon's log level until the next restart or
// config change of server.log_level.
func (c *Client) SetLogLevel(ctx context.Context, level string) (string, error) {
	var l LogLevel
	_, err := c.do(ctx, "PUT", "/v1/log-level", LogLevel{Level: level}, &l)
	return l.Level, err
}

// Top calls fn with a Status every interval until ctx ends, fn returns
// false, or count statuses have come (0: no limit).
func (c *Client) Top(ctx context.Context, interval time.Duration, count int, fn func(Status) bool) error {
	q := url.Values{"interval": {interval.String()}}
	if count > 0 {
		q.Set("count", fmt.Sprint(count))
	}
	resp, err := c.send(ctx, "GET", "/v1/top?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var s Status
		if err := dec.Decode(&s); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("top: %w", err)
		}
		if !fn(s) {
			return nil
		}
	}
}

// Complete runs one completion through the daemon's pool; onText (may be
// nil) receives the text as it comes.
func (c *Client) Complete(ctx context.Context, req CompleteRequest, onText func(string)) (CompleteResult, error) {
	var res CompleteResult
	resp, err := c.send(ctx, "POST", "/v1/complete", req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return res, readError(resp)
	}
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	var text strings.Builder
	for {
		var f CompleteFrame
		if err := dec.Decode(&f); err != nil {
			return res, fmt.Errorf("complete: stream ended early: %w", err)
		}
		if f.Text != "" {
			text.WriteString(f.Text)
			if onText != nil {
				onText(f.Text)
			}
		}
		if f.Done {
			if f.Error != "" {
				return res, &APIError{Status: http.StatusOK, Code: f.Code, Message: f.Error}
			}
			res.Text, res.FinishReason = text.String(), f.FinishReason
			if f.Timings != nil {
				res.Timings = *f.Timings
			}
			return res, nil
		}
	}
}
