package api

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/jetai/jetai/daemon/runner"
)

// Tool calling on Ollama's /api/chat. Ollama's calls carry no id and their
// arguments are a JSON object; its tool messages name the tool
// (tool_name) rather than the call. The conversion gives the chat path
// what /v1 sends: calls with ids, tool messages with the id of the call
// they answer.

// ollamaToolCall is a call as Ollama writes it:
// {"function":{"index":0,"name":"...","arguments":{...}}}. ID is not
// Ollama's; it is read when a client sends one.
type ollamaToolCall struct {
	ID       string `json:"id,omitempty"`
	Function struct {
		Index     int             `json:"index"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// ollamaChatMessages converts Ollama's messages into the chat path's.
// Calls get ids call_<message>_<call>; a tool message answers the
// earliest unanswered call of the same tool_name, else the earliest
// unanswered call.
func ollamaChatMessages(in []ollamaMessage) ([]chatMessage, *Error) {
	type open struct{ id, name string }
	var pending []open // calls not answered yet
	out := make([]chatMessage, 0, len(in))
	for i, m := range in {
		images, e := ollamaImages(m.Images, "messages", fmt.Sprintf("messages[%d].images", i))
		if e != nil {
			return nil, e
		}
		cm := chatMessage{Role: m.Role, Content: chatContent(m.Content), Images: images}
		if len(m.ToolCalls) > 0 {
			if m.Role != "assistant" {
				return nil, badRequest("messages", "messages[%d].tool_calls: only an assistant message carries tool calls", i)
			}
			// Calls of an earlier turn that got no answer stay unanswered.
			pending = pending[:0]
		}
		for k, c := range m.ToolCalls {
			if c.Function.Name == "" {
				return nil, badRequest("messages", "messages[%d].tool_calls[%d].function.name is empty", i, k)
			}
			args, e := ollamaArguments(c.Function.Arguments, i, k)
			if e != nil {
				return nil, e
			}
			id := c.ID
			if id == "" {
				id = fmt.Sprintf("call_%d_%d", i, k)
			}
			tc := oaToolCall{ID: id, Type: "function"}
			tc.Function.Name, tc.Function.Arguments = c.Function.Name, args
			cm.ToolCalls = append(cm.ToolCalls, tc)
			pending = append(pending, open{id: id, name: c.Function.Name})
		}
		if m.Role == "tool" {
			cm.Name = m.ToolName
			cm.ToolCallID = m.ToolCallID
			if cm.ToolCallID == "" {
				at := -1
				for k, p := range pending {
					if m.ToolName != "" && p.name == m.ToolName {
						at = k
						break
					}
				}
				if at < 0 && len(pending) > 0 {
					at = 0
				}
				if at < 0 {
					return nil, badRequest("messages", "messages[%d]: this tool message answers no call: no earlier assistant message has an unanswered tool_calls entry", i)
				}
				cm.ToolCallID = pending[at].id
				if cm.Name == "" {
					cm.Name = pending[at].name
				}
				pending = append(pending[:at], pending[at+1:]...)
			}
		}
		out = append(out, cm)
	}
	return out, nil
}

// ollamaArguments turns a call's arguments (a JSON object, or a string
// holding one, as some clients send) into the JSON text the chat path
// carries.
func ollamaArguments(raw json.RawMessage, i, k int) (string, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "{}", nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil && json.Valid([]byte(s)) {
			return s, nil
		}
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return "", badRequest("messages", "messages[%d].tool_calls[%d].function.arguments must be a JSON object", i, k)
	}
	return string(raw), nil
}

// ollamaCalls writes the answer's calls in Ollama's shape. Arguments the
// grammar made valid are an object; text that is not JSON (a call parsed
// from an unconstrained model) goes as a string rather than being lost.
func ollamaCalls(calls []runner.ToolCall, from int) []ollamaToolCall {
	var out []ollamaToolCall
	for i := from; i < len(calls); i++ {
		c := calls[i]
		var oc ollamaToolCall
		oc.Function.Index, oc.Function.Name = i, c.Name
		a := bytes.TrimSpace([]byte(c.Arguments))
		switch {
		case len(a) == 0:
			oc.Function.Arguments = json.RawMessage("{}")
		case json.Valid(a):
			oc.Function.Arguments = json.RawMessage(a)
		default:
			s, _ := json.Marshal(c.Arguments)
			oc.Function.Arguments = s
		}
		out = append(out, oc)
	}
	return out
}

// callCollector gathers streamed call pieces: Ollama streams each call
// whole, in one object, once the next call starts or the answer ends.
type callCollector struct {
	calls []runner.ToolCall
	sent  int
	emit  func([]ollamaToolCall)
}

func (c *callCollector) observe(f runner.Frame) {
	for _, d := range f.ToolCalls {
		if d.Start || d.Index >= len(c.calls) {
			for len(c.calls) <= d.Index {
				c.calls = append(c.calls, runner.ToolCall{})
			}
			c.calls[d.Index].ID, c.calls[d.Index].Name = d.ID, d.Name
		}
		c.calls[d.Index].Arguments += d.Arguments
	}
	// A call is whole once a later one has started.
	if done := len(c.calls) - 1; done > c.sent {
		c.emit(ollamaCalls(c.calls[:done], c.sent))
		c.sent = done
	}
}

// finish sends the calls not sent yet. res is the whole answer: it has the
// calls even when no frame carried them (an answer from the cache).
func (c *callCollector) finish(res []runner.ToolCall) {
	if len(res) > c.sent {
		c.emit(ollamaCalls(res, c.sent))
		c.sent = len(res)
	}
}
