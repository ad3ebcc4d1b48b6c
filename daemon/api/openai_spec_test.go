package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// jetai's /v1 against OpenAI's own published OpenAPI document: real
// answers of a real jetaid, each validated against the schema OpenAI gives
// for it (testdata/openai/schemas.json, extracted by
// testdata/openai/extract.go; its README names the source commit).

const specFile = "testdata/openai/schemas.json"

// openaiSpec compiles the $defs of schemas.json.
type openaiSpec struct {
	comp  *jsonschema.Compiler
	cache map[string]*jsonschema.Schema
}

func loadOpenAISpec(t *testing.T) *openaiSpec {
	t.Helper()
	b, err := os.ReadFile(specFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", specFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(specFile, doc); err != nil {
		t.Fatal(err)
	}
	return &openaiSpec{comp: c, cache: map[string]*jsonschema.Schema{}}
}

// validate checks one JSON answer against OpenAI's schema name.
func (s *openaiSpec) validate(t *testing.T, name string, body []byte) error {
	t.Helper()
	sch, ok := s.cache[name]
	if !ok {
		var err error
		if sch, err = s.comp.Compile(specFile + "#/$defs/" + name); err != nil {
			t.Fatalf("OpenAI schema %s: %v", name, err)
		}
		s.cache[name] = sch
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %v: %q", err, body)
	}
	return sch.Validate(v)
}

const specKey = "sk-spec"

