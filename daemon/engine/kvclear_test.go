package engine

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jetai/jetai/internal/testmodel"
)

func selfRSS(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestKVCacheNotTouchedAtCreation: a new context's KV cache is zeroed
// lazily, so creating a context does not make its KV memory resident
// (llama.cpp's own clear writes all of it), and a context on that memory
// still generates exactly what a small one does.
func TestKVCacheNotTouchedAtCreation(t *testing.T) {
	if os.Getenv("JETAI_EAGER_CLEAR") == "1" {
		t.Skip("JETAI_EAGER_CLEAR=1 turns lazy clearing off")
	}
	m, err := Load(context.Background(), testmodel.Path(t), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	kvBytes := func(tokens int) uint64 {
		p := m.headParams()
		return uint64(tokens) * uint64(m.info.Layers) * uint64(m.info.HeadsKV) * (p.KeyLength + p.ValueLength) * 2
	}
	const slots, slotCtx = 8, 8192
	count, _ := LazyClears()
	before := selfRSS(t)
	big, err := m.NewContext(ContextOptions{SlotContext: slotCtx, Slots: slots, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	grew := selfRSS(t) - min(before, selfRSS(t))
	kv := kvBytes(slots * slotCtx)
	if kv < 32<<20 {
		t.Fatalf("KV cache of %d bytes is too small to tell", kv)
	}
	if grew > kv/2 {
		t.Errorf("creating a context with a %d MiB KV cache made %d MiB resident", kv>>20, grew>>20)
	}
	if n, _ := LazyClears(); n <= count {
		t.Errorf("lazy clears %d → %d: the KV cache was not cleared lazily", count, n)
	}
	small, err := m.NewContext(ContextOptions{SlotContext: 128, Slots: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if a, b := greedyText(t, big, 24), greedyText(t, small, 24); a != b {
		t.Errorf("lazily cleared context generates %q, a small one %q", a, b)
	}
}

// greedyText decodes n greedy tokens after a fixed prompt in sequence 0.
func greedyText(t *testing.T, c *Context, n int) string {
	t.Helper()
	m := c.Model()
	toks, err := m.Tokenize("Once upon a time", true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBatch(64)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	var out []int
	pos := 0
	for range n {
		b.Clear()
		for i, tk := range toks {
			b.Add(tk, pos+i, 0, i == len(toks)-1)
		}
		pos += len(toks)
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		best, bestV := 0, float32(-1e30)
		for i, v := range c.Logits(b.Len() - 1) {
			if v > bestV {
				best, bestV = i, v
			}
		}
		out = append(out, best)
		toks = []int{best}
	}
	return m.Detokenize(out)
}
