package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
	"github.com/jetai/jetai/modelgen"
)

// The test binary doubles as the runner executable.
func TestMain(m *testing.M) {
	testrunner.ServeIfRunner()
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}

var cleanups []func()

// genModels returns the generated ChatML tiny model and the slow (small)
// model, cached across runs.
func genModels(t *testing.T) (chat, slow string) {
	t.Helper()
	spec := modelgen.Tiny()
	spec.ChatTemplate = modelgen.ChatML
	return testmodel.Gen(t, spec), testmodel.Gen(t, modelgen.Small())
}

type env struct {
	url  string
	pool *pool.Pool
	api  *api.Server
	cfg  *config.Config
}

// start builds a real pool with real runners and the API over it.
func start(t *testing.T, hcl string) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "jetai-api-")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(hcl), filepath.Join(dir, "jetai.hcl"))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, hcl)
	}
	p, err := pool.New(pool.Options{
		Config: cfg, RunnerCommand: testrunner.Command(), RunnerEnv: testrunner.Env(),
		SocketDir: dir, RunnerLog: io.Discard, Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	srv := api.New(api.Options{Pool: p, Config: cfg, Version: "test"})
	srv.SetState(api.StateServing)
	hs := httptest.NewServer(srv.Handler())
	cleanups = append(cleanups, func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
		os.RemoveAll(dir)
	})
	return &env{url: hs.URL, pool: p, api: srv, cfg: cfg}
}

var (
	mainOnce sync.Once
	mainEnv  *env
)

// mainServer is shared by most tests: stories260K (no chat template) as
// "story", a generated ChatML model as "chat", and the router tiers
// small → story, large (structured) → chat.
func mainServer(t *testing.T) *env {
	t.Helper()
	story := testmodel.Path(t)
	chat, slow := genModels(t)
	mainOnce.Do(func() {
		mainEnv = start(t, fmt.Sprintf(`
server {
  max_body = "64KiB"
}
router {
  tier "small" {
    models            = ["story"]
    max_prompt_tokens = 64
    max_tokens        = 128
  }
  tier "large" {
    models     = ["chat"]
    structured = true
  }
}
model "story" {
  path     = %q
  aliases  = ["gpt2"]
  context  = 256
  parallel = 4
  threads  = 1
  sampling {
    max_tokens = 32
  }
}
model "chat" {
  path     = %q
  context  = 512
  parallel = 2
  threads  = 1
  sampling {
    max_tokens = 16
  }
}
model "slow" {
  path     = %q
  context  = 4096
  parallel = 1
  threads  = 1
}
`, story, chat, slow))
	})
	if mainEnv == nil {
		t.Fatal("shared server failed to start")
	}
	return mainEnv
}

type answer struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func do(t *testing.T, method, url, body string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(b) > 0 && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &a.JSON); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, url, b, err)
		}
	}
	return a
}

func post(t *testing.T, url, body string) answer { t.Helper(); return do(t, "POST", url, body) }

// wantError checks a JSON error answer in OpenAI's shape.
func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.Status != status {
		t.Fatalf("status %d, want %d: %s", a.Status, status, a.Body)
	}
	e, ok := a.JSON["error"].(map[string]any)
	if !ok || e["message"] == "" || e["type"] == "" {
		t.Fatalf("not an error body: %s", a.Body)
	}
	if code != "" && e["code"] != code {
		t.Fatalf("code %v, want %s: %s", e["code"], code, a.Body)
	}
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	s, _ := v.(string)
	return s
}

