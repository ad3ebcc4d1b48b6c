package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jetai/jetai/daemon/runner"
)

// Ollama's calls have no ids and its tool messages name the tool: the
// conversion gives each call an id and each tool message the id of the
// call it answers, by tool_name, else in order.
func TestOllamaChatMessages(t *testing.T) {
	var in []ollamaMessage
	if err := json.Unmarshal([]byte(`[
		{"role": "user", "content": "Weather and time?"},
		{"role": "assistant", "content": "", "tool_calls": [
			{"function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}},
			{"function": {"index": 1, "name": "get_time", "arguments": "{\"zone\": \"CET\"}"}}]},
		{"role": "tool", "tool_name": "get_time", "content": "12:00"},
		{"role": "tool", "content": "-3 C"},
		{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {}}}]},
		{"role": "tool", "tool_name": "unknown", "content": "x"}
	]`), &in); err != nil {
		t.Fatal(err)
	}
	got, e := ollamaChatMessages(in)
	if e != nil {
		t.Fatal(e)
	}
	type call struct{ id, name, args string }
	var calls [][]call
	var answers [][2]string
	for _, m := range got {
		var cs []call
		for _, c := range m.ToolCalls {
			if c.Type != "function" {
				t.Errorf("call type %q", c.Type)
			}
			cs = append(cs, call{c.ID, c.Function.Name, c.Function.Arguments})
		}
		calls = append(calls, cs)
		if m.Role == "tool" {
			answers = append(answers, [2]string{m.ToolCallID, m.Name})
		}
	}
	wantCalls := [][]call{nil,
		{{"call_1_0", "get_weather", `{"city": "Oslo", "days": 2}`}, {"call_1_1", "get_time", `{"zone": "CET"}`}},
		nil, nil, {{"call_4_0", "get_weather", `{}`}}, nil}
	if !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("calls %q\nwant %q", calls, wantCalls)
	}
	wantAnswers := [][2]string{{"call_1_1", "get_time"}, {"call_1_0", "get_weather"}, {"call_4_0", "unknown"}}
	if !reflect.DeepEqual(answers, wantAnswers) {
		t.Errorf("tool answers %q, want %q", answers, wantAnswers)
	}
	// The result passes the chat path's checks.
	cr := chatRequest{Messages: got}
	if e := cr.checkTools(); e != nil {
		t.Errorf("converted messages refused: %v", e)
	}
}

func TestOllamaChatMessagesErrors(t *testing.T) {
	for name, body := range map[string]string{
		"tool without a call":    `[{"role": "user", "content": "hi"}, {"role": "tool", "tool_name": "f", "content": "1"}]`,
		"call answered twice":    `[{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}, {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"}]`,
		"arguments not object":   `[{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": [1]}}]}]`,
		"call without name":      `[{"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}]`,
		"user message with call": `[{"role": "user", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}]`,
		"images not strings":     `[{"role": "user", "content": "x", "images": [7]}]`,
	} {
		var in []ollamaMessage
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, e := ollamaChatMessages(in); e == nil || e.Status != 400 || e.Param != "messages" {
			t.Errorf("%s: %v, want a 400 on messages", name, e)
		}
	}
}

// Streamed, each call goes out whole in one object, once the next call
// starts or the answer ends; arguments are a JSON object.
func TestCallCollector(t *testing.T) {
	var sent [][]ollamaToolCall
	c := &callCollector{emit: func(cs []ollamaToolCall) { sent = append(sent, cs) }}
	frames := []runner.Frame{
		{ToolCalls: []runner.ToolCallDelta{{Index: 0, Start: true, ID: "call_a", Name: "get_weather"}}},
		{ToolCalls: []runner.ToolCallDelta{{Index: 0, Arguments: `{"city": "Pa`}}},
		{ToolCalls: []runner.ToolCallDelta{{Index: 0, Arguments: `ris", "days": 3}`}}},
		{ToolCalls: []runner.ToolCallDelta{{Index: 1, Start: true, ID: "call_b", Name: "get_time", Arguments: `{"zone"`}}},
	}
	for i, f := range frames {
		c.observe(f)
		if want := map[int]int{0: 0, 1: 0, 2: 0, 3: 1}[i]; len(sent) != want {
			t.Fatalf("after frame %d: %d objects sent, want %d", i, len(sent), want)
		}
	}
	c.observe(runner.Frame{ToolCalls: []runner.ToolCallDelta{{Index: 1, Arguments: `: "UTC"}`}}})
	c.finish(c.calls)
	c.finish(c.calls) // nothing twice
	b, _ := json.Marshal(sent)
	want := `[[{"function":{"index":0,"name":"get_weather","arguments":{"city":"Paris","days":3}}}],[{"function":{"index":1,"name":"get_time","arguments":{"zone":"UTC"}}}]]`
	if string(b) != want {
		t.Errorf("sent %s\nwant %s", b, want)
	}

	// An answer from the cache carries its calls in the result only.
	sent = nil
	c = &callCollector{emit: func(cs []ollamaToolCall) { sent = append(sent, cs) }}
	c.finish([]runner.ToolCall{{ID: "x", Name: "f", Arguments: ""}, {Name: "g", Arguments: "not json"}})
	b, _ = json.Marshal(sent)
	if want := `[[{"function":{"index":0,"name":"f","arguments":{}}},{"function":{"index":1,"name":"g","arguments":"not json"}}]]`; string(b) != want {
		t.Errorf("from the result: %s\nwant %s", b, want)
	}
}
