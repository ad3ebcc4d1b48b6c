package gguf

import (
	"errors"
	"fmt"
)

// vocabSizeSlack is how many more tokens one of two compatible
// vocabularies may hold: models are often padded past their tokenizer's
// last token (llama.cpp's speculative decoding allows the same).
const vocabSizeSlack = 128

// VocabCompatible says whether a model with header d can draft tokens for
// one with header t: the same tokenizer, the same special tokens and the
// same text for every token id both have. An error says the first
// difference.
func VocabCompatible(t, d *File) error {
	if a, b := str(t, "tokenizer.ggml.model"), str(d, "tokenizer.ggml.model"); a != b {
		return fmt.Errorf("tokenizer %q differs from %q", b, a)
	}
	for _, k := range []string{"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"} {
		a, aok := t.Uint(k)
		b, bok := d.Uint(k)
		if aok != bok || a != b {
			return fmt.Errorf("%s is %s, not %s", k, optUint(b, bok), optUint(a, aok))
		}
	}
	ta, ok1 := t.Strings(KeyTokens)
	da, ok2 := d.Strings(KeyTokens)
	if !ok1 || !ok2 {
		return errors.New("a header has no token list (tokenizer.ggml.tokens)")
	}
	if diff := len(ta) - len(da); diff > vocabSizeSlack || diff < -vocabSizeSlack {
		return fmt.Errorf("%d tokens, not %d", len(da), len(ta))
	}
	for i := range min(len(ta), len(da)) {
		if ta[i] != da[i] {
			return fmt.Errorf("token %d is %q, not %q", i, da[i], ta[i])
		}
	}
	return nil
}

func str(f *File, k string) string {
	s, _ := f.String(k)
	return s
}

func optUint(v uint64, ok bool) string {
	if !ok {
		return "absent"
	}
	return fmt.Sprint(v)
}
