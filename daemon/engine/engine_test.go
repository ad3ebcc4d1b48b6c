package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testmodel"
)

func loadTiny(t *testing.T) *Model {
	t.Helper()
	m, err := Load(context.Background(), testmodel.Path(t), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// newContext makes a context of m, closed when the test ends.
func newContext(t *testing.T, m *Model, o ContextOptions) *Context {
	t.Helper()
	c, err := m.NewContext(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// promptBatch is a batch of size holding toks as sequence 0, with logits
// for the last one; freed when the test ends.
func promptBatch(t *testing.T, toks []int, size int) *Batch {
	t.Helper()
	b, err := NewBatch(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	for i, tok := range toks {
		b.Add(tok, i, 0, i == len(toks)-1)
	}
	return b
}

func TestModelParamsLayout(t *testing.T) {
	gpu, split, vocabOnly, mmap, mlock, check, cbNil := defaultModelParams()
	if gpu != 0 || split != 1 || vocabOnly || !mmap || mlock || check || !cbNil {
		t.Fatalf("struct jetai_model_params does not mirror llama_model_params: gpu=%d split=%d vocab_only=%v mmap=%v mlock=%v check=%v cbnil=%v",
			gpu, split, vocabOnly, mmap, mlock, check, cbNil)
	}
}

func TestThreadpoolParamsLayout(t *testing.T) {
	n, prio, poll, strict, paused := defaultThreadpoolParams(3)
	if n != 3 || prio != 0 || poll != 50 || strict || paused {
		t.Fatalf("struct jetai_threadpool_params does not mirror ggml_threadpool_params: n=%d prio=%d poll=%d strict=%v paused=%v", n, prio, poll, strict, paused)
	}
}

func TestLoadInfo(t *testing.T) {
	var progress []float32
	m, err := Load(context.Background(), testmodel.Path(t), LoadOptions{Progress: func(p float32) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info := m.Info()
	if info.Architecture != "llama" || info.VocabSize != 512 || info.ContextTrain != 2048 || info.BOS != 1 || info.EOS != 2 {
		t.Fatalf("unexpected facts: %+v", info)
	}
	if info.Parameters < 200_000 || info.Parameters > 400_000 || info.Layers <= 0 || info.Embedding <= 0 || info.SizeBytes == 0 {
		t.Fatalf("unexpected sizes: %+v", info)
	}
	if eog := m.EOGTokens(); !slices.Contains(eog, info.EOS) {
		t.Fatalf("EOGTokens %v lacks EOS %d", eog, info.EOS)
	}
	if info.ChatTemplate != "" || info.ChatSupported {
		t.Fatalf("stories260K has no chat template, got %q", info.ChatTemplate)
	}
	if len(progress) == 0 || progress[len(progress)-1] != 1 {
		t.Fatalf("progress callback not called to completion: %v", progress)
	}
	// The raw pointer handed to the ollama wrapper must be the model: both
	// paths read the same embedding width.
	if m.m.NEmbd() != info.Embedding {
		t.Fatalf("wrapper sees n_embd %d, engine %d", m.m.NEmbd(), info.Embedding)
	}
}

func TestLoadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Load(ctx, testmodel.Path(t), LoadOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want cancellation error, got %v", err)
	}
	// Cancelled from the progress callback, after llama.cpp started.
	ctx, cancel = context.WithCancel(context.Background())
	_, err = Load(ctx, testmodel.Path(t), LoadOptions{Progress: func(float32) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want cancellation error from callback, got %v", err)
	}
}

func TestLoadBadFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"text", "not a GGUF", []byte("hello, this is not a model at all")},
		{"empty", "not a GGUF", nil},
		{"badversion", "version", append([]byte("GGUF\x09\x00\x00\x00"), good[8:64]...)},
		{"truncated", "truncated", good[:len(good)/2]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".gguf")
			os.WriteFile(p, c.data, 0o644)
			_, err := Load(context.Background(), p, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %v", c.want, err)
			}
		})
	}
	if _, err := Load(context.Background(), filepath.Join(dir, "missing.gguf"), LoadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// greedy decodes n tokens after prompt in sequence 0.
func greedy(t *testing.T, m *Model, c *Context, prompt string, n int) string {
	t.Helper()
	toks, err := m.Tokenize(prompt, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSampler(SamplingParams{Temperature: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := promptBatch(t, toks, 512)
	var out strings.Builder
	var ts TextStream
	pos := len(toks)
	for range n {
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sample(c, b.Len()-1)
		if err != nil {
			t.Fatal(err)
		}
		if m.IsEOG(tok) {
			break
		}
		out.WriteString(ts.Push(m.Piece(tok)))
		b.Clear()
		b.Add(tok, pos, 0, true)
		pos++
	}
	return out.String()
}

func TestGreedyGolden(t *testing.T) {
	m := loadTiny(t)
	c := newContext(t, m, ContextOptions{SlotContext: 256, Slots: 1})
	got := greedy(t, m, c, testmodel.GoldenPrompt, 40)
	want, ok := testmodel.Golden[runtime.GOARCH]
	if !ok {
		t.Skipf("no golden text for %s", runtime.GOARCH)
	}
	if !strings.HasPrefix(got, want) {
		t.Fatalf("greedy continuation differs from llama.cpp's:\n got %q\nwant %q…", got, want)
	}
	// Same result after lowering the thread count.
	c.SetThreads(1)
	c.RemoveFrom(0, 0)
	if again := greedy(t, m, c, testmodel.GoldenPrompt, 40); again != got {
		t.Fatalf("1 thread gives %q, want %q", again, got)
	}
	if c.Threads() != 1 {
		t.Fatal("thread count not recorded")
	}
}

// TestBan: a banned token is never sampled, even when greedy would pick it.
func TestBan(t *testing.T) {
	m := loadTiny(t)
	c := newContext(t, m, ContextOptions{SlotContext: 64, Slots: 1, Threads: 1})
	toks, _ := m.Tokenize(testmodel.GoldenPrompt, true)
	b := promptBatch(t, toks, 64)
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	sample := func() int {
		s, _ := m.NewSampler(SamplingParams{Temperature: 0})
		defer s.Close()
		tok, err := s.Sample(c, b.Len()-1)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	best := sample()
	c.Ban(b.Len()-1, []int{best})
	if next := sample(); next == best {
		t.Fatalf("banned token %d sampled again", best)
	}
}

func TestChatTemplate(t *testing.T) {
	m := loadTiny(t)
	if _, err := m.ApplyChatTemplate([]Message{{Role: "user", Content: "hi"}}, true); !errors.Is(err, ErrNoChatTemplate) {
		t.Fatalf("want ErrNoChatTemplate, got %v", err)
	}
	got, err := applyTemplate("{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}",
		[]Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Fatalf("ChatML:\n got %q\nwant %q", got, want)
	}
	if _, err := applyTemplate("{{ nonsense only }}", []Message{{Role: "user", Content: "x"}}, true); !errors.Is(err, ErrNoChatTemplate) {
		t.Fatalf("unknown template: %v", err)
	}
}

func TestSamplerGrammar(t *testing.T) {
	m := loadTiny(t)
	if _, err := m.NewSampler(SamplingParams{Grammar: "root ::= ("}); !errors.Is(err, ErrInvalidGrammar) {
		t.Fatalf("bad grammar: %v", err)
	}
	if _, err := m.NewSampler(SamplingParams{JSONSchema: "{not json"}); !errors.Is(err, ErrInvalidGrammar) {
		t.Fatalf("bad schema: %v", err)
	}
	if _, err := m.NewSampler(SamplingParams{TopP: 3}); err == nil {
		t.Fatal("top_p 3 accepted")
	}
	c := newContext(t, m, ContextOptions{SlotContext: 128, Slots: 1})
	s, err := m.NewSampler(SamplingParams{Temperature: 0.8, TopK: 40, TopP: 0.95, Grammar: `root ::= ("yes" | "no") "."`})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	toks, _ := m.Tokenize("Is it", true)
	b := promptBatch(t, toks, 64)
	var out strings.Builder
	pos := len(toks)
	for range 10 {
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sample(c, b.Len()-1)
		if err != nil {
			t.Fatal(err)
		}
		if m.IsEOG(tok) {
			break
		}
		out.WriteString(m.Piece(tok))
		b.Clear()
		b.Add(tok, pos, 0, true)
		pos++
	}
	if got := out.String(); got != "yes." && got != "no." {
		t.Fatalf("grammar not enforced: %q", got)
	}
	schema, err := SchemaToGrammar(`{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}`)
	if err != nil || !strings.Contains(schema, "root") {
		t.Fatalf("schema to grammar: %v %q", err, schema)
	}
}

func TestEmbed(t *testing.T) {
	m := loadTiny(t)
	c := newContext(t, m, ContextOptions{SlotContext: 128, Slots: 2})
	a, _ := m.Tokenize("the cat sat on the mat", true)
	b, _ := m.Tokenize("a dog ran in the park", true)
	ea, err := c.Embed(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	ea2, _ := c.Embed(a, 1)
	eb, _ := c.Embed(b, 1)
	if len(ea) != m.Info().Embedding {
		t.Fatalf("embedding width %d", len(ea))
	}
	var norm, same, diff float64
	for i := range ea {
		norm += float64(ea[i] * ea[i])
		same += float64(ea[i] * ea2[i])
		diff += float64(ea[i] * eb[i])
	}
	if norm < 0.99 || norm > 1.01 || same < 0.999 || diff > 0.9999 {
		t.Fatalf("norm %v, self-similarity %v, other %v", norm, same, diff)
	}
	// Generation still works after an embedding (embeddings are off again).
	if got := greedy(t, m, c, testmodel.GoldenPrompt, 5); got == "" {
		t.Fatal("no generation after embedding")
	}
}

// TestGrammarDeadEnds: a grammar that no token can continue, and a whole
// grammar whose only continuation, end-of-generation, is banned, make
// Sample return an error; llama.cpp would abort the process instead.
func TestGrammarDeadEnds(t *testing.T) {
	m := loadTiny(t)
	c := newContext(t, m, ContextOptions{SlotContext: 128, Slots: 1, Threads: 1})
	toks, _ := m.Tokenize("Once upon", true)
	tests := []struct {
		name   string
		params SamplingParams
		ban    bool  // ignore_eos
		ok     int   // tokens sampled before the dead end
		want   error // at the dead end
	}{
		{"NUL, which no token holds", SamplingParams{Grammar: `root ::= "\x00"`}, false, 0, ErrGrammarStuck},
		{"NUL after a letter", SamplingParams{Grammar: `root ::= "a" [\x00]`}, false, 1, ErrGrammarStuck},
		{"contradicting schema", SamplingParams{JSONSchema: `{"type": "integer", "minimum": 5, "maximum": 1}`}, false, 0, ErrGrammarStuck},
		{"whole, end banned", SamplingParams{Grammar: `root ::= "a"`}, true, 1, ErrGrammarComplete},
		{"empty, end banned", SamplingParams{Grammar: `root ::= ""`}, true, 0, ErrGrammarComplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := m.NewSampler(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c.RemoveFrom(0, 0) // the one slot starts empty for each case
			b := promptBatch(t, toks, 64)
			pos := len(toks)
			for n := 0; ; n++ {
				if err := c.Decode(b); err != nil {
					t.Fatal(err)
				}
				if tc.ban {
					c.Ban(b.Len()-1, m.EOGTokens())
				}
				tok, err := s.Sample(c, b.Len()-1)
				if n == tc.ok {
					if !errors.Is(err, tc.want) {
						t.Fatalf("after %d tokens: token %d, %v; want %v", n, tok, err, tc.want)
					}
					return
				}
				if err != nil {
					t.Fatalf("token %d: %v", n, err)
				}
				b.Clear()
				b.Add(tok, pos, 0, true)
				pos++
			}
		})
	}
	if !errors.Is(ErrGrammarStuck, ErrInvalidGrammar) {
		t.Error("ErrGrammarStuck is not an ErrInvalidGrammar")
	}
}

// TestSaveLoadSequence saves a sequence and loads it into another: the
// restored KV gives the same logits and the token list comes back whole,
// image rows (negative numbers wider than 32 bits) included. Files of
// llama.cpp's own format (version 1) still load; any other version, a
// file cut short or garbage is refused and leaves the sequence empty.
func TestSaveLoadSequence(t *testing.T) {
	m := loadTiny(t)
	c := newContext(t, m, ContextOptions{SlotContext: 128, Slots: 2})
	toks, _ := m.Tokenize(testmodel.GoldenPrompt, true)
	b := promptBatch(t, toks, 64)
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), c.Logits(b.Len()-1)...)
	// The list saved beside the KV: what a slot holding an image has.
	rows := append([]int(nil), toks...)
	rows[1] = -(1 + (0xabcdef0123<<16 | 5))
	dir := t.TempDir()
	good := filepath.Join(dir, "v2.state")
	if err := c.SaveSequence(good, 0, rows); err != nil {
		t.Fatal(err)
	}
	v1 := filepath.Join(dir, "v1.state")
	if err := c.saveLlamaSequence(v1, 0, toks); err != nil {
		t.Fatal(err)
	}
	if err := c.saveLlamaSequence(filepath.Join(dir, "x"), 0, rows); err == nil {
		t.Fatal("an image row was written into a version 1 file")
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v9 := append([]byte(nil), raw...)
	v9[4] = 9
	cases := []struct {
		name, path string
		want       []int
		err        string
	}{
		{"version 2 with image rows", good, rows, ""},
		{"version 1 (llama.cpp's file)", v1, toks, ""},
		{"unknown version", write("v9.state", v9), nil, "unknown state file version 9"},
		{"cut short", write("short.state", raw[:len(raw)-10]), nil, "file holds"},
		{"tokens cut short", write("tokens.state", raw[:20]), nil, "cut short"},
		{"garbage", write("garbage.state", []byte("garbage!!")), nil, "not a state file"},
		{"empty", write("empty.state", nil), nil, "not a state file"},
		{"missing", filepath.Join(dir, "nope.state"), nil, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.RemoveFrom(1, 0)
			got, err := c.LoadSequence(tc.path, 1)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				if c.seqPosMax(1) > 0 {
					t.Fatal("a refused file left KV in the sequence")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("restored tokens %v, want %v", got, tc.want)
			}
			// Decoding the last token again on the restored sequence 1
			// (after dropping it) must give the same logits as the original.
			c.RemoveFrom(1, len(toks)-1)
			b.Clear()
			b.Add(toks[len(toks)-1], len(toks)-1, 1, true)
			if err := c.Decode(b); err != nil {
				t.Fatal(err)
			}
			l := c.Logits(0)
			for i := range want {
				if d := l[i] - want[i]; d > 1e-3 || d < -1e-3 {
					t.Fatalf("logit %d: restored %v, original %v", i, l[i], want[i])
				}
			}
		})
	}
}

func TestTextStream(t *testing.T) {
	cases := []struct {
		pieces []string
		want   []string
	}{
		{[]string{"ab", "c"}, []string{"ab", "c"}},
		{[]string{"\xe2", "\x82", "\xac!"}, []string{"", "", "€!"}},
		{[]string{"x\xf0\x9f", "\x98\x80"}, []string{"x", "😀"}},
		{[]string{"\xff"}, []string{"\xff"}},
	}
	for _, c := range cases {
		var s TextStream
		for i, p := range c.pieces {
			if got := s.Push(p); got != c.want[i] {
				t.Errorf("%q: push %d got %q want %q", c.pieces, i, got, c.want[i])
			}
		}
		if rest := s.Flush(); rest != "" {
			t.Errorf("%q: leftover %q", c.pieces, rest)
		}
	}
	var s TextStream
	s.Push("\xe2\x82")
	if got := s.Flush(); got != "\uFFFD" && got != "\uFFFD\uFFFD" {
		t.Fatalf("flush of incomplete char: %q", got)
	}
}

// TestLoadCheckedVersion: a file of the version named in Checked is not
// parsed again (its header was checked by the caller), and any other
// version is. A file whose tensor data is cut short shows which: the Go
// check names the truncation, llama.cpp's own load fails otherwise.
func TestLoadCheckedVersion(t *testing.T) {
	good, err := os.ReadFile(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cut.gguf")
	if err := os.WriteFile(p, good[:len(good)-4096], 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		checked *FileVersion
		goCheck bool // the Go check ran and refused the file
	}{
		{"no version", nil, true},
		{"this version", &FileVersion{Size: fi.Size(), ModTime: fi.ModTime()}, false},
		{"another size", &FileVersion{Size: fi.Size() + 1, ModTime: fi.ModTime()}, true},
		{"another time", &FileVersion{Size: fi.Size(), ModTime: fi.ModTime().Add(time.Second)}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(context.Background(), p, LoadOptions{Checked: c.checked})
			if err == nil {
				t.Fatal("a cut file loaded")
			}
			if got := errors.Is(err, gguf.ErrTruncated); got != c.goCheck {
				t.Fatalf("Go check refused it: %v, want %v (%v)", got, c.goCheck, err)
			}
		})
	}
}
