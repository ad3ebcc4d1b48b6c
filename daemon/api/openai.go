package api

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
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

// The OpenAI-compatible endpoints. Unknown fields are ignored (clients send
// many); fields whose meaning cannot be honoured (n > 1, best_of > 1,
// tools, echo, logprobs, logit_bias, suffix, non-text content) are refused
// with a 400 that names them.

type openaiCommon struct {
	Model               string             `json:"model"`
	MaxCompletionTokens *int               `json:"max_completion_tokens"`
	N                   *int               `json:"n"`
	LogitBias           map[string]float64 `json:"logit_bias"`
	Stream              bool               `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat *responseFormat `json:"response_format"`
	// User identifies the end user; an experiment with sticky = "user"
	// keeps each user on one variant.
	User string `json:"user"`
	sampleFields
}

type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict bool            `json:"strict"`
	} `json:"json_schema"`
}

// anyJSONObject is the schema response_format {"type": "json_object"} uses:
// llama.cpp turns it into a grammar for any JSON object.
const anyJSONObject = `{"type": "object"}`

func (c *openaiCommon) check() *Error {
	if c.MaxTokens == nil && c.MaxCompletionTokens != nil {
		c.MaxTokens = c.MaxCompletionTokens
	}
	if c.N != nil && *c.N != 1 {
		return badRequest("n", "n must be 1: jetai generates one choice per request")
	}
	if len(c.LogitBias) > 0 {
		return unsupported("logit_bias", "biasing tokens")
	}
	if rf := c.ResponseFormat; rf != nil {
		if c.Grammar != "" || len(bytes.TrimSpace(c.JSONSchema)) > 0 {
			return badRequest("response_format", "give either response_format or grammar/json_schema, not both")
		}
		switch rf.Type {
		case "", "text":
		case "json_object":
			c.JSONSchema = json.RawMessage(anyJSONObject)
		case "json_schema":
			if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
				return badRequest("response_format", `response_format {"type": "json_schema"} needs "json_schema": {"schema": {...}}`)
			}
			c.JSONSchema = rf.JSONSchema.Schema
		default:
			return badRequest("response_format", "response_format type %q is not supported; use text, json_object or json_schema", rf.Type)
		}
	}
	return c.sampleFields.validate()
}

func (c *openaiCommon) spec() selectSpec { return selectSpec{Model: c.Model} }

type chatMessage struct {
	Role       string       `json:"role"`
	Content    chatContent  `json:"content"`
	Name       string       `json:"name,omitempty"`
	ToolCalls  []oaToolCall `json:"tool_calls,omitempty"`
	ToolCallID string       `json:"tool_call_id,omitempty"`
	// Images are the message's image_url content parts, in order
	// (images.go); Ollama's images land here too.
	Images []imageRef `json:"-"`
}

// UnmarshalJSON reads the message with its content parts: text parts
// become Content, image_url parts Images.
func (m *chatMessage) UnmarshalJSON(b []byte) error {
	type fields chatMessage // without this method
	var v struct {
		fields
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// The field path is the message's own, without the
			// embedding used here.
			te.Field = strings.TrimPrefix(te.Field, "fields.")
		}
		return err
	}
	*m = chatMessage(v.fields)
	text, images, err := contentParts(v.Content)
	if err != nil {
		return err
	}
	m.Content, m.Images = chatContent(text), images
	return nil
}

// chatContent is a string, null, or an array of text parts.
type chatContent string

func (c *chatContent) UnmarshalJSON(b []byte) error {
	text, images, err := contentParts(b)
	if err != nil {
		return err
	}
	if len(images) > 0 {
		return badRequest("messages", "image parts are taken in chat messages only")
	}
	*c = chatContent(text)
	return nil
}

// contentParts reads a message's content: a string, null, or an array of
// parts {"type":"text","text":...} and {"type":"image_url","image_url":
// {"url":...}} (the url may also be the value of image_url itself).
func contentParts(b []byte) (string, []imageRef, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0, bytes.Equal(b, []byte("null")):
		return "", nil, nil
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		return s, nil, err
	}
	var parts []struct {
		Type     string          `json:"type"`
		Text     string          `json:"text"`
		ImageURL json.RawMessage `json:"image_url"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return "", nil, badRequest("messages", "a message's content must be a string or an array of text and image_url parts")
	}
	var sb strings.Builder
	var images []imageRef
	for _, p := range parts {
		switch p.Type {
		case "text":
			sb.WriteString(p.Text)
		case "image_url":
			var u struct {
				URL string `json:"url"`
			}
			if len(p.ImageURL) > 0 && p.ImageURL[0] == '"' {
				json.Unmarshal(p.ImageURL, &u.URL)
			} else if err := json.Unmarshal(p.ImageURL, &u); err != nil {
				return "", nil, badRequest("messages", "an image_url part must be {\"url\": \"data:image/...;base64,...\"}")
			}
			if u.URL == "" {
				return "", nil, badRequest("messages", "an image_url part has no url")
			}
			images = append(images, imageRef{URL: u.URL})
		default:
			return "", nil, badRequest("messages", "content part type %q is not supported; text and image_url are", p.Type)
		}
	}
	return sb.String(), images, nil
}

