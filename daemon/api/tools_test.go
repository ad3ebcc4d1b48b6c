package api_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// templateModel generates the tiny model with a real family's chat
// template (a fixture of package chattmpl).
func templateModel(t *testing.T, fixture string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "chattmpl", "testdata", "templates", fixture))
	if err != nil {
		t.Fatal(err)
	}
	spec := modelgen.Tiny()
	spec.ChatTemplate = string(src)
	return testmodel.Gen(t, spec)
}

// weatherTool's arguments are bounded (an enum and a small integer), so
// that random weights finish a call within the test's token budget.
const weatherTool = `{"type": "function", "function": {"name": "get_weather", "description": "Weather forecast", "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city", "days"], "additionalProperties": false}}}`
const timeTool = `{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}, "required": ["zone"], "additionalProperties": false}}}`

func toolsDaemon(t *testing.T) string {
	t.Helper()
	qwen := templateModel(t, "qwen2.5.jinja")
	llama := templateModel(t, "llama-3.2.jinja")
	plain, _ := genModels(t)
	dir := t.TempDir()
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
model "qwen" {
  path     = %q
  context  = 2048
  parallel = 2
  threads  = 1
}
model "llama" {
  path     = %q
  context  = 2048
  parallel = 1
  threads  = 1
}
model "plain" {
  path     = %q
  context  = 256
  parallel = 1
  threads  = 1
}
model "story" {
  path     = %q
  context  = 256
  parallel = 1
  threads  = 1
}
`, qwen, llama, plain, testmodel.Path(t)))
	td := testdaemon.Start(t, daemon.Options{ConfigPath: conf, Log: slog.New(slog.DiscardHandler)})
	td.WaitHealthy(t)
	return td.URL
}

type wantCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatAnswer struct {
	Choices []struct {
		Message struct {
			Role      string     `json:"role"`
			Content   *string    `json:"content"`
			ToolCalls []wantCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
		Logprobs     *struct {
			Content []struct {
				Token       string  `json:"token"`
				Logprob     float64 `json:"logprob"`
				Bytes       []int   `json:"bytes"`
				TopLogprobs []struct {
					Token   string  `json:"token"`
					Logprob float64 `json:"logprob"`
				} `json:"top_logprobs"`
			} `json:"content"`
		} `json:"logprobs"`
	} `json:"choices"`
}

func chatOK(t *testing.T, url, body string) chatAnswer {
	t.Helper()
	a := post(t, url+"/v1/chat/completions", body)
	if a.Status != 200 {
		t.Fatalf("%d %s\nrequest: %s", a.Status, a.Body, body)
	}
	var ca chatAnswer
	if err := json.Unmarshal(a.Body, &ca); err != nil || len(ca.Choices) != 1 {
		t.Fatalf("%v: %s", err, a.Body)
	}
	return ca
}

// checkWeatherArgs checks arguments against weatherTool's schema.
func checkWeatherArgs(t *testing.T, args string) {
	t.Helper()
	var a map[string]any
	if err := json.Unmarshal([]byte(args), &a); err != nil {
		t.Fatalf("arguments %q are not JSON: %v", args, err)
	}
	city, _ := a["city"].(string)
	days, ok := a["days"].(float64)
	if (city != "Paris" && city != "Oslo") || !ok || days != math.Trunc(days) || days < 1 || days > 7 || len(a) != 2 {
		t.Fatalf("arguments %s do not match the schema", args)
	}
}

// With tool_choice required or a named function, the grammar makes every
// answer a valid call whatever the weights: seeds and families vary, the
// call always parses and matches the schema.
func TestToolCallsAlwaysValid(t *testing.T) {
	url := toolsDaemon(t)
	for _, model := range []string{"qwen", "llama"} {
		for seed := range 4 {
			for _, choice := range []string{`"required"`, `{"type": "function", "function": {"name": "get_weather"}}`} {
				body := fmt.Sprintf(`{"model": %q, "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [%s, %s],
					"tool_choice": %s, "parallel_tool_calls": false, "temperature": 1, "seed": %d, "max_tokens": 200}`, model, timeTool, weatherTool, choice, seed)
				ca := chatOK(t, url, body)
				c := ca.Choices[0]
				if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 {
					t.Fatalf("%s seed %d %s: finish %q, %d calls, content %v", model, seed, choice, c.FinishReason, len(c.Message.ToolCalls), c.Message.Content)
				}
				call := c.Message.ToolCalls[0]
				if !strings.HasPrefix(call.ID, "call_") || call.Type != "function" {
					t.Errorf("call id %q type %q", call.ID, call.Type)
				}
				if strings.HasPrefix(choice, "{") && call.Function.Name != "get_weather" {
					t.Fatalf("named choice called %q", call.Function.Name)
				}
				switch call.Function.Name {
				case "get_weather":
					checkWeatherArgs(t, call.Function.Arguments)
				case "get_time":
					var a map[string]string
					if json.Unmarshal([]byte(call.Function.Arguments), &a) != nil || (a["zone"] != "UTC" && a["zone"] != "CET") {
						t.Fatalf("get_time arguments %s", call.Function.Arguments)
					}
				default:
					t.Fatalf("called undeclared %q", call.Function.Name)
				}
				if c.Message.Content != nil && *c.Message.Content != "" {
					t.Errorf("content %q beside a required call", *c.Message.Content)
				}
			}
		}
	}
}

// A call, then the tool's result, then an answer: the conversation with
// the call and its result renders through the template and is answered.
func TestToolRoundTrip(t *testing.T) {
	url := toolsDaemon(t)
	first := chatOK(t, url, `{"model": "qwen", "messages": [{"role": "user", "content": "Weather in Oslo?"}], "tools": [`+weatherTool+`],
		"tool_choice": "required", "parallel_tool_calls": false, "temperature": 0, "max_tokens": 200}`)
	call := first.Choices[0].Message.ToolCalls[0]
	callJSON, _ := json.Marshal(call)
	second := chatOK(t, url, `{"model": "qwen", "messages": [{"role": "user", "content": "Weather in Oslo?"},
		{"role": "assistant", "content": null, "tool_calls": [`+string(callJSON)+`]},
		{"role": "tool", "tool_call_id": "`+call.ID+`", "content": "{\"temp\": -3}"}],
		"tools": [`+weatherTool+`], "tool_choice": "none", "temperature": 0, "max_tokens": 8}`)
	c := second.Choices[0]
	if c.FinishReason == "tool_calls" || len(c.Message.ToolCalls) != 0 || c.Message.Content == nil || *c.Message.Content == "" {
		t.Fatalf("second answer: %+v", c)
	}
	// The same answer streamed: text chunks only, no call.
	a := post(t, url+"/v1/chat/completions", `{"model": "qwen", "stream": true, "messages": [{"role": "user", "content": "Hi"}], "tools": [`+weatherTool+`], "tool_choice": "none", "max_tokens": 4}`)
	if a.Status != 200 || strings.Contains(string(a.Body), "tool_calls\":[") {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
}

// Streamed calls come as OpenAI sends them: the first delta of a call
// carries index, id, type, name and empty arguments; the next ones only
// index and argument pieces; the last chunk's finish_reason is
// tool_calls. Assembled, they equal the non-streamed answer.
func TestToolCallsStreamed(t *testing.T) {
	url := toolsDaemon(t)
	body := `{"model": "qwen", "messages": [{"role": "user", "content": "Weather?"}], "tools": [` + weatherTool + `],
		"tool_choice": "required", "temperature": 0, "max_tokens": 200, "parallel_tool_calls": false`
	whole := chatOK(t, url, body+`}`)
	a := post(t, url+"/v1/chat/completions", body+`, "stream": true}`)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	type delta struct {
		Role      string `json:"role"`
		Content   string `json:"content"`
		ToolCalls []struct {
			Index    *int    `json:"index"`
			ID       *string `json:"id"`
			Type     *string `json:"type"`
			Function struct {
				Name      *string `json:"name"`
				Arguments *string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	}
	var calls []wantCall
	var finish string
	starts, pieces := 0, 0
	for i, ev := range sseData(a.Body) {
		if ev == "[DONE]" {
			continue
		}
		var chunk struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta        delta   `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev), &chunk); err != nil || chunk.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %d: %v %s", i, err, ev)
		}
		if len(chunk.Choices) == 0 {
			continue
		}
		ch := chunk.Choices[0]
		if ch.FinishReason != nil {
			finish = *ch.FinishReason
		}
		if ch.Delta.Content != "" {
			t.Errorf("content %q in a required call's stream", ch.Delta.Content)
		}
		for _, tc := range ch.Delta.ToolCalls {
			if tc.Index == nil {
				t.Fatalf("tool call delta without index: %s", ev)
			}
			if tc.ID != nil {
				starts++
				if tc.Type == nil || *tc.Type != "function" || tc.Function.Name == nil || tc.Function.Arguments == nil || *tc.Function.Arguments != "" {
					t.Fatalf("first delta of a call: %s", ev)
				}
				if starts == 1 && ch.Delta.Role != "assistant" {
					t.Errorf("the first chunk carries no role: %s", ev)
				}
				calls = append(calls, wantCall{ID: *tc.ID, Type: "function"})
				calls[*tc.Index].Function.Name = *tc.Function.Name
				continue
			}
			if tc.Function.Name != nil || tc.Type != nil || tc.Function.Arguments == nil {
				t.Fatalf("argument delta: %s", ev)
			}
			pieces++
			calls[*tc.Index].Function.Arguments += *tc.Function.Arguments
		}
	}
	if finish != "tool_calls" || starts != 1 || pieces < 1 {
		t.Fatalf("finish %q, %d starts, %d argument pieces", finish, starts, pieces)
	}
	w := whole.Choices[0].Message.ToolCalls[0]
	if calls[0].Function != w.Function {
		t.Fatalf("streamed call %+v, whole %+v", calls[0].Function, w.Function)
	}
	checkWeatherArgs(t, calls[0].Function.Arguments)
}

