package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
)

// The fuzz targets send arbitrary bodies to the endpoints that decode JSON
// and check what "impossible to crash from the outside" means for them:
// no panic (the recoverer would turn one into a 500), every refusal a 4xx
// in the JSON error shape, and every request that reaches the pool one
// that validation should have let through. The pool answers at once, so a
// fuzz iteration costs microseconds. Seed corpora: testdata/fuzz/Fuzz*.
//
//	go test -run '^$' -fuzz '^FuzzInference$' -fuzztime 3m ./daemon/api
//
// FuzzGuard fuzzes the headers a browser sends (Origin, Host,
// Content-Type) instead of the body.

// fuzzContext is model m's context in the fuzz config.
const fuzzContext = 256

// fuzzPool checks each request that gets past the API's validation; a
// request it should not have let through fails with an error that the
// API answers with a 500, which the target reports.
type fuzzPool struct{ *fakePool }

func (p fuzzPool) Complete(ctx context.Context, model string, req runner.Request, onText func(string)) (runner.Result, error) {
	if err := checkRunnerRequest(req); err != nil {
		return runner.Result{}, fmt.Errorf("invariant broken: %v: %+v", err, req)
	}
	if onText != nil {
		// Text a stream must escape: quotes, control bytes, a bad UTF-8
		// byte, U+2028.
		onText("Once \"upon\"\n\x01")
		onText("\xff a time\u2028")
	}
	return runner.Result{Text: "Once \"upon\"\n\x01\xff a time\u2028", FinishReason: runner.FinishStop,
		Timings: runner.Timings{PromptTokens: 3, GeneratedTokens: 2, GenerationMS: 1}}, nil
}

func (p fuzzPool) Embed(ctx context.Context, model, input string) (runner.EmbedResult, error) {
	if input == "" {
		return runner.EmbedResult{}, fmt.Errorf("invariant broken: empty embedding input")
	}
	return runner.EmbedResult{Embedding: []float32{0.6, -0.8}, Tokens: 1}, nil
}

func (p fuzzPool) Load(ctx context.Context, model string) error {
	if model != "m" {
		return fmt.Errorf("invariant broken: load of %q, which Resolve did not return", model)
	}
	return nil
}

// checkRunnerRequest is what the API promises the runner about a request.
func checkRunnerRequest(req runner.Request) error {
	s := req.Sampling
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	switch {
	case (req.Prompt == "") == (len(req.Messages) == 0):
		return fmt.Errorf("want a prompt or messages, exactly one")
	case req.MaxTokens < 1 || req.MaxTokens > fuzzContext:
		return fmt.Errorf("max_tokens %d outside [1, %d]", req.MaxTokens, fuzzContext)
	case !finite(s.Temperature) || s.Temperature < 0:
		return fmt.Errorf("temperature %v", s.Temperature)
	case !finite(s.TopP) || s.TopP < 0 || s.TopP > 1, !finite(s.MinP) || s.MinP < 0 || s.MinP > 1:
		return fmt.Errorf("top_p %v, min_p %v", s.TopP, s.MinP)
	case !finite(s.RepeatPenalty) || !finite(s.FrequencyPenalty) || !finite(s.PresencePenalty):
		return fmt.Errorf("penalties %v %v %v", s.RepeatPenalty, s.FrequencyPenalty, s.PresencePenalty)
	case s.TopK < 0 || s.RepeatLastN < -1:
		return fmt.Errorf("top_k %d, repeat_last_n %d", s.TopK, s.RepeatLastN)
	case s.Grammar != "" && s.JSONSchema != "":
		return fmt.Errorf("both a grammar and a JSON schema")
	case s.JSONSchema != "" && (!json.Valid([]byte(s.JSONSchema)) || !strings.HasPrefix(strings.TrimSpace(s.JSONSchema), "{")):
		return fmt.Errorf("json_schema %q is not a JSON object", s.JSONSchema)
	}
	for _, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return fmt.Errorf("role %q", m.Role)
		}
	}
	return nil
}

