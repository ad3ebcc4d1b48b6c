package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/jetai/jetai/daemon/chattmpl"
)

// /apply-template renders as chat does: the model's Jinja template, with
// the request's tools and tool turns, and the prompt it returns is the one
// a chat request feeds the model, token for token.
func TestApplyTemplateIsChatPrompt(t *testing.T) {
	url := toolsDaemon(t)
	src, err := os.ReadFile(filepath.Join("..", "chattmpl", "testdata", "templates", "qwen2.5.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := chattmpl.Compile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	const msgs = `[{"role": "user", "content": "Weather in Oslo?"},
		{"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\", \"days\": 1}"}}]},
		{"role": "tool", "tool_call_id": "call_1", "content": "-3 C"}]`
	for _, c := range []struct {
		name, tools string
		msgs        string
	}{
		{"no tools", ``, `[{"role": "user", "content": "Hello"}]`},
		{"tools", `[` + weatherTool + `]`, `[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}]`},
		{"tool turns", `[` + weatherTool + `]`, msgs},
	} {
		body := `{"model": "qwen", "messages": ` + c.msgs
		if c.tools != "" {
			body += `, "tools": ` + c.tools
		}
		a := post(t, url+"/apply-template", body+`}`)
		if a.Status != 200 {
			t.Fatalf("%s: %d %s", c.name, a.Status, a.Body)
		}
		got := a.JSON["prompt"].(string)

		// The same render, done here with the fixture.
		var in []struct {
			Role       string              `json:"role"`
			Content    string              `json:"content"`
			ToolCallID string              `json:"tool_call_id"`
			ToolCalls  []chattmpl.ToolCall `json:"tool_calls"`
		}
		if err := json.Unmarshal([]byte(c.msgs), &in); err != nil {
			t.Fatal(err)
		}
		ti := chattmpl.Input{AddGenerationPrompt: true}
		if c.tools != "" {
			ti.Tools = json.RawMessage(c.tools)
		}
		for _, m := range in {
			ti.Messages = append(ti.Messages, chattmpl.Message{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID, ToolCalls: m.ToolCalls})
		}
		want, err := tmpl.Render(ti)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: apply-template\n%q\nwant the Jinja render\n%q", c.name, got, want)
		}

		// The chat request's prompt is that text.
		tok := post(t, url+"/tokenize", `{"model": "qwen", "add_special": true, "content": `+string(mustMarshal(got))+`}`)
		chat := post(t, url+"/v1/chat/completions", body+`, "max_tokens": 1}`)
		if tok.Status != 200 || chat.Status != 200 {
			t.Fatalf("%s: tokenize %d %s, chat %d %s", c.name, tok.Status, tok.Body, chat.Status, chat.Body)
		}
		n := len(tok.JSON["tokens"].([]any))
		if pt := chat.JSON["usage"].(map[string]any)["prompt_tokens"].(float64); int(pt) != n {
			t.Errorf("%s: chat's prompt is %v tokens, apply-template's text %d", c.name, pt, n)
		}
	}
}

func mustMarshal(v any) []byte { b, _ := json.Marshal(v); return b }
