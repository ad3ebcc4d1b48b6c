package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/experiment"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/respcache"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/daemon/web"
)

// Pool is what the API needs from the model pool; *pool.Pool implements it.
type Pool interface {
	Resolve(nameOrAlias string) (string, bool)
	Complete(ctx context.Context, model string, req runner.Request, onText func(string)) (runner.Result, error)
	Embed(ctx context.Context, model, input string) (runner.EmbedResult, error)
	Load(ctx context.Context, model string) error
	Unload(ctx context.Context, model string) error
	Models() []pool.ModelStatus
	Model(name string) (pool.ModelStatus, bool)
	Status() pool.Status
	Optimize(ctx context.Context) pool.OptimizeReport
	Ready() bool
	Performance() pool.Performance
	Events() []pool.Event
}

var _ Pool = (*pool.Pool)(nil)

// Options configure a Server.
type Options struct {
	Pool    Pool
	Config  *config.Config
	Version string
	Log     *slog.Logger
	// Started is when the daemon started, for /status; default now.
	Started time.Time
	// Platform, when set, gives /status its "platform" section
	// (temperatures, throttle, memory, power).
	Platform func() any
	// Metrics, when set, serves GET /metrics.
	Metrics http.Handler
	// ReloadStatus, when set, gives /status the config reload figures.
	ReloadStatus func() admin.ReloadStatus
	// Shedding, when set, says whether the thermal policy sheds load now
	// and why; GET /ready is 503 while it does.
	Shedding func() (bool, string)
	// BodyTimeout bounds reading a request's body (a client that trickles
	// it byte by byte gets 408); default DefaultBodyTimeout.
	BodyTimeout time.Duration
	// WriteTimeout bounds each write of an answer: a client that stops
	// reading (a stream it never consumes) has its request canceled, which
	// frees the model's slot; default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Models, when set, serves /api/pull and /api/delete (with
	// server.allow_pull); the daemon's pull and rm.
	Models Models
}