func TestInferenceModes(t *testing.T) {
	e := mainServer(t)
	// Manual, by alias, with the seed's field names.
	a := post(t, e.url+"/inference", `{"prompt": "Once upon a time", "model": "gpt2", "max_length": 20, "temperature": 0}`)
	if a.Status != 200 || str(a.JSON, "response") == "" || str(a.JSON, "model") != "story" || str(a.JSON, "selection", "mode") != "manual" {
		t.Fatalf("manual: %d %s", a.Status, a.Body)
	}
	if u := a.JSON["usage"].(map[string]any); u["completion_tokens"].(float64) < 1 || u["completion_tokens"].(float64) > 20 || u["prompt_tokens"].(float64) < 1 {
		t.Fatalf("usage: %s", a.Body)
	}
	// Auto: a short plain prompt fits the small tier.
	a = post(t, e.url+"/inference", `{"prompt": "Once upon a time", "auto_select": true, "max_tokens": 8}`)
	if a.Status != 200 || str(a.JSON, "model") != "story" || str(a.JSON, "selection", "mode") != "auto" || !strings.Contains(str(a.JSON, "selection", "reason"), `tier "small"`) {
		t.Fatalf("auto small: %d %s", a.Status, a.Body)
	}
	// Auto: structured content goes to the large tier.
	a = post(t, e.url+"/inference", `{"prompt": "Fix this: {\"a\": 1}", "auto_select": true, "max_tokens": 8}`)
	if a.Status != 200 || str(a.JSON, "model") != "chat" || !strings.Contains(str(a.JSON, "selection", "reason"), "structured yes") {
		t.Fatalf("auto structured: %d %s", a.Status, a.Body)
	}
	// Auto: a long requested length too.
	a = post(t, e.url+"/inference", `{"prompt": "Once upon a time", "model": "auto", "max_tokens": 200}`)
	if a.Status != 200 || str(a.JSON, "model") != "chat" {
		t.Fatalf("auto long: %d %s", a.Status, a.Body)
	}
	// Hybrid: the preferred model serves when it can.
	a = post(t, e.url+"/inference", `{"prompt": "Once upon a time", "preferred_model": "story", "fallback": "auto", "max_tokens": 8}`)
	if a.Status != 200 || str(a.JSON, "model") != "story" || str(a.JSON, "selection", "mode") != "hybrid" {
		t.Fatalf("hybrid preferred: %d %s", a.Status, a.Body)
	}
	// Hybrid: an unknown preferred model falls back to automatic selection.
	a = post(t, e.url+"/inference", `{"prompt": "Once upon a time", "preferred_model": "gpt-9", "fallback": "auto", "max_tokens": 8}`)
	if a.Status != 200 || str(a.JSON, "model") != "story" || !strings.Contains(str(a.JSON, "selection", "reason"), "not configured") {
		t.Fatalf("hybrid fallback: %d %s", a.Status, a.Body)
	}
	// An unknown name is a 404 that points at the field which gave it.
	for _, c := range []struct{ body, param, msg string }{
		{`{"prompt": "x", "model": "gpt-9"}`, "model", `unknown model "gpt-9"`},
		{`{"prompt": "x", "preferred_model": "gpt-9"}`, "preferred_model", `unknown model "gpt-9"`},
		{`{"prompt": "x", "preferred_model": "gpt-9", "fallback": "gpt-10"}`, "fallback", `unknown model "gpt-10"; configured models: story, chat, slow; fallback takes a model name or "auto"`},
	} {
		a = post(t, e.url+"/inference", c.body)
		if a.Status != 404 || str(a.JSON, "error", "param") != c.param || !strings.Contains(str(a.JSON, "error", "message"), c.msg) {
			t.Fatalf("%s: %d %s; want 404, param %q, message with %q", c.body, a.Status, a.Body, c.param, c.msg)
		}
	}
	// Hybrid: a preferred model that cannot take the prompt (longer than
	// its context) gives way to the fallback.
	long := strings.Repeat("the cat sat on the mat. ", 40) // > 256 story tokens, < 512 chat tokens
	a = post(t, e.url+"/inference", `{"prompt": "`+long+`", "preferred_model": "story", "fallback": "chat", "max_tokens": 4}`)
	if a.Status != 200 || str(a.JSON, "model") != "chat" || !strings.Contains(str(a.JSON, "selection", "reason"), "could not serve") {
		t.Fatalf("hybrid overflow fallback: %d %s", a.Status, a.Body)
	}
	// No model at all: the router's default.
	a = post(t, e.url+"/inference", `{"prompt": "Once upon a time", "max_tokens": 4}`)
	if a.Status != 200 || str(a.JSON, "selection", "mode") != "default" {
		t.Fatalf("default: %d %s", a.Status, a.Body)
	}
}

// sseEvents reads a whole SSE body into its data payloads.
func sseEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, d)
		} else if line != "" {
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	return out
}