// tool_choice auto: the model may answer in text or call; a call it starts
// is held to the grammar, so whatever comes is either content or valid
// calls, never a broken call.
func TestToolChoiceAuto(t *testing.T) {
	url := toolsDaemon(t)
	for seed := range 6 {
		ca := chatOK(t, url, fmt.Sprintf(`{"model": "qwen", "messages": [{"role": "user", "content": "Weather?"}], "tools": [%s],
			"temperature": 1, "seed": %d, "max_tokens": 40}`, weatherTool, seed))
		c := ca.Choices[0]
		switch c.FinishReason {
		case "tool_calls":
			for _, call := range c.Message.ToolCalls {
				if call.Function.Name != "get_weather" {
					t.Fatalf("seed %d: call of %q", seed, call.Function.Name)
				}
				checkWeatherArgs(t, call.Function.Arguments)
			}
		case "stop", "length":
			if len(c.Message.ToolCalls) != 0 {
				t.Fatalf("seed %d: finish %q with calls", seed, c.FinishReason)
			}
		default:
			t.Fatalf("seed %d: finish %q", seed, c.FinishReason)
		}
	}
}

// Each mistake about tools is a 400 that names its field.
func TestToolErrors(t *testing.T) {
	url := toolsDaemon(t)
	const user = `"messages": [{"role": "user", "content": "Hi"}]`
	for _, c := range []struct {
		body, code, param string
	}{
		{`{"model": "qwen", ` + user + `, "tools": [` + weatherTool + `], "tool_choice": {"type": "function", "function": {"name": "nope"}}}`, "invalid_request", "tool_choice.function.name"},
		{`{"model": "qwen", ` + user + `, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}}}}], "tool_choice": "required"}`, "invalid_request", "tools[0].function.parameters"},
		{`{"model": "qwen", "messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}]}`, "invalid_request", "messages[1].tool_call_id"},
		{`{"model": "plain", ` + user + `, "tools": [` + weatherTool + `]}`, "tools_unsupported", "tools"},
		{`{"model": "qwen", ` + user + `, "tools": [` + weatherTool + `], "response_format": {"type": "json_object"}}`, "invalid_request", "response_format"},
	} {
		a := post(t, url+"/v1/chat/completions", c.body)
		if a.Status != 400 || str(a.JSON, "error", "code") != c.code || str(a.JSON, "error", "param") != c.param || !strings.Contains(str(a.JSON, "error", "message"), c.param) {
			t.Errorf("%s:\n%d %s; want 400 %s naming %s", c.body, a.Status, a.Body, c.code, c.param)
		}
	}
}