// specDaemon is a jetaid with stories260K as "story" (alias "gpt2"), a
// generated ChatML model as "chat" and a generated model with Qwen 2.5's
// real chat template (tool calls) as "tools", behind an API key.
func specDaemon(t *testing.T) string {
	t.Helper()
	chat, _ := genModels(t)
	tools := templateModel(t, "qwen2.5.jinja")
	dir := t.TempDir()
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
server {
  api_keys = [%q]
}
model "story" {
  path       = %q
  aliases    = ["gpt2"]
  context    = 256
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
}
model "chat" {
  path     = %q
  context  = 256
  parallel = 1
  threads  = 1
}
model "tools" {
  path     = %q
  context  = 1024
  parallel = 1
  threads  = 1
}
`, specKey, testmodel.Path(t), chat, tools))
	td := testdaemon.Start(t, daemon.Options{ConfigPath: conf, Log: slog.New(slog.DiscardHandler)})
	td.WaitHealthy(t)
	return td.URL
}

// chunkOf is what the tests read of a streamed chunk beyond the schema.
type chunkOf struct {
	Choices []struct {
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

func TestOpenAISpecAnswers(t *testing.T) {
	spec := loadOpenAISpec(t)
	url := specDaemon(t)
	cases := []struct {
		name, method, path, body string
		noKey                    bool
		status                   int
		// schema is OpenAI's schema of the answer, or of each streamed
		// chunk when stream is set (of the last one only with lastOnly).
		schema   string
		stream   bool
		lastOnly bool
		// check asserts what the schema leaves open: the answer (or the
		// stream's chunks) carries what the request asked for.
		check func(t *testing.T, body []byte, chunks []string)
	}{
		{name: "chat", method: "POST", path: "/v1/chat/completions", status: 200, schema: "CreateChatCompletionResponse",
			body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "temperature": 0}`},
		{name: "chat with logprobs", method: "POST", path: "/v1/chat/completions", status: 200, schema: "CreateChatCompletionResponse",
			body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "logprobs": true, "top_logprobs": 2}`,
			check: func(t *testing.T, b []byte, _ []string) {
				if !bytes.Contains(b, []byte(`"top_logprobs":[{`)) {
					t.Errorf("no top_logprobs: %s", abbreviate(string(b)))
				}
			}},
		{name: "chat tool call", method: "POST", path: "/v1/chat/completions", status: 200, schema: "CreateChatCompletionResponse",
			body: `{"model": "tools", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [` + weatherTool + `],
				"tool_choice": "required", "parallel_tool_calls": false, "temperature": 0, "max_tokens": 200}`,
			check: func(t *testing.T, b []byte, _ []string) {
				var a chatAnswer
				json.Unmarshal(b, &a)
				if len(a.Choices) != 1 || a.Choices[0].FinishReason != "tool_calls" || len(a.Choices[0].Message.ToolCalls) != 1 {
					t.Fatalf("not one tool call: %s", b)
				}
				checkWeatherArgs(t, a.Choices[0].Message.ToolCalls[0].Function.Arguments)
			}},
		{name: "chat stream with usage", method: "POST", path: "/v1/chat/completions", status: 200, schema: "CreateChatCompletionStreamResponse", stream: true,
			body:  `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "stream": true, "stream_options": {"include_usage": true}}`,
			check: usageLast},
		{name: "chat stream without usage", method: "POST", path: "/v1/chat/completions", status: 200, schema: "CreateChatCompletionStreamResponse", stream: true,
			body:  `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "stream": true}`,
			check: noUsage},
		{name: "chat stream with logprobs and usage", method: "POST", path: "/v1/chat/completions", status: 200, schema: "CreateChatCompletionStreamResponse", stream: true,
			body:  `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "logprobs": true, "top_logprobs": 1, "stream": true, "stream_options": {"include_usage": true}}`,
			check: usageLast},
		{name: "chat stream tool call with usage", method: "POST", path: "/v1/chat/completions", status: 200, schema: "CreateChatCompletionStreamResponse", stream: true,
			body: `{"model": "tools", "messages": [{"role": "user", "content": "Weather in Oslo?"}], "tools": [` + weatherTool + `],
				"tool_choice": "required", "parallel_tool_calls": false, "temperature": 0, "max_tokens": 200, "stream": true, "stream_options": {"include_usage": true}}`,
			check: func(t *testing.T, b []byte, chunks []string) {
				usageLast(t, b, chunks)
				if !strings.Contains(string(b), `"tool_calls":[{"index":0,"id":"call_`) || !strings.Contains(string(b), `"finish_reason":"tool_calls"`) {
					t.Errorf("no streamed tool call: %s", abbreviate(string(b)))
				}
			}},
		{name: "completion", method: "POST", path: "/v1/completions", status: 200, schema: "CreateCompletionResponse",
			body: `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 6, "temperature": 0}`},
		{name: "completion with logprobs 2", method: "POST", path: "/v1/completions", status: 200, schema: "CreateCompletionResponse",
			body: `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 4, "logprobs": 2}`,
			check: func(t *testing.T, b []byte, _ []string) {
				var a struct {
					Choices []struct {
						Logprobs struct {
							Tokens      []string             `json:"tokens"`
							TopLogprobs []map[string]float64 `json:"top_logprobs"`
						} `json:"logprobs"`
					} `json:"choices"`
				}
				json.Unmarshal(b, &a)
				if len(a.Choices) != 1 || len(a.Choices[0].Logprobs.Tokens) == 0 || len(a.Choices[0].Logprobs.TopLogprobs) != len(a.Choices[0].Logprobs.Tokens) {
					t.Errorf("logprobs: %s", b)
				}
			}},
		{name: "completion with logprobs 0", method: "POST", path: "/v1/completions", status: 200, schema: "CreateCompletionResponse",
			body: `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 4, "logprobs": 0}`},
		// Only the usage chunk: OpenAI's schema, written for the answer
		// that is not streamed, lets neither finish_reason nor usage be
		// null, and both are null in the chunks before it, as OpenAI
		// documents them (stream_options.include_usage).
		{name: "completion stream with usage", method: "POST", path: "/v1/completions", status: 200, schema: "CreateCompletionResponse", stream: true, lastOnly: true,
			body:  `{"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 6, "stream": true, "stream_options": {"include_usage": true}}`,
			check: usageLast},
		{name: "embeddings", method: "POST", path: "/v1/embeddings", status: 200, schema: "CreateEmbeddingResponse",
			body: `{"model": "gpt2", "input": ["Once upon a time", "A cat"]}`,
			check: func(t *testing.T, b []byte, _ []string) {
				if n := strings.Count(string(b), `"object":"embedding"`); n != 2 {
					t.Errorf("%d embeddings for 2 inputs", n)
				}
			}},
		// Not validated: OpenAI's schema types embedding as an array of
		// numbers only, and the API itself answers base64 with a string.
		{name: "embeddings base64", method: "POST", path: "/v1/embeddings", status: 200,
			body: `{"model": "gpt2", "input": "A cat", "encoding_format": "base64"}`,
			check: func(t *testing.T, b []byte, _ []string) {
				var a struct {
					Data []struct {
						Embedding string `json:"embedding"`
					} `json:"data"`
				}
				json.Unmarshal(b, &a)
				if len(a.Data) != 1 {
					t.Fatalf("%s", b)
				}
				raw, err := base64.StdEncoding.DecodeString(a.Data[0].Embedding)
				if err != nil || len(raw) == 0 || len(raw)%4 != 0 {
					t.Errorf("embedding is not base64 float32s: %v, %d bytes", err, len(raw))
				}
			}},
		{name: "models", method: "GET", path: "/v1/models", status: 200, schema: "ListModelsResponse"},
		{name: "model", method: "GET", path: "/v1/models/gpt2", status: 200, schema: "Model"},
		{name: "unknown model", method: "GET", path: "/v1/models/nope", status: 404, schema: "ErrorResponse"},
		{name: "chat with an unknown model", method: "POST", path: "/v1/chat/completions", status: 404, schema: "ErrorResponse",
			body: `{"model": "nope", "messages": [{"role": "user", "content": "Hello"}]}`},
		{name: "chat without messages", method: "POST", path: "/v1/chat/completions", status: 400, schema: "ErrorResponse",
			body: `{"model": "chat", "messages": []}`},
		{name: "completion of bad JSON", method: "POST", path: "/v1/completions", status: 400, schema: "ErrorResponse",
			body: `{"model": `},
		{name: "embeddings of numbers", method: "POST", path: "/v1/embeddings", status: 400, schema: "ErrorResponse",
			body: `{"model": "gpt2", "input": 3}`},
		{name: "no API key", method: "POST", path: "/v1/chat/completions", noKey: true, status: 401, schema: "ErrorResponse",
			body: `{"model": "chat", "messages": [{"role": "user", "content": "Hello"}]}`},
		{name: "wrong method", method: "DELETE", path: "/v1/models", status: 405, schema: "ErrorResponse"},
	}
	var plainChat []byte
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := []string{"Content-Type", "application/json"}
			if !c.noKey {
				hdr = append(hdr, "Authorization", "Bearer "+specKey)
			}
			a := do(t, c.method, url+c.path, c.body, hdr...)
			if a.Status != c.status {
				t.Fatalf("status %d, want %d: %s", a.Status, c.status, abbreviate(string(a.Body)))
			}
			if c.name == "chat" {
				plainChat = a.Body
			}
			var chunks []string
			switch {
			case c.stream:
				if ct := a.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Fatalf("Content-Type %q: %s", ct, abbreviate(string(a.Body)))
				}
				events := sseData(a.Body)
				if len(events) < 3 || events[len(events)-1] != "[DONE]" {
					t.Fatalf("%d events, want chunks then [DONE]: %s", len(events), abbreviate(string(a.Body)))
				}
				chunks = events[:len(events)-1]
				for i, ev := range chunks {
					if c.lastOnly && i < len(chunks)-1 {
						continue
					}
					if err := spec.validate(t, c.schema, []byte(ev)); err != nil {
						t.Errorf("chunk %d does not match OpenAI's %s: %v\n%s", i, c.schema, err, ev)
					}
				}
			case c.schema != "":
				if ct := a.Header.Get("Content-Type"); ct != "application/json" {
					t.Fatalf("Content-Type %q", ct)
				}
				if err := spec.validate(t, c.schema, a.Body); err != nil {
					t.Errorf("answer does not match OpenAI's %s: %v\n%s", c.schema, err, abbreviate(string(a.Body)))
				}
			}
			if c.check != nil {
				c.check(t, a.Body, chunks)
			}
		})
	}

	// The validator is not a formality: the real chat answer, broken in
	// ways a client would trip on, is refused.
	t.Run("broken answers are refused", func(t *testing.T) {
		if plainChat == nil { // the "chat" case did not run (-run)
			plainChat = do(t, "POST", url+"/v1/chat/completions", cases[0].body, "Authorization", "Bearer "+specKey).Body
		}
		if err := spec.validate(t, "CreateChatCompletionResponse", plainChat); err != nil {
			t.Fatalf("the unbroken answer does not validate: %v", err)
		}
		for _, b := range []struct {
			name   string
			mutate func(m map[string]any)
		}{
			{"no choices", func(m map[string]any) { delete(m, "choices") }},
			{"object misspelt", func(m map[string]any) { m["object"] = "chat.completions" }},
			{"created as a string", func(m map[string]any) { m["created"] = "1700000000" }},
			{"content a number", func(m map[string]any) { choice(m)["message"].(map[string]any)["content"] = 3 }},
			{"unknown finish_reason", func(m map[string]any) { choice(m)["finish_reason"] = "done" }},
			{"no logprobs key", func(m map[string]any) { delete(choice(m), "logprobs") }},
			{"usage without total_tokens", func(m map[string]any) { delete(m["usage"].(map[string]any), "total_tokens") }},
		} {
			t.Run(b.name, func(t *testing.T) {
				var m map[string]any
				if err := json.Unmarshal(plainChat, &m); err != nil {
					t.Fatal(err)
				}
				b.mutate(m)
				broken, _ := json.Marshal(m)
				if err := spec.validate(t, "CreateChatCompletionResponse", broken); err == nil {
					t.Errorf("OpenAI's schema accepts the broken answer %s", broken)
				}
			})
		}
	})
}

