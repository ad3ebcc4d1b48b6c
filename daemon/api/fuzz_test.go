package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
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
