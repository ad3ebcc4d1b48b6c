package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
)

// Ollama's API under /api/, as Ollama's docs/api.md describes it: the
// clients that speak it (the official ollama libraries, Open WebUI, Home
// Assistant, Continue, n8n) work against jetai unchanged. Requests are
// decoded into the same internal requests as /v1 (a chat becomes a
// chatRequest and goes through chatRequest.job), so the surfaces differ only
// in decoding and encoding. Unknown fields and unknown options are ignored,
// as Ollama does; fields whose meaning cannot be honoured (suffix,
// template, context, think) are refused with a 400 that names them.

func (s *Server) ollamaRoutes(route func(method, pattern string, h http.HandlerFunc)) {
	route("GET", "/api/version", s.ollamaVersion)
	route("GET", "/api/tags", s.ollamaTags)
	route("GET", "/api/ps", s.ollamaPS)
	route("POST", "/api/show", s.ollamaShow)
	route("POST", "/api/generate", s.ollamaGenerate)
	route("POST", "/api/chat", s.ollamaChat)
	route("POST", "/api/embed", s.ollamaEmbed)
	route("POST", "/api/embeddings", s.ollamaEmbeddings)
	route("POST", "/api/pull", s.ollamaPull)
	route("DELETE", "/api/delete", s.ollamaDelete)
}

// --- errors in Ollama's shape ---

// ollamaWriter marks an answer under /api/: writeError renders errors in
// Ollama's shape there, whichever layer (guard, auth, limits, handler)
// writes them.
type ollamaWriter struct{ http.ResponseWriter }

func (w *ollamaWriter) ollamaShape()                {}
func (w *ollamaWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *ollamaWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func ollamaErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			w = &ollamaWriter{w}
		}
		next.ServeHTTP(w, r)
	})
}

// ollamaShaped reports whether w (or a writer it wraps) answers under
// /api/.
func ollamaShaped(w http.ResponseWriter) bool {
	for {
		if _, ok := w.(interface{ ollamaShape() }); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// ollamaErrorBody is Ollama's error, {"error": "..."}, with jetai's
// machine-readable code beside it (Ollama's clients read only "error").
type ollamaErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

func writeOllamaError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	writeJSON(w, e.Status, ollamaErrorBody{Error: e.Message, Code: e.Code})
}

// --- request fields ---

// ollamaOptions are the options of Ollama's requests that jetai maps onto
// its sampling settings. Others (num_gpu, num_thread, use_mmap, ...) are
// the model's configuration in jetai and are ignored, as Ollama ignores
// options it does not know.
type ollamaOptions struct {
	// NumCtx is accepted and ignored: a model's context is its
	// configuration (context, parallel); a prompt that does not fit it is
	// refused with context_overflow.
	NumCtx           *int     `json:"num_ctx"`
	NumPredict       *int     `json:"num_predict"`
	Temperature      *float64 `json:"temperature"`
	TopK             *int     `json:"top_k"`
	TopP             *float64 `json:"top_p"`
	MinP             *float64 `json:"min_p"`
	RepeatPenalty    *float64 `json:"repeat_penalty"`
	RepeatLastN      *int     `json:"repeat_last_n"`
	PresencePenalty  *float64 `json:"presence_penalty"`
	FrequencyPenalty *float64 `json:"frequency_penalty"`
	Seed             *int64   `json:"seed"`
	Stop             stopList `json:"stop"`
}

// unlimited asks for as many tokens as the model's context holds
// (sampleFields.request caps it there).
const unlimited = math.MaxInt32

// fields maps the options and format onto jetai's sampling fields.
func (o *ollamaOptions) fields(format json.RawMessage) (sampleFields, *Error) {
	var f sampleFields
	if o != nil {
		f = sampleFields{
			Temperature: o.Temperature, TopK: o.TopK, TopP: o.TopP, MinP: o.MinP,
			RepeatPenalty: o.RepeatPenalty, RepeatLastN: o.RepeatLastN,
			PresencePenalty: o.PresencePenalty, FrequencyPenalty: o.FrequencyPenalty,
			Seed: o.Seed, Stop: o.Stop,
		}
		if n := o.NumPredict; n != nil {
			// Ollama: -1 generates until the context is full, -2 fills
			// it; 0 sets no limit either.
			v := *n
			if v <= 0 {
				v = unlimited
			}
			f.MaxTokens = &v
		}
	}
	schema, e := formatSchema(format)
	if e != nil {
		return f, e
	}
	f.JSONSchema = schema
	if e := f.validate(); e != nil {
		e.Param = "options." + e.Param
		return f, e
	}
	return f, nil
}

// formatSchema turns Ollama's format ("json", a JSON schema, or nothing)
// into the JSON schema of jetai's structured output.
func formatSchema(raw json.RawMessage) (json.RawMessage, *Error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0, bytes.Equal(raw, []byte("null")), bytes.Equal(raw, []byte(`""`)):
		return nil, nil
	case bytes.Equal(raw, []byte(`"json"`)):
		return json.RawMessage(anyJSONObject), nil
	case raw[0] == '{':
		return raw, nil
	}
	return nil, badRequest("format", `format must be "json" or a JSON schema object`)
}