func TestStreamingMatchesNonStreaming(t *testing.T) {
	e := mainServer(t)
	// 200 tokens: the runner coalesces frames (at least 5 ms apart) and the
	// tiny model makes thousands of tokens a second, so a short answer may
	// arrive as one frame; 200 spans several.
	const body = `{"prompt": "Once upon a time", "model": "story", "max_tokens": 200, "ignore_eos": true, "temperature": 0, "stream": %v}`
	plain := post(t, e.url+"/inference", fmt.Sprintf(body, false))
	if plain.Status != 200 {
		t.Fatalf("%d %s", plain.Status, plain.Body)
	}
	st := post(t, e.url+"/inference", fmt.Sprintf(body, true))
	if st.Status != 200 || st.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v %s", st.Status, st.Header, st.Body)
	}
	evs := sseEvents(t, st.Body)
	var text strings.Builder
	var final map[string]any
	for i, ev := range evs {
		var m map[string]any
		if err := json.Unmarshal([]byte(ev), &m); err != nil {
			t.Fatalf("event %d %q: %v", i, ev, err)
		}
		if m["done"] == true {
			final = m
			if i != len(evs)-1 {
				t.Fatal("events after done")
			}
			break
		}
		text.WriteString(m["text"].(string))
	}
	want := str(plain.JSON, "response")
	if final == nil || text.String() != want || str(final, "response") != want || len(evs) < 3 {
		t.Fatalf("streamed %q (%d events, final %v), non-streaming %q", text.String(), len(evs), final, want)
	}
}

func TestOpenAIChat(t *testing.T) {
	e := mainServer(t)
	a := post(t, e.url+"/v1/chat/completions", `{"model": "chat", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hello"}]}], "max_tokens": 8, "temperature": 0}`)
	if a.Status != 200 || str(a.JSON, "object") != "chat.completion" || str(a.JSON, "model") != "chat" {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	ch := a.JSON["choices"].([]any)[0].(map[string]any)
	if str(ch, "message", "role") != "assistant" || (str(ch, "finish_reason") != "length" && str(ch, "finish_reason") != "stop") {
		t.Fatalf("choice: %s", a.Body)
	}
	content := str(ch, "message", "content")
	usage := a.JSON["usage"].(map[string]any)
	if usage["prompt_tokens"].(float64) < 5 || usage["total_tokens"].(float64) != usage["prompt_tokens"].(float64)+usage["completion_tokens"].(float64) {
		t.Fatalf("usage: %s", a.Body)
	}

	// Streaming: role first, content chunks, finish, usage, [DONE]; the
	// same text as without streaming (greedy).
	s := post(t, e.url+"/v1/chat/completions", `{"model": "chat", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}], "max_tokens": 8, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}`)
	evs := sseEvents(t, s.Body)
	if s.Status != 200 || len(evs) < 4 || evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("%d %q", s.Status, evs)
	}
	var text strings.Builder
	var sawRole, sawFinish, sawUsage bool
	for _, ev := range evs[:len(evs)-1] {
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Role, Content string
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil || c.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %q: %v", ev, err)
		}
		if c.Usage != nil {
			sawUsage = len(c.Choices) == 0 && c.Usage.CompletionTokens > 0
			continue
		}
		if c.Choices[0].Delta.Role == "assistant" {
			sawRole = true
		}
		if c.Choices[0].FinishReason != nil {
			sawFinish = true
		}
		text.WriteString(c.Choices[0].Delta.Content)
	}
	if !sawRole || !sawFinish || !sawUsage || text.String() != content {
		t.Fatalf("role %v finish %v usage %v; streamed %q, plain %q\n%q", sawRole, sawFinish, sawUsage, text.String(), content, evs)
	}

	// response_format json_object constrains the output to JSON.
	a = post(t, e.url+"/v1/chat/completions", `{"model": "chat", "messages": [{"role": "user", "content": "Give JSON"}], "max_tokens": 48, "temperature": 0, "response_format": {"type": "json_object"}}`)
	if a.Status != 200 {
		t.Fatalf("json_object: %d %s", a.Status, a.Body)
	}
	out := strings.TrimSpace(str(a.JSON["choices"].([]any)[0].(map[string]any), "message", "content"))
	if !strings.HasPrefix(out, "{") {
		t.Fatalf("json_object output %q", out)
	}
	a = post(t, e.url+"/v1/chat/completions", `{"model": "chat", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema"}}`)
	wantError(t, a, 400, "invalid_request")

	// A model without a chat template: a clear 400.
	a = post(t, e.url+"/v1/chat/completions", `{"model": "story", "messages": [{"role": "user", "content": "Hello"}]}`)
	wantError(t, a, 400, "no_chat_template")
	if !strings.Contains(str(a.JSON, "error", "message"), "prompt") {
		t.Fatalf("message does not say what to do: %s", a.Body)
	}
	a = post(t, e.url+"/v1/chat/completions", `{"model": "chat", "messages": [{"role": "user", "content": "x"}], "n": 2}`)
	wantError(t, a, 400, "")
}

