package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// TestKVCacheTypes: each KV cache type llama.cpp accepts makes a context
// that decodes; the combinations it refuses (or would abort on) are errors
// from NewContext, and the process lives on.
func TestKVCacheTypes(t *testing.T) {
	tiny, err := Load(context.Background(), testmodel.Gen(t, modelgen.Tiny()), LoadOptions{}) // heads of 64
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tiny.Close)
	stories := loadTiny(t) // stories260K: heads of 8, less than one q8_0 block
	cases := []struct {
		name  string
		m     *Model
		typ   string
		flash bool
		err   string
	}{
		{"f16", tiny, "f16", false, ""},
		{"f16 flash", tiny, "f16", true, ""},
		{"q8_0 flash", tiny, "q8_0", true, ""},
		{"q4_0 flash", tiny, "q4_0", true, ""},
		{"q8_0 without flash", tiny, "q8_0", false, "needs flash attention"},
		{"q4_0 without flash", tiny, "q4_0", false, "needs flash attention"},
		{"unknown", tiny, "q5_1", true, "not one of f16, q8_0, q4_0"},
		{"q8_0 narrow heads", stories, "q8_0", true, "heads have 8"},
		{"q4_0 narrow heads", stories, "q4_0", true, "heads have 8"},
		{"f16 narrow heads", stories, "f16", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, err := c.m.NewContext(ContextOptions{SlotContext: 64, Slots: 1, Threads: 1, FlashAttention: c.flash, KVType: c.typ})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					if ctx != nil {
						ctx.Close()
					}
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(ctx.Close)
			toks, _ := c.m.Tokenize("Once upon a time", true)
			b := promptBatch(t, toks, 64)
			s, _ := c.m.NewSampler(SamplingParams{Temperature: 0})
			defer s.Close()
			if err := ctx.Decode(b); err != nil {
				t.Fatal(err)
			}
			// A few steps read the cache written by the prompt.
			pos := len(toks)
			for i := 0; i < 8; i++ {
				tok, err := s.Sample(ctx, b.Len()-1)
				if err != nil || tok < 0 {
					t.Fatalf("sample: %d, %v", tok, err)
				}
				b.Clear()
				b.Add(tok, pos, 0, true)
				pos++
				if err := ctx.Decode(b); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
