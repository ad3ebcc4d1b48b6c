package pool

import (
	"context"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

func TestEstimateFormula(t *testing.T) {
	p := gguf.Params{BlockCount: 6, EmbeddingLength: 512, FeedForwardLength: 1536, HeadCountKV: 4, KeyLength: 64, ValueLength: 64, VocabSize: 8000, TensorBytes: 1000}
	cases := []struct {
		ctx, par int
		kv, comp uint64
	}{
		{256, 2, 512 * 6 * 512 * 2, 4*8000*512 + 4*512*2048},
		{64, 1, 64 * 6 * 512 * 2, 4*8000*64 + 4*64*2048},
	}
	for _, c := range cases {
		e := EstimateParams(p, config.Model{Context: c.ctx, Parallel: c.par}, 7)
		if e.Weights != 1000 || e.KV != c.kv || e.Compute != c.comp || e.Overhead != 7 || e.Total != 1000+c.kv+c.comp+7 {
			t.Errorf("ctx %d×%d: %+v, want kv %d compute %d", c.ctx, c.par, e, c.kv, c.comp)
		}
	}
}

// TestEstimateAgainstRunners loads generated and real models with the
// default overhead and compares estimates with the runners' RSS.
func TestEstimateAgainstRunners(t *testing.T) {
	files := map[string]string{"real": realModel(t), "tiny": testmodel.Gen(t, modelgen.Tiny()), "small": testmodel.Gen(t, modelgen.Small())}
	hcl := memBlock("2GiB", "1MiB")
	for _, n := range []string{"real", "tiny", "small"} {
		hcl += modelBlock(n, files[n], "")
	}
	p := newPool(t, hcl, func(p *Pool) { p.overhead = DefaultRunnerOverhead })
	for _, n := range []string{"real", "tiny", "small"} {
		before := state(t, p, n).Estimate
		if _, err := p.Complete(context.Background(), n, short, nil); err != nil {
			t.Fatal(err)
		}
		// The load measures the runner right after it reports ready, so a
		// fast request can finish before the first measurement lands.
		s := state(t, p, n)
		for deadline := time.Now().Add(10 * time.Second); s.MeasuredBytes == 0 && time.Now().Before(deadline); s = state(t, p, n) {
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: estimate %s (weights %s, kv %s, compute %s), measured %s, charged %s", n,
			human(before.Total), human(before.Weights), human(before.KV), human(before.Compute), human(s.MeasuredBytes), human(s.ChargedBytes))
		if s.MeasuredBytes < before.Weights || s.ChargedBytes < s.MeasuredBytes || s.ChargedBytes < before.Total {
			t.Fatalf("%s: estimate %+v measured %d charged %d", n, before, s.MeasuredBytes, s.ChargedBytes)
		}
		if before.Total > s.MeasuredBytes+64<<20 {
			t.Errorf("%s: estimate %s is far above the measured %s", n, human(before.Total), human(s.MeasuredBytes))
		}
	}
}

// TestEstimateSaturates: a GGUF header that claims absurd sizes gets an
// estimate at the largest uint64 (no model fits: 507), not a product that
// wrapped around to something small enough to load. 1024 tokens × 2^40
// layers × 2^24 KV width × 2 bytes is 2^75, which wrapped to 0.
func TestEstimateSaturates(t *testing.T) {
	const maxU = ^uint64(0)
	for _, p := range []gguf.Params{
		{BlockCount: 1 << 40, HeadCountKV: 1 << 16, KeyLength: 1 << 7, ValueLength: 1 << 7, TensorBytes: 1000},
		{BlockCount: 4, HeadCountKV: 1, KeyLength: maxU, ValueLength: 1, TensorBytes: 1000},
		{BlockCount: 4, HeadCountKV: 4, KeyLength: 64, ValueLength: 64, VocabSize: 1 << 60, TensorBytes: 1000},
		{BlockCount: 4, HeadCountKV: 4, KeyLength: 64, ValueLength: 64, EmbeddingLength: maxU, FeedForwardLength: maxU},
		{BlockCount: 4, HeadCountKV: 4, KeyLength: 64, ValueLength: 64, TensorBytes: maxU - 10},
	} {
		e := EstimateParams(p, config.Model{Context: 1024, Parallel: 1}, 7)
		if e.Total != maxU {
			t.Errorf("%+v: total %d (%+v), want the largest uint64", p, e.Total, e)
		}
	}
}