type chatRequest struct {
	Messages          []chatMessage   `json:"messages"`
	Tools             json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Logprobs          *bool           `json:"logprobs"`
	TopLogprobs       *int            `json:"top_logprobs"`
	openaiCommon
}

func (c *chatRequest) check() *Error {
	if e := checkLogprobs(c.Logprobs, c.TopLogprobs); e != nil {
		return e
	}
	return c.openaiCommon.check()
}

type completionRequest struct {
	Prompt json.RawMessage `json:"prompt"`
	// Fields jetai cannot honour; a value that asks for them is refused.
	Echo     *bool           `json:"echo"`
	Logprobs json.RawMessage `json:"logprobs"` // a number; any but null asks for them
	BestOf   *int            `json:"best_of"`
	Suffix   *string         `json:"suffix"`
	openaiCommon
}

func (c *completionRequest) check() *Error {
	switch {
	case c.Echo != nil && *c.Echo:
		return unsupported("echo", "echoing the prompt")
	case c.BestOf != nil && *c.BestOf != 1:
		return badRequest("best_of", "best_of must be 1: jetai generates one completion per request")
	case c.Suffix != nil && *c.Suffix != "":
		return unsupported("suffix", "inserting text before a suffix")
	}
	if e := c.checkLogprobs(); e != nil {
		return e
	}
	return c.openaiCommon.check()
}

// unsupported refuses a field that asks for what jetai does not do, rather
// than answer as if it had been done.
func unsupported(field, what string) *Error {
	return badRequest(field, "%s is not supported (%s): leave the field out", field, what)
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

type oaUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		// ImageTokens (jetai's) are the prompt tokens that are image
		// embeddings.
		ImageTokens int `json:"image_tokens,omitempty"`
	} `json:"prompt_tokens_details"`
	// Cached is jetai's own: the answer came from the response cache (its
	// tokens were counted when it was generated).
	Cached bool `json:"cached,omitempty"`
}

func oaUsageOf(t runner.Timings) *oaUsage {
	u := &oaUsage{PromptTokens: t.PromptTokens, CompletionTokens: t.GeneratedTokens, TotalTokens: t.PromptTokens + t.GeneratedTokens}
	u.PromptTokensDetails.CachedTokens = t.CachedTokens
	u.PromptTokensDetails.ImageTokens = t.ImageTokens
	u.Cached = t.Slot < 0
	return u
}

func finishReason(r string) string {
	switch r {
	case runner.FinishLength:
		return "length"
	case runner.FinishToolCalls:
		return "tool_calls"
	}
	return "stop"
}

