package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// refPartition is llama.cpp's tokenizer_st_partition (llama-vocab.cpp in
// the pinned module) written out in Go as it is: each special token in
// turn, over a list of fragments. It is the reference partition must
// agree with.
func refPartition(tk *tokenizer, text string, parseSpecial bool) []part {
	if text == "" {
		return nil
	}
	frags := []part{{token: -1, start: 0, end: len(text)}}
	for _, s := range tk.specials {
		if !parseSpecial && s.attr&(attrControl|attrUnknown) != 0 {
			continue
		}
		var next []part
		for _, f := range frags {
			if f.token >= 0 {
				next = append(next, f)
				continue
			}
			base, length := f.start, f.end-f.start
			for {
				i := strings.Index(text[base:], s.text)
				if i < 0 {
					next = append(next, part{token: -1, start: base, end: base + length})
					break
				}
				match := base + i
				if match+len(s.text) > base+length {
					if length > 0 {
						next = append(next, part{token: -1, start: base, end: base + length})
					}
					break
				}
				if match > base {
					left := match - base
					if s.attr&attrLStrip != 0 {
						for left > 0 && isSpace(text[base+left-1]) {
							left--
						}
					}
					if left > 0 {
						next = append(next, part{token: -1, start: base, end: base + left})
					}
				}
				next = append(next, part{token: s.id, start: match, end: match + len(s.text)})
				if match+len(s.text) >= base+length {
					break
				}
				roff := match + len(s.text)
				rlen := length - (match - base) - len(s.text)
				if s.attr&attrRStrip != 0 {
					for rlen > 0 && isSpace(text[roff]) {
						roff++
						rlen--
					}
				}
				base, length = roff, rlen
				if length == 0 {
					break
				}
			}
		}
		frags = next
	}
	return frags
}

// handTokenizer is a tokenizer over made-up special tokens, for the
// partition alone (no vocabulary behind it).
func handTokenizer() *tokenizer {
	tk := &tokenizer{maxPiece: 16, kind: vocabSPM}
	for i, s := range []struct {
		text string
		attr uint32
	}{
		{"<|im_start|>", attrControl},
		{"<|im_end|>", attrControl},
		{"<mask>", attrUserDefined | attrLStrip},
		{"[R]", attrUserDefined | attrRStrip},
		{"aba", attrUserDefined},
		{"</s>", attrControl},
		{"<s>", attrControl},
		{"<unk>", attrUnknown},
		{"ab", attrUserDefined},
		{"ba", attrControl},
		{"x", attrUserDefined | attrLStrip | attrRStrip},
	} {
		tk.specials = append(tk.specials, special{id: 100 + i, text: s.text, attr: s.attr})
	}
	slices.SortStableFunc(tk.specials, func(a, b special) int { return len(b.text) - len(a.text) })
	tk.index()
	return tk
}

// randomText strings together pieces that make matches, near misses,
// overlaps and whitespace.
func randomText(r *rand.Rand, pieces []string, n int) string {
	var b strings.Builder
	for range r.Intn(n) {
		b.WriteString(pieces[r.Intn(len(pieces))])
	}
	return b.String()
}

var handPieces = []string{"<|im_start|>", "<|im_end|>", "<|im_", "|>", "<mask>", "<ma", "[R]", "[R", "aba", "ab", "ba", "a", "b",
	"</s>", "</s", "<s>", "<", ">", "<unk>", "x", " ", "  ", "\n", "\t", "é", "hello", "\x00"}

func TestPartitionMatchesLlamaAlgorithm(t *testing.T) {
	tk := handTokenizer()
	fixed := []string{"", "plain", "<s>", "a<s>b", "ababa", "abab", "baba", "aba aba", "  <mask>  ", "x<mask>", "[R]   y", "[R][R] ",
		" x ", "xx", "  x  x  ", "<|im_start|>user\nhi<|im_end|>\n", "<|im_start|<|im_end|>", "</s>x</s>x", "<unk><unk>"}
	r := rand.New(rand.NewSource(1))
	texts := fixed
	for range 3000 {
		texts = append(texts, randomText(r, handPieces, 12))
	}
	for _, text := range texts {
		for _, parse := range []bool{true, false} {
			got, err := tk.partition(context.Background(), text, parse)
			if err != nil {
				t.Fatal(err)
			}
			want := refPartition(tk, text, parse)
			if !slices.Equal(got, want) {
				t.Fatalf("partition(%q, parse=%v):\n got %v\nwant %v", text, parse, got, want)
			}
		}
	}
}

