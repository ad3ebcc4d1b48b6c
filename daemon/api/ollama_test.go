package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The Ollama-compatible /api against a real jetaid: every endpoint and its
// errors, each answer validated against the shapes of Ollama's docs/api.md
// (testdata/ollama/*.schema.json).

const ollamaKey = "sk-ollama"

var (
	ollamaOnce sync.Once
	ollamaURL  string
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
)

// ollamaDaemon is a jetaid with stories260K (no chat template) as "story"
// (alias "gpt2", preloaded) and a generated ChatML model as "chat", behind
// an API key.
func ollamaDaemon(t *testing.T) string {
	t.Helper()
	story := testmodel.Path(t)
	chat, _ := genModels(t)
	ollamaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jetai-ollama-")
		if err != nil {
			t.Fatal(err)
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
server {
  api_keys = ["%s"]
}
model "story" {
  path       = %q
  aliases    = ["gpt2"]
  context    = 256
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
  sampling {
    max_tokens = 16
  }
}
model "chat" {
  path     = %q
  context  = 256
  parallel = 2
  threads  = 1
  sampling {
    max_tokens = 8
  }
}
model "pinned" {
  path    = %q
  context = 256
  threads = 1
  pinned  = true
}
`, ollamaKey, story, chat, story))
		// The daemon outlives this test: the package's TestMain stops it.
		td := testdaemon.Start(&keepAlive{T: t}, daemon.Options{ConfigPath: conf, Log: slog.New(slog.DiscardHandler)})
		td.WaitHealthy(t)
		ollamaURL = td.URL
	})
	if ollamaURL == "" {
		t.Fatal("the shared daemon did not start")
	}
	return ollamaURL
}

// keepAlive is a testing.TB whose cleanups run at the package's end (in
// TestMain) rather than at the end of the test that started the daemon.
type keepAlive struct {
	*testing.T
}

func (k *keepAlive) Cleanup(f func()) { cleanups = append(cleanups, f) }

func schema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		schemas = map[string]*jsonschema.Schema{}
		c := jsonschema.NewCompiler()
		files, _ := filepath.Glob("testdata/ollama/*.schema.json")
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := c.AddResource(f, doc); err != nil {
				t.Fatal(err)
			}
			s, err := c.Compile(f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			schemas[strings.TrimSuffix(filepath.Base(f), ".schema.json")] = s
		}
	})
	s, ok := schemas[name]
	if !ok {
		t.Fatalf("no schema %s in testdata/ollama", name)
	}
	return s
}

// conforms validates one JSON value against testdata/ollama/NAME.schema.json.
func conforms(t *testing.T, name string, b []byte) map[string]any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not JSON: %v: %s", name, err, b)
	}
	if err := schema(t, name).Validate(v); err != nil {
		t.Fatalf("answer does not match Ollama's %s shape: %v\n%s", name, err, b)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func ollamaDo(t *testing.T, method, path, body string) answer {
	t.Helper()
	return do(t, method, ollamaDaemon(t)+path, body, "Authorization", "Bearer "+ollamaKey)
}

// lines splits an NDJSON body.
func lines(t *testing.T, a answer) [][]byte {
	t.Helper()
	if ct := a.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q, want application/x-ndjson: %s", ct, a.Body)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(a.Body))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	return out
}

func TestOllamaGenerateAndChat(t *testing.T) {
	cases := []struct {
		name, path, body string
		stream           bool
		chunk, final     string
		check            func(t *testing.T, final map[string]any, text string)
	}{
		{name: "generate streams by default", path: "/api/generate", body: `{"model": "story", "prompt": "Once upon a time", "options": {"temperature": 0, "num_predict": 12}}`,
			stream: true, chunk: "generate_chunk", final: "generate_final",
			check: func(t *testing.T, f map[string]any, text string) {
				// The real model's greedy continuation (stories260K's README).
				if !strings.Contains(text, "Lily") {
					t.Errorf("text %q: not the model's greedy continuation", text)
				}
				if f["eval_count"].(float64) != 12 || f["done_reason"] != "length" {
					t.Errorf("num_predict 12: eval_count %v, done_reason %v", f["eval_count"], f["done_reason"])
				}
				if f["response"] != "" {
					t.Errorf("streamed final carries response %q", f["response"])
				}
			}},
		{name: "generate stream false, NAME:latest, alias", path: "/api/generate", body: `{"model": "gpt2:latest", "prompt": "Once upon a time", "stream": false, "options": {"temperature": 0, "num_predict": 12, "stop": ["park"]}}`,
			final: "generate_final",
			check: func(t *testing.T, f map[string]any, text string) {
				if f["model"] != "story" || !strings.Contains(text, "Lily") {
					t.Errorf("model %v text %q", f["model"], text)
				}
			}},
		{name: "generate raw", path: "/api/generate", body: `{"model": "chat", "prompt": "<|im_start|>user\nhi<|im_end|>\n", "raw": true, "stream": false}`, final: "generate_final"},
		{name: "generate with the chat template", path: "/api/generate", body: `{"model": "chat", "prompt": "hi", "system": "be brief", "stream": false, "options": {"seed": 7}}`, final: "generate_final",
			check: func(t *testing.T, f map[string]any, text string) {
				// system + user through ChatML: well over the prompt's 1-2 tokens.
				if f["prompt_eval_count"].(float64) < 8 {
					t.Errorf("prompt_eval_count %v: the chat template was not applied", f["prompt_eval_count"])
				}
			}},
		{name: "generate format json", path: "/api/generate", body: `{"model": "story", "prompt": "Once", "format": "json", "stream": false, "options": {"num_predict": 24}}`, final: "generate_final",
			check: func(t *testing.T, f map[string]any, text string) {
				if !strings.HasPrefix(strings.TrimSpace(text), "{") {
					t.Errorf("format json: %q is not a JSON object's start", text)
				}
			}},
		{name: "chat streams by default", path: "/api/chat", body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "options": {"temperature": 0}}`,
			stream: true, chunk: "chat_chunk", final: "chat_final"},
		{name: "chat stream false", path: "/api/chat", body: `{"model": "chat:latest", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "Hello"}], "stream": false, "keep_alive": "5m"}`,
			final: "chat_final",
			check: func(t *testing.T, f map[string]any, text string) {
				if f["eval_count"].(float64) != 8 {
					t.Errorf("eval_count %v, want the model's max_tokens 8", f["eval_count"])
				}
			}},
		{name: "chat format schema", path: "/api/chat", body: `{"model": "chat", "messages": [{"role": "user", "content": "age?"}], "stream": false, "format": {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}, "options": {"num_predict": 64}}`,
			final: "chat_final",
			check: func(t *testing.T, f map[string]any, text string) {
				if !strings.HasPrefix(strings.TrimSpace(text), "{") {
					t.Errorf("format schema: %q", text)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := ollamaDo(t, "POST", c.path, c.body)
			if a.Status != 200 {
				t.Fatalf("status %d: %s", a.Status, a.Body)
			}
			var final map[string]any
			var text strings.Builder
			if c.stream {
				ls := lines(t, a)
				if len(ls) < 2 {
					t.Fatalf("%d lines, want chunks and a final object: %s", len(ls), a.Body)
				}
				for _, l := range ls[:len(ls)-1] {
					m := conforms(t, c.chunk, l)
					if msg, ok := m["message"].(map[string]any); ok {
						text.WriteString(msg["content"].(string))
					} else {
						text.WriteString(m["response"].(string))
					}
				}
				final = conforms(t, c.final, ls[len(ls)-1])
			} else {
				final = conforms(t, c.final, a.Body)
				if msg, ok := final["message"].(map[string]any); ok {
					text.WriteString(msg["content"].(string))
				} else {
					text.WriteString(final["response"].(string))
				}
			}
			td := final["total_duration"].(float64)
			if td <= 0 || final["eval_duration"].(float64) > td || final["prompt_eval_duration"].(float64) > td {
				t.Errorf("durations not nanoseconds within total_duration: %v", final)
			}
			if c.check != nil {
				c.check(t, final, text.String())
			}
		})
	}
}