func TestOpenAICompletionsModelsEmbeddings(t *testing.T) {
	e := mainServer(t)
	a := post(t, e.url+"/v1/completions", `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 10, "temperature": 0, "stop": "\n"}`)
	if a.Status != 200 || str(a.JSON, "object") != "text_completion" || str(a.JSON["choices"].([]any)[0].(map[string]any), "text") == "" {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	s := post(t, e.url+"/v1/completions", `{"model": "gpt2", "prompt": ["Once upon a time"], "max_tokens": 10, "temperature": 0, "stop": "\n", "stream": true}`)
	evs := sseEvents(t, s.Body)
	var text strings.Builder
	for _, ev := range evs[:len(evs)-1] {
		var c struct {
			Choices []struct{ Text string } `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		text.WriteString(c.Choices[0].Text)
	}
	if evs[len(evs)-1] != "[DONE]" || text.String() != str(a.JSON["choices"].([]any)[0].(map[string]any), "text") {
		t.Fatalf("stream %q vs %s", evs, a.Body)
	}

	m := do(t, "GET", e.url+"/v1/models", "")
	ids := []string{}
	for _, d := range m.JSON["data"].([]any) {
		ids = append(ids, str(d.(map[string]any), "id"))
	}
	if m.Status != 200 || strings.Join(ids, ",") != "story,chat,slow,auto" {
		t.Fatalf("models %v: %s", ids, m.Body)
	}
	if a := do(t, "GET", e.url+"/v1/models/gpt2", ""); a.Status != 200 || str(a.JSON, "id") != "story" {
		t.Fatalf("%d %s", a.Status, a.Body)
	}

	emb := post(t, e.url+"/v1/embeddings", `{"model": "story", "input": ["a cat", "a dog"]}`)
	if emb.Status != 200 {
		t.Fatalf("%d %s", emb.Status, emb.Body)
	}
	data := emb.JSON["data"].([]any)
	if len(data) != 2 || len(data[1].(map[string]any)["embedding"].([]any)) == 0 {
		t.Fatalf("embeddings: %.300s", emb.Body)
	}
	emb = post(t, e.url+"/v1/embeddings", `{"model": "story", "input": "a cat", "encoding_format": "base64"}`)
	if emb.Status != 200 || str(emb.JSON["data"].([]any)[0].(map[string]any), "embedding") == "" {
		t.Fatalf("base64: %d %.300s", emb.Status, emb.Body)
	}
	wantError(t, post(t, e.url+"/v1/embeddings", `{"model": "story", "input": [1, 2]}`), 400, "")
}

func TestBadRequestsKeepServing(t *testing.T) {
	e := mainServer(t)
	long := strings.Repeat("the cat sat on the mat. ", 60) // > 256 tokens of story's context
	cases := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"malformed", "/inference", `{"prompt": "x",`, 400, "invalid_request"},
		{"not json", "/inference", `prompt=x`, 400, "invalid_request"},
		{"empty body", "/inference", ``, 400, "invalid_request"},
		{"array body", "/inference", `[1]`, 400, "invalid_request"},
		{"trailing", "/inference", `{"prompt": "x"} {}`, 400, "invalid_request"},
		{"wrong type", "/inference", `{"prompt": "x", "max_tokens": "ten"}`, 400, "invalid_request"},
		{"wrong type prompt", "/inference", `{"prompt": 5}`, 400, "invalid_request"},
		{"unknown field", "/inference", `{"prompt": "x", "max_token": 5}`, 400, "invalid_request"},
		{"negative max_tokens", "/inference", `{"prompt": "x", "model": "story", "max_tokens": -1}`, 400, "invalid_request"},
		{"huge number", "/inference", `{"prompt": "x", "max_tokens": 1e30}`, 400, "invalid_request"},
		{"bad temperature", "/inference", `{"prompt": "x", "temperature": -1}`, 400, "invalid_request"},
		{"bad seed", "/inference", `{"prompt": "x", "seed": 99999999999}`, 400, "invalid_request"},
		{"empty prompt", "/inference", `{"prompt": ""}`, 400, "invalid_request"},
		{"model and auto", "/inference", `{"prompt": "x", "model": "story", "auto_select": true}`, 400, "invalid_request"},
		{"prompt too long", "/inference", `{"prompt": "` + long + `", "model": "story"}`, 400, "context_overflow"},
		{"bad grammar", "/inference", `{"prompt": "x", "model": "story", "grammar": "root ::= ("}`, 400, "invalid_grammar"},
		{"dead-end grammar", "/inference", `{"prompt": "x", "model": "story", "grammar": "root ::= [\\x00]"}`, 400, "invalid_grammar"},
		{"dead-end schema", "/v1/completions", `{"prompt": "x", "model": "story", "json_schema": {"type": "integer", "minimum": 5, "maximum": 1}}`, 400, "invalid_grammar"},
		{"unknown model", "/inference", `{"prompt": "x", "model": "gpt-9"}`, 404, "model_not_found"},
		{"unknown model v1", "/v1/completions", `{"prompt": "x", "model": "gpt-9"}`, 404, "model_not_found"},
		{"unknown model load", "/load_model", `{"model_name": "gpt-9"}`, 404, "model_not_found"},
		{"oversized body", "/inference", `{"prompt": "` + strings.Repeat("a", 70<<10) + `"}`, 413, "body_too_large"},
		{"wrong type v1", "/v1/chat/completions", `{"model": "chat", "messages": "hi"}`, 400, "invalid_request"},
		{"no endpoint", "/nope", `{}`, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, post(t, e.url+c.path, c.body), c.status, c.code)
		})
	}
	a := do(t, "GET", e.url+"/inference", "")
	wantError(t, a, 405, "method_not_allowed")
	if a.Header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", a.Header.Get("Allow"))
	}
	// Oversized body without a Content-Length (chunked): still 413.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"prompt": "`))
		pw.Write(bytes.Repeat([]byte("a"), 70<<10))
		pw.Write([]byte(`"}`))
		pw.Close()
	}()
	resp, err := http.Post(e.url+"/inference", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked oversized: %d", resp.StatusCode)
	}
	// An absurd max_tokens is capped at the model's context, not refused.
	a = post(t, e.url+"/inference", `{"prompt": "Once upon a time", "model": "story", "max_tokens": 100000000}`)
	if a.Status != 200 || a.JSON["usage"].(map[string]any)["completion_tokens"].(float64) > 256 {
		t.Fatalf("absurd max_tokens: %d %s", a.Status, a.Body)
	}
	// Still serving.
	if a := do(t, "GET", e.url+"/health", ""); a.Status != 200 || str(a.JSON, "status") != "ok" {
		t.Fatalf("health after errors: %d %s", a.Status, a.Body)
	}
	if a := post(t, e.url+"/inference", `{"prompt": "Once upon a time", "model": "story", "max_tokens": 4}`); a.Status != 200 {
		t.Fatalf("after errors: %d %s", a.Status, a.Body)
	}
}

func TestBatch(t *testing.T) {
	e := mainServer(t)
	a := post(t, e.url+"/batch_inference", `{"requests": [
		{"prompt": "Once upon a time", "model": "story", "max_tokens": 8},
		{"prompt": "The dog", "model": "gpt-9"},
		{"prompt": "The cat", "model": "story", "max_tokens": "many"},
		{"prompt": "Lily went", "auto_select": true, "max_tokens": 8},
		{"prompt": "Tom saw", "model": "story", "max_tokens": 8}
	]}`)
	if a.Status != 200 || a.JSON["succeeded"].(float64) != 3 || a.JSON["failed"].(float64) != 2 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	rs := a.JSON["results"].([]any)
	want := []int{200, 404, 400, 200, 200}
	for i, r := range rs {
		m := r.(map[string]any)
		if int(m["status"].(float64)) != want[i] || int(m["index"].(float64)) != i {
			t.Fatalf("result %d: %v", i, m)
		}
		if want[i] == 200 && str(m, "response") == "" {
			t.Fatalf("result %d has no response: %v", i, m)
		}
		if want[i] != 200 && str(m, "error", "message") == "" {
			t.Fatalf("result %d has no error: %v", i, m)
		}
	}
	wantError(t, post(t, e.url+"/batch_inference", `{"requests": []}`), 400, "invalid_request")
}

// A client that goes away mid-stream cancels its generation: on a model
// with one slot, the next request is served at once instead of waiting for
// the abandoned one to reach max_tokens.
func TestDisconnectFreesSlot(t *testing.T) {
	e := mainServer(t)
	// Warm up (load) so that the timing below is about generation only.
	a := post(t, e.url+"/inference", `{"prompt": "x", "model": "slow", "max_tokens": 32}`)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	tps := a.JSON["timings"].(map[string]any)["tokens_per_second"].(float64)
	t.Logf("slow model: %.0f tokens/s", tps)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/v1/completions",
		strings.NewReader(`{"model": "slow", "prompt": "Once upon a time", "max_tokens": 4000, "ignore_eos": true, "stream": true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	started := time.Now()
	if _, err := r.ReadString('\n'); err != nil { // the first chunk arrived
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// Had the abandoned stream kept its slot, the next request would wait
	// for its 4000 tokens; anything well under that proves the slot was
	// freed. The bound scales with the speed measured just now, so a
	// loaded machine (slower tokens, slower everything) keeps the ratio.
	bound := max(2*time.Second, time.Duration(4000/tps/2*float64(time.Second)))
	// The pool sees the slot come free.
	for deadline := time.Now().Add(bound); ; time.Sleep(10 * time.Millisecond) {
		st, _ := e.pool.Model("slow")
		if st.Active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned stream still holds its slot: %+v", st)
		}
	}
	a = post(t, e.url+"/inference", `{"prompt": "x", "model": "slow", "max_tokens": 2}`)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	// 4000 tokens of the small model on one thread take far longer than
	// this; the slot was freed.
	if 4000/tps < 4 {
		t.Logf("the slow model is fast here (%.0f tokens/s); this test proves less", tps)
	}
	if el := time.Since(started); el > bound {
		t.Fatalf("the next request waited %v (over %v): the abandoned stream kept its slot", el, bound)
	}
}

func TestModelManagement(t *testing.T) {
	e := mainServer(t)
	if a := post(t, e.url+"/load_model", `{"model_name": "chat"}`); a.Status != 200 || str(a.JSON, "status") != "loaded" {
		t.Fatalf("load: %d %s", a.Status, a.Body)
	}
	m := do(t, "GET", e.url+"/models", "")
	found := false
	for _, x := range m.JSON["models"].([]any) {
		if mm := x.(map[string]any); str(mm, "name") == "chat" {
			found = str(mm, "state") == "ready"
		}
	}
	if m.Status != 200 || !found {
		t.Fatalf("models: %s", m.Body)
	}
	s := do(t, "GET", e.url+"/status", "")
	if s.Status != 200 || str(s.JSON, "version") != "test" || str(s.JSON, "config", "hash") == "" {
		t.Fatalf("status: %s", s.Body)
	}
	for _, p := range []string{"/performance"} {
		if a := do(t, "GET", e.url+p, ""); a.Status != 200 {
			t.Fatalf("%s: %d %s", p, a.Status, a.Body)
		}
	}
	if a := post(t, e.url+"/optimize", ``); a.Status != 200 {
		t.Fatalf("optimize: %d %s", a.Status, a.Body)
	}
	if a := post(t, e.url+"/unload_model", `{"model_name": "chat"}`); a.Status != 200 || str(a.JSON, "status") != "unloaded" {
		t.Fatalf("unload: %d %s", a.Status, a.Body)
	}
	wantError(t, post(t, e.url+"/load_model", `{}`), 400, "invalid_request")
}

// A full queue answers 429 with Retry-After, and the daemon keeps serving.
func TestQueueFull(t *testing.T) {
	_, slow := genModels(t)
	e := start(t, fmt.Sprintf(`
server {
  queue_per_model = 1
}
model "q" {
  path     = %q
  context  = 4096
  parallel = 1
  threads  = 1
}`, slow))
	if a := post(t, e.url+"/inference", `{"prompt": "x", "model": "q", "max_tokens": 1}`); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One request holds the slot, one waits in the queue.
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/inference",
			strings.NewReader(`{"model": "q", "prompt": "Once upon a time", "max_tokens": 4000, "ignore_eos": true, "stream": true}`))
		go func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, _ := e.pool.Model("q")
		if st.Active == 1 && st.Queued == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never busy: %+v", st)
		}
	}
	a := post(t, e.url+"/inference", `{"prompt": "x", "model": "q", "max_tokens": 1}`)
	wantError(t, a, 429, "queue_full")
	if a.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	cancel()
	if a := do(t, "GET", e.url+"/health", ""); a.Status != 200 {
		t.Fatalf("health: %d", a.Status)
	}
}