// fuzzHandler is the API over a fuzzPool, with a small body limit (so
// that 413 is reachable) and router tiers (so that automatic selection
// runs).
func fuzzHandler(f *testing.F) http.Handler {
	f.Helper()
	hcl := fmt.Sprintf(`
server {
  max_body = "4KiB"
}
router {
  tier "small" {
    models            = ["m"]
    max_prompt_tokens = 8
    max_tokens        = 16
  }
  tier "large" {
    models     = ["m"]
    structured = true
  }
}
model "m" {
  path    = %q
  aliases = ["alias"]
  context = %d
}`, testmodel.Path(f), fuzzContext)
	cfg, err := config.Parse([]byte(hcl), filepath.Join(f.TempDir(), "jetai.hcl"))
	if err != nil {
		f.Fatal(err)
	}
	s := api.New(api.Options{Pool: fuzzPool{&fakePool{ready: true}}, Config: cfg})
	s.SetState(api.StateServing)
	return s.Handler()
}

// fuzzEndpoint posts each input to path and checks the answer.
func fuzzEndpoint(f *testing.F, path string) {
	h := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		checkAnswer(t, path, body, rec)
	})
}

func checkAnswer(t *testing.T, path string, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	res := rec.Result()
	got := rec.Body.Bytes()
	ct := res.Header.Get("Content-Type")
	switch {
	case res.StatusCode == http.StatusOK && ct == "text/event-stream":
		checkStream(t, path, body, got)
	case res.StatusCode == http.StatusOK:
		if ct != "application/json" || !json.Valid(got) {
			t.Fatalf("POST %s %q: 200 with %s %q", path, body, ct, got)
		}
	case res.StatusCode >= 400 && res.StatusCode < 500:
		if ct != "application/json" {
			t.Fatalf("POST %s %q: %d with Content-Type %q", path, body, res.StatusCode, ct)
		}
		if err := checkErrorBody(got); err != nil {
			t.Fatalf("POST %s %q: %d: %v: %s", path, body, res.StatusCode, err, got)
		}
	default:
		t.Fatalf("POST %s %q: status %d (want 200 or 4xx): %s", path, body, res.StatusCode, got)
	}
}

// checkErrorBody wants exactly {"error": {"message": "…", "type": "…",
// "param": string|null, "code": string|null}}.
func checkErrorBody(b []byte) error {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(b, &outer); err != nil {
		return err
	}
	if len(outer) != 1 || outer["error"] == nil {
		return fmt.Errorf("want one key, error")
	}
	var fields map[string]any
	if err := json.Unmarshal(outer["error"], &fields); err != nil {
		return err
	}
	if len(fields) != 4 {
		return fmt.Errorf("want message, type, param and code")
	}
	for _, k := range []string{"message", "type"} {
		if s, ok := fields[k].(string); !ok || s == "" || !utf8.ValidString(s) {
			return fmt.Errorf("%s must be a non-empty string", k)
		}
	}
	for _, k := range []string{"param", "code"} {
		v, ok := fields[k]
		if _, isString := v.(string); !ok || (v != nil && !isString) {
			return fmt.Errorf("%s must be a string or null", k)
		}
	}
	return nil
}

// checkStream wants data events of JSON (or [DONE]) and no error event:
// the fuzz pool never fails after the first token.
func checkStream(t *testing.T, path string, body, got []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(got))
	events := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || (data != "[DONE]" && !json.Valid([]byte(data))) || strings.Contains(data, `"error":{`) {
			t.Fatalf("POST %s %q: bad event %q in %q", path, body, line, got)
		}
		events++
	}
	if events < 2 {
		t.Fatalf("POST %s %q: stream of %d events: %q", path, body, events, got)
	}
}

