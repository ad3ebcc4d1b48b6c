package api_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/pool"
)

// The Authorization scheme is case-insensitive (RFC 9110, 11.1).
func TestBearerSchemeAnyCase(t *testing.T) {
	_, url := fakeServerWithFile(t, `
server {
  api_keys = ["sk-one"]
}`, &fakePool{ready: true})
	for _, c := range []struct {
		auth   string
		status int
	}{
		{"Bearer sk-one", 200},
		{"bearer sk-one", 200},
		{"BEARER sk-one", 200},
		{"bEaReR   sk-one", 200},
		{"Bearer sk-two", 401},
		{"bearer", 401},
		{"Basic sk-one", 401},
		{"sk-one", 401},
		{"Bearersk-one", 401},
	} {
		a := do(t, "GET", url+"/models", "", "Authorization", c.auth)
		if a.Status != c.status {
			t.Errorf("Authorization %q: %d, want %d: %s", c.auth, a.Status, c.status, a.Body)
		}
	}
}

// A field that asks for what jetai cannot do is a 400 that names it; the
// same field with its "off" value is served.
func TestUnsupportedOpenAIFields(t *testing.T) {
	_, url := fakeServerWithFile(t, ``, &fakePool{ready: true})
	const chat = `"model": "m", "messages": [{"role": "user", "content": "x"}]`
	const cmpl = `"model": "m", "prompt": "x"`
	for _, c := range []struct {
		path, body string
		param      string // "" when served
	}{
		{"/v1/completions", `{` + cmpl + `, "echo": true}`, "echo"},
		{"/v1/completions", `{` + cmpl + `, "echo": false}`, ""},
		{"/v1/completions", `{` + cmpl + `, "logprobs": 0}`, ""},
		{"/v1/completions", `{` + cmpl + `, "logprobs": 5}`, ""},
		{"/v1/completions", `{` + cmpl + `, "logprobs": 21}`, "logprobs"},
		{"/v1/completions", `{` + cmpl + `, "logprobs": true}`, "logprobs"},
		{"/v1/completions", `{` + cmpl + `, "logprobs": null}`, ""},
		{"/v1/completions", `{` + cmpl + `, "best_of": 2}`, "best_of"},
		{"/v1/completions", `{` + cmpl + `, "best_of": 1}`, ""},
		{"/v1/completions", `{` + cmpl + `, "suffix": "end"}`, "suffix"},
		{"/v1/completions", `{` + cmpl + `, "suffix": null}`, ""},
		{"/v1/completions", `{` + cmpl + `, "logit_bias": {"50256": -100}}`, "logit_bias"},
		{"/v1/completions", `{` + cmpl + `, "logit_bias": {}}`, ""},
		{"/v1/completions", `{` + cmpl + `, "n": 3}`, "n"},
		{"/v1/chat/completions", `{` + chat + `, "logprobs": true}`, ""},
		{"/v1/chat/completions", `{` + chat + `, "logprobs": false}`, ""},
		{"/v1/chat/completions", `{` + chat + `, "logprobs": true, "top_logprobs": 20}`, ""},
		{"/v1/chat/completions", `{` + chat + `, "logprobs": true, "top_logprobs": 21}`, "top_logprobs"},
		{"/v1/chat/completions", `{` + chat + `, "top_logprobs": 3}`, "top_logprobs"},
		{"/v1/chat/completions", `{` + chat + `, "top_logprobs": 0}`, ""},
		{"/v1/chat/completions", `{` + chat + `, "logit_bias": {"1": 5}}`, "logit_bias"},
		{"/v1/chat/completions", `{` + chat + `, "n": 2}`, "n"},
		{"/v1/chat/completions", `{` + chat + `, "n": 1}`, ""},
		{"/v1/chat/completions", `{` + chat + `, "tools": {}}`, "tools"},
		{"/v1/chat/completions", `{` + chat + `, "tools": [{"type": "function", "function": {"name": "a b"}}]}`, "tools[0].function.name"},
		{"/v1/chat/completions", `{` + chat + `, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}`, "tool_choice.function.name"},
		{"/v1/chat/completions", `{` + chat + `, "tool_choice": "required"}`, "tool_choice"},
		{"/v1/chat/completions", `{"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_1", "content": "42"}]}`, "messages[1].tool_call_id"},
		{"/v1/chat/completions", `{"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "call_1", "content": "42"}]}`, ""},
		{"/v1/chat/completions", `{` + chat + `, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"}`, ""},
	} {
		a := post(t, url+c.path, c.body)
		if c.param == "" {
			if a.Status != 200 {
				t.Errorf("%s %s: %d %s", c.path, c.body, a.Status, a.Body)
			}
			continue
		}
		if a.Status != 400 || str(a.JSON, "error", "param") != c.param || !strings.Contains(str(a.JSON, "error", "message"), c.param) {
			t.Errorf("%s %s: %d %s; want 400 naming %s", c.path, c.body, a.Status, a.Body, c.param)
		}
	}
}

// reportPool is a fake pool whose Optimize returns a set report.
type reportPool struct {
	*fakePool
	rep pool.OptimizeReport
}

func (p *reportPool) Optimize(ctx context.Context) pool.OptimizeReport { return p.rep }

// POST /optimize says what it did, and why when it did nothing.
func TestOptimizeSaysWhy(t *testing.T) {
	for _, c := range []struct {
		name  string
		state string
		rep   pool.OptimizeReport
		want  string
	}{
		{"nothing loaded", pool.StateUnloaded, pool.OptimizeReport{Unloaded: []string{}, Reasons: map[string]string{}}, "nothing to unload: no model is loaded"},
		{"nothing idle", pool.StateReady, pool.OptimizeReport{Unloaded: []string{}, Reasons: map[string]string{}}, "nothing to unload: no idle model is past its keep_alive and memory is above the reserve"},
		{"unloaded", pool.StateReady, pool.OptimizeReport{Unloaded: []string{"m"}, Reasons: map[string]string{"m": "idle"}, FreedBytes: 1024}, "unloaded 1 model(s) (m), freed 1024 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fp := &fakePool{ready: true, models: func() []pool.ModelStatus { return []pool.ModelStatus{{Name: "m", State: c.state}} }}
			hs := httptest.NewServer(api.New(api.Options{Pool: &reportPool{fakePool: fp, rep: c.rep}, Config: parseConfig(t, ``)}).Handler())
			defer hs.Close()
			a := post(t, hs.URL+"/optimize", "")
			if a.Status != 200 || !strings.HasPrefix(str(a.JSON, "message"), c.want) {
				t.Fatalf("%d %s; want message %q", a.Status, a.Body, c.want)
			}
		})
	}
}
