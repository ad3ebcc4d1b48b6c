package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
)

// inferenceRequest is the body of POST /inference and of each entry of
// POST /batch_inference. Unknown fields are refused.
type inferenceRequest struct {
	Prompt         string `json:"prompt"`
	Model          string `json:"model"`
	AutoSelect     bool   `json:"auto_select"`
	PreferredModel string `json:"preferred_model"`
	Fallback       string `json:"fallback"`
	// User identifies the end user (an experiment's sticky key).
	User string `json:"user"`
	// MaxLength is the seed's name for max_tokens: new tokens to generate
	// (not counting the prompt). max_tokens wins when both are given.
	MaxLength *int `json:"max_length"`
	Stream    bool `json:"stream"`
	// Images are image files, each base64 or a data: URL, for a model
	// with a projector; they go before the prompt's text.
	Images []string `json:"images"`
	sampleFields
}

// InferenceResponse is the answer of POST /inference (and, with Done set,
// the last event of its stream).
type InferenceResponse struct {
	// ID names an experiment's answer for POST /feedback; empty otherwise.
	ID           string    `json:"id,omitempty"`
	Response     string    `json:"response"`
	Model        string    `json:"model"`
	Selection    Selection `json:"selection"`
	FinishReason string    `json:"finish_reason"`
	Usage        Usage     `json:"usage"`
	Timings      Timings   `json:"timings"`
	Done         bool      `json:"done,omitempty"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens int `json:"prompt_tokens"`
	// ImageTokens are the prompt tokens that are image embeddings.
	ImageTokens      int `json:"image_tokens,omitempty"`
	CompletionTokens int `json:"completion_tokens"`
	CachedTokens     int `json:"cached_tokens"`
	TotalTokens      int `json:"total_tokens"`
	// Cached: the answer came from the response cache.
	Cached bool `json:"cached,omitempty"`
}

// Timings are the runner's timings plus the whole request's.
type Timings struct {
	runner.Timings
	TotalMS         float64 `json:"total_ms"`
	TokensPerSecond float64 `json:"tokens_per_second"`
}

func usageOf(t runner.Timings) Usage {
	return Usage{PromptTokens: t.PromptTokens, ImageTokens: t.ImageTokens, CompletionTokens: t.GeneratedTokens, CachedTokens: t.CachedTokens, TotalTokens: t.PromptTokens + t.GeneratedTokens, Cached: t.Slot < 0}
}

func timingsOf(t runner.Timings, start time.Time) Timings {
	out := Timings{Timings: t, TotalMS: runner.Ms(time.Since(start))}
	if t.GenerationMS > 0 {
		out.TokensPerSecond = float64(t.GeneratedTokens) * 1000 / t.GenerationMS
	}
	return out
}

// check validates the request and returns the generation job for it.
func (req *inferenceRequest) check() *Error {
	if req.MaxTokens == nil && req.MaxLength != nil {
		req.MaxTokens = req.MaxLength
		if *req.MaxLength < 1 {
			return badRequest("max_length", "max_length must be at least 1, not %d", *req.MaxLength)
		}
	}
	if req.Prompt == "" {
		return badRequest("prompt", "prompt is empty; send {\"prompt\": \"...\"}")
	}
	spec := req.spec()
	if e := spec.validate(); e != nil {
		return e
	}
	return req.sampleFields.validate()
}

func (req *inferenceRequest) spec() selectSpec {
	return selectSpec{Model: req.Model, Auto: req.AutoSelect, Preferred: req.PreferredModel, Fallback: req.Fallback}
}

func (req *inferenceRequest) job() genJob {
	var images []imageRef
	for _, s := range req.Images {
		if strings.HasPrefix(s, "data:") {
			images = append(images, imageRef{URL: s})
		} else {
			images = append(images, imageRef{Base64: s})
		}
	}
	return genJob{
		spec:   req.spec(),
		user:   req.User,
		images: images,
		est:    estimateFor(req.Prompt, &req.sampleFields, false),
		build: func(m *config.Model) (runner.Request, *Error) {
			r, e := req.sampleFields.request(m)
			r.Prompt = req.Prompt
			return r, e
		},
	}
}

func (s *Server) inference(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req inferenceRequest
	if !decodeChecked(w, r, &req, true) {
		return
	}
	j := req.job()
	j.cache = s.noteFor(w, r)
	j.header, j.respID = r.Header, newID("inf-")
	var st *sse
	if req.Stream {
		st = newSSE(w)
		st.prefix = []byte(`data: {"text":`)
		st.suffix = []byte("}\n\n")
		j.onText = st.text
	}
	out, err := s.generate(r.Context(), j)
	if err != nil {
		s.fail(w, r, st, out.Model, err)
		return
	}
	resp := out.response(start)
	if out.Selection.Experiment != "" {
		resp.ID = j.respID
	}
	if st != nil {
		resp.Done = true
		st.event(resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// response is the answer of /inference for a generation begun at start.
func (out outcome) response(start time.Time) *InferenceResponse {
	return &InferenceResponse{
		Response: out.Result.Text, Model: out.Model, Selection: out.Selection,
		FinishReason: out.Result.FinishReason, Usage: usageOf(out.Result.Timings), Timings: timingsOf(out.Result.Timings, start),
	}
}

// fail answers a failed generation: as the stream's last event when a
// stream has begun, else as a plain JSON error with its status. It
// reports whether the answer went into the stream.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, st *sse, model string, err error) bool {
	e := errorFor(r.Context(), err, s.cfg().Server.RequestTimeout)
	s.logFailure(r, model, e)
	if st != nil && st.started {
		st.event(e.body())
		return true
	}
	writeError(w, e)
	return false
}

func (s *Server) logFailure(r *http.Request, model string, e *Error) {
	if e.Status == 499 {
		s.log.Info("request cancelled by the client", "path", r.URL.Path, "model", model, "request_id", RequestID(r.Context()))
		return
	}
	lvl := s.log.Info
	if e.Status >= 500 {
		lvl = s.log.Warn
	}
	lvl("request failed", "path", r.URL.Path, "model", model, "status", e.Status, "code", e.Code, "error", e.Message, "request_id", RequestID(r.Context()))
}

// Batch limits.
const (
	maxBatch         = 256
	batchConcurrency = 8
)

type batchRequest struct {
	Requests []json.RawMessage `json:"requests"`
}

// BatchResult is one entry of POST /batch_inference's answer: either the
// fields of an InferenceResponse, or an error with its HTTP status.
type BatchResult struct {
	Index  int `json:"index"`
	Status int `json:"status"`
	*InferenceResponse
	Error *errorFields `json:"error,omitempty"`
}

func (s *Server) batchInference(w http.ResponseWriter, r *http.Request) {
	var batch batchRequest
	if e := decodeBody(r, &batch, true); e != nil {
		writeError(w, e)
		return
	}
	if len(batch.Requests) == 0 {
		writeError(w, badRequest("requests", "requests is empty; send {\"requests\": [{\"prompt\": \"...\", ...}, ...]}"))
		return
	}
	if len(batch.Requests) > maxBatch {
		writeError(w, badRequest("requests", "at most %d requests per batch, not %d", maxBatch, len(batch.Requests)))
		return
	}
	results := make([]BatchResult, len(batch.Requests))
	sem := make(chan struct{}, batchConcurrency)
	var wg sync.WaitGroup
	for i, raw := range batch.Requests {
		results[i].Index = i
		var req inferenceRequest
		e := decodeRaw(raw, &req, true)
		if e == nil {
			e = req.check()
		}
		if e == nil && req.Stream {
			e = badRequest("stream", "streaming is not available inside a batch")
		}
		if e != nil {
			results[i].fail(e)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-r.Context().Done():
				results[i].fail(errorFor(r.Context(), r.Context().Err(), s.cfg().Server.RequestTimeout))
				return
			}
			defer func() { <-sem }()
			results[i].run(r.Context(), s, &req)
		}()
	}
	wg.Wait()
	ok := 0
	for i := range results {
		if results[i].Error == nil {
			ok++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results, "succeeded": ok, "failed": len(results) - ok})
}

func (b *BatchResult) fail(e *Error) {
	if e.Type == "" {
		e.Type = typeFor(e.Status)
	}
	body := e.body()
	b.Status, b.Error = e.Status, &body.Error
}

func (b *BatchResult) run(ctx context.Context, s *Server, req *inferenceRequest) {
	start := time.Now()
	j := req.job()
	if s.cfg().Cache.Responses > 0 {
		j.cache = &cacheNote{} // no header of its own inside a batch
	}
	out, err := s.generate(ctx, j)
	if err != nil {
		b.fail(errorFor(ctx, err, s.cfg().Server.RequestTimeout))
		return
	}
	b.Status = http.StatusOK
	b.InferenceResponse = out.response(start)
}