// TestOllamaStreamMatchesWhole: a greedy generation gives the same text
// streamed and whole.
func TestOllamaStreamMatchesWhole(t *testing.T) {
	body := `{"model": "story", "prompt": "Once upon a time", "options": {"temperature": 0, "num_predict": 20}, "stream": %v}`
	whole := conforms(t, "generate_final", ollamaDo(t, "POST", "/api/generate", fmt.Sprintf(body, false)).Body)["response"].(string)
	var streamed strings.Builder
	for _, l := range lines(t, ollamaDo(t, "POST", "/api/generate", fmt.Sprintf(body, true))) {
		var m map[string]any
		json.Unmarshal(l, &m)
		streamed.WriteString(m["response"].(string))
	}
	if whole == "" || streamed.String() != whole {
		t.Fatalf("streamed %q, whole %q", streamed.String(), whole)
	}
}

func TestOllamaListings(t *testing.T) {
	tags := conforms(t, "tags", ollamaDo(t, "GET", "/api/tags", "").Body)
	names := map[string]map[string]any{}
	for _, m := range tags["models"].([]any) {
		e := m.(map[string]any)
		names[e["name"].(string)] = e
	}
	if len(names) != 3 || names["story"] == nil || names["chat"] == nil {
		t.Fatalf("tags lists %v, want story, chat, pinned", names)
	}
	d := names["story"]["details"].(map[string]any)
	if d["family"] != "llama" || d["quantization_level"] == "" || !strings.HasSuffix(d["parameter_size"].(string), "K") {
		t.Errorf("story's details %v: want family llama, a quantization, a size in K (260K parameters)", d)
	}
	if names["story"]["size"].(float64) != 1185376 {
		t.Errorf("story's size %v, want the file's 1185376 bytes", names["story"]["size"])
	}

	ps := conforms(t, "ps", ollamaDo(t, "GET", "/api/ps", "").Body)
	found := false
	for _, m := range ps["models"].([]any) {
		e := m.(map[string]any)
		if e["name"] == "story" {
			found = true
			if e["size"].(float64) <= 0 {
				t.Errorf("ps: story's size %v", e["size"])
			}
		}
	}
	if !found {
		t.Fatalf("ps does not list the preloaded story: %v", ps)
	}

	for _, c := range []struct{ body, template string }{
		{`{"model": "story"}`, ""},
		{`{"name": "chat:latest"}`, "im_start"},
	} {
		show := conforms(t, "show", ollamaDo(t, "POST", "/api/show", c.body).Body)
		if !strings.Contains(show["template"].(string), c.template) || !strings.Contains(show["parameters"].(string), "temperature") {
			t.Errorf("show %s: template %q parameters %q", c.body, show["template"], show["parameters"])
		}
		if toks, ok := show["model_info"].(map[string]any)["tokenizer.ggml.tokens"].([]any); !ok || len(toks) != 0 {
			t.Errorf("show without verbose: tokenizer.ggml.tokens %v, want []", show["model_info"].(map[string]any)["tokenizer.ggml.tokens"])
		}
	}
	verbose := conforms(t, "show", ollamaDo(t, "POST", "/api/show", `{"model": "story", "verbose": true}`).Body)
	if toks, _ := verbose["model_info"].(map[string]any)["tokenizer.ggml.tokens"].([]any); len(toks) != 512 {
		t.Errorf("show verbose: %d tokens, want stories260K's 512", len(toks))
	}

	v := conforms(t, "version", ollamaDo(t, "GET", "/api/version", "").Body)
	if v["version"] == "" {
		t.Errorf("version %v", v)
	}
}