// keepAlive is a request's keep_alive: Ollama takes a number of seconds or
// a duration string; a negative value means forever.
type keepAlive struct {
	set bool
	d   time.Duration
}

func parseKeepAlive(raw json.RawMessage) (keepAlive, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return keepAlive{}, nil
	}
	bad := badRequest("keep_alive", `keep_alive must be a duration ("5m", "0", "-1") or a number of seconds`)
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return keepAlive{}, bad
		}
		d, err := time.ParseDuration(s)
		if err == nil {
			if d < 0 {
				d = -1
			}
			return keepAlive{set: true, d: d}, nil
		}
		// A number in a string ("-1", "300") is seconds, as a number is.
		raw = json.RawMessage(s)
	}
	var secs float64
	if json.Unmarshal(raw, &secs) != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
		return keepAlive{}, bad
	}
	if secs < 0 {
		return keepAlive{set: true, d: -1}, nil
	}
	if secs > float64(math.MaxInt64/int64(time.Second)) {
		secs = float64(math.MaxInt64 / int64(time.Second))
	}
	return keepAlive{set: true, d: time.Duration(secs * float64(time.Second))}, nil
}

// unloadNow reports whether keep_alive asks to unload the model once the
// request is done.
func (k keepAlive) unloadNow() bool { return k.set && k.d == 0 }

// afterRequest applies keep_alive 0: the model unloads once idle, unless
// its config pins it. Other values leave the model's configured keep_alive
// in force: jetai's memory policy is its config.
func (s *Server) afterRequest(model string, k keepAlive) {
	if !k.unloadNow() {
		return
	}
	st, ok := s.pool.Model(model)
	if !ok || st.Pinned || st.State != "ready" || st.Active > 0 || st.Queued > 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.pool.Unload(ctx, model); err != nil {
			s.log.Info("keep_alive 0: unload failed", "model", model, "error", err)
		}
	}()
}

// thinkOff refuses think: true (or a level): jetai does not separate a
// model's thinking from its answer.
func thinkOff(raw json.RawMessage) *Error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) || bytes.Equal(raw, []byte("false")) {
		return nil
	}
	return unsupported("think", "separating a model's thinking from its answer")
}

// ollamaName maps a model name as Ollama clients send it onto jetai's:
// "NAME:latest" is NAME, since the clients append the tag. A name that
// matches nothing is returned as given (the request then fails with
// model_not_found).
func (s *Server) ollamaName(name string) (string, *Error) {
	if name == "" {
		return "", badRequest("model", "model is required")
	}
	if _, ok := s.pool.Resolve(name); ok || name == "auto" {
		return name, nil
	}
	if base, ok := strings.CutSuffix(name, ":latest"); ok {
		if _, ok := s.pool.Resolve(base); ok || base == "auto" {
			return base, nil
		}
	}
	return name, nil
}

