package api

import (
	"context"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/jetai/jetai/daemon/runner"
)

// The utility endpoints of llama.cpp's server that scripts use:
// POST /tokenize, POST /detokenize, POST /apply-template and GET /props, in
// llama-server's shapes, with a "model" field (or ?model=) to pick one of
// jetai's models (default: router.default_model). The first three run in
// the model's runner (loading it when needed); their work is linear in the
// request body, which server.max_body bounds.

// utilityPool is what the utility endpoints need beyond Pool; *pool.Pool
// implements it.
type utilityPool interface {
	Tokenize(ctx context.Context, model string, req runner.TokenizeRequest) (runner.TokenizeResult, error)
	Detokenize(ctx context.Context, model string, req runner.DetokenizeRequest) (runner.DetokenizeResult, error)
	ApplyTemplate(ctx context.Context, model string, req runner.TemplateRequest) (runner.TemplateResult, error)
}

func (s *Server) utilityRoutes(route func(method, pattern string, h http.HandlerFunc)) {
	route("POST", "/tokenize", s.tokenize)
	route("POST", "/detokenize", s.detokenize)
	route("POST", "/apply-template", s.applyTemplate)
	route("GET", "/props", s.props)
}

// utilityModel resolves the model a utility request names; none (or
// "auto") is router.default_model.
func (s *Server) utilityModel(name string) (string, *Error) {
	if name == "" || name == "auto" {
		name = s.cfg().Router.DefaultModel
		if name == "" {
			return "", badRequest("model", "name a model: there is no router.default_model")
		}
	}
	canon, ok := s.pool.Resolve(name)
	if !ok {
		return "", s.unknownModel(name)
	}
	return canon, nil
}

func (s *Server) utilities() (utilityPool, *Error) {
	u, ok := s.pool.(utilityPool)
	if !ok {
		return nil, &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "this pool does not answer utility calls"}
	}
	return u, nil
}

type tokenizeRequest struct {
	Model      string  `json:"model"`
	Content    *string `json:"content"`
	AddSpecial bool    `json:"add_special"`
	WithPieces bool    `json:"with_pieces"`
}

// tokenPiece is a token with its text; Piece is a string when the token's
// bytes are valid UTF-8, else the list of its bytes (as llama-server).
type tokenPiece struct {
	ID    int `json:"id"`
	Piece any `json:"piece"`
}

func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) {
	var req tokenizeRequest
	if e := decodeBody(r, &req, true); e != nil {
		writeError(w, e)
		return
	}
	if req.Content == nil {
		writeError(w, badRequest("content", `content is required: {"content": "text to tokenize"}`))
		return
	}
	model, e := s.utilityModel(req.Model)
	if e != nil {
		writeError(w, e)
		return
	}
	u, e := s.utilities()
	if e != nil {
		writeError(w, e)
		return
	}
	res, err := u.Tokenize(r.Context(), model, runner.TokenizeRequest{Content: *req.Content, AddSpecial: req.AddSpecial, WithPieces: req.WithPieces})
	if err != nil {
		writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
		return
	}
	if !req.WithPieces {
		writeJSON(w, http.StatusOK, map[string]any{"tokens": res.Tokens})
		return
	}
	out := make([]tokenPiece, len(res.Tokens))
	for i, t := range res.Tokens {
		out[i].ID = t
		if i >= len(res.Pieces) {
			out[i].Piece = ""
			continue
		}
		p := res.Pieces[i]
		if utf8.Valid(p) {
			out[i].Piece = string(p)
			continue
		}
		bs := make([]int, len(p))
		for k := range len(p) {
			bs[k] = int(p[k])
		}
		out[i].Piece = bs
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

type detokenizeRequest struct {
	Model  string `json:"model"`
	Tokens []int  `json:"tokens"`
}

func (s *Server) detokenize(w http.ResponseWriter, r *http.Request) {
	var req detokenizeRequest
	if e := decodeBody(r, &req, true); e != nil {
		writeError(w, e)
		return
	}
	if req.Tokens == nil {
		writeError(w, badRequest("tokens", `tokens is required: {"tokens": [1, 2, 3]}`))
		return
	}
	model, e := s.utilityModel(req.Model)
	if e != nil {
		writeError(w, e)
		return
	}
	u, e := s.utilities()
	if e != nil {
		writeError(w, e)
		return
	}
	res, err := u.Detokenize(r.Context(), model, runner.DetokenizeRequest{Tokens: req.Tokens})
	if err != nil {
		e := errorFor(r.Context(), err, s.cfg().Server.RequestTimeout)
		if e.Status == http.StatusBadRequest {
			e.Param = "tokens"
		}
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

type applyTemplateRequest struct {
	Model    string          `json:"model"`
	Messages []chatMessage   `json:"messages"`
	Tools    json.RawMessage `json:"tools"`
}

// applyTemplate formats the messages as a chat completion formats them
// (the same conversion of roles, the model's own template).
func (s *Server) applyTemplate(w http.ResponseWriter, r *http.Request) {
	var req applyTemplateRequest
	if e := decodeBody(r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	model, e := s.utilityModel(req.Model)
	if e != nil {
		writeError(w, e)
		return
	}
	cr := chatRequest{Messages: req.Messages}
	cr.Tools = req.Tools
	j, e := cr.job()
	if e != nil {
		writeError(w, e)
		return
	}
	m, ok := s.cfg().Lookup(model)
	if !ok {
		writeError(w, s.unknownModel(model))
		return
	}
	rr, e := j.build(m)
	if e != nil {
		writeError(w, e)
		return
	}
	u, e := s.utilities()
	if e != nil {
		writeError(w, e)
		return
	}
	res, err := u.ApplyTemplate(r.Context(), model, runner.TemplateRequest{Messages: rr.Messages, Tools: rr.Tools})
	if err != nil {
		writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// props describes a model as llama-server's GET /props does: its context,
// slots, chat template and default generation settings. It reads the
// model's file header and config; it does not load the model.
func (s *Server) props(w http.ResponseWriter, r *http.Request) {
	model, e := s.utilityModel(r.URL.Query().Get("model"))
	if e != nil {
		writeError(w, e)
		return
	}
	m, ok := s.cfg().Lookup(model)
	if !ok {
		writeError(w, s.unknownModel(model))
		return
	}
	f, err := modelFacts(m)
	if err != nil {
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: "model_unavailable", Param: "model", Message: err.Error()})
		return
	}
	d := m.Sampling
	stop := d.Stop
	if stop == nil {
		stop = []string{}
	}
	params := map[string]any{
		"temperature": d.Temperature, "top_k": d.TopK, "top_p": d.TopP, "min_p": d.MinP,
		"repeat_penalty": d.RepeatPenalty, "seed": d.Seed, "n_predict": d.MaxTokens, "stop": stop,
	}
	state := "unloaded"
	if st, ok := s.pool.Model(model); ok {
		state = st.State
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model":         model,
		"model_path":    m.Path,
		"state":         state,
		"n_ctx":         m.Context,
		"n_ctx_train":   f.ctxTrain,
		"total_slots":   m.Parallel,
		"chat_template": f.template,
		"default_generation_settings": map[string]any{
			"n_ctx":  m.Context,
			"params": params,
		},
		"modalities": map[string]bool{"vision": m.Mmproj != "", "audio": false},
		"build_info": "jetai " + s.version,
	})
}