func TestOllamaEmbeddings(t *testing.T) {
	one := conforms(t, "embed", ollamaDo(t, "POST", "/api/embed", `{"model": "story", "input": "Once upon a time"}`).Body)
	many := conforms(t, "embed", ollamaDo(t, "POST", "/api/embed", `{"model": "story:latest", "input": ["Once upon a time", "Lily"]}`).Body)
	e1 := one["embeddings"].([]any)[0].([]any)
	embs := many["embeddings"].([]any)
	if len(embs) != 2 || len(e1) == 0 || fmt.Sprint(embs[0]) != fmt.Sprint(e1) {
		t.Fatalf("embed: one %d dims, many %d; the same input must give the same embedding", len(e1), len(embs))
	}
	if one["prompt_eval_count"].(float64) < 4 {
		t.Errorf("prompt_eval_count %v", one["prompt_eval_count"])
	}
	dim := conforms(t, "embed", ollamaDo(t, "POST", "/api/embed", `{"model": "story", "input": "Once upon a time", "dimensions": 8}`).Body)
	v := dim["embeddings"].([]any)[0].([]any)
	var norm float64
	for _, x := range v {
		norm += x.(float64) * x.(float64)
	}
	if len(v) != 8 || math.Abs(norm-1) > 1e-4 {
		t.Errorf("dimensions 8: %d values, norm² %v; want 8, unit length", len(v), norm)
	}
	old := conforms(t, "embeddings", ollamaDo(t, "POST", "/api/embeddings", `{"model": "story", "prompt": "Once upon a time"}`).Body)
	if fmt.Sprint(old["embedding"]) != fmt.Sprint(e1) {
		t.Errorf("/api/embeddings and /api/embed differ for the same input")
	}
	empty := conforms(t, "embeddings", ollamaDo(t, "POST", "/api/embeddings", `{"model": "story", "prompt": ""}`).Body)
	if len(empty["embedding"].([]any)) != 0 {
		t.Errorf("empty prompt: %v, want an empty embedding", empty)
	}
}

