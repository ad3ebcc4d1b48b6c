package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/runner"
)

type ollamaCall struct {
	Function struct {
		Index     int             `json:"index"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

type ollamaChatLine struct {
	Message struct {
		Role      string       `json:"role"`
		Content   string       `json:"content"`
		ToolCalls []ollamaCall `json:"tool_calls"`
	} `json:"message"`
	Done       bool   `json:"done"`
	DoneReason string `json:"done_reason"`
}

// Tools on /api/chat: the model's template renders them, calls come back
// in Ollama's shape (arguments an object, no id), streamed whole, and
// Ollama's tool turns (calls without ids, results by tool_name) are taken.
func TestOllamaChatTools(t *testing.T) {
	url := toolsDaemon(t)
	calls := 0
	for seed := range 8 {
		body := fmt.Sprintf(`{"model": "qwen:latest", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [%s],
			"options": {"temperature": 1, "seed": %d, "num_predict": 60}, "stream": %%v}`, weatherTool, seed)
		a := post(t, url+"/api/chat", fmt.Sprintf(body, false))
		if a.Status != 200 {
			t.Fatalf("seed %d: %d %s", seed, a.Status, a.Body)
		}
		var whole ollamaChatLine
		if err := json.Unmarshal(a.Body, &whole); err != nil {
			t.Fatal(err)
		}
		if whole.DoneReason == "tool_calls" || !whole.Done {
			t.Fatalf("seed %d: %s", seed, a.Body)
		}
		if bytes.Contains(a.Body, []byte(`"id"`)) {
			t.Errorf("seed %d: Ollama's calls have no id: %s", seed, a.Body)
		}
		for i, c := range whole.Message.ToolCalls {
			calls++
			if c.Function.Name != "get_weather" || c.Function.Index != i || len(c.Function.Arguments) == 0 || c.Function.Arguments[0] != '{' {
				t.Fatalf("seed %d: call %s", seed, a.Body)
			}
			checkWeatherArgs(t, string(c.Function.Arguments))
		}

		// Streamed with the same seed: the same calls, each whole in one
		// line, and the same text.
		s := post(t, url+"/api/chat", fmt.Sprintf(body, true))
		if s.Status != 200 {
			t.Fatalf("seed %d stream: %d %s", seed, s.Status, s.Body)
		}
		var streamed []ollamaCall
		text := ""
		var last ollamaChatLine
		sc := bufio.NewScanner(bytes.NewReader(s.Body))
		for sc.Scan() {
			var l ollamaChatLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if len(l.Message.ToolCalls) > 0 && l.Message.Content != "" {
				t.Errorf("a call's line carries text: %s", sc.Text())
			}
			streamed = append(streamed, l.Message.ToolCalls...)
			text += l.Message.Content
			last = l
		}
		if !last.Done || last.DoneReason != whole.DoneReason {
			t.Errorf("seed %d: last line %+v, whole answer's done_reason %q", seed, last, whole.DoneReason)
		}
		if text != whole.Message.Content || !reflect.DeepEqual(norm(t, streamed), norm(t, whole.Message.ToolCalls)) {
			t.Errorf("seed %d: streamed %q %s\nwhole %q %s", seed, text, mustJSON(streamed), whole.Message.Content, mustJSON(whole.Message.ToolCalls))
		}
	}
	t.Logf("%d calls in 8 answers under auto", calls)

	// A round trip as Ollama's clients send it: the call without an id,
	// the result named by tool_name, then the answer.
	a := post(t, url+"/api/chat", `{"model": "qwen", "stream": false, "messages": [
		{"role": "user", "content": "Weather in Oslo?"},
		{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 1}}}]},
		{"role": "tool", "tool_name": "get_weather", "content": "{\"temp\": -3}"}],
		"tools": [`+weatherTool+`], "options": {"temperature": 0, "num_predict": 8}}`)
	if a.Status != 200 {
		t.Fatalf("round trip: %d %s", a.Status, a.Body)
	}
	// A result that answers no call is the client's mistake, named.
	a = post(t, url+"/api/chat", `{"model": "qwen", "stream": false, "messages": [
		{"role": "user", "content": "Weather in Oslo?"}, {"role": "tool", "tool_name": "get_weather", "content": "1"}],
		"tools": [`+weatherTool+`]}`)
	if a.Status != 400 || !bytes.Contains(a.Body, []byte(`"error":"messages[1]`)) {
		t.Errorf("tool message without a call: %d %s", a.Status, a.Body)
	}
}

