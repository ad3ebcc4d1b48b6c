package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// Backend is what the admin API drives; the daemon implements it. An error
// a method returns chooses the answer's status and code: an *Error, or any
// error with Code() string and HTTPStatus() int methods (and RetryAfter()
// time.Duration for a Retry-After header); any other error is a 500.
type Backend interface {
	Status(ctx context.Context) Status
	Models(ctx context.Context) []Model
	// Load starts loading name; with wait it returns once the model is
	// ready or its load failed.
	Load(ctx context.Context, name string, wait bool) (LoadResult, error)
	Unload(ctx context.Context, name string) (LoadResult, error)
	Optimize(ctx context.Context) (OptimizeReport, error)
	// Reload re-reads the config file and applies it, returning once it is
	// applied or rejected.
	Reload(ctx context.Context) (ReloadResult, error)
	Validate(ctx context.Context, req ValidateRequest) ValidateResult
	LogLevel() string
	SetLogLevel(level string) error
	Complete(ctx context.Context, req CompleteRequest, onText func(string)) (CompleteResult, error)
}

// Options configure a Server.
type Options struct {
	Backend Backend
	Access  Access
	Log     *slog.Logger
	// TopInterval bounds /v1/top's interval from below; default 200ms.
	MinTopInterval time.Duration
	// WriteTimeout bounds each line of a stream (top, complete, import):
	// a client that stops reading but keeps the connection open is cut
	// off instead of holding its handler forever; default 30s.
	WriteTimeout time.Duration
}

// Server serves the admin API on Unix sockets.
type Server struct {
	opts Options
	log  *slog.Logger
	hs   *http.Server
	mux  *http.ServeMux
}

// NewServer builds the server; Serve starts it.
func NewServer(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Log, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.MinTopInterval <= 0 {
		s.opts.MinTopInterval = 200 * time.Millisecond
	}
	if s.opts.WriteTimeout <= 0 {
		s.opts.WriteTimeout = 30 * time.Second
	}
	m := s.mux
	m.HandleFunc("GET /v1/status", s.status)
	m.HandleFunc("GET /v1/models", s.models)
	m.HandleFunc("POST /v1/models/{name}/load", s.load)
	m.HandleFunc("POST /v1/models/{name}/unload", s.unload)
	m.HandleFunc("POST /v1/optimize", s.optimize)
	m.HandleFunc("POST /v1/reload", s.reload)
	m.HandleFunc("POST /v1/validate", s.validate)
	m.HandleFunc("GET /v1/log-level", s.getLevel)
	m.HandleFunc("PUT /v1/log-level", s.setLevel)
	m.HandleFunc("GET /v1/top", s.top)
	m.HandleFunc("POST /v1/complete", s.complete)
	s.routeModelFiles(m)  // modelfiles.go
	s.routeBench(m)       // bench.go
	s.routePull(m)        // pull.go
	s.routeLocalModels(m) // localmodels.go
	s.routeExperiments(m) // experiments.go
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, Errorf(http.StatusNotFound, CodeNotFound, "no admin endpoint %s %s (this daemon speaks API v%d; see GET /v1/status)", r.Method, r.URL.Path, APIVersion))
	})
	s.hs = &http.Server{
		Handler:           s.guard(m),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       withPeer,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s
}

// Handler is the API with its access check, for tests that bring their
// own transport. Connections without peer credentials are refused.
func (s *Server) Handler() http.Handler { return s.hs.Handler }

// Serve serves ln (a Unix socket listener) until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.hs.Serve(peerListener{ln})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits (up to ctx) for requests to finish;
// streams (top) are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	if err != nil {
		s.hs.Close()
	}
	return err
}

// guard checks the peer's credentials and turns panics into 500s.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pc, ok := peerFrom(r.Context())
		if !ok || pc.err != nil {
			msg := "cannot read the peer's credentials"
			if ok {
				msg += ": " + pc.err.Error()
			}
			writeError(w, Errorf(http.StatusForbidden, CodeForbidden, "%s", msg))
			return
		}
		if err := s.opts.Access.Allowed(pc.peer); err != nil {
			s.log.Warn("admin socket: refused a client", "uid", pc.peer.Uid, "pid", pc.peer.Pid, "path", r.URL.Path)
			writeError(w, err)
			return
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in admin handler", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, Errorf(http.StatusInternalServerError, CodeInternal, "internal error; the daemon logged it"))
			}
		}()
		s.log.Debug("admin request", "method", r.Method, "path", r.URL.Path, "uid", pc.peer.Uid, "pid", pc.peer.Pid)
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	e := asError(err, http.StatusInternalServerError, CodeInternal)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	writeJSON(w, statusOf(e), ErrorBody{Error: *e})
}