// TestOllamaLoadUnload: an empty prompt or message list loads the model;
// with keep_alive 0 it unloads it; a pinned model refuses to unload;
// keep_alive 0 on a request unloads the model after it.
func TestOllamaLoadUnload(t *testing.T) {
	state := func(name string) string {
		for _, m := range do(t, "GET", ollamaDaemon(t)+"/models", "", "Authorization", "Bearer "+ollamaKey).JSON["models"].([]any) {
			e := m.(map[string]any)
			if e["name"] == name {
				return e["state"].(string)
			}
		}
		return ""
	}
	waitState := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for state(name) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s is %s, want %s", name, state(name), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	l := conforms(t, "load", ollamaDo(t, "POST", "/api/chat", `{"model": "chat", "messages": []}`).Body)
	if l["done_reason"] != "load" || state("chat") != "ready" {
		t.Fatalf("load: %v, chat is %s", l, state("chat"))
	}
	u := conforms(t, "load", ollamaDo(t, "POST", "/api/generate", `{"model": "chat", "keep_alive": 0}`).Body)
	if u["done_reason"] != "unload" {
		t.Fatalf("unload: %v", u)
	}
	waitState("chat", "unloaded")

	a := ollamaDo(t, "POST", "/api/generate", `{"model": "pinned", "keep_alive": "0s"}`)
	if a.Status != 409 {
		t.Fatalf("unloading a pinned model: %d %s", a.Status, a.Body)
	}
	conforms(t, "error", a.Body)

	conforms(t, "chat_final", ollamaDo(t, "POST", "/api/chat", `{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": false, "keep_alive": 0}`).Body)
	waitState("chat", "unloaded")
	// A pinned model stays after a request with keep_alive 0.
	conforms(t, "generate_final", ollamaDo(t, "POST", "/api/generate", `{"model": "pinned", "prompt": "Once", "stream": false, "keep_alive": 0}`).Body)
	time.Sleep(300 * time.Millisecond)
	if s := state("pinned"); s != "ready" {
		t.Fatalf("pinned model is %s after keep_alive 0, want ready", s)
	}
}

