package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// The llama-server utility endpoints against a real jetaid (the daemon of
// ollama_test.go): stories260K as "story", a generated ChatML model as
// "chat".

func TestTokenizeDetokenize(t *testing.T) {
	a := ollamaDo(t, "POST", "/tokenize", `{"model": "story", "content": "Once upon a time"}`)
	if a.Status != 200 {
		t.Fatalf("tokenize: %d %s", a.Status, a.Body)
	}
	toks := a.JSON["tokens"].([]any)
	if len(toks) < 3 {
		t.Fatalf("tokens %v", toks)
	}
	withBOS := ollamaDo(t, "POST", "/tokenize", `{"model": "gpt2", "content": "Once upon a time", "add_special": true}`).JSON["tokens"].([]any)
	if len(withBOS) != len(toks)+1 || withBOS[0].(float64) != 1 {
		t.Errorf("add_special: %v, want BOS (1) then %v", withBOS, toks)
	}
	ids := make([]string, len(toks))
	for i, v := range toks {
		ids[i] = fmt.Sprint(v)
	}
	d := ollamaDo(t, "POST", "/detokenize", `{"model": "story", "tokens": [`+strings.Join(ids, ",")+`]}`)
	if d.Status != 200 || strings.TrimSpace(d.JSON["content"].(string)) != "Once upon a time" {
		t.Fatalf("detokenize: %d %s", d.Status, d.Body)
	}

	// Pieces: whole characters as strings, bytes of a split character as
	// byte lists (llama-server's README shows "á" on stories260K).
	p := ollamaDo(t, "POST", "/tokenize", `{"model": "story", "content": "á", "with_pieces": true}`)
	var pieces []string
	for _, tp := range p.JSON["tokens"].([]any) {
		m := tp.(map[string]any)
		pieces = append(pieces, fmt.Sprint(m["piece"]))
		if _, ok := m["id"].(float64); !ok {
			t.Fatalf("with_pieces: %s", p.Body)
		}
	}
	if got := strings.Join(pieces, " "); !strings.Contains(got, "[195]") || !strings.Contains(got, "[161]") {
		t.Errorf("pieces of á: %s, want the bytes [195] and [161]", got)
	}
	pw := ollamaDo(t, "POST", "/tokenize", `{"model": "story", "content": "Once upon", "with_pieces": true}`)
	var text strings.Builder
	for _, tp := range pw.JSON["tokens"].([]any) {
		text.WriteString(tp.(map[string]any)["piece"].(string))
	}
	if strings.TrimSpace(text.String()) != "Once upon" {
		t.Errorf("pieces join to %q", text.String())
	}
	// Special-token text is parsed, as llama-server does.
	chat := ollamaDo(t, "POST", "/tokenize", `{"model": "chat", "content": "<|im_start|>"}`).JSON["tokens"].([]any)
	if len(chat) != 1 {
		t.Errorf("<|im_start|> on the ChatML model: %v, want one special token", chat)
	}
}

func TestApplyTemplateAndProps(t *testing.T) {
	a := ollamaDo(t, "POST", "/apply-template", `{"model": "chat", "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "Hello"}]}`)
	want := "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
	if a.Status != 200 || a.JSON["prompt"] != want {
		t.Fatalf("apply-template: %d %s, want prompt %q", a.Status, a.Body, want)
	}
	p := ollamaDo(t, "GET", "/props?model=chat", "")
	if p.Status != 200 || !strings.Contains(p.JSON["chat_template"].(string), "im_start") ||
		p.JSON["n_ctx"].(float64) != 256 || p.JSON["total_slots"].(float64) != 2 {
		t.Fatalf("props: %d %s", p.Status, p.Body)
	}
	gs := p.JSON["default_generation_settings"].(map[string]any)
	if gs["params"].(map[string]any)["n_predict"].(float64) != 8 {
		t.Errorf("props params: %v, want the model's max_tokens 8 as n_predict", gs)
	}
	s := ollamaDo(t, "GET", "/props?model=gpt2", "")
	if s.Status != 200 || s.JSON["model"] != "story" || s.JSON["chat_template"] != "" {
		t.Fatalf("props of story: %d %s", s.Status, s.Body)
	}
}

func TestUtilityErrors(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown model", "POST", "/tokenize", `{"model": "nope", "content": "x"}`, 404, "model_not_found"},
		{"no content", "POST", "/tokenize", `{"model": "story"}`, 400, "invalid_request"},
		{"content not a string", "POST", "/tokenize", `{"model": "story", "content": [1, 2]}`, 400, "invalid_request"},
		{"unknown field", "POST", "/tokenize", `{"model": "story", "contnet": "x"}`, 400, "invalid_request"},
		{"token out of range", "POST", "/detokenize", `{"model": "story", "tokens": [1, 99999]}`, 400, "invalid_request"},
		{"negative token", "POST", "/detokenize", `{"model": "story", "tokens": [-1]}`, 400, "invalid_request"},
		{"no tokens", "POST", "/detokenize", `{"model": "story"}`, 400, "invalid_request"},
		{"no chat template", "POST", "/apply-template", `{"model": "story", "messages": [{"role": "user", "content": "x"}]}`, 400, "no_chat_template"},
		{"no messages", "POST", "/apply-template", `{"model": "chat", "messages": []}`, 400, "invalid_request"},
		{"bad role", "POST", "/apply-template", `{"model": "chat", "messages": [{"role": "robot", "content": "x"}]}`, 400, "invalid_request"},
		{"props unknown model", "GET", "/props?model=nope", ``, 404, "model_not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, ollamaDo(t, c.method, c.path, c.body), c.status, c.code)
		})
	}
	// The runner survived the bad tokens.
	if a := ollamaDo(t, "POST", "/detokenize", `{"model": "story", "tokens": [1]}`); a.Status != 200 {
		t.Fatalf("after bad tokens: %d %s", a.Status, a.Body)
	}
}