// Defaults of Options.BodyTimeout and WriteTimeout. There is no
// http.Server ReadTimeout or WriteTimeout: those would cut streams that
// run longer; these apply to the body's read and to each write.
const (
	DefaultBodyTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// Server state, as /health reports it.
const (
	StateStarting int32 = iota
	StateServing
	StateStopping
)

var stateNames = [...]string{"starting", "ok", "stopping"}

// Server is the REST API. Its Handler is safe for concurrent use.
type Server struct {
	pool    Pool
	version string
	log     *slog.Logger
	started time.Time
	state   atomic.Int32
	// live is the config in force and what is derived from it; a reload
	// swaps it whole (SetConfig), so a request sees one config throughout
	// each use.
	live    atomic.Pointer[liveConfig]
	reload  func() admin.ReloadStatus
	manage  Models // /api/pull, /api/delete (ollama_pull.go)
	handler http.Handler
	methods map[string][]string // path -> methods, for 405 answers
	plat    func() any
	routes  []string        // "METHOD pattern" as registered, for Routes
	open    map[string]bool // patterns that need no API key
	mux     *http.ServeMux
	openapi []byte // the OpenAPI document, with this daemon's version

	bodyTimeout, writeTimeout time.Duration

	shedding func() (bool, string) // Options.Shedding (ready.go)

	respCache atomic.Pointer[respcache.Cache] // respcache.go; replaced when its disk tier is turned on or moved
	respDisk  string                          // the disk tier's directory in force ("" none)
	hashes    *respcache.FileHashes           // model and adapter files' sha256

	exps   *experiment.Set    // experiment.go
	shadow *experiment.Shadow // shadow copies' queue
}

// New builds the API over opts.Pool. The server starts in the "starting"
// state: /health answers 503 until SetState(StateServing).
func New(opts Options) *Server {
	s := &Server{pool: opts.Pool, version: opts.Version, log: opts.Log, started: opts.Started, plat: opts.Platform, reload: opts.ReloadStatus, shedding: opts.Shedding, manage: opts.Models}
	s.hashes = respcache.NewFileHashes()
	s.exps, s.shadow = experiment.New(), experiment.NewShadow(experiment.ShadowWorkers, experiment.ShadowQueue)
	s.SetConfig(opts.Config)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.started.IsZero() {
		s.started = time.Now()
	}
	if s.version == "" {
		s.version = "dev"
	}
	s.bodyTimeout, s.writeTimeout = opts.BodyTimeout, opts.WriteTimeout
	if s.bodyTimeout <= 0 {
		s.bodyTimeout = DefaultBodyTimeout
	}
	if s.writeTimeout <= 0 {
		s.writeTimeout = DefaultWriteTimeout
	}
	mux := http.NewServeMux()
	s.mux = mux
	s.methods = map[string][]string{}
	s.open = map[string]bool{}
	route := func(method, pattern string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+pattern, h)
		path := strings.TrimSuffix(pattern, "{$}")
		s.methods[path] = append(s.methods[path], method)
		s.routes = append(s.routes, method+" "+pattern)
	}
	// Documentation and dashboard pages: open without a key (they hold no
	// data; their scripts send the key with every API call they make).
	s.openapi = openapiDoc(s.version)
	route("GET", "/openapi.json", s.openapiJSON)
	for _, pg := range web.Routes() {
		route("GET", pg.Pattern, pg.Handler)
		s.open["GET "+pg.Pattern] = true
	}
	s.open["GET /openapi.json"] = true
	route("GET", "/health", s.health)
	route("GET", "/ready", s.ready) // ready.go
	route("GET", "/status", s.status)
	route("GET", "/models", s.models)
	route("POST", "/load_model", s.loadModel)
	route("POST", "/unload_model", s.unloadModel)
	route("POST", "/inference", s.inference)
	route("POST", "/batch_inference", s.batchInference)
	route("GET", "/performance", s.performance)
	route("POST", "/optimize", s.optimize)
	route("POST", "/feedback", s.feedback) // experiment.go
	if opts.Metrics != nil {
		route("GET", "/metrics", opts.Metrics.ServeHTTP)
	}
	route("GET", "/v1/models", s.openaiModels)
	route("GET", "/v1/models/{model...}", s.openaiModel)
	route("POST", "/v1/chat/completions", s.chatCompletions)
	route("POST", "/v1/completions", s.completions)
	route("POST", "/v1/embeddings", s.embeddings)
	s.ollamaRoutes(route)  // ollama.go
	s.utilityRoutes(route) // utility.go
	mux.HandleFunc("/", s.notFound)
	s.handler = ollamaErrors(s.recoverer(s.guard(s.auth(s.limits(mux))))) // guard.go, ollama.go
	return s
}

// probePath reports whether path is a probe's (liveness /health,
// readiness /ready): open without an API key and to any Host.
func probePath(path string) bool { return path == "/health" || path == "/ready" }

// Routes lists the registered routes as "METHOD pattern" (net/http
// ServeMux patterns), in registration order. The OpenAPI test checks them
// against the document.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// liveConfig is a config and the API keys' hashes made from it.
type liveConfig struct {
	cfg  *config.Config
	keys [][32]byte // sha256 of each API key
}

// SetConfig puts cfg in force from the next read on: each read of the
// config sees one whole config, old or new, never a mix. Everything the API
// takes from the config applies: API keys, CORS origins, body limit,
// request timeout, router and sampling defaults.
func (s *Server) SetConfig(cfg *config.Config) {
	lc := &liveConfig{cfg: cfg}
	for _, k := range cfg.Server.APIKeys {
		lc.keys = append(lc.keys, sha256.Sum256([]byte(k)))
	}
	s.live.Store(lc)
	s.applyCacheConfig(cfg)
	s.exps.Apply(cfg)
}

// cfg is the config in force.
func (s *Server) cfg() *config.Config { return s.live.Load().cfg }

