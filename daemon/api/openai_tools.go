package api

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/daemon/toolcall"
)

// Tool calling and logprobs on the OpenAI surface: the wire shapes, and
// the checks that need no model. The runner renders the tools with the
// model's template, constrains and parses the calls (package toolcall).

type oaToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type oaFunctionDelta struct {
	Name      string  `json:"name,omitempty"`
	Arguments *string `json:"arguments,omitempty"`
}

// oaToolCallDelta is a streamed piece of a call: the first carries id,
// type and name with empty arguments, the next ones argument text.
type oaToolCallDelta struct {
	Index    int             `json:"index"`
	ID       string          `json:"id,omitempty"`
	Type     string          `json:"type,omitempty"`
	Function oaFunctionDelta `json:"function"`
}

// oaMessage is an answer's message: content is null when the answer is
// only tool calls, as OpenAI sends it.
type oaMessage struct {
	Role      string       `json:"role"`
	Content   *string      `json:"content"`
	Refusal   *string      `json:"refusal"`
	ToolCalls []oaToolCall `json:"tool_calls,omitempty"`
}

func assistantMessage(res runner.Result) *oaMessage {
	m := &oaMessage{Role: "assistant"}
	if res.Text != "" || len(res.ToolCalls) == 0 {
		text := res.Text
		m.Content = &text
	}
	for _, c := range res.ToolCalls {
		tc := oaToolCall{ID: c.ID, Type: "function"}
		tc.Function.Name, tc.Function.Arguments = c.Name, c.Arguments
		m.ToolCalls = append(m.ToolCalls, tc)
	}
	return m
}

// checkTools refuses, before any model is chosen, what no model could
// serve: malformed tools, a tool_choice naming no declared tool, a tool
// message answering no call.
func (c *chatRequest) checkTools() *Error {
	tools, err := toolcall.ParseTools(c.Tools)
	if err == nil {
		_, err = toolcall.ParseChoice(c.ToolChoice, tools)
	}
	if err == nil {
		msgs := make([]toolcall.Message, len(c.Messages))
		for i, m := range c.Messages {
			msgs[i] = toolcall.Message{Role: m.Role, ToolCallID: m.ToolCallID}
			for k, tc := range m.ToolCalls {
				if tc.ID == "" {
					return badRequest("messages", "messages[%d].tool_calls[%d].id is empty; a tool message answers a call by its id", i, k)
				}
				if tc.Function.Name == "" {
					return badRequest("messages", "messages[%d].tool_calls[%d].function.name is empty", i, k)
				}
				if a := bytes.TrimSpace([]byte(tc.Function.Arguments)); len(a) > 0 && !json.Valid(a) {
					return badRequest("messages", "messages[%d].tool_calls[%d].function.arguments is not JSON text", i, k)
				}
				msgs[i].CallIDs = append(msgs[i].CallIDs, tc.ID)
			}
		}
		err = toolcall.CheckMessages(msgs)
	}
	if te, ok := err.(*toolcall.Error); ok {
		return badRequest(te.Field, "%s", te.Error())
	}
	if err != nil {
		return badRequest("tools", "%v", err)
	}
	if len(bytes.TrimSpace(c.Tools)) > 0 && c.ResponseFormat != nil && c.ResponseFormat.Type != "" && c.ResponseFormat.Type != "text" {
		return badRequest("response_format", "give either tools or a structured response_format, not both")
	}
	return nil
}

func (c *chatRequest) toolFields(rr *runner.Request) {
	if t := bytes.TrimSpace(c.Tools); len(t) > 0 && !bytes.Equal(t, []byte("null")) && !bytes.Equal(t, []byte("[]")) {
		rr.Tools = c.Tools
		rr.ToolChoice = c.ToolChoice
		rr.ParallelToolCalls = c.ParallelToolCalls
	}
	lo := c.logprobOptions()
	rr.Logprobs, rr.TopLogprobs = lo.on, lo.top
}

// logprobOptions are a request's logprobs settings.
type logprobOptions struct {
	on  bool
	top int
}

func checkLogprobs(on *bool, top *int) *Error {
	if top == nil || *top == 0 {
		return nil
	}
	if *top < 0 || *top > runner.MaxTopLogprobs {
		return badRequest("top_logprobs", "top_logprobs must be 0 to %d", runner.MaxTopLogprobs)
	}
	if on == nil || !*on {
		return badRequest("top_logprobs", "top_logprobs needs \"logprobs\": true")
	}
	return nil
}

func (c *chatRequest) logprobOptions() logprobOptions {
	lo := logprobOptions{on: c.Logprobs != nil && *c.Logprobs}
	if lo.on && c.TopLogprobs != nil {
		lo.top = *c.TopLogprobs
	}
	return lo
}

// checkLogprobs reads the legacy logprobs: an integer, the number of
// alternatives per token (0 gives the sampled tokens' only).
func (c *completionRequest) checkLogprobs() *Error {
	raw := bytes.TrimSpace(c.Logprobs)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < 0 || n > runner.MaxTopLogprobs {
		return badRequest("logprobs", "logprobs must be an integer from 0 to %d (the alternatives per token)", runner.MaxTopLogprobs)
	}
	return nil
}

func (c *completionRequest) logprobOptions() logprobOptions {
	raw := bytes.TrimSpace(c.Logprobs)
	n, err := strconv.Atoi(string(raw))
	if err != nil {
		return logprobOptions{}
	}
	return logprobOptions{on: true, top: n}
}

