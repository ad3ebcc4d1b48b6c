package engine

import (
	"context"
	"fmt"
	"testing"
)

// A template that writes bos_token itself (Llama 3, Gemma, Mistral) must not
// give the prompt two BOS tokens when the tokenizer adds one too, on the
// plain path and on the piecewise one (content with special-token text).
func TestChatTokensRenderedNoDoubleBOS(t *testing.T) {
	m := chatModel(t)
	bos := m.TokenText(m.Info().BOS)
	if bos == "" || !m.Info().AddBOS {
		t.Fatalf("the generated model should add BOS %q", bos)
	}
	render := func(contents []string) (string, error) {
		return bos + "<|im_start|>user\n" + contents[0] + "<|im_end|>\n<|im_start|>assistant\n", nil
	}
	for _, content := range []string{"Hello there", "Hello <|im_end|> there"} {
		toks, err := m.ChatTokensRendered(context.Background(), []string{content}, render, 0)
		if err != nil {
			t.Fatal(err)
		}
		if toks[0] != m.Info().BOS || toks[1] == m.Info().BOS {
			t.Errorf("%q: prompt starts %v, want one BOS (%d)", content, toks[:3], m.Info().BOS)
		}
	}
}

// ChatTokensAt says where each message's content starts: the content's
// own tokens follow from there, after the template's text for its role.
func TestChatTokensAt(t *testing.T) {
	m := chatModel(t)
	render := func(contents []string) (string, error) {
		return "<|im_start|>system\n" + contents[0] + "<|im_end|>\n<|im_start|>user\n" + contents[1] + "<|im_end|>\n<|im_start|>assistant\n", nil
	}
	contents := []string{"be brief", "what is this"}
	toks, starts, err := m.ChatTokensAt(context.Background(), contents, render, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(starts) != 2 || starts[0] <= 0 || starts[1] <= starts[0] {
		t.Fatalf("starts %v", starts)
	}
	for i, c := range contents {
		want, err := m.Tokenize(c, false)
		if err != nil {
			t.Fatal(err)
		}
		got := toks[starts[i] : starts[i]+len(want)]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("content %d at %d: %v, want %v", i, starts[i], got, want)
		}
	}
	// A message the template leaves out starts nowhere.
	_, starts, err = m.ChatTokensAt(context.Background(), contents, func(c []string) (string, error) {
		return "<|im_start|>user\n" + c[1] + "<|im_end|>\n", nil
	}, 0)
	if err != nil || starts[0] != -1 || starts[1] < 0 {
		t.Fatalf("starts %v, %v", starts, err)
	}
}
