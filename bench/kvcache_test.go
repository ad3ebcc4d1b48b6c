package bench

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// TestFitContext: the fit table's context is the largest multiple of 256
// whose estimate fits, and a smaller KV type fits more.
func TestFitContext(t *testing.T) {
	p := gguf.Params{BlockCount: 15, HeadCountKV: 8, KeyLength: 64, ValueLength: 64, TensorBytes: 491 << 20, VocabSize: 32000, EmbeddingLength: 2048, FeedForwardLength: 5632}
	const budget = 1536 << 20
	prev := 0
	for _, s := range KVSettings[1:] {
		c := fitContext(p, s, 4, budget)
		est := func(c int) uint64 {
			return pool.EstimateParams(p, config.Model{Context: c, Parallel: 4, KVCache: s.Type, FlashAttention: s.Flash}, pool.DefaultRunnerOverhead).Total
		}
		if c%256 != 0 || est(c) > budget || est(c+256) <= budget {
			t.Errorf("%s: fit %d (estimate %d, next %d)", s, c, est(c), est(c+256))
		}
		if c <= prev {
			t.Errorf("%s fits %d tokens a slot, no more than the wider type's %d", s, c, prev)
		}
		prev = c
	}
}

func TestLogSoftmaxKL(t *testing.T) {
	p, best := logSoftmax([]float32{0, float32(math.Log(3))})
	if best != 1 || math.Abs(float64(p[1])-math.Log(0.75)) > 1e-6 || math.Abs(float64(p[0])-math.Log(0.25)) > 1e-6 {
		t.Fatalf("logSoftmax = %v, %d; want log 0.25, log 0.75 and 1", p, best)
	}
	q, _ := logSoftmax([]float32{0, 0})
	// KL(p || q) = 0.25 ln(0.25/0.5) + 0.75 ln(0.75/0.5)
	if d, want := klDiv(p, q), 0.25*math.Log(0.5)+0.75*math.Log(1.5); math.Abs(d-want) > 1e-6 || klDiv(p, p) != 0 {
		t.Fatalf("KL = %g, want %g", d, want)
	}
}

// TestRunKV runs the KV figures on the real tiny model (whose heads are too
// narrow for a quantized cache: refused, with the reason) and on a
// generated model whose heads take every type.
func TestRunKV(t *testing.T) {
	text := "../testdata/kvcache/stories-greedy.txt"
	var out bytes.Buffer
	rows, err := RunKV(context.Background(), KVConfig{
		Tiny: testmodel.Path(t), Large: testmodel.Gen(t, modelgen.Tiny()), Text: text, TinyTokens: 600, LargeTokens: 600,
		Budget: 1 << 30, SlotContext: 256, Streams: 2, GenTokens: 4, Threads: 1, Repeats: 1, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2*len(KVSettings) {
		t.Fatalf("%d rows:\n%s", len(rows), out.String())
	}
	for _, r := range rows {
		tiny := r.Model == "stories260K"
		quant := r.Setting.Type != "f16"
		if tiny && quant {
			if !strings.Contains(r.Err, "heads have 8") {
				t.Errorf("%s %s: err %q, want the head size refusal", r.Model, r.Setting, r.Err)
			}
			continue
		}
		if r.Err != "" || r.Decode <= 0 || r.DecodeLong <= 0 || r.Aggregate <= 0 || r.Scored != 600 || r.NLL <= 0 || math.IsNaN(r.NLL) {
			t.Errorf("%s %s: %+v", r.Model, r.Setting, r)
		}
		if tiny && r.NLL > math.Log(512) {
			t.Errorf("stories260K NLL %g of its own greedy text is above a uniform guess", r.NLL)
		}
		if r.Setting == KVSettings[0] && (r.Agree != 1 || r.KL != 0) {
			t.Errorf("%s baseline agrees with itself on %g, KL %g", r.Model, r.Agree, r.KL)
		}
		if r.KL < 0 || math.IsNaN(r.KL) {
			t.Errorf("%s %s: KL %g", r.Model, r.Setting, r.KL)
		}
	}
	if !strings.Contains(out.String(), "q4_0 +fa refused") {
		t.Errorf("output does not name the refusal:\n%s", out.String())
	}
}
