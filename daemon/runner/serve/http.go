package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/daemon/toolcall"
)

const maxRequestBody = 16 << 20

// minFrameInterval is the shortest time between two bursts of frames (the
// scheduler's flush); with many active streams it grows by
// perStreamFrameBudget each. Each frame wakes this process and the daemon;
// on a small box whose cores all run llama.cpp's threads, those wake-ups
// stall its spinning barriers.
const (
	minFrameInterval     = 5 * time.Millisecond
	perStreamFrameBudget = time.Millisecond
)

type handler struct {
	sched  *scheduler
	model  *engine.Model
	vision *vision // nil without a projector
	mux    *http.ServeMux
}

func newHandler(s *scheduler, m *engine.Model) http.Handler {
	h := &handler{sched: s, model: m, vision: s.vision, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /completion", h.completion)
	h.mux.HandleFunc("POST /embed", h.embed)
	h.mux.HandleFunc("GET /health", h.health)
	h.mux.HandleFunc("POST /threads", h.threads)
	h.mux.HandleFunc("POST /speculative", h.speculative)
	h.mux.HandleFunc("POST /shutdown", h.shutdown)
	h.mux.HandleFunc("POST /park", h.park)
	h.mux.HandleFunc("POST /restore", h.restore)
	h.utilityRoutes() // utility.go
	return h.mux
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(runner.ErrorBody{Error: msg, Code: code})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "invalid JSON: "+err.Error())
		return false
	}
	// Read the body to its end: net/http watches the connection, and so
	// cancels r.Context() when the client goes away, only from then on.
	// Without it a cancelled request would tokenize and encode its images
	// to the end.
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "request body: "+err.Error())
		return false
	}
	return true
}

// prompt turns a request into tokens, or answers the client's mistake.
// A prompt that cannot fit the slot's context is refused as soon as that is
// certain, without tokenizing all of it; a client that goes away stops the
// tokenization.
func (h *handler) prompt(ctx context.Context, w http.ResponseWriter, req *runner.Request, starts *[]int) ([]int, *toolSetup, bool) {
	limit := h.sched.slotCtx - 1 // one position is left for the first generated token
	var toks []int
	var err error
	var setup *toolSetup
	switch {
	case len(req.Messages) > 0 && req.Prompt != "":
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "give either a prompt or messages, not both")
		return nil, nil, false
	case len(req.Prompt) > 0 && len(req.Tools) > 0:
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "tools need chat messages, not a prompt")
		return nil, nil, false
	case len(req.Messages) > 0:
		// Special-token text in a message stays text (no role injection).
		var ok bool
		toks, setup, err, ok = h.chatTokens(ctx, w, req, limit, starts)
		if !ok {
			return nil, nil, false
		}
		if errors.Is(err, engine.ErrNoChatTemplate) {
			writeError(w, http.StatusBadRequest, runner.CodeNoChatTemplate,
				fmt.Sprintf("this model cannot take chat messages (%v); send a plain prompt instead", err))
			return nil, nil, false
		}
	case req.Prompt == "":
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "prompt is empty")
		return nil, nil, false
	default:
		// A raw prompt is the caller's own formatting: special tokens
		// written in it are parsed, as llama.cpp's server does.
		toks, err = h.model.TokenizeLimit(ctx, req.Prompt, true, limit)
	}
	if !tokenized(ctx, w, "prompt", err, limit, " (its context per slot); shorten the prompt or raise the model's context") {
		return nil, nil, false
	}
	return toks, setup, true
}

// tokenized answers a tokenization's failure and reports whether there was
// none. A client that went away gets no answer.
func tokenized(ctx context.Context, w http.ResponseWriter, what string, err error, limit int, hint string) bool {
	var tl *engine.TooLongError
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
	case errors.As(err, &tl):
		writeError(w, http.StatusBadRequest, runner.CodeContextOverflow,
			fmt.Sprintf("%s is at least %d tokens but this model takes at most %d per request%s", what, tl.Tokens, limit, hint))
	default:
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "tokenize: "+err.Error())
	}
	return false
}

func samplingParams(s runner.Sampling) engine.SamplingParams {
	return engine.SamplingParams{
		Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP,
		RepeatPenalty: s.RepeatPenalty, RepeatLastN: s.RepeatLastN,
		FrequencyPenalty: s.FrequencyPenalty, PresencePenalty: s.PresencePenalty,
		Seed: s.Seed, Grammar: s.Grammar, JSONSchema: s.JSONSchema,
	}
}

func (h *handler) submit(w http.ResponseWriter, j *job) bool {
	switch err := h.sched.submit(j); {
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, runner.CodeBusy, "all slots and the runner's queue are busy")
		return false
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, runner.CodeStopping, err.Error())
		return false
	}
	return true
}