// decode reads an optional JSON body into v.
func decode(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, 4<<20)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "bad request body: %v", err)
	}
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.opts.Backend.Status(r.Context()))
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	ms := s.opts.Backend.Models(r.Context())
	if ms == nil {
		ms = []Model{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": ms})
}

func (s *Server) load(w http.ResponseWriter, r *http.Request) {
	var req LoadRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if v := r.URL.Query().Get("wait"); v != "" {
		req.Wait, _ = strconv.ParseBool(v)
	}
	res, err := s.opts.Backend.Load(r.Context(), r.PathValue("name"), req.Wait)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if !req.Wait && res.Model.State != StateReady {
		status = http.StatusAccepted
	}
	writeJSON(w, status, res)
}

func (s *Server) unload(w http.ResponseWriter, r *http.Request) {
	res, err := s.opts.Backend.Unload(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) optimize(w http.ResponseWriter, r *http.Request) {
	rep, err := s.opts.Backend.Optimize(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	res, err := s.opts.Backend.Reload(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if !res.OK {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, res)
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	var req ValidateRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Path == "" {
		writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, `give the file: {"path": "/etc/jetai/jetai.hcl", "content": "…"}`))
		return
	}
	res := s.opts.Backend.Validate(r.Context(), req)
	status := http.StatusOK
	if !res.OK {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, res)
}

func (s *Server) getLevel(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, LogLevel{Level: s.opts.Backend.LogLevel()})
}

func (s *Server) setLevel(w http.ResponseWriter, r *http.Request) {
	var req LogLevel
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.opts.Backend.SetLogLevel(req.Level); err != nil {
		var e *Error
		if !errors.As(err, &e) {
			err = Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, LogLevel{Level: s.opts.Backend.LogLevel()})
}

// top streams a Status per interval as NDJSON until the client goes away.
func (s *Server) top(w http.ResponseWriter, r *http.Request) {
	every := time.Second
	if v := r.URL.Query().Get("interval"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, "interval %q: %v (for example 1s or 500ms)", v, err))
			return
		}
		every = max(d, s.opts.MinTopInterval)
	}
	count := 0
	if v := r.URL.Query().Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, "count %q: want a number ≥ 0 (0: until the client leaves)", v))
			return
		}
		count = n
	}
	w.Header().Set("Cache-Control", "no-store")
	out := s.newNDJSON(w)
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		if err := out.send(s.opts.Backend.Status(r.Context())); err != nil {
			return
		}
		if count > 0 && n >= count {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// complete streams CompleteFrames: text frames, then one done frame with
// the timings, or an error frame.
func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	var req CompleteRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Model == "" {
		writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, `give the model: {"model": "NAME", "prompt": "…"}`))
		return
	}
	out := s.newNDJSON(w)
	res, err := s.opts.Backend.Complete(r.Context(), req, func(text string) {
		out.send(CompleteFrame{Text: text})
	})
	switch {
	case err != nil && !out.started:
		writeError(w, err)
	case err != nil:
		e := asError(err, http.StatusInternalServerError, CodeInternal)
		out.send(CompleteFrame{Done: true, FinishReason: FinishError, Error: e.Message, Code: e.Code})
	default:
		out.send(CompleteFrame{Done: true, FinishReason: res.FinishReason, Timings: &res.Timings})
	}
}

// ndjson answers with a stream of JSON lines. The 200 status goes out with
// the first line, so a failure before it can still be a plain error answer.
type ndjson struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	enc     *json.Encoder
	timeout time.Duration
	started bool
}

func (s *Server) newNDJSON(w http.ResponseWriter) *ndjson {
	return &ndjson{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w), timeout: s.opts.WriteTimeout}
}

// send writes v as one line and flushes it to the client.
func (n *ndjson) send(v any) error {
	if !n.started {
		n.started = true
		n.w.Header().Set("Content-Type", "application/x-ndjson")
		n.w.WriteHeader(http.StatusOK)
	}
	n.rc.SetWriteDeadline(time.Now().Add(n.timeout))
	if err := n.enc.Encode(v); err != nil {
		return err
	}
	return n.rc.Flush()
}