func choice(m map[string]any) map[string]any { return m["choices"].([]any)[0].(map[string]any) }

// usageLast checks a stream with stream_options.include_usage as OpenAI
// sends it: every chunk carries "usage": null, but the last, which has no
// choices and the usage.
func usageLast(t *testing.T, _ []byte, chunks []string) {
	t.Helper()
	for i, ev := range chunks {
		var c chunkOf
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		last := i == len(chunks)-1
		switch {
		case !last && string(c.Usage) != "null":
			t.Errorf("chunk %d: usage %q, want null before the last chunk: %s", i, c.Usage, ev)
		case last && (len(c.Choices) != 0 || !bytes.Contains(c.Usage, []byte(`"total_tokens"`))):
			t.Errorf("last chunk: want no choices and the usage: %s", ev)
		}
	}
	var end chunkOf
	json.Unmarshal([]byte(chunks[len(chunks)-2]), &end)
	if len(end.Choices) != 1 || end.Choices[0].FinishReason == nil {
		t.Errorf("the chunk before the usage has no finish_reason: %s", chunks[len(chunks)-2])
	}
}

// noUsage checks a stream without include_usage: no chunk has a usage key.
func noUsage(t *testing.T, _ []byte, chunks []string) {
	t.Helper()
	for i, ev := range chunks {
		var c chunkOf
		json.Unmarshal([]byte(ev), &c)
		if c.Usage != nil {
			t.Errorf("chunk %d carries usage without include_usage: %s", i, ev)
		}
	}
}