func (h *handler) completion(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var req runner.Request
	if !decode(w, r, &req) {
		return
	}
	if req.MaxTokens < 0 {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "max_tokens must not be negative")
		return
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > runner.MaxTopLogprobs {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, fmt.Sprintf("top_logprobs must be 0 to %d", runner.MaxTopLogprobs))
		return
	}
	var starts []int // where each message's content starts, for its images
	toks, tools, ok := h.prompt(r.Context(), w, &req, &starts)
	if !ok {
		return
	}
	toks, images, ok := h.withImages(r.Context(), w, &req, toks, starts)
	if !ok {
		return
	}
	params := samplingParams(req.Sampling)
	var lazy *lazyGrammar
	var parser *toolcall.Parser
	if tools != nil {
		parser = toolcall.NewParser(tools.format)
		switch {
		case tools.grammar.Lazy:
			lazy = &lazyGrammar{gbnf: tools.grammar.GBNF, trigger: tools.format.Trigger(), anchored: tools.format.Anchored(), alt: tools.format.Alt, params: params}
		case tools.grammar.GBNF != "":
			params.Grammar = tools.grammar.GBNF
		}
	}
	sampler, err := h.model.NewSampler(params)
	if err != nil {
		code := runner.CodeInvalid
		if errors.Is(err, engine.ErrInvalidGrammar) {
			code = runner.CodeInvalidGrammar
		}
		writeError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	stops := make([]string, 0, len(req.Stop))
	for _, s := range req.Stop {
		if s != "" {
			stops = append(stops, s)
		}
	}
	j := &job{ctx: r.Context(), tokens: toks, sampler: sampler, maxTokens: req.MaxTokens, stops: stops, ignoreEOS: req.IgnoreEOS, out: newOutbox(), arrived: arrived,
		lazy: lazy, logprobs: -1, images: images.embeds, imageTokens: images.tokens, encodeMS: images.encodeMS}
	if req.Logprobs {
		j.logprobs = req.TopLogprobs
	}
	// Drafters read the slot's tokens, which hold image rows, not tokens.
	j.noSpec = (req.Speculative != nil && !*req.Speculative) || images.tokens > 0
	if !h.submit(w, j) {
		sampler.Close()
		return
	}

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for {
		select {
		case <-j.out.notify:
		case <-r.Context().Done():
			// The scheduler sees the same context and frees the slot.
			return
		}
		// The decode loop paces the wakes (scheduler.flush): whatever has
		// gathered since the last one leaves as one frame.
		text, done, final := j.out.take()
		lps := j.out.takeLogprobs()
		if !writeFrames(enc, parser, text, lps, done) {
			return
		}
		if done {
			if parser != nil && len(parser.Calls()) > 0 && final.FinishReason == runner.FinishStop {
				final.FinishReason = runner.FinishToolCalls
			}
			enc.Encode(final)
		}
		if flusher != nil {
			flusher.Flush()
		}
		if done {
			return
		}
	}
}

func (h *handler) embed(w http.ResponseWriter, r *http.Request) {
	var req runner.EmbedRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Input == "" {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "input is empty")
		return
	}
	toks, err := h.model.TokenizeLimit(r.Context(), req.Input, true, h.sched.slotCtx)
	if !tokenized(r.Context(), w, "input", err, h.sched.slotCtx, "") {
		return
	}
	j := &job{ctx: r.Context(), tokens: toks, embed: true, out: newOutbox(), arrived: time.Now()}
	if !h.submit(w, j) {
		return
	}
	select {
	case <-r.Context().Done():
		return
	case <-j.out.notify:
	}
	_, _, final := j.out.take()
	if final.Error != "" {
		writeError(w, http.StatusInternalServerError, runner.CodeInvalid, final.Error)
		return
	}
	j.out.mu.Lock()
	e := j.out.embedding
	j.out.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(runner.EmbedResult{Embedding: e, Tokens: len(toks)})
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	state := "ready"
	select {
	case <-h.sched.quit:
		state = "stopping"
	default:
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(runner.Health{
		State: state, Slots: len(h.sched.slots), SlotContext: h.sched.slotCtx,
		Active: int(h.sched.active.Load()), Queued: int(h.sched.queued.Load()), Threads: int(h.sched.threads.Load()),
		KVUsed:        int(h.sched.kvUsed.Load()),
		DraftedTokens: h.sched.drafted.Load(), AcceptedTokens: h.sched.accepted.Load(), MaxDraft: int(h.sched.maxDraft.Load()), NGram: h.sched.ngram.Load(),
	})
}

func (h *handler) threads(w http.ResponseWriter, r *http.Request) {
	var req runner.ThreadsRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Threads < 0 || req.Threads > 1024 {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "threads out of range")
		return
	}
	if err := h.sched.setThreads(req.Threads); err != nil {
		writeError(w, http.StatusServiceUnavailable, runner.CodeStopping, err.Error())
		return
	}
	h.health(w, r)
}

// speculative changes n-gram drafting and max_draft between two decode
// steps; the running jobs keep what their slots learnt about acceptance.
func (h *handler) speculative(w http.ResponseWriter, r *http.Request) {
	var req runner.SpeculativeRequest
	if !decode(w, r, &req) {
		return
	}
	if req.MaxDraft < 0 || req.MaxDraft > runner.MaxDraftLimit {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, fmt.Sprintf("max_draft %d out of range [0, %d]", req.MaxDraft, runner.MaxDraftLimit))
		return
	}
	if err := h.sched.do(func() { h.sched.setSpec(req.NGram, req.MaxDraft) }); err != nil {
		writeError(w, http.StatusServiceUnavailable, runner.CodeStopping, err.Error())
		return
	}
	h.health(w, r)
}

func (h *handler) shutdown(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusAccepted)
	h.sched.requestStop()
}