func TestOllamaErrors(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		status                   int
		code, contains           string
	}{
		{"unknown model", "POST", "/api/chat", `{"model": "nope", "messages": [{"role": "user", "content": "x"}]}`, 404, "model_not_found", "nope"},
		{"unknown model generate", "POST", "/api/generate", `{"model": "nope:latest", "prompt": "x"}`, 404, "model_not_found", "nope"},
		{"unknown model show", "POST", "/api/show", `{"model": "nope"}`, 404, "model_not_found", ""},
		{"unknown model embed", "POST", "/api/embed", `{"model": "nope", "input": "x"}`, 404, "model_not_found", ""},
		{"missing model", "POST", "/api/chat", `{"messages": [{"role": "user", "content": "x"}]}`, 400, "invalid_request", "model is required"},
		{"malformed JSON", "POST", "/api/generate", `{"model": `, 400, "invalid_request", ""},
		{"images that are not images", "POST", "/api/chat", `{"model": "chat", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}`, 400, "invalid_image", "image 1: not a PNG, JPEG, GIF or WebP image"},
		{"images to a model without projector", "POST", "/api/generate", `{"model": "story", "prompt": "x", "images": ["iVBORw0KGgoAAAANSUhEUgAAAEAAAAAwCAIAAAAuKetIAAAAVklEQVR4nOzPUQnAMADFwPfReZl/hZURCnfEQM72n+3lvj3NQM1AzUDNQM1AzUDNQM1AzUDNQM1AzUDNQM1AzUDNQM1AzUDNQM1AzUDNQM1A7QYAAP//g7cC0Hy8YU8AAAAASUVORK5CYII="]}`, 400, "model_not_vision", "mmproj"},
		{"tools", "POST", "/api/chat", `{"model": "chat", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}]}`, 400, "tools_unsupported", "tools"},
		{"bad role", "POST", "/api/chat", `{"model": "chat", "messages": [{"role": "robot", "content": "x"}]}`, 400, "invalid_request", "robot"},
		{"chat without a template", "POST", "/api/chat", `{"model": "story", "messages": [{"role": "user", "content": "x"}]}`, 400, "no_chat_template", ""},
		{"bad format", "POST", "/api/chat", `{"model": "chat", "messages": [{"role": "user", "content": "x"}], "format": "xml"}`, 400, "invalid_request", "format"},
		{"bad option", "POST", "/api/generate", `{"model": "story", "prompt": "x", "options": {"temperature": -1}}`, 400, "invalid_request", "temperature"},
		{"option of the wrong type", "POST", "/api/generate", `{"model": "story", "prompt": "x", "options": {"top_k": "many"}}`, 400, "invalid_request", "top_k"},
		{"bad keep_alive", "POST", "/api/generate", `{"model": "story", "prompt": "x", "keep_alive": "soon"}`, 400, "invalid_request", "keep_alive"},
		{"think", "POST", "/api/chat", `{"model": "chat", "messages": [{"role": "user", "content": "x"}], "think": true}`, 400, "invalid_request", "think"},
		{"suffix", "POST", "/api/generate", `{"model": "story", "prompt": "x", "suffix": "y"}`, 400, "invalid_request", "suffix"},
		{"context", "POST", "/api/generate", `{"model": "story", "prompt": "x", "context": [1, 2]}`, 400, "invalid_request", "context"},
		{"prompt too long", "POST", "/api/generate", `{"model": "story", "prompt": "` + strings.Repeat("Once upon a time ", 200) + `"}`, 400, "context_overflow", ""},
		{"embed dimensions too many", "POST", "/api/embed", `{"model": "story", "input": "x", "dimensions": 100000}`, 400, "invalid_request", "dimensions"},
		{"embed bad input", "POST", "/api/embed", `{"model": "story", "input": 5}`, 400, "invalid_request", "input"},
		{"pull off", "POST", "/api/pull", `{"model": "llama3.2"}`, 403, "pull_disabled", "server.allow_pull = true"},
		{"delete off", "DELETE", "/api/delete", `{"model": "story"}`, 403, "pull_disabled", "server.allow_pull = true"},
		{"wrong method", "GET", "/api/chat", ``, 405, "method_not_allowed", ""},
		{"no such endpoint", "POST", "/api/copy", `{}`, 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := ollamaDo(t, c.method, c.path, c.body)
			if a.Status != c.status {
				t.Fatalf("status %d, want %d: %s", a.Status, c.status, a.Body)
			}
			e := conforms(t, "error", a.Body)
			if e["code"] != c.code || !strings.Contains(e["error"].(string), c.contains) {
				t.Fatalf("error %v, want code %s mentioning %q", e, c.code, c.contains)
			}
		})
	}
	// The API key applies, and its refusal is in Ollama's shape too.
	a := do(t, "GET", ollamaDaemon(t)+"/api/tags", "")
	if a.Status != 401 {
		t.Fatalf("no key: %d", a.Status)
	}
	conforms(t, "error", a.Body)
	// So does the Host guard.
	req, _ := http.NewRequest("GET", ollamaDaemon(t)+"/api/tags", nil)
	req.Host = "evil.example"
	req.Header.Set("Authorization", "Bearer "+ollamaKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a = answer{Status: resp.StatusCode, Body: b}
	if a.Status != 403 {
		t.Fatalf("foreign Host: %d %s", a.Status, a.Body)
	}
	conforms(t, "error", a.Body)
}