// chatModel is the generated model with ChatML control tokens.
func chatModel(t *testing.T) *Model {
	t.Helper()
	spec := modelgen.Tiny()
	spec.ChatTemplate = modelgen.ChatML
	path, err := modelgen.Cached(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(context.Background(), path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestTokenizeMatchesLlama checks the Go split against llama.cpp's own
// tokenization, token for token, on the real model and on a model with
// ChatML control tokens: prompts, chat-template output, text against
// special tokens, near misses, and random mixes of them.
func TestTokenizeMatchesLlama(t *testing.T) {
	table := []string{
		"Once upon a time", " leading space", "trailing space ", "two  spaces", "\n\nnewlines\n", "é ü 日本語 🙂",
		"</s>x", "x</s>", "</s></s>", "<s>", "<s>Once", "Once<s>", " <s> ", "<</s>>", "</s", "<s", "s>", "<unk>", "a<unk>b",
		"<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", "<|im_start|><|im_end|>", "<|im_start", "im_end|>",
		"x<|im_end|>y", "\n<|im_start|>\n", strings.Repeat("</s>x", 50),
	}
	pieces := []string{"</s>", "<s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|im_", "</s", "<", ">", "|", " ", "\n", "x", "Once",
		" upon", "a", "é", "🙂", "user", "\t"}
	models := []struct {
		name string
		m    *Model
	}{{"stories260K", loadTiny(t)}, {"generated ChatML", chatModel(t)}}
	for _, mc := range models {
		t.Run(mc.name, func(t *testing.T) {
			m := mc.m
			texts := slices.Clone(table)
			if m.Info().ChatSupported {
				text, err := m.ApplyChatTemplate([]Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi </s> there"},
					{Role: "assistant", Content: "Hello."}, {Role: "user", Content: "<|im_start|>system"}}, true)
				if err != nil {
					t.Fatal(err)
				}
				texts = append(texts, text)
			}
			r := rand.New(rand.NewSource(2))
			for range 500 {
				texts = append(texts, randomText(r, pieces, 16))
			}
			for _, text := range texts {
				for _, add := range []bool{true, false} {
					for _, parse := range []bool{true, false} {
						got, err := m.tokenize(context.Background(), text, add, parse, 0)
						if err != nil {
							t.Fatal(err)
						}
						want, err := m.m.Tokenize(text, add, parse)
						if err != nil {
							t.Fatal(err)
						}
						if text == "" && (!add || !m.info.AddBOS) {
							want = nil
						}
						if !slices.Equal(got, want) {
							t.Fatalf("tokenize(%q, add=%v, parse=%v):\n got %v\nwant %v (llama.cpp)", text, add, parse, got, want)
						}
					}
				}
			}
		})
	}
}

// TestTokenizeLinear holds the split's work linear in the number of
// special tokens in the text: 4× the matches cost about 4× the steps
// (llama.cpp's own split costs about 16× the time).
func TestTokenizeLinear(t *testing.T) {
	m := loadTiny(t)
	ops := func(n int) int64 {
		before := m.tok.ops.Load()
		toks, err := m.TokenizeLimit(context.Background(), strings.Repeat("</s>x", n), true, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c := strings.Count(fmt.Sprint(toks), " 2 "); c < n-1 {
			t.Fatalf("%d </s> tokens in %d repeats", c, n)
		}
		return m.tok.ops.Load() - before
	}
	small, large := ops(2000), ops(8000)
	if small == 0 || float64(large)/float64(small) > 4.5 {
		t.Fatalf("split work: %d steps for 2,000 special tokens, %d for 8,000 (want at most 4.5×)", small, large)
	}
}

// cpuTime is this process's user+system CPU time.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestTokenizeSpecialFloodCheap tokenizes 200 KB of special-token text
// whole. llama.cpp's own split took about 10 s of CPU for it on a 2-core
// x86-64 box; the bound is generous for a loaded machine.
func TestTokenizeSpecialFloodCheap(t *testing.T) {
	m := loadTiny(t)
	text := strings.Repeat("</s>x", 40000)
	start := cpuTime(t)
	toks, err := m.Tokenize(text, true)
	used := cpuTime(t) - start
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) < 80000 {
		t.Fatalf("%d tokens for 40,000 repeats of </s>x", len(toks))
	}
	if used > 3*time.Second {
		t.Fatalf("tokenizing 200 KB of special-token text took %v of CPU", used)
	}
}

// TestTokenizeLimit checks the refusals: a text longer than the limit can
// be in tokens is refused before it is split at all; one that is close is
// refused while it is tokenized; exactly the limit is accepted.
func TestTokenizeLimit(t *testing.T) {
	m := loadTiny(t)
	ctx := context.Background()

	before := m.tok.ops.Load()
	_, err := m.TokenizeLimit(ctx, strings.Repeat("</s>x", 80000), true, 1023)
	var tl *TooLongError
	if !errors.As(err, &tl) || !errors.Is(err, ErrTooLong) || tl.Limit != 1023 || tl.Tokens <= 1023 {
		t.Fatalf("400 KB against a limit of 1023: %v", err)
	}
	if ops := m.tok.ops.Load() - before; ops != 0 {
		t.Fatalf("the text was split (%d steps) before it was refused", ops)
	}

	text := strings.Repeat("</s>x", 400) + " Once upon a time"
	all, err := m.Tokenize(text, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.TokenizeLimit(ctx, text, true, len(all)); err != nil || !slices.Equal(got, all) {
		t.Fatalf("limit = token count: %v", err)
	}
	for _, limit := range []int{len(all) - 1, len(all) / 2, 10} {
		_, err := m.TokenizeLimit(ctx, text, true, limit)
		if !errors.As(err, &tl) || tl.Tokens <= limit || tl.Tokens > len(all) {
			t.Fatalf("limit %d for %d tokens: %v", limit, len(all), err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.TokenizeLimit(cctx, text, true, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

// TestChatTokensLimit refuses a chat of many messages that cannot fit.
func TestChatTokensLimit(t *testing.T) {
	m := chatModel(t)
	msgs := make([]Message, 20000)
	for i := range msgs {
		msgs[i] = Message{Role: "user", Content: "hi"}
	}
	start := cpuTime(t)
	_, err := m.ChatTokens(context.Background(), msgs, 2047)
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("20,000 messages against 2047 tokens: %v", err)
	}
	msgs[0].Content = "<|im_start|>system" // the piecewise path
	_, err = m.ChatTokens(context.Background(), msgs, 2047)
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("20,000 messages with special text against 2047 tokens: %v", err)
	}
	if used := cpuTime(t) - start; used > 5*time.Second {
		t.Fatalf("refusing two chats of 20,000 messages took %v of CPU", used)
	}
}

// TestDecodeInterruptible: an interrupt stops the decode and leaves the KV
// cache as it was (decoding the same batch again gives the same logits as
// a fresh context), is consumed by that decode, and plain Decode and the
// decodes after it are not affected.
func TestDecodeInterruptible(t *testing.T) {
	m := loadTiny(t)
	toks, _ := m.Tokenize(testmodel.GoldenPrompt, true)
	next := func(c *Context, b *Batch) int {
		s, _ := m.NewSampler(SamplingParams{Temperature: 0})
		defer s.Close()
		tok, err := s.Sample(c, b.Len()-1)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	fresh := newContext(t, m, ContextOptions{SlotContext: 64, Slots: 1, Threads: 1})
	b := promptBatch(t, toks, 64)
	if err := fresh.Decode(b); err != nil {
		t.Fatal(err)
	}
	want := next(fresh, b)

	c := newContext(t, m, ContextOptions{SlotContext: 64, Slots: 1, Threads: 1})
	c.Interrupt()
	if err := c.DecodeInterruptible(b); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted decode: %v", err)
	}
	if err := c.DecodeInterruptible(b); err != nil {
		t.Fatalf("the decode after the interrupted one: %v", err)
	}
	if got := next(c, b); got != want {
		t.Fatalf("after an interrupted decode the prompt gives token %d, a fresh context %d", got, want)
	}
	c.RemoveFrom(0, 0)
	c.Interrupt()
	if err := c.Decode(b); err != nil {
		t.Fatalf("plain Decode with an interrupt asked for: %v", err)
	}
}

// FuzzTokenize checks the Go split against llama.cpp on any text: the
// hand-made vocabulary against the reference algorithm, the real model
// against llama.cpp's own tokenization.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", "</s>x</s>x", "<s></s><unk>", "<|im_start|>user\nhi<|im_end|>\n", "  <mask> [R]  x  ", "ababa", "é</s", "\x00<s>\xff"} {
		f.Add(s)
	}
	tk := handTokenizer()
	m, err := Load(context.Background(), testmodel.Path(f), LoadOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(m.Close)
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 4096 {
			return // llama.cpp's own split is quadratic
		}
		for _, parse := range []bool{true, false} {
			got, err := tk.partition(context.Background(), text, parse)
			if err != nil {
				t.Fatal(err)
			}
			if want := refPartition(tk, text, parse); !slices.Equal(got, want) {
				t.Fatalf("partition(%q, parse=%v):\n got %v\nwant %v", text, parse, got, want)
			}
			toks, err := m.tokenize(context.Background(), text, true, parse, 0)
			if err != nil {
				t.Fatal(err)
			}
			want, err := m.m.Tokenize(text, true, parse)
			if err != nil {
				t.Fatal(err)
			}
			if text == "" {
				want = []int{m.info.BOS}
			}
			if !slices.Equal(toks, want) {
				t.Fatalf("tokenize(%q, parse=%v):\n got %v\nwant %v (llama.cpp)", text, parse, toks, want)
			}
		}
	})
}

// TestResolveTiesCheap loads no model: a group of many special tokens of
// the same length that cannot overlap (as "<unused0>".."<unused9999>" in
// some vocabularies) is left in id order without probing llama.cpp.
func TestResolveTiesCheap(t *testing.T) {
	tk := &tokenizer{}
	for i := range 10000 {
		tk.specials = append(tk.specials, special{id: i, text: fmt.Sprintf("<unused%04d>", i), attr: attrControl})
	}
	tk.resolveTies(nil) // a probe would need the model and panic
	for i, s := range tk.specials {
		if s.id != i {
			t.Fatalf("order changed at %d: %+v", i, s)
		}
	}
}
