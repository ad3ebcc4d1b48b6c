package gguf

import (
	"bytes"
	"strings"
	"testing"
)

func vocabFile(t *testing.T, model string, bos uint32, tokens []string) *File {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, kv := range []struct {
		k string
		v any
	}{
		{"general.architecture", "llama"},
		{"tokenizer.ggml.model", model},
		{"tokenizer.ggml.bos_token_id", bos},
		{"tokenizer.ggml.eos_token_id", uint32(2)},
		{KeyTokens, tokens},
	} {
		if err := w.AddKV(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := readBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVocabCompatible(t *testing.T) {
	toks := []string{"<unk>", "<s>", "</s>", "a", "b"}
	target := vocabFile(t, "llama", 1, toks)
	padded := append(append([]string{}, toks...), "<pad0>", "<pad1>")
	for name, tc := range map[string]struct {
		draft *File
		want  string
	}{
		"same":          {vocabFile(t, "llama", 1, toks), ""},
		"padded":        {vocabFile(t, "llama", 1, padded), ""},
		"tokenizer":     {vocabFile(t, "gpt2", 1, toks), `tokenizer "gpt2" differs from "llama"`},
		"bos":           {vocabFile(t, "llama", 3, toks), "tokenizer.ggml.bos_token_id is 3, not 1"},
		"token text":    {vocabFile(t, "llama", 1, []string{"<unk>", "<s>", "</s>", "a", "c"}), `token 4 is "c", not "b"`},
		"far too large": {vocabFile(t, "llama", 1, append(padded, make([]string, 200)...)), "207 tokens, not 5"},
	} {
		t.Run(name, func(t *testing.T) {
			err := VocabCompatible(target, tc.draft)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