// logprobs against the engine: under greedy decoding the sampled token is
// the most likely one, so its logprob equals the top alternative's; the
// alternatives are sorted, and their probabilities sum to at most 1.
func TestLogprobs(t *testing.T) {
	url := toolsDaemon(t)
	ca := chatOK(t, url, `{"model": "qwen", "messages": [{"role": "user", "content": "Hello"}], "temperature": 0, "max_tokens": 12, "logprobs": true, "top_logprobs": 5}`)
	lp := ca.Choices[0].Logprobs
	if lp == nil || len(lp.Content) == 0 {
		t.Fatalf("no logprobs: %+v", ca)
	}
	var text strings.Builder
	for i, e := range lp.Content {
		if len(e.TopLogprobs) != 5 {
			t.Fatalf("token %d: %d alternatives", i, len(e.TopLogprobs))
		}
		if math.Abs(e.Logprob-e.TopLogprobs[0].Logprob) > 1e-4 || e.Token != e.TopLogprobs[0].Token {
			t.Errorf("token %d: greedy %q %v, top %q %v", i, e.Token, e.Logprob, e.TopLogprobs[0].Token, e.TopLogprobs[0].Logprob)
		}
		sum := 0.0
		for k, a := range e.TopLogprobs {
			if a.Logprob > 0 || (k > 0 && a.Logprob > e.TopLogprobs[k-1].Logprob) {
				t.Errorf("token %d: alternatives %+v", i, e.TopLogprobs)
			}
			sum += math.Exp(a.Logprob)
		}
		if sum > 1+1e-4 {
			t.Errorf("token %d: probabilities sum to %v", i, sum)
		}
		b := make([]byte, len(e.Bytes))
		for k, v := range e.Bytes {
			b[k] = byte(v)
		}
		text.Write(b)
	}
	if got := *ca.Choices[0].Message.Content; text.String() != got {
		t.Errorf("tokens' bytes %q, content %q", text.String(), got)
	}

	// Legacy completions: logprobs is the number of alternatives.
	a := post(t, url+"/v1/completions", `{"model": "story", "prompt": "Once upon a time", "temperature": 0, "max_tokens": 8, "logprobs": 3}`)
	var cmpl struct {
		Choices []struct {
			Text     string `json:"text"`
			Logprobs struct {
				Tokens        []string             `json:"tokens"`
				TokenLogprobs []float64            `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
				TextOffset    []int                `json:"text_offset"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if a.Status != 200 || json.Unmarshal(a.Body, &cmpl) != nil || len(cmpl.Choices) != 1 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	l := cmpl.Choices[0].Logprobs
	if len(l.Tokens) != 8 || len(l.TokenLogprobs) != 8 || len(l.TopLogprobs) != 8 || len(l.TextOffset) != 8 || strings.Join(l.Tokens, "") != cmpl.Choices[0].Text {
		t.Fatalf("legacy logprobs %+v for %q", l, cmpl.Choices[0].Text)
	}
	for i, top := range l.TopLogprobs {
		best := math.Inf(-1)
		for _, v := range top {
			best = max(best, v)
		}
		if len(top) > 3 || math.Abs(best-l.TokenLogprobs[i]) > 1e-4 {
			t.Errorf("token %d %q %v: top %v", i, l.Tokens[i], l.TokenLogprobs[i], top)
		}
	}
	// Streamed chat logprobs cover every token of the content.
	a = post(t, url+"/v1/chat/completions", `{"model": "qwen", "stream": true, "messages": [{"role": "user", "content": "Hello"}], "temperature": 0, "max_tokens": 12, "logprobs": true}`)
	var streamed strings.Builder
	n := 0
	for _, ev := range sseData(a.Body) {
		var chunk struct {
			Choices []struct {
				Logprobs *struct {
					Content []struct {
						Token string `json:"token"`
					} `json:"content"`
				} `json:"logprobs"`
			} `json:"choices"`
		}
		if ev == "[DONE]" || json.Unmarshal([]byte(ev), &chunk) != nil || len(chunk.Choices) == 0 || chunk.Choices[0].Logprobs == nil {
			continue
		}
		for _, c := range chunk.Choices[0].Logprobs.Content {
			streamed.WriteString(c.Token)
			n++
		}
	}
	if n != len(lp.Content) || streamed.String() != *ca.Choices[0].Message.Content {
		t.Errorf("streamed %d tokens %q, want %d %q", n, streamed.String(), len(lp.Content), *ca.Choices[0].Message.Content)
	}
}