// norm decodes calls' arguments, so that spacing does not matter.
func norm(t *testing.T, cs []ollamaCall) []any {
	t.Helper()
	var out []any
	for _, c := range cs {
		var a any
		if err := json.Unmarshal(c.Function.Arguments, &a); err != nil {
			t.Fatalf("arguments %s: %v", c.Function.Arguments, err)
		}
		out = append(out, []any{c.Function.Index, c.Function.Name, a})
	}
	return out
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// The response cache serves Ollama's surfaces as it serves /v1: a second
// identical greedy request is a hit with the same answer, streamed or not.
// (/api/chat goes through the same run; stories260K has no chat template.)
func TestOllamaResponseCache(t *testing.T) {
	e := cacheServer(t)
	for _, path := range []string{"/api/generate"} {
		body := `{"model": "story:latest", "prompt": "Once upon", "options": {"temperature": 0, "num_predict": 30}, "stream": false}`
		field := "response"
		first := do(t, "POST", e.url+path, body)
		if first.Status != 200 || first.Header.Get("X-Jetai-Cache") != "miss" {
			t.Fatalf("%s first: %d %q %s", path, first.Status, first.Header.Get("X-Jetai-Cache"), first.Body)
		}
		before := e.requests(t, "story")
		again := do(t, "POST", e.url+path, body)
		if again.Status != 200 || again.Header.Get("X-Jetai-Cache") != "hit" || !reflect.DeepEqual(again.JSON[field], first.JSON[field]) {
			t.Fatalf("%s repeat: %q %s\nfirst %s", path, again.Header.Get("X-Jetai-Cache"), again.Body, first.Body)
		}
		if e.requests(t, "story") != before {
			t.Errorf("%s: a hit reached the runner", path)
		}
		// Streamed, the stored answer serves the stream: the same text.
		st := do(t, "POST", e.url+path, bytes.NewBuffer(bytes.Replace([]byte(body), []byte(`"stream": false`), []byte(`"stream": true`), 1)).String())
		if st.Header.Get("X-Jetai-Cache") != "hit" {
			t.Errorf("%s stream: %q", path, st.Header.Get("X-Jetai-Cache"))
		}
		text := ""
		sc := bufio.NewScanner(bytes.NewReader(st.Body))
		for sc.Scan() {
			var l struct {
				Response string `json:"response"`
				Message  struct {
					Content string `json:"content"`
				} `json:"message"`
			}
			json.Unmarshal(sc.Bytes(), &l)
			text += l.Response + l.Message.Content
		}
		want, _ := first.JSON["response"].(string)
		if m, ok := first.JSON["message"].(map[string]any); ok {
			want, _ = m["content"].(string)
		}
		if text != want || want == "" {
			t.Errorf("%s stream from the cache %q, want %q", path, text, want)
		}
		// Sampled without a seed is not deterministic: not cached.
		s := do(t, "POST", e.url+path, string(bytes.Replace([]byte(body), []byte(`"temperature": 0`), []byte(`"temperature": 0.9`), 1)))
		if s.Header.Get("X-Jetai-Cache") != "bypass" {
			t.Errorf("%s sampled: %q", path, s.Header.Get("X-Jetai-Cache"))
		}
	}
}

// callPool answers with tool calls, as a runner sends them: frames of call
// pieces through req.Observe, then the whole result.
type callPool struct {
	*fakePool
	last runner.Request
}

func (p *callPool) Complete(ctx context.Context, model string, req runner.Request, onText func(string)) (runner.Result, error) {
	p.last = req
	frames := []runner.Frame{
		{ToolCalls: []runner.ToolCallDelta{{Index: 0, Start: true, ID: "call_x", Name: "get_weather", Arguments: `{"city"`}}},
		{ToolCalls: []runner.ToolCallDelta{{Index: 0, Arguments: `: "Oslo", "days": 2}`}}},
		{ToolCalls: []runner.ToolCallDelta{{Index: 1, Start: true, ID: "call_y", Name: "get_time"}}},
		{ToolCalls: []runner.ToolCallDelta{{Index: 1, Arguments: `{"zone": "CET"}`}}},
	}
	res := runner.Result{FinishReason: runner.FinishToolCalls}
	for _, f := range frames {
		if req.Observe != nil {
			req.Observe(f)
		}
		for _, d := range f.ToolCalls {
			if d.Start {
				res.ToolCalls = append(res.ToolCalls, runner.ToolCall{ID: d.ID, Name: d.Name})
			}
			res.ToolCalls[d.Index].Arguments += d.Arguments
		}
	}
	return res, nil
}

// An answer of calls in Ollama's shape, whole and streamed: no ids,
// arguments objects, done_reason stop, each call whole in one line. The
// request's Ollama tool turns reach the runner as the chat path's.
func TestOllamaToolCallsWire(t *testing.T) {
	cp := &callPool{fakePool: &fakePool{ready: true}}
	hs := httptest.NewServer(api.New(api.Options{Pool: cp, Config: parseConfig(t, ``)}).Handler())
	t.Cleanup(hs.Close)
	srv := hs.URL
	const req = `{"model": "m:latest", "stream": %v, "tools": [` + weatherTool + `], "messages": [
		{"role": "user", "content": "Weather?"},
		{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 1}}}]},
		{"role": "tool", "tool_name": "get_weather", "content": "sunny"},
		{"role": "user", "content": "And Oslo?"}]}`
	a := post(t, srv+"/api/chat", fmt.Sprintf(req, false))
	const wantCalls = `[{"function":{"index":0,"name":"get_weather","arguments":{"city":"Oslo","days":2}}},{"function":{"index":1,"name":"get_time","arguments":{"zone":"CET"}}}]`
	var whole struct {
		Message struct {
			Content   string          `json:"content"`
			ToolCalls json.RawMessage `json:"tool_calls"`
		} `json:"message"`
		DoneReason string `json:"done_reason"`
	}
	if a.Status != 200 || json.Unmarshal(a.Body, &whole) != nil || string(whole.Message.ToolCalls) != wantCalls || whole.DoneReason != "stop" {
		t.Fatalf("whole: %d %s", a.Status, a.Body)
	}
	m := cp.last.Messages
	if len(m) != 4 || len(m[1].ToolCalls) != 1 || m[1].ToolCalls[0].ID != "call_1_0" || m[1].ToolCalls[0].Arguments != `{"city": "Paris", "days": 1}` ||
		m[2].Role != "tool" || m[2].ToolCallID != "call_1_0" || m[2].Name != "get_weather" || len(cp.last.Tools) == 0 {
		t.Errorf("runner request: %+v", cp.last)
	}

	a = post(t, srv+"/api/chat", fmt.Sprintf(req, true))
	ls := lines(t, a)
	if a.Status != 200 || len(ls) != 3 {
		t.Fatalf("stream: %d %s", a.Status, a.Body)
	}
	for i, want := range []string{`[{"function":{"index":0,"name":"get_weather","arguments":{"city":"Oslo","days":2}}}]`, `[{"function":{"index":1,"name":"get_time","arguments":{"zone":"CET"}}}]`} {
		var l struct {
			Model   string `json:"model"`
			Message struct {
				Role      string          `json:"role"`
				ToolCalls json.RawMessage `json:"tool_calls"`
			} `json:"message"`
			Done bool `json:"done"`
		}
		if json.Unmarshal(ls[i], &l) != nil || l.Done || l.Model != "m" || l.Message.Role != "assistant" || string(l.Message.ToolCalls) != want {
			t.Errorf("line %d: %s\nwant calls %s", i, ls[i], want)
		}
		conforms(t, "chat_chunk", ls[i])
	}
	if !bytes.Contains(ls[2], []byte(`"done":true`)) || !bytes.Contains(ls[2], []byte(`"done_reason":"stop"`)) || bytes.Contains(ls[2], []byte("tool_calls")) {
		t.Errorf("last line %s", ls[2])
	}
}
