package chattmpl

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden renders in testdata/golden")

const weatherTools = `[{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}]`

func roundTrip() []Message {
	call := ToolCall{ID: "call_abc123xyz", Type: "function"}
	call.Function.Name = "get_weather"
	call.Function.Arguments = `{"city": "Paris", "unit": "c"}`
	return []Message{
		{Role: "user", Content: "What is the weather in Paris?"},
		{Role: "assistant", ToolCalls: []ToolCall{call}},
		{Role: "tool", ToolCallID: "call_abc123xyz", Content: `{"temp": 21}`},
	}
}

// The fixtures and what each must render: a plain conversation for all,
// a tool round trip for the families whose template takes tools.
var families = []struct {
	file     string
	bos, eos string
	tools    bool
}{
	{"llama-3.1.jinja", "<|begin_of_text|>", "<|eot_id|>", true},
	{"llama-3.2.jinja", "<|begin_of_text|>", "<|eot_id|>", true},
	{"qwen2.5.jinja", "", "<|im_end|>", true},
	{"qwen3.jinja", "", "<|im_end|>", true},
	{"phi-3.jinja", "<s>", "<|endoftext|>", false},
	{"phi-4-mini.jinja", "", "<|endoftext|>", true},
	{"gemma-2.jinja", "<bos>", "<eos>", false},
	{"gemma-3.jinja", "<bos>", "<eos>", false},
	{"smollm2.jinja", "", "<|im_end|>", false},
	{"mistral-7b-v0.2.jinja", "<s>", "</s>", false},
	{"mistral-small-3.1.jinja", "<s>", "</s>", true},
}

func TestGoldenRenders(t *testing.T) {
	now := time.Date(2024, 7, 26, 12, 0, 0, 0, time.UTC)
	for _, f := range families {
		t.Run(f.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "templates", f.file))
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := Compile(string(src))
			if err != nil {
				t.Fatal(err)
			}
			if got := tmpl.SupportsTools(); got != f.tools {
				t.Errorf("SupportsTools = %v, want %v", got, f.tools)
			}
			plain := []Message{{Role: "user", Content: "Hello!"}, {Role: "assistant", Content: "Hi there."}, {Role: "user", Content: "Tell me a story."}}
			if !strings.HasPrefix(f.file, "gemma") && !strings.HasPrefix(f.file, "mistral-7b") {
				plain = append([]Message{{Role: "system", Content: "You are terse."}}, plain...)
			}
			cases := map[string]Input{"plain": {Messages: plain, AddGenerationPrompt: true}}
			if f.tools {
				cases["tools"] = Input{Messages: roundTrip(), Tools: json.RawMessage(weatherTools), AddGenerationPrompt: true}
			}
			for name, in := range cases {
				in.BOSToken, in.EOSToken, in.Now = f.bos, f.eos, now
				got, err := tmpl.Render(in)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				golden := filepath.Join("testdata", "golden", strings.TrimSuffix(f.file, ".jinja")+"."+name+".txt")
				if *update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("%s render differs from %s:\n--- got ---\n%s\n--- want ---\n%s", name, golden, got, want)
				}
			}
		})
	}
}

// Facts of each family's format that the goldens must hold, so that a
// golden rewritten by -update cannot quietly accept a wrong render.
func TestRenderFacts(t *testing.T) {
	render := func(file string, in Input) string {
		t.Helper()
		src, err := os.ReadFile(filepath.Join("testdata", "templates", file))
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := Compile(string(src))
		if err != nil {
			t.Fatal(err)
		}
		in.Now = time.Date(2024, 7, 26, 0, 0, 0, 0, time.UTC)
		out, err := tmpl.Render(in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tools := Input{Messages: roundTrip(), Tools: json.RawMessage(weatherTools), AddGenerationPrompt: true}
	for _, tc := range []struct {
		file string
		in   Input
		want []string
	}{
		{"qwen2.5.jinja", tools, []string{
			`<tools>` + "\n" + `{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}`,
			"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call><|im_end|>",
			"<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
		}},
		{"llama-3.1.jinja", tools, []string{
			"Today Date: 26 Jul 2024",
			`{"name": "get_weather", "parameters": {"city": "Paris", "unit": "c"}}<|eot_id|>`,
			"<|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temp\\\": 21}\"<|eot_id|>",
		}},
		{"phi-4-mini.jinja", tools, []string{`<|tool|>{"name": "get_weather"`, `<|tool_call|>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}<|/tool_call|>`}},
		{"mistral-small-3.1.jinja", tools, []string{`[AVAILABLE_TOOLS] [{"type": "function", "function": {"name": "get_weather"`, `[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}, "id": "abc123xyz"}]`, `[TOOL_RESULTS] {"content": {"temp": 21}, "call_id": "abc123xyz"}[/TOOL_RESULTS]`, "The current date is 2024-07-26."}},
		{"gemma-3.jinja", Input{Messages: []Message{{Role: "user", Content: "Hi"}}, AddGenerationPrompt: true, BOSToken: "<bos>"}, []string{"<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"}},
	} {
		got := render(tc.file, tc.in)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: render lacks %q:\n%s", tc.file, w, got)
			}
		}
	}
}

func TestRaiseException(t *testing.T) {
	src, _ := os.ReadFile("testdata/templates/gemma-2.jinja")
	tmpl, err := Compile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmpl.Render(Input{Messages: []Message{{Role: "system", Content: "x"}, {Role: "user", Content: "y"}}})
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "System role not supported") {
		t.Fatalf("err = %v, want the template's own exception", err)
	}
}

func TestBadArguments(t *testing.T) {
	tmpl, err := Compile(`{{ messages[0].tool_calls[0].function.arguments | tojson }}`)
	if err != nil {
		t.Fatal(err)
	}
	call := ToolCall{}
	call.Function.Name = "f"
	call.Function.Arguments = `{"a": `
	_, err = tmpl.Render(Input{Messages: []Message{{Role: "assistant", ToolCalls: []ToolCall{call}}}})
	if err == nil || !strings.Contains(err.Error(), "messages[0]: tool_calls[0].function.arguments") {
		t.Fatalf("err = %v", err)
	}
}

func TestStrftime(t *testing.T) {
	at := time.Date(2025, 3, 4, 15, 6, 7, 0, time.UTC)
	for f, want := range map[string]string{"%d %b %Y": "04 Mar 2025", "%Y-%m-%d": "2025-03-04", "%H:%M:%S %p %%": "15:06:07 PM %", "%A %B %j": "Tuesday March 063"} {
		if got := Strftime(at, f); got != want {
			t.Errorf("Strftime(%q) = %q, want %q", f, got, want)
		}
	}
}

func TestSupportsTools(t *testing.T) {
	for src, want := range map[string]bool{"{{ tools }}": true, "{% if tools is defined %}x{% endif %}": true, "{{ custom_tools_x }}": false, "{{ messages }}": false} {
		if got := referencesTools(src); got != want {
			t.Errorf("referencesTools(%q) = %v, want %v", src, got, want)
		}
	}
}