// TestOllamaFakePool covers what a real model cannot be made to do on
// demand: a full queue (429 with Retry-After, in Ollama's shape), a failure
// after the stream began (a last NDJSON line {"error": ...}), and the pull
// endpoints with server.allow_pull set on a server built without Models.
func TestOllamaFakePool(t *testing.T) {
	fp := &fakePool{ready: true}
	_, url := fakeServerWithFile(t, "server {\n  allow_pull = true\n}\n", fp)

	fp.complete = func(ctx context.Context, model string, onText func(string)) (runner.Result, error) {
		return runner.Result{}, &pool.QueueFullError{Model: model, Limit: 4, Retry: 3 * time.Second}
	}
	a := post(t, url+"/api/chat", `{"model": "m:latest", "messages": [{"role": "user", "content": "x"}]}`)
	if a.Status != 429 || a.Header.Get("Retry-After") != "3" {
		t.Fatalf("queue full: %d Retry-After %q: %s", a.Status, a.Header.Get("Retry-After"), a.Body)
	}
	if e := conforms(t, "error", a.Body); e["code"] != "queue_full" {
		t.Fatalf("queue full: %v", e)
	}

	fp.complete = func(ctx context.Context, model string, onText func(string)) (runner.Result, error) {
		onText("Once")
		return runner.Result{}, fmt.Errorf("model m: %w", runner.ErrExited)
	}
	a = post(t, url+"/api/generate", `{"model": "m", "prompt": "x", "raw": true}`)
	ls := lines(t, a)
	if a.Status != 200 || len(ls) != 2 {
		t.Fatalf("failure mid-stream: %d %s", a.Status, a.Body)
	}
	conforms(t, "generate_chunk", ls[0])
	if e := conforms(t, "error", ls[1]); e["code"] != "runner_exited" {
		t.Fatalf("last line %s, want the error", ls[1])
	}

	for _, c := range []struct{ method, path string }{{"POST", "/api/pull"}, {"DELETE", "/api/delete"}} {
		a := do(t, c.method, url+c.path, `{"model": "m"}`)
		if e := conforms(t, "error", a.Body); a.Status != 501 || e["code"] != "not_implemented" {
			t.Fatalf("%s %s with allow_pull: %d %s", c.method, c.path, a.Status, a.Body)
		}
	}
}