// Handler is the whole API with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// SetState switches what /health answers (StateStarting, StateServing,
// StateStopping).
func (s *Server) SetState(st int32) { s.state.Store(st) }

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/v1/models/") {
		path = "/v1/models/{model...}"
	}
	if ms, ok := s.methods[path]; ok {
		w.Header().Set("Allow", strings.Join(ms, ", "))
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: r.Method + " is not allowed on " + r.URL.Path + "; use " + strings.Join(ms, " or ")})
		return
	}
	writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no endpoint " + r.URL.Path + "; see the API documentation"})
}

// recoverer turns a panic in a handler into a 500 JSON answer (when nothing
// was written yet) and a log line; the daemon keeps serving.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		r, id := withRequestID(w, r) // requestid.go
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "request_id", id, "panic", v, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the daemon logged it"})
				}
			}
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				s.log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", time.Since(start).Milliseconds(), "request_id", id)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// auth checks the Bearer API key when server.api_keys is set. /health and
// /ready are open so that probes work without a key.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys := s.live.Load().keys
		if len(keys) == 0 || probePath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if _, pattern := s.mux.Handler(r); s.open[pattern] {
			next.ServeHTTP(w, r)
			return
		}
		// The scheme is case-insensitive (RFC 9110, 11.1): "bearer KEY" too.
		scheme, got, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		ok = ok && strings.EqualFold(scheme, "Bearer")
		if !ok || !keyOK(keys, strings.TrimSpace(got)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jetai"`)
			msg := "missing API key: send the header Authorization: Bearer <key> (server.api_keys)"
			if ok {
				msg = "invalid API key"
			}
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: "invalid_api_key", Message: msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// keyOK compares in constant time: hashing first makes the comparison
// independent of the keys' lengths, and every key is compared.
func keyOK(keys [][32]byte, key string) bool {
	h := sha256.Sum256([]byte(key))
	ok := 0
	for i := range keys {
		ok |= subtle.ConstantTimeCompare(h[:], keys[i][:])
	}
	return ok == 1
}

// limits applies the body-size limit, the body's read deadline, the
// per-write deadline and the request timeout.
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := s.cfg()
		maxBody, timeout := int64(cfg.Server.MaxBody), cfg.Server.RequestTimeout
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			if maxBody > 0 && r.ContentLength > maxBody {
				writeError(w, tooLarge(maxBody))
				return
			}
			// Errors of SetReadDeadline (a writer without deadlines,
			// as in tests through httptest.ResponseRecorder) leave the
			// body unbounded, as before.
			if rc.SetReadDeadline(time.Now().Add(s.bodyTimeout)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: s.bodyTimeout}
			}
			if maxBody > 0 {
				r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			}
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		if timeout > 0 && !probePath(r.URL.Path) {
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		r = r.WithContext(ctx)
		w = &deadlineWriter{ResponseWriter: w, rc: rc, timeout: s.writeTimeout, cancel: cancel}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody ends the body's read deadline once the body is read (the
// connection's reads after it are the server's watch for a client that
// goes away, which must not time out during a long answer), and turns a
// missed deadline into 408. After a missed deadline it stays in force, so
// that the server does not wait for the rest of the body before answering.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, &Error{Status: http.StatusRequestTimeout, Code: "body_timeout",
				Message: fmt.Sprintf("the request body did not arrive within %s", b.timeout)}
		}
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// deadlineWriter gives each write of the answer its own deadline; a write
// that fails (the client stopped reading, or went away) cancels the
// request, so the generation behind it stops and frees its slot.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	cancel  context.CancelFunc
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	n, err := w.ResponseWriter.Write(b)
	if err != nil {
		w.cancel()
	}
	return n, err
}

func (w *deadlineWriter) Flush() {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	if err := w.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		w.cancel()
	}
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusWriter remembers the status for logs and whether anything was
// written; it passes Flush through for streams.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