type chatChoice struct {
	Index        int        `json:"index"`
	Message      *oaMessage `json:"message,omitempty"`
	Delta        *chatDelta `json:"delta,omitempty"`
	Text         *string    `json:"text,omitempty"`
	Logprobs     any        `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chatDelta struct {
	Role      string            `json:"role,omitempty"`
	Content   string            `json:"content,omitempty"`
	ToolCalls []oaToolCallDelta `json:"tool_calls,omitempty"`
}

type oaResponse struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []chatChoice `json:"choices"`
	Usage             usageField   `json:"usage,omitzero"`
	// Selection is jetai's own: how the model was chosen.
	Selection *Selection `json:"selection,omitempty"`
	Timings   *Timings   `json:"timings,omitempty"`
}

// usageField is an answer's usage: absent (a stream without
// stream_options.include_usage), null (every chunk but the last of a stream
// with it: OpenAI sends "usage": null there, and its clients read the key)
// or the counts.
type usageField struct {
	counts *oaUsage
	null   bool
}

func (u usageField) IsZero() bool { return u.counts == nil && !u.null }

func (u usageField) MarshalJSON() ([]byte, error) { return json.Marshal(u.counts) }

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if !decodeChecked(w, r, &req, false) {
		return
	}
	j, e := req.job()
	if e != nil {
		writeError(w, e)
		return
	}
	s.openaiRun(w, r, j, &req.openaiCommon, true, req.logprobOptions())
}

// job turns a chat request into its generation. Every chat surface (/v1
// and Ollama's /api/chat, which converts its request into a chatRequest)
// goes through here.
func (req *chatRequest) job() (genJob, *Error) {
	if len(req.Messages) == 0 {
		return genJob{}, badRequest("messages", "messages is empty; send at least one {\"role\": \"user\", \"content\": \"...\"}")
	}
	msgs := make([]runner.Message, len(req.Messages))
	var all strings.Builder
	var images []imageRef
	for i, m := range req.Messages {
		images = append(images, m.Images...)
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return genJob{}, badRequest("messages", "message %d: role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		msgs[i] = runner.Message{Role: role, Content: string(m.Content), Name: m.Name, ToolCallID: m.ToolCallID, Images: len(m.Images)}
		for _, c := range m.ToolCalls {
			msgs[i].ToolCalls = append(msgs[i].ToolCalls, runner.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
		}
		all.WriteString(string(m.Content))
		all.WriteString("\n\n")
	}
	if e := req.checkTools(); e != nil {
		return genJob{}, e
	}
	all.Write(req.Tools)
	return genJob{
		spec:   req.spec(),
		images: images,
		est:    estimateFor(all.String(), &req.sampleFields, false),
		build: func(m *config.Model) (runner.Request, *Error) {
			rr, e := req.sampleFields.request(m)
			rr.Messages = msgs
			req.toolFields(&rr)
			return rr, e
		},
	}, nil
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if !decodeChecked(w, r, &req, false) {
		return
	}
	prompt, e := promptText(req.Prompt)
	if e != nil {
		writeError(w, e)
		return
	}
	j := genJob{
		spec: req.spec(),
		est:  estimateFor(prompt, &req.sampleFields, false),
		build: func(m *config.Model) (runner.Request, *Error) {
			rr, e := req.sampleFields.request(m)
			rr.Prompt = prompt
			rr.Logprobs, rr.TopLogprobs = req.logprobOptions().on, req.logprobOptions().top
			return rr, e
		},
	}
	s.openaiRun(w, r, j, &req.openaiCommon, false, req.logprobOptions())
}

// promptText takes a string or an array of one string.
func promptText(raw json.RawMessage) (string, *Error) {
	raw = bytes.TrimSpace(raw)
	var one string
	if len(raw) > 0 && raw[0] == '"' {
		json.Unmarshal(raw, &one)
	} else if len(raw) > 0 && raw[0] == '[' {
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			return "", badRequest("prompt", "prompt must be a string or an array of one string (token arrays are not supported)")
		}
		if len(many) != 1 {
			return "", badRequest("prompt", "prompt arrays must hold exactly one string; send one request per prompt")
		}
		one = many[0]
	} else if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		return "", badRequest("prompt", "prompt must be a string")
	}
	if one == "" {
		return "", badRequest("prompt", "prompt is empty")
	}
	return one, nil
}

func (s *Server) openaiRun(w http.ResponseWriter, r *http.Request, j genJob, c *openaiCommon, chat bool, lo logprobOptions) {
	start := time.Now()
	id, object, chunkObject := newID("cmpl-"), "text_completion", "text_completion"
	if chat {
		id, object, chunkObject = newID("chatcmpl-"), "chat.completion", "chat.completion.chunk"
	}
	created := start.Unix()
	j.cache = s.noteFor(w, r)
	j.user, j.header, j.respID = c.User, r.Header, id
	var st *sse
	var ex *streamExtras
	includeUsage := c.Stream && c.StreamOptions != nil && c.StreamOptions.IncludeUsage
	if c.Stream {
		st = newSSE(w)
		ex = &streamExtras{st: st, chat: chat, lo: lo, id: id, object: chunkObject, created: created, usageNull: includeUsage}
		j.before = func(model string) {
			ex.model = model
			head := `data: {"id":"` + id + `","object":"` + chunkObject + `","created":` + strconv.FormatInt(created, 10) +
				`,"model":` + string(appendJSONString(nil, model)) + `,"system_fingerprint":"jetai","choices":[{"index":0,`
			end := `]}`
			if includeUsage {
				end = `],"usage":null}`
			}
			if chat {
				st.prefix = []byte(head + `"delta":{"content":`)
				st.suffix = []byte(`},"logprobs":null,"finish_reason":null}` + end + "\n\n")
			} else {
				st.prefix = []byte(head + `"text":`)
				st.suffix = []byte(`,"logprobs":null,"finish_reason":null}` + end + "\n\n")
			}
		}
		ex.first = chat
		j.onText = ex.text
		build := j.build
		j.build = func(m *config.Model) (runner.Request, *Error) {
			rr, e := build(m)
			rr.Observe = ex.observe
			return rr, e
		}
	}
	out, err := s.generate(r.Context(), j)
	if err != nil {
		if s.fail(w, r, st, out.Model, err) {
			st.done()
		}
		return
	}
	fr := finishReason(out.Result.FinishReason)
	timings := timingsOf(out.Result.Timings, start)
	resp := oaResponse{ID: id, Object: object, Created: created, Model: out.Model, SystemFingerprint: "jetai", Selection: &out.Selection}
	if st == nil {
		ch := chatChoice{FinishReason: &fr}
		if chat {
			ch.Message = assistantMessage(out.Result)
			if lo.on {
				ch.Logprobs = chatLogprobs(out.Result.Logprobs, lo)
			}
		} else {
			ch.Text = &out.Result.Text
			if lo.on {
				ch.Logprobs = legacyLogprobs(out.Result.Logprobs, 0)
			}
		}
		resp.Choices = []chatChoice{ch}
		resp.Usage = usageField{counts: oaUsageOf(out.Result.Timings)}
		resp.Timings = &timings
		writeJSON(w, http.StatusOK, resp)
		return
	}
	resp.Object = chunkObject
	ch := chatChoice{FinishReason: &fr}
	if chat {
		ch.Delta = &chatDelta{}
	} else {
		empty := ""
		ch.Text = &empty
	}
	ex.flushLogprobs(&ch)
	resp.Choices = []chatChoice{ch}
	resp.Usage = usageField{null: includeUsage}
	st.event(resp)
	if includeUsage {
		resp.Choices = []chatChoice{}
		resp.Usage = usageField{counts: oaUsageOf(out.Result.Timings)}
		resp.Timings = &timings
		resp.Selection = nil
		st.event(resp)
	}
	st.done()
}

type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// jetai's own fields.
	State   string   `json:"state,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
}