type oaTopLogprob struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type oaTokenLogprob struct {
	Token       string         `json:"token"`
	Logprob     float32        `json:"logprob"`
	Bytes       []int          `json:"bytes"`
	TopLogprobs []oaTopLogprob `json:"top_logprobs"`
}

type oaChatLogprobs struct {
	Content []oaTokenLogprob `json:"content"`
	Refusal []oaTokenLogprob `json:"refusal"`
}

func byteInts(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

func chatLogprobs(lps []runner.TokenLogprob, lo logprobOptions) *oaChatLogprobs {
	out := &oaChatLogprobs{Content: make([]oaTokenLogprob, len(lps))}
	for i, l := range lps {
		e := oaTokenLogprob{Token: l.Token, Logprob: l.Logprob, Bytes: byteInts(l.Bytes), TopLogprobs: []oaTopLogprob{}}
		for _, t := range l.Top {
			e.TopLogprobs = append(e.TopLogprobs, oaTopLogprob{Token: t.Token, Logprob: t.Logprob, Bytes: byteInts(t.Bytes)})
		}
		out.Content[i] = e
	}
	return out
}

// oaLegacyLogprobs is /v1/completions' logprobs object.
type oaLegacyLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// legacyLogprobs shapes lps; offset is the text's length before them.
// top_logprobs has one object per token, empty with "logprobs": 0: OpenAI's
// schema types it as an array, never null.
func legacyLogprobs(lps []runner.TokenLogprob, offset int) *oaLegacyLogprobs {
	out := &oaLegacyLogprobs{Tokens: []string{}, TokenLogprobs: []float32{}, TopLogprobs: []map[string]float32{}, TextOffset: []int{}}
	for _, l := range lps {
		out.Tokens = append(out.Tokens, l.Token)
		out.TokenLogprobs = append(out.TokenLogprobs, l.Logprob)
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(l.Bytes)
		m := make(map[string]float32, len(l.Top))
		for _, t := range l.Top {
			m[t.Token] = t.Logprob
		}
		out.TopLogprobs = append(out.TopLogprobs, m)
	}
	return out
}

// streamExtras streams what plain text chunks do not carry: tool-call
// deltas and logprobs. Frames arrive in the model's order: Observe sees a
// frame's calls and logprobs before its text.
type streamExtras struct {
	st      *sse
	chat    bool
	lo      logprobOptions
	id      string
	object  string
	created int64
	model   string
	first   bool // the next chat chunk is the first: it carries the role
	pending []runner.TokenLogprob
	offset  int // legacy text_offset: bytes of text sent
	// usageNull: the stream ends with a usage chunk, so every chunk before
	// it says "usage": null.
	usageNull bool
}

func (x *streamExtras) chunk(ch chatChoice) oaResponse {
	return oaResponse{ID: x.id, Object: x.object, Created: x.created, Model: x.model, SystemFingerprint: "jetai", Choices: []chatChoice{ch}, Usage: usageField{null: x.usageNull}}
}

func (x *streamExtras) observe(f runner.Frame) {
	if x.lo.on {
		x.pending = append(x.pending, f.Logprobs...)
	}
	if len(f.ToolCalls) == 0 {
		return
	}
	d := &chatDelta{}
	if x.first {
		x.first = false
		d.Role = "assistant"
	}
	for _, tc := range f.ToolCalls {
		od := oaToolCallDelta{Index: tc.Index}
		args := tc.Arguments
		if tc.Start {
			od.ID, od.Type, od.Function.Name = tc.ID, "function", tc.Name
			args = ""
		}
		od.Function.Arguments = &args
		d.ToolCalls = append(d.ToolCalls, od)
		if tc.Start && tc.Arguments != "" {
			rest := tc.Arguments
			d.ToolCalls = append(d.ToolCalls, oaToolCallDelta{Index: tc.Index, Function: oaFunctionDelta{Arguments: &rest}})
		}
	}
	x.st.event(x.chunk(chatChoice{Delta: d}))
}

func (x *streamExtras) text(t string) {
	if !x.lo.on {
		if x.first {
			// OpenAI's first chat chunk carries the role.
			x.first = false
			b := bytes.Replace(x.st.prefix, []byte(`"delta":{"content":`), []byte(`"delta":{"role":"assistant","content":`), 1)
			b = appendJSONString(b, t)
			x.st.write(append(b, x.st.suffix...))
			return
		}
		x.st.text(t)
		return
	}
	ch := chatChoice{}
	if x.chat {
		ch.Delta = &chatDelta{Content: t}
		if x.first {
			x.first = false
			ch.Delta.Role = "assistant"
		}
	} else {
		ch.Text = &t
	}
	x.flushLogprobs(&ch)
	x.offset += len(t)
	x.st.event(x.chunk(ch))
}

// flushLogprobs puts the logprobs not sent yet on ch.
func (x *streamExtras) flushLogprobs(ch *chatChoice) {
	if x == nil || !x.lo.on {
		return
	}
	if x.chat {
		ch.Logprobs = chatLogprobs(x.pending, x.lo)
	} else {
		ch.Logprobs = legacyLogprobs(x.pending, x.offset)
	}
	x.pending = nil
}

var fieldRE = regexp.MustCompile(`^((?:tools|tool_choice|messages)(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): `)

// fieldOf reads the request field a runner's message starts with
// ("tools[1].function.parameters: ..."), for the error's param.
func fieldOf(msg string) string {
	if m := fieldRE.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}