// FuzzSampling drives the completion endpoints with well-formed bodies
// whose settings the fuzzer picks as numbers and strings, so that it
// explores the ranges the validation must hold (random bytes rarely make
// a JSON number negative in the right place).
func FuzzSampling(f *testing.F) {
	f.Add(uint8(0), "Once upon a time", 0.8, 0.95, 0.05, 1.1, 0.0, 0.0, 16, 40, 64, int64(42), "\n", "", "", false)
	f.Add(uint8(1), "{\"a\": 1}", 0.0, 1.0, 0.0, 1.0, 2.0, -2.0, 1, 0, -1, int64(-1), "", "root ::= \"a\"", "", true)
	f.Add(uint8(2), "x", 100.0, 0.0, 1.0, 10.0, -2.0, 2.0, 100000, 0, 0, int64(4294967295), "", "", `{"type": "object"}`, false)
	h := fuzzHandler(f)
	paths := []string{"/inference", "/v1/completions", "/v1/chat/completions"}
	f.Fuzz(func(t *testing.T, path uint8, prompt string, temp, topP, minP, repeat, freq, presence float64,
		maxTokens, topK, repeatLastN int, seed int64, stop, grammar, schema string, ignoreEOS bool) {
		p := paths[int(path)%len(paths)]
		body := map[string]any{
			"model": "m", "temperature": temp, "top_p": topP, "min_p": minP, "repeat_penalty": repeat,
			"frequency_penalty": freq, "presence_penalty": presence, "max_tokens": maxTokens, "top_k": topK,
			"repeat_last_n": repeatLastN, "seed": seed, "stop": stop, "ignore_eos": ignoreEOS,
		}
		if p == "/v1/chat/completions" {
			body["messages"] = []map[string]string{{"role": "user", "content": prompt}}
		} else {
			body["prompt"] = prompt
		}
		if grammar != "" {
			body["grammar"] = grammar
		}
		if schema != "" {
			body["json_schema"] = schema
		}
		b, err := json.Marshal(body)
		if err != nil {
			return // NaN or ±Inf: JSON has no such numbers
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, p, bytes.NewReader(b)))
		checkAnswer(t, p, b, rec)
	})
}

func FuzzInference(f *testing.F)       { fuzzEndpoint(f, "/inference") }
func FuzzBatchInference(f *testing.F)  { fuzzEndpoint(f, "/batch_inference") }
func FuzzChatCompletions(f *testing.F) { fuzzEndpoint(f, "/v1/chat/completions") }
func FuzzCompletions(f *testing.F)     { fuzzEndpoint(f, "/v1/completions") }
func FuzzEmbeddings(f *testing.F)      { fuzzEndpoint(f, "/v1/embeddings") }
func FuzzLoadModel(f *testing.F)       { fuzzEndpoint(f, "/load_model") }