func (s *Server) modelEntries() []modelEntry {
	out := []modelEntry{}
	for _, m := range s.pool.Models() {
		e := modelEntry{ID: m.Name, Object: "model", OwnedBy: "jetai", State: m.State, Aliases: m.Aliases}
		if cm, ok := s.cfg().Lookup(m.Name); ok {
			e.Created = cm.FileModTime.Unix()
		}
		out = append(out, e)
	}
	// Experiments are model names too: clients that check a name against
	// this list find them.
	for _, e := range s.cfg().Experiments {
		out = append(out, modelEntry{ID: e.Name, Object: "model", OwnedBy: "jetai", State: "experiment"})
	}
	return append(out, modelEntry{ID: "auto", Object: "model", OwnedBy: "jetai", State: "router"})
}

func (s *Server) openaiModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": s.modelEntries()})
}

func (s *Server) openaiModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model")
	canon, ok := s.pool.Resolve(name)
	if _, isExp := s.cfg().Experiment(name); isExp {
		canon, ok = name, true
	}
	if !ok && name != "auto" {
		writeError(w, s.unknownModel(name))
		return
	}
	if name == "auto" {
		canon = "auto"
	}
	for _, e := range s.modelEntries() {
		if e.ID == canon {
			writeJSON(w, http.StatusOK, e)
			return
		}
	}
	writeError(w, s.unknownModel(name))
}

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
}

type embeddingData struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req embeddingRequest
	if e := decodeBody(r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	var inputs []string
	raw := bytes.TrimSpace(req.Input)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var one string
		json.Unmarshal(raw, &one)
		inputs = []string{one}
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &inputs); err != nil {
			writeError(w, badRequest("input", "input must be a string or an array of strings (token arrays are not supported)"))
			return
		}
	default:
		writeError(w, badRequest("input", "input must be a string or an array of strings"))
		return
	}
	if len(inputs) == 0 || len(inputs) > 256 {
		writeError(w, badRequest("input", "input must hold 1 to 256 strings"))
		return
	}
	for i, in := range inputs {
		if in == "" {
			writeError(w, badRequest("input", "input %d is empty", i))
			return
		}
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		writeError(w, badRequest("encoding_format", "encoding_format must be float or base64"))
		return
	}
	model := req.Model
	if model == "" || model == "auto" {
		model = s.cfg().Router.DefaultModel
	}
	canon, ok := s.pool.Resolve(model)
	if !ok {
		writeError(w, s.unknownModel(model))
		return
	}
	data := make([]embeddingData, len(inputs))
	tokens := 0
	for i, in := range inputs {
		res, err := s.pool.Embed(r.Context(), canon, in)
		if err != nil {
			writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
			return
		}
		tokens += res.Tokens
		data[i] = embeddingData{Object: "embedding", Index: i, Embedding: res.Embedding}
		if req.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(res.Embedding))
			for k, f := range res.Embedding {
				binary.LittleEndian.PutUint32(buf[4*k:], math.Float32bits(f))
			}
			data[i].Embedding = base64.StdEncoding.EncodeToString(buf)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": canon,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}