// resolveOllama is ollamaName for endpoints that need a configured model
// (not "auto").
func (s *Server) resolveOllama(name string) (string, *Error) {
	n, e := s.ollamaName(name)
	if e != nil {
		return "", e
	}
	canon, ok := s.pool.Resolve(n)
	if !ok {
		return "", s.unknownModel(name)
	}
	return canon, nil
}

// --- answers ---

type ollamaMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ToolCalls are an assistant's calls; a tool message names the tool
	// whose result it carries (ollama_tools.go). ToolCallID is not
	// Ollama's; it is read when a client sends one.
	ToolCalls  []ollamaToolCall `json:"tool_calls,omitempty"`
	ToolName   string           `json:"tool_name,omitempty"`
	ToolCallID string           `json:"tool_call_id,omitempty"`
	// Images are base64 image files, for a model with a projector.
	Images   []json.RawMessage `json:"images,omitempty"`
	Thinking string            `json:"thinking,omitempty"`
}

// ollamaFinal is the last object of a stream, or the whole answer. Chat
// answers carry Message, generate answers Response.
type ollamaFinal struct {
	Model         string         `json:"model"`
	CreatedAt     string         `json:"created_at"`
	Message       *ollamaMessage `json:"message,omitempty"`
	Response      *string        `json:"response,omitempty"`
	Done          bool           `json:"done"`
	DoneReason    string         `json:"done_reason,omitempty"`
	TotalDuration int64          `json:"total_duration,omitempty"`
	LoadDuration  int64          `json:"load_duration,omitempty"`
	// The counts are pointers: an answer always has them, even 0 tokens
	// (Ollama's final object requires them); load and unload replies none.
	PromptEvalCount    *int  `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration int64 `json:"prompt_eval_duration,omitempty"`
	EvalCount          *int  `json:"eval_count,omitempty"`
	EvalDuration       int64 `json:"eval_duration,omitempty"`
}

func createdAt() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func msToNS(ms float64) int64 { return int64(ms * 1e6) }

// metrics fills the final object's counts and durations (nanoseconds).
// load_duration is the time before the runner took the request: waiting
// for the model to load and for admission.
func (f *ollamaFinal) metrics(t runner.Timings, start time.Time) {
	total := time.Since(start)
	f.TotalDuration = int64(total)
	f.PromptEvalCount = &t.PromptTokens
	f.PromptEvalDuration = msToNS(t.PromptMS)
	f.EvalCount = &t.GeneratedTokens
	f.EvalDuration = msToNS(t.GenerationMS)
	if load := f.TotalDuration - msToNS(t.QueueMS+t.PromptMS+t.GenerationMS); load > 0 {
		f.LoadDuration = load
	}
}

// ndjson writes Ollama's streams: one JSON object per line. Headers go out
// with the first line, so an error before it is a plain HTTP error. Each
// text chunk is one Write and one Flush of a reused buffer.
type ndjson struct {
	w       http.ResponseWriter
	flusher http.Flusher
	started bool
	failed  bool
	prefix  []byte // up to and including `"created_at":`
	middle  []byte // between the time and the text
	suffix  []byte // after the text
	buf     []byte
}

func newNDJSON(w http.ResponseWriter) *ndjson {
	f, _ := w.(http.Flusher)
	return &ndjson{w: w, flusher: f, buf: make([]byte, 0, 512)}
}

func (n *ndjson) write(b []byte) {
	if n.failed {
		return
	}
	if !n.started {
		n.started = true
		h := n.w.Header()
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		n.w.WriteHeader(http.StatusOK)
	}
	if _, err := n.w.Write(b); err != nil {
		n.failed = true
		return
	}
	if n.flusher != nil {
		n.flusher.Flush()
	}
}

// text sends one chunk of generated text.
func (n *ndjson) text(t string) {
	b := append(n.buf[:0], n.prefix...)
	b = append(b, '"')
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = append(b, n.middle...)
	b = appendJSONString(b, t)
	b = append(b, n.suffix...)
	n.buf = b
	n.write(b)
}

func (n *ndjson) event(v any) {
	j, err := json.Marshal(v)
	if err != nil {
		return
	}
	n.write(append(j, '\n'))
}

// ollamaJob is a generation for /api/chat or /api/generate.
type ollamaJob struct {
	genJob
	chat   bool
	stream bool
	ka     keepAlive
	// plain, when set, is the same generation as a plain prompt, for a
	// model without a chat template (/api/generate formats its prompt with
	// the model's template when there is one).
	plain *genJob
}

func (s *Server) ollamaRun(w http.ResponseWriter, r *http.Request, oj ollamaJob, start time.Time) {
	var nd *ndjson
	var calls *callCollector
	model := ""
	setup := func(j *genJob) {
		if nd == nil {
			return
		}
		j.before = func(m string) {
			model = m
			nd.prefix = append(append(append(nd.prefix[:0], `{"model":`...), appendJSONString(nil, m)...), `,"created_at":`...)
			if oj.chat {
				nd.middle = []byte(`,"message":{"role":"assistant","content":`)
				nd.suffix = []byte(`},"done":false}` + "\n")
			} else {
				nd.middle = []byte(`,"response":`)
				nd.suffix = []byte(`,"done":false}` + "\n")
			}
		}
		j.onText = nd.text
		if oj.chat {
			build := j.build
			j.build = func(m *config.Model) (runner.Request, *Error) {
				rr, e := build(m)
				rr.Observe = calls.observe
				return rr, e
			}
		}
	}
	if oj.stream {
		nd = newNDJSON(w)
		calls = &callCollector{emit: func(c []ollamaToolCall) {
			nd.event(ollamaFinal{Model: model, CreatedAt: createdAt(),
				Message: &ollamaMessage{Role: "assistant", Content: "", ToolCalls: c}})
		}}
	}
	oj.genJob.cache = s.noteFor(w, r)
	if oj.plain != nil {
		oj.plain.cache = oj.genJob.cache
	}
	setup(&oj.genJob)
	out, err := s.generate(r.Context(), oj.genJob)
	var re *runner.RequestError
	if err != nil && oj.plain != nil && errors.As(err, &re) && re.Reason == runner.CodeNoChatTemplate && (nd == nil || !nd.started) {
		setup(oj.plain)
		out, err = s.generate(r.Context(), *oj.plain)
	}
	if err != nil {
		e := errorFor(r.Context(), err, s.cfg().Server.RequestTimeout)
		s.logFailure(r, out.Model, e)
		if nd != nil && nd.started {
			nd.event(ollamaErrorBody{Error: e.Message, Code: e.Code})
			return
		}
		writeError(w, e)
		return
	}
	s.afterRequest(out.Model, oj.ka)
	reason := finishReason(out.Result.FinishReason)
	if out.Result.FinishReason == runner.FinishToolCalls {
		reason = "stop" // Ollama ends an answer of calls as any other
	}
	f := ollamaFinal{Model: out.Model, CreatedAt: createdAt(), Done: true, DoneReason: reason}
	f.metrics(out.Result.Timings, start)
	text := out.Result.Text
	if nd != nil {
		text = "" // streamed already
		if oj.chat {
			calls.finish(out.Result.ToolCalls)
		}
	}
	if oj.chat {
		f.Message = &ollamaMessage{Role: "assistant", Content: text}
		if nd == nil {
			f.Message.ToolCalls = ollamaCalls(out.Result.ToolCalls, 0)
		}
	} else {
		f.Response = &text
	}
	if nd != nil {
		nd.event(f)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// loadOrUnload answers a chat or generate request without messages or
// prompt: Ollama's way to load a model (or, with keep_alive 0, unload it).
func (s *Server) loadOrUnload(w http.ResponseWriter, r *http.Request, name string, k keepAlive, chat bool) {
	canon, e := s.resolveOllama(name)
	if e != nil {
		writeError(w, e)
		return
	}
	f := ollamaFinal{Model: canon, Done: true, DoneReason: "load"}
	if k.unloadNow() {
		if st, ok := s.pool.Model(canon); ok && st.Pinned {
			writeError(w, &Error{Status: http.StatusConflict, Code: "model_pinned", Param: "keep_alive",
				Message: "model " + quote(canon) + " is pinned (pinned = true in its config): it stays loaded"})
			return
		}
		if err := s.pool.Unload(r.Context(), canon); err != nil {
			writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
			return
		}
		f.DoneReason = "unload"
	} else if err := s.pool.Load(r.Context(), canon); err != nil {
		writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
		return
	}
	f.CreatedAt = createdAt()
	empty := ""
	if chat {
		f.Message = &ollamaMessage{Role: "assistant", Content: ""}
	} else {
		f.Response = &empty
	}
	writeJSON(w, http.StatusOK, f)
}

// --- /api/chat ---

type ollamaChatRequest struct {
	Model     string          `json:"model"`
	Messages  []ollamaMessage `json:"messages"`
	Tools     []any           `json:"tools"`
	Format    json.RawMessage `json:"format"`
	Options   *ollamaOptions  `json:"options"`
	Stream    *bool           `json:"stream"`
	KeepAlive json.RawMessage `json:"keep_alive"`
	Think     json.RawMessage `json:"think"`
}

func (s *Server) ollamaChat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req ollamaChatRequest
	if e := decodeBody(r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	j, e := s.ollamaChatJob(&req)
	if e != nil {
		writeError(w, e)
		return
	}
	if len(req.Messages) == 0 {
		s.loadOrUnload(w, r, req.Model, j.ka, true)
		return
	}
	s.ollamaRun(w, r, j, start)
}

// ollamaChatJob converts the request into a chatRequest and takes its job
// from the chat path /v1/chat/completions uses.
func (s *Server) ollamaChatJob(req *ollamaChatRequest) (ollamaJob, *Error) {
	oj := ollamaJob{chat: true, stream: req.Stream == nil || *req.Stream}
	name, e := s.ollamaName(req.Model)
	if e != nil {
		return oj, e
	}
	if oj.ka, e = parseKeepAlive(req.KeepAlive); e != nil {
		return oj, e
	}
	if e := thinkOff(req.Think); e != nil {
		return oj, e
	}
	if len(req.Messages) == 0 {
		return oj, nil
	}
	cr := chatRequest{}
	if len(req.Tools) > 0 {
		tools, err := json.Marshal(req.Tools)
		if err != nil {
			return oj, badRequest("tools", "tools: %v", err)
		}
		cr.Tools = tools
	}
	cr.Model = name
	if cr.Messages, e = ollamaChatMessages(req.Messages); e != nil {
		return oj, e
	}
	if cr.sampleFields, e = req.Options.fields(req.Format); e != nil {
		return oj, e
	}
	if oj.genJob, e = cr.job(); e != nil {
		return oj, e
	}
	return oj, nil
}

// --- /api/generate ---

type ollamaGenerateRequest struct {
	Model     string          `json:"model"`
	Prompt    string          `json:"prompt"`
	System    string          `json:"system"`
	Raw       bool            `json:"raw"`
	Format    json.RawMessage `json:"format"`
	Options   *ollamaOptions  `json:"options"`
	Stream    *bool           `json:"stream"`
	KeepAlive json.RawMessage `json:"keep_alive"`
	Think     json.RawMessage `json:"think"`
	// Images are base64 image files, for a model with a projector.
	Images []json.RawMessage `json:"images"`
	// Fields jetai cannot honour; a value that asks for them is refused.
	Suffix   string `json:"suffix"`
	Template string `json:"template"`
	Context  []int  `json:"context"`
}

func (s *Server) ollamaGenerate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req ollamaGenerateRequest
	if e := decodeBody(r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	j, e := s.ollamaGenerateJob(&req)
	if e != nil {
		writeError(w, e)
		return
	}
	if req.Prompt == "" {
		s.loadOrUnload(w, r, req.Model, j.ka, false)
		return
	}
	s.ollamaRun(w, r, j, start)
}

// ollamaGenerateJob: the prompt goes through the model's chat template (as
// a user message after the system message) unless raw is set or the model
// has no template; then it is the prompt as it is.
func (s *Server) ollamaGenerateJob(req *ollamaGenerateRequest) (ollamaJob, *Error) {
	oj := ollamaJob{stream: req.Stream == nil || *req.Stream}
	name, e := s.ollamaName(req.Model)
	if e != nil {
		return oj, e
	}
	if oj.ka, e = parseKeepAlive(req.KeepAlive); e != nil {
		return oj, e
	}
	images, e := ollamaImages(req.Images, "images", "images")
	if e != nil {
		return oj, e
	}
	switch {
	case req.Suffix != "":
		return oj, unsupported("suffix", "inserting text before a suffix")
	case req.Template != "":
		return oj, unsupported("template", "Ollama's Go templates; the model's own chat template applies")
	case len(req.Context) > 0:
		return oj, unsupported("context", "the token context of an earlier answer; send the conversation to /api/chat")
	}
	if e := thinkOff(req.Think); e != nil {
		return oj, e
	}
	if req.Prompt == "" {
		return oj, nil
	}
	f, e := req.Options.fields(req.Format)
	if e != nil {
		return oj, e
	}
	prompt := req.Prompt
	if req.System != "" {
		prompt = req.System + "\n\n" + req.Prompt
	}
	plain := genJob{
		spec:   selectSpec{Model: name},
		images: images,
		est:    estimateFor(prompt, &f, false),
		build: func(m *config.Model) (runner.Request, *Error) {
			rr, e := f.request(m)
			rr.Prompt = prompt
			return rr, e
		},
	}
	if req.Raw || !s.hasChatTemplate(name) {
		oj.genJob = plain
		return oj, nil
	}
	cr := chatRequest{}
	cr.Model, cr.sampleFields = name, f
	if req.System != "" {
		cr.Messages = append(cr.Messages, chatMessage{Role: "system", Content: chatContent(req.System)})
	}
	cr.Messages = append(cr.Messages, chatMessage{Role: "user", Content: chatContent(req.Prompt), Images: images})
	if oj.genJob, e = cr.job(); e != nil {
		return oj, e
	}
	oj.plain = &plain
	return oj, nil
}

// hasChatTemplate says whether model has a chat template, as far as the
// daemon knows without loading it: true unless its loaded runner said it
// has none (ollamaRun falls back to the plain prompt when the runner
// refuses the messages).
func (s *Server) hasChatTemplate(name string) bool {
	canon, ok := s.pool.Resolve(name)
	if !ok {
		return true
	}
	if st, ok := s.pool.Model(canon); ok && st.Info != nil {
		return st.Info.ChatSupported
	}
	return true
}

// --- /api/version; /api/pull and /api/delete are in ollama_pull.go ---

func (s *Server) ollamaVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.version})
}

// pullGate refuses model management through /api unless server.allow_pull
// is set: it changes what is on disk, which is the config's business.
func (s *Server) pullGate(w http.ResponseWriter, what string) bool {
	if !s.cfg().Server.AllowPull {
		writeError(w, &Error{Status: http.StatusForbidden, Code: "pull_disabled",
			Message: what + " through the Ollama API is off; set server.allow_pull = true in jetai.hcl to allow it (jetai-ctl manages models over the admin socket)"})
		return false
	}
	return true
}

// ollamaImages reads Ollama's images: base64 strings (the JSON of a byte
// array, as Go clients marshal []byte). param is the error's parameter,
// field the array's path.
func ollamaImages(raw []json.RawMessage, param, field string) ([]imageRef, *Error) {
	var out []imageRef
	for k, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err != nil || s == "" {
			return nil, badRequest(param, "%s[%d] must be a base64 string of an image file", field, k)
		}
		out = append(out, imageRef{Base64: s})
	}
	return out, nil
}
