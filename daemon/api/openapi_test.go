package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// openapiDoc is the parsed document and a compiler over it.
type openapiDoc struct {
	raw   []byte
	doc   map[string]any
	comp  *jsonschema.Compiler
	cache map[string]*jsonschema.Schema
}

const docURL = "mem://jetai/openapi.json"

func loadDoc(t *testing.T, b []byte) *openapiDoc {
	t.Helper()
	d := &openapiDoc{raw: b, cache: map[string]*jsonschema.Schema{}}
	if err := json.Unmarshal(b, &d.doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	d.comp = jsonschema.NewCompiler()
	d.comp.DefaultDraft(jsonschema.Draft2020)
	d.comp.AssertFormat()
	if err := d.comp.AddResource(docURL, inst); err != nil {
		t.Fatal(err)
	}
	return d
}

// schema compiles the schema at the JSON pointer ptr ("/components/...").
func (d *openapiDoc) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	if s, ok := d.cache[ptr]; ok {
		return s
	}
	s, err := d.comp.Compile(docURL + "#" + ptr)
	if err != nil {
		t.Fatalf("schema %s: %v", ptr, err)
	}
	d.cache[ptr] = s
	return s
}

func (d *openapiDoc) validate(t *testing.T, ptr string, body []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %v: %q", err, body)
	}
	return d.schema(t, ptr).Validate(inst)
}

func (d *openapiDoc) paths() map[string]any { return d.doc["paths"].(map[string]any) }

// operation returns the operation object of method and path.
func (d *openapiDoc) operation(method, path string) (map[string]any, bool) {
	item, ok := d.paths()[path].(map[string]any)
	if !ok {
		return nil, false
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	return op, ok
}

// responsePointer returns the JSON pointer of the schema of the answer with
// status and media type ct of an operation, following a components/responses
// $ref; ok is false when the document does not list that answer.
func (d *openapiDoc) responsePointer(method, path string, status int, ct string) (string, bool) {
	code := fmt.Sprint(status)
	base := "/paths/" + escapePtr(path) + "/" + strings.ToLower(method) + "/responses/" + code
	op, ok := d.operation(method, path)
	if !ok {
		return "", false
	}
	resp, ok := op["responses"].(map[string]any)[code].(map[string]any)
	if !ok {
		return "", false
	}
	if ref, ok := resp["$ref"].(string); ok {
		base = strings.TrimPrefix(ref, "#")
		resp = d.pointer(base).(map[string]any)
	}
	content, _ := resp["content"].(map[string]any)
	if _, ok := content[ct]; !ok {
		return "", false
	}
	return base + "/content/" + escapePtr(ct) + "/schema", true
}

func (d *openapiDoc) pointer(ptr string) any {
	var v any = d.doc
	for _, p := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		v = v.(map[string]any)[p]
	}
	return v
}

