package serve

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
)

// The llama-server utility calls: tokenize, detokenize and the chat
// template. They use the model only, never a slot or the decode loop; their
// work is linear in the request body, which the daemon bounds, and
// tokenizing stops when the caller goes away.

func (h *handler) utilityRoutes() {
	h.mux.HandleFunc("POST /tokenize", h.tokenize)
	h.mux.HandleFunc("POST /detokenize", h.detokenize)
	h.mux.HandleFunc("POST /apply-template", h.applyTemplate)
}

func (h *handler) tokenize(w http.ResponseWriter, r *http.Request) {
	var req runner.TokenizeRequest
	if !decode(w, r, &req) {
		return
	}
	toks, err := h.model.TokenizeLimit(r.Context(), req.Content, req.AddSpecial, 0)
	if !tokenized(r.Context(), w, "content", err, 0, "") {
		return
	}
	out := runner.TokenizeResult{Tokens: toks}
	if out.Tokens == nil {
		out.Tokens = []int{}
	}
	if req.WithPieces {
		out.Pieces = make([][]byte, len(toks))
		for i, t := range toks {
			out.Pieces[i] = []byte(h.model.Piece(t))
		}
	}
	writeJSON(w, out)
}

func (h *handler) detokenize(w http.ResponseWriter, r *http.Request) {
	var req runner.DetokenizeRequest
	if !decode(w, r, &req) {
		return
	}
	// llama.cpp aborts the process on a token outside the vocabulary.
	n := h.model.Info().VocabSize
	for i, t := range req.Tokens {
		if t < 0 || t >= n {
			writeError(w, http.StatusBadRequest, runner.CodeInvalid, fmt.Sprintf("tokens[%d] = %d is not a token of this model (0 to %d)", i, t, n-1))
			return
		}
	}
	writeJSON(w, runner.DetokenizeResult{Content: h.model.Detokenize(req.Tokens)})
}

func (h *handler) applyTemplate(w http.ResponseWriter, r *http.Request) {
	var req runner.TemplateRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "messages is empty")
		return
	}
	// The chat path's own rendering: the text a chat request with these
	// messages and tools feeds the model.
	prompt, err, ok := h.chatText(w, &runner.Request{Messages: req.Messages, Tools: req.Tools})
	if !ok {
		return
	}
	switch {
	case errors.Is(err, engine.ErrNoChatTemplate):
		writeError(w, http.StatusBadRequest, runner.CodeNoChatTemplate, fmt.Sprintf("this model cannot take chat messages (%v)", err))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, err.Error())
		return
	}
	writeJSON(w, runner.TemplateResult{Prompt: prompt})
}