// FuzzGuard sends requests with fuzzed Origin, Host and Content-Type
// headers and checks the browser-facing guard: whatever the headers, no
// 5xx, every refusal in the JSON error shape, and a request that was
// served carried an Origin, a Host and a Content-Type that are allowed
// (checked here by a plainer rule than the server's).
func FuzzGuard(f *testing.F) {
	for _, s := range []struct{ method, path, origin, host, ct string }{
		{"POST", "/unload_model", "http://evil.example", "localhost:8000", "text/plain"},
		{"POST", "/load_model", "null", "localhost:8000", ""},
		{"POST", "/inference", "", "evil.example:8000", "application/json"},
		{"GET", "/status", "", "evil.example:8000", ""},
		{"GET", "/models", "http://localhost:8000", "localhost:8000", ""},
		{"POST", "/v1/chat/completions", "http://app.example", "jetson.lan", "application/json; charset=utf-8"},
		{"POST", "/v1/completions", "http://jetson.lan:80", "JETSON.LAN.", "Application/JSON"},
		{"POST", "/optimize", "", "127.0.0.1:8000", "multipart/form-data; boundary=x"},
		{"POST", "/inference", "", "[::1]:8000", "application/x-www-form-urlencoded"},
		{"OPTIONS", "/inference", "http://app.example", "localhost", ""},
		{"OPTIONS", "/inference", "http://evil.example", "localhost", ""},
		{"GET", "/", "", "jetson.lan.evil.example", ""},
		{"GET", "/health", "", "evil.example", ""},
		{"POST", "/v1/embeddings", "https://localhost:8000", "localhost:8000", "text/plain;charset=UTF-8"},
	} {
		f.Add(s.method, s.path, s.origin, s.host, s.ct, []byte(`{"model_name": "m", "model": "m", "prompt": "x", "input": "x", "messages": [{"role": "user", "content": "x"}]}`))
	}
	h := guardHandler(f)
	machine := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				machine[p.Addr().Unmap().WithZone("").String()] = true
			}
		}
	}
	if name, err := os.Hostname(); err == nil {
		machine[strings.ToLower(name)] = true
		machine[strings.ToLower(name)+".local"] = true
	}
	f.Fuzz(func(t *testing.T, method, path, origin, host, ct string, body []byte) {
		u, err := url.ParseRequestURI(path)
		if err != nil || !strings.HasPrefix(path, "/") {
			return // the client's job, not the guard's
		}
		req := httptest.NewRequest(http.MethodGet, "/", bytes.NewReader(body))
		req.Method, req.Host, req.URL, req.RequestURI = method, host, u, path
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s Origin %q Host %q Content-Type %q: %d %s", method, path, origin, host, ct, res.StatusCode, rec.Body.Bytes())
		}
		if res.StatusCode >= 400 && res.StatusCode != 405 {
			if err := checkErrorBody(rec.Body.Bytes()); err != nil {
				t.Fatalf("%d: %v: %s", res.StatusCode, err, rec.Body.Bytes())
			}
		}
		if res.StatusCode == 403 || res.StatusCode == 415 || path == "/health" {
			return
		}
		// Served (or refused for another reason, after the guard): the
		// headers must have been acceptable.
		hn := strings.ToLower(host)
		if hp, _, err := net.SplitHostPort(hn); err == nil {
			hn = hp
		}
		hn = strings.TrimSuffix(strings.Trim(hn, "[]"), ".")
		ip, ipErr := netip.ParseAddr(hn)
		hostOK := hn == "" || hn == "localhost" || strings.HasSuffix(hn, ".localhost") || hn == "jetson.lan" ||
			machine[hn] || (ipErr == nil && (ip.Unmap().IsLoopback() || machine[ip.Unmap().WithZone("").String()]))
		if !hostOK {
			t.Fatalf("Host %q got past the guard: %d", host, res.StatusCode)
		}
		if origin != "" && origin != "http://app.example" {
			u, err := url.Parse(origin)
			if err != nil || u.Scheme != "http" || !strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), strings.TrimSuffix(strings.Trim(hostOnly(host), "[]"), ".")) {
				t.Fatalf("Origin %q with Host %q got past the guard: %d", origin, host, res.StatusCode)
			}
		}
		if method == http.MethodPost && ct != "" && res.StatusCode == http.StatusOK {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/json" && mt != "application/x-www-form-urlencoded") {
				t.Fatalf("POST %s with Content-Type %q got past the guard: %d", path, ct, res.StatusCode)
			}
		}
	})
}

func hostOnly(hp string) string {
	if h, _, err := net.SplitHostPort(hp); err == nil {
		return h
	}
	return hp
}

// guardHandler is the fuzz API with a listed CORS origin and allowed host.
func guardHandler(f *testing.F) http.Handler {
	f.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server {
  max_body      = "4KiB"
  cors_origins  = ["http://app.example"]
  allowed_hosts = ["jetson.lan"]
}
model "m" {
  path    = %q
  aliases = ["alias"]
  context = %d
}`, testmodel.Path(f), fuzzContext)), filepath.Join(f.TempDir(), "jetai.hcl"))
	if err != nil {
		f.Fatal(err)
	}
	s := api.New(api.Options{Pool: fuzzPool{&fakePool{ready: true}}, Config: cfg})
	s.SetState(api.StateServing)
	return s.Handler()
}