func escapePtr(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

var muxWildcard = regexp.MustCompile(`\{([a-zA-Z_]+)(\.\.\.)?\}`)

// docPath turns a ServeMux pattern's path into the document's form:
// "/{$}" is "/", "{model...}" is "{model}".
func docPath(pattern string) string {
	p := strings.TrimSuffix(pattern, "{$}")
	return muxWildcard.ReplaceAllString(p, "{$1}")
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIListsEveryRoute checks the document against the routes the
// server registers, both ways, and checks the document's own consistency:
// every schema compiles (so every $ref resolves), operation ids are unique,
// and every operation that needs the API key documents 401 with the Error
// shape.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	cfg, err := config.Parse([]byte(`model "m" {
  path = "`+testmodel.Path(t)+`"
}`), filepath.Join(t.TempDir(), "jetai.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	// Every optional part on, so that every route that can exist is registered.
	s := api.New(api.Options{Pool: &fakePool{ready: true}, Config: cfg, Version: `1.2.3-"x"`,
		Metrics: http.NotFoundHandler(), Platform: func() any { return nil }})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	a := do(t, "GET", hs.URL+"/openapi.json", "")
	if a.Status != 200 || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", a.Status, a.Header.Get("Content-Type"))
	}
	d := loadDoc(t, a.Body)
	if d.doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v, want 3.1.0", d.doc["openapi"])
	}
	if v := d.doc["info"].(map[string]any)["version"]; v != `1.2.3-"x"` {
		t.Fatalf("info.version %v, want the server's version", v)
	}

	registered := map[string]bool{}
	for _, r := range s.Routes() {
		method, pattern, _ := strings.Cut(r, " ")
		key := strings.ToLower(method) + " " + docPath(pattern)
		registered[key] = true
		if _, ok := d.operation(method, docPath(pattern)); !ok {
			t.Errorf("route %q is not in openapi.json (add paths[%q].%s)", r, docPath(pattern), strings.ToLower(method))
		}
	}
	ids := map[string]string{}
	for path, item := range d.paths() {
		for m, op := range item.(map[string]any) {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			key := m + " " + path
			if !registered[key] {
				t.Errorf("openapi.json documents %s %s, which the server does not register", strings.ToUpper(m), path)
			}
			o := op.(map[string]any)
			id, _ := o["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", key)
			} else if prev, dup := ids[id]; dup {
				t.Errorf("operationId %q used by %s and %s", id, prev, key)
			}
			ids[id] = key
			// Every listed answer's schema must compile.
			for code, r := range o["responses"].(map[string]any) {
				resp := r.(map[string]any)
				base := "/paths/" + escapePtr(path) + "/" + m + "/responses/" + code
				if ref, ok := resp["$ref"].(string); ok {
					base = strings.TrimPrefix(ref, "#")
					resp = d.pointer(base).(map[string]any)
				}
				content, _ := resp["content"].(map[string]any) // none: an answer without a body
				for ct := range content {
					d.schema(t, base+"/content/"+escapePtr(ct)+"/schema")
				}
			}
			if sec, ok := o["security"].([]any); ok && len(sec) == 0 {
				continue // open: no key, no 401
			}
			if p, ok := d.responsePointer(m, path, 401, "application/json"); !ok {
				t.Errorf("%s needs the API key but does not document 401", key)
			} else if !strings.HasPrefix(p, "/components/responses/") {
				t.Errorf("%s: 401 should use the shared Unauthorized answer", key)
			}
		}
	}
	for name := range d.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		d.schema(t, "/components/schemas/"+name)
	}
	// An undocumented route would make the first loop fail: prove the
	// check can fail by asking about one that is not there.
	if _, ok := d.operation("GET", "/no/such/route"); ok {
		t.Fatal("lookup of an undocumented route succeeded")
	}
}

// exchange is one real request of TestOpenAPIRealAnswers.
type exchange struct {
	method, path string // path as documented
	url          string // path as sent; default path
	body         string
	noKey        bool
	status       int
	// stream names the schema each SSE event's data must match.
	stream string
	// bodyOf, when set, makes the body when the request is sent, from
	// the id of the last experiment answer (feedback).
	bodyOf func(id string) string
}

// TestOpenAPIRealAnswers runs the whole daemon with the real tiny model
// (and a generated chat model) behind an API key, sends a request of every
// documented operation plus the usual errors, and validates each answer
// against the document: its status must be listed for the operation, and
// its body must match the listed schema (each event's data for streams).
// Request bodies of successful calls are validated against the documented
// request schema too. Every operation must have had a 2xx answer checked.
func TestOpenAPIRealAnswers(t *testing.T) {
	story := testmodel.Path(t)
	chat, _ := genModels(t)
	tools := templateModel(t, "qwen2.5.jinja")
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.gguf")
	if err := os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00 this is not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
server {
  api_keys = ["sk-test"]
  max_body = "32KiB"
}
cache {
  dir       = "cache"
  responses = "1MiB"
}
router {
  default_model = "story"
}
experiment "ab" {
  variant "a" { model = "story" }
  variant "b" { model = "chat" }
}
model "story" {
  path       = %q
  aliases    = ["gpt2"]
  context    = 256
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
  speculative {}
}
model "chat" {
  path     = %q
  context  = 256
  parallel = 1
  threads  = 1
  priority = 5
}
model "tools" {
  path     = %q
  context  = 1024
  parallel = 1
  threads  = 1
}
model "broken" {
  path = %q
}
model "absent" {
  path = %q
}
`, story, chat, tools, bad, filepath.Join(dir, "absent.gguf")))
	td := testdaemon.Start(t, daemon.Options{ConfigPath: conf, Log: slog.New(slog.DiscardHandler)})
	td.WaitHealthy(t)
	base := td.URL
	d := loadDoc(t, do(t, "GET", base+"/openapi.json", "").Body)

	big := `{"prompt": "` + strings.Repeat("x", 40<<10) + `"}`
	cases := []exchange{
		{method: "GET", path: "/health", status: 200, noKey: true},
		{method: "GET", path: "/ready", status: 200, noKey: true},
		{method: "GET", path: "/ready", url: "/ready?model=gpt2", status: 200, noKey: true},
		{method: "GET", path: "/ready", url: "/ready?model=absent", status: 503, noKey: true},
		{method: "GET", path: "/ready", url: "/ready?model=nope", status: 404, noKey: true},
		{method: "GET", path: "/status", status: 200},
		{method: "GET", path: "/status", status: 401, noKey: true},
		{method: "GET", path: "/models", status: 200},
		{method: "POST", path: "/inference", body: `{"prompt": "Once upon a time", "model": "gpt2", "max_length": 12, "temperature": 0}`, status: 200},
		{method: "POST", path: "/inference", body: `{"prompt": "Once upon a time", "auto_select": true, "max_tokens": 8, "stop": ["."], "seed": 3}`, status: 200},
		{method: "POST", path: "/inference", body: `{"prompt": "Once upon a time, there was a little girl. Once upon a time, there was", "model": "story", "max_tokens": 24, "temperature": 0}`, status: 200},
		{method: "POST", path: "/inference", body: `{"prompt": "Once upon a time", "model": "story", "max_tokens": 8, "speculative": false}`, status: 200},
		{method: "POST", path: "/inference", body: `{"prompt": "Once upon a time", "model": "story", "max_tokens": 8, "stream": true}`, status: 200, stream: "InferenceStreamEvent"},
		{method: "POST", path: "/inference", body: `{"prompt": "Once", "model": "nope"}`, status: 404},
		{method: "POST", path: "/inference", body: `{"prompt": "Once", "max_token": 3}`, status: 400},
		{method: "POST", path: "/inference", body: `{"prompt": `, status: 400},
		{method: "POST", path: "/inference", body: big, status: 413},
		{method: "POST", path: "/inference", body: `{"prompt": "Once", "model": "broken"}`, status: 502},
		{method: "POST", path: "/inference", body: `{"prompt": "Once", "model": "absent"}`, status: 503},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "absent", "messages": [{"role": "user", "content": "Hello"}]}`, status: 503},
		{method: "POST", path: "/batch_inference", body: `{"requests": [{"prompt": "Once upon a time", "max_tokens": 6}, {"prompt": "A cat", "model": "nope"}]}`, status: 200},
		{method: "POST", path: "/batch_inference", body: `{"requests": []}`, status: 400},
		{method: "POST", path: "/load_model", body: `{"model_name": "chat"}`, status: 200},
		{method: "POST", path: "/load_model", body: `{"model_name": "nope"}`, status: 404},
		{method: "POST", path: "/load_model", body: `{}`, status: 400},
		{method: "GET", path: "/v1/models", status: 200},
		{method: "GET", path: "/v1/models/{model}", url: "/v1/models/gpt2", status: 200},
		{method: "GET", path: "/v1/models/{model}", url: "/v1/models/nope", status: 404},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6}`, status: 200},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "stream": true, "stream_options": {"include_usage": true}}`, status: 200, stream: "ChatCompletionChunk"},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "story", "messages": [{"role": "user", "content": "Hello"}]}`, status: 400},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "chat", "messages": []}`, status: 400},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "tools", "messages": [{"role": "user", "content": "Weather?"}], "tools": [` + weatherTool + `], "tool_choice": "required", "parallel_tool_calls": false, "max_tokens": 100}`, status: 200},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "tools", "messages": [{"role": "user", "content": "Weather?"}], "tools": [` + weatherTool + `], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "max_tokens": 100, "stream": true}`, status: 200, stream: "ChatCompletionChunk"},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "tools", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "logprobs": true, "top_logprobs": 2}`, status: 200},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "tools", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "logprobs": true, "stream": true}`, status: 200, stream: "ChatCompletionChunk"},
		{method: "POST", path: "/v1/chat/completions", body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "tools": [` + weatherTool + `]}`, status: 400},
		{method: "POST", path: "/v1/completions", body: `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 4, "logprobs": 2}`, status: 200},
		{method: "POST", path: "/v1/completions", body: `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 4, "logprobs": 0, "stream": true}`, status: 200, stream: "CompletionChunk"},
		{method: "POST", path: "/v1/completions", body: `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 6}`, status: 200},
		{method: "POST", path: "/v1/completions", body: `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 6, "stream": true}`, status: 200, stream: "CompletionChunk"},
		{method: "POST", path: "/v1/embeddings", body: `{"model": "gpt2", "input": ["Once upon a time", "A cat"]}`, status: 200},
		{method: "POST", path: "/v1/embeddings", body: `{"model": "gpt2", "input": "Once", "encoding_format": "base64"}`, status: 200},
		{method: "POST", path: "/v1/embeddings", body: `{"model": "gpt2", "input": 3}`, status: 400},
		{method: "POST", path: "/inference", body: `{"prompt": "Once upon a time", "model": "ab", "user": "u1", "max_tokens": 4, "temperature": 0}`, status: 200},
		{method: "POST", path: "/inference", body: `{"prompt": "Once upon a time", "model": "ab", "user": "u1", "max_tokens": 4, "temperature": 0}`, status: 200}, // a cache hit
		{method: "POST", path: "/feedback", bodyOf: func(id string) string { return `{"id": "` + id + `", "thumbs": "up", "score": 4}` }, status: 200},
		{method: "POST", path: "/feedback", body: `{"id": "inf-unknown", "thumbs": "up"}`, status: 404},
		{method: "POST", path: "/feedback", body: `{"id": "inf-unknown"}`, status: 400},
		{method: "GET", path: "/performance", status: 200},
		{method: "POST", path: "/unload_model", body: `{"model": "chat"}`, status: 200},
		{method: "POST", path: "/unload_model", body: `{"model_name": "nope"}`, status: 404},
		{method: "POST", path: "/optimize", status: 200},
		{method: "POST", path: "/optimize", body: `[1]`, status: 400},
		{method: "GET", path: "/status", status: 200}, // now with events
		{method: "GET", path: "/metrics", status: 200},
		{method: "GET", path: "/metrics", status: 401, noKey: true},
		{method: "GET", path: "/openapi.json", status: 200, noKey: true},
		{method: "GET", path: "/", status: 200, noKey: true},
		{method: "GET", path: "/dashboard", status: 200, noKey: true},
		{method: "GET", path: "/docs", status: 200, noKey: true},
		{method: "GET", path: "/ui/{file}", url: "/ui/dashboard.js", status: 200, noKey: true},
		{method: "GET", path: "/ui/{file}", url: "/ui/app.css", status: 200, noKey: true},
		{method: "GET", path: "/ui/{file}", url: "/ui/nope.js", status: 404, noKey: true},
		{method: "GET", path: "/api/version", status: 200},
		{method: "GET", path: "/api/tags", status: 200},
		{method: "GET", path: "/api/tags", status: 401, noKey: true},
		{method: "GET", path: "/api/ps", status: 200},
		{method: "POST", path: "/api/show", body: `{"model": "gpt2:latest"}`, status: 200},
		{method: "POST", path: "/api/show", body: `{"model": "nope"}`, status: 404},
		{method: "POST", path: "/api/generate", body: `{"model": "story", "prompt": "Once upon a time", "stream": false, "options": {"num_predict": 6}}`, status: 200},
		{method: "POST", path: "/api/generate", body: `{"model": "story", "prompt": "Once upon a time", "options": {"num_predict": 6}}`, status: 200, stream: "OllamaGenerateResponse"},
		{method: "POST", path: "/api/generate", body: `{"model": "story", "prompt": "x", "images": ["aGk="]}`, status: 400},
		{method: "POST", path: "/api/generate", body: `{"model": "absent", "prompt": "x"}`, status: 503},
		{method: "POST", path: "/api/chat", body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "stream": false, "options": {"num_predict": 6}}`, status: 200},
		{method: "POST", path: "/api/chat", body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "options": {"num_predict": 6, "temperature": 0}}`, status: 200, stream: "OllamaChatResponse"},
		{method: "POST", path: "/api/chat", body: `{"model": "nope", "messages": [{"role": "user", "content": "Hello"}]}`, status: 404},
		{method: "POST", path: "/api/chat", body: `{"model": "tools", "stream": false, "tools": [` + weatherTool + `], "options": {"num_predict": 4}, "messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 1}}}]}, {"role": "tool", "tool_name": "get_weather", "content": "-3"}]}`, status: 200},
		{method: "POST", path: "/api/chat", body: `{"model": "tools", "tools": [` + weatherTool + `], "messages": [{"role": "tool", "tool_name": "get_weather", "content": "-3"}]}`, status: 400},
		{method: "POST", path: "/api/embed", body: `{"model": "gpt2", "input": ["Once upon a time", "A cat"]}`, status: 200},
		{method: "POST", path: "/api/embeddings", body: `{"model": "gpt2", "prompt": "Once upon a time"}`, status: 200},
		{method: "POST", path: "/api/pull", body: `{"model": "llama3.2"}`, status: 403},
		{method: "DELETE", path: "/api/delete", body: `{"model": "story"}`, status: 403},
		{method: "POST", path: "/tokenize", body: `{"model": "gpt2", "content": "Once upon a time", "with_pieces": true}`, status: 200},
		{method: "POST", path: "/tokenize", body: `{"content": "Once"}`, status: 200},
		{method: "POST", path: "/tokenize", body: `{"model": "nope", "content": "Once"}`, status: 404},
		{method: "POST", path: "/detokenize", body: `{"model": "gpt2", "tokens": [1, 403]}`, status: 200},
		{method: "POST", path: "/detokenize", body: `{"model": "gpt2", "tokens": [100000]}`, status: 400},
		{method: "POST", path: "/apply-template", body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}]}`, status: 200},
		{method: "POST", path: "/apply-template", body: `{"model": "tools", "messages": [{"role": "user", "content": "Hello"}], "tools": [` + weatherTool + `]}`, status: 200},
		{method: "POST", path: "/apply-template", body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "tools": [` + weatherTool + `]}`, status: 400},
		{method: "POST", path: "/apply-template", body: `{"model": "story", "messages": [{"role": "user", "content": "Hello"}]}`, status: 400},
		{method: "GET", path: "/props", url: "/props?model=chat", status: 200},
		{method: "GET", path: "/props", url: "/props?model=nope", status: 404},
	}
	okSeen := map[string]bool{}
	lastID := ""
	for _, c := range cases {
		if c.bodyOf != nil {
			c.body = c.bodyOf(lastID)
		}
		url := c.url
		if url == "" {
			url = c.path
		}
		name := c.method + " " + url + " " + abbreviate(c.body)
		hdr := []string{"Content-Type", "application/json"}
		if !c.noKey {
			hdr = append(hdr, "Authorization", "Bearer sk-test")
		}
		a := do(t, c.method, base+url, c.body, hdr...)
		if id, ok := a.JSON["id"].(string); ok && strings.HasPrefix(id, "inf-") {
			lastID = id
		}
		if a.Status != c.status {
			t.Errorf("%s: status %d, want %d: %s", name, a.Status, c.status, abbreviate(string(a.Body)))
			continue
		}
		ct, _, _ := strings.Cut(a.Header.Get("Content-Type"), ";")
		ptr, ok := d.responsePointer(c.method, c.path, a.Status, ct)
		if !ok {
			t.Errorf("%s: answer %d %s is not documented for %s %s", name, a.Status, ct, c.method, c.path)
			continue
		}
		switch {
		case ct == "application/json":
			if err := d.validate(t, ptr, a.Body); err != nil {
				t.Errorf("%s: answer does not match %s: %v\n%s", name, ptr, err, abbreviate(string(a.Body)))
				continue
			}
		case ct == "text/event-stream":
			events := sseData(a.Body)
			if len(events) < 2 {
				t.Errorf("%s: %d events", name, len(events))
			}
			for _, ev := range events {
				if ev == "[DONE]" {
					continue
				}
				if err := d.validate(t, "/components/schemas/"+c.stream, []byte(ev)); err != nil {
					t.Errorf("%s: event does not match %s: %v\n%s", name, c.stream, err, ev)
				}
			}
		case ct == "application/x-ndjson":
			ls := bytes.Split(bytes.TrimSpace(a.Body), []byte("\n"))
			if len(ls) < 1 {
				t.Errorf("%s: no lines", name)
			}
			for _, l := range ls {
				if err := d.validate(t, "/components/schemas/"+c.stream, l); err != nil {
					t.Errorf("%s: line does not match %s: %v\n%s", name, c.stream, err, l)
				}
			}
		case strings.HasPrefix(ct, "text/"):
			if len(a.Body) == 0 {
				t.Errorf("%s: empty page", name)
			}
		}
		if a.Status/100 == 2 {
			okSeen[strings.ToLower(c.method)+" "+c.path] = true
			if op, _ := d.operation(c.method, c.path); op["requestBody"] != nil && c.body != "" {
				rp := "/paths/" + escapePtr(c.path) + "/" + strings.ToLower(c.method) + "/requestBody/content/application~1json/schema"
				if err := d.validate(t, rp, []byte(c.body)); err != nil {
					t.Errorf("%s: the server accepted a body the documented request schema refuses: %v", name, err)
				}
			}
		}
	}
	// Refused request bodies must be refused by the document too.
	for _, c := range []struct{ path, body string }{
		{"/inference", `{"prompt": "Once", "max_token": 3}`},
		{"/inference", `{"model": "gpt2"}`},
		{"/v1/embeddings", `{"input": 3}`},
	} {
		rp := "/paths/" + escapePtr(c.path) + "/post/requestBody/content/application~1json/schema"
		if err := d.validate(t, rp, []byte(c.body)); err == nil {
			t.Errorf("the documented request schema of POST %s accepts %s, which the server refuses", c.path, c.body)
		}
	}
	// A wrong method answers 405 with the Error shape.
	a := do(t, "DELETE", base+"/models", "", "Authorization", "Bearer sk-test")
	if a.Status != 405 || a.Header.Get("Allow") == "" {
		t.Errorf("DELETE /models: %d, Allow %q", a.Status, a.Header.Get("Allow"))
	} else if err := d.validate(t, "/components/schemas/Error", a.Body); err != nil {
		t.Errorf("405 body: %v", err)
	}

	var missing []string
	for path, item := range d.paths() {
		for m := range item.(map[string]any) {
			// /api/pull and /api/delete need a registry and a model
			// cache to succeed: daemon's TestOllamaPullAndDelete.
			if path == "/api/pull" || path == "/api/delete" {
				continue
			}
			if slices.Contains(httpMethods, m) && !okSeen[m+" "+path] {
				missing = append(missing, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no successful answer validated for %v: add a case", missing)
	}
}

// sseData returns the data of each event of a Server-Sent Events body.
func sseData(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func abbreviate(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
