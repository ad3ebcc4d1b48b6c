package pool

import (
	"context"
	"errors"
	"fmt"
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

// TestEstimateKVFormula: the KV estimate counts each type's real bytes
// per element (f16 2, q8_0 34 per 32, q4_0 18 per 32) over llama.cpp's
// padded cells.
func TestEstimateKVFormula(t *testing.T) {
	// The 0.8B shape: 15 layers, 8 KV heads of 64.
	p := gguf.Params{BlockCount: 15, HeadCountKV: 8, KeyLength: 64, ValueLength: 64}
	cases := []struct {
		typ      string
		flash    bool
		ctx, par int
		perToken uint64
		kv       uint64
	}{
		{"f16", false, 2048, 1, 15 * 2 * 512 * 2, 2048 * 15 * 2 * 512 * 2},
		{"", false, 2048, 1, 15 * 2 * 512 * 2, 2048 * 15 * 2 * 512 * 2},
		{"q8_0", true, 2048, 1, 15 * 2 * 16 * 34, 2048 * 15 * 2 * 16 * 34},
		{"q4_0", true, 2048, 1, 15 * 2 * 16 * 18, 2048 * 15 * 2 * 16 * 18},
		{"q4_0", true, 4096, 4, 15 * 2 * 16 * 18, 16384 * 15 * 2 * 16 * 18},
		// Cells are padded: to 256 with flash attention, to 32 without.
		{"q8_0", true, 100, 3, 15 * 2 * 16 * 34, 512 * 15 * 2 * 16 * 34},
		{"f16", true, 100, 3, 15 * 2 * 512 * 2, 512 * 15 * 2 * 512 * 2},
		{"f16", false, 100, 3, 15 * 2 * 512 * 2, 320 * 15 * 2 * 512 * 2},
	}
	for _, c := range cases {
		e := EstimateParams(p, config.Model{Context: c.ctx, Parallel: c.par, KVCache: c.typ, FlashAttention: c.flash}, 0)
		want := c.typ
		if want == "" {
			want = "f16"
		}
		if e.KVType != want || e.KVPerToken != c.perToken || e.KV != c.kv || e.Total != e.KV {
			t.Errorf("%s flash=%v %d×%d: %+v, want kv %d (%d a token)", c.typ, c.flash, c.ctx, c.par, e, c.kv, c.perToken)
		}
	}
}

// TestEstimateKVTypesAgainstRunners loads the same generated model with
// each KV cache type and checks the estimate against the runner's RSS: the
// RSS falls with the type as the estimate says, and no estimate is below
// what the runner measures beyond the overhead it allows. The estimate is
// for a full cache; the runners zero theirs eagerly (JETAI_EAGER_CLEAR),
// which makes all of it resident as a full one would be, where a runner
// left to itself faults its cache in as requests fill it.
func TestEstimateKVTypesAgainstRunners(t *testing.T) {
	file := testmodel.Gen(t, modelgen.Small()) // 6 layers, 4 KV heads of 64
	types := []string{"f16", "q8_0", "q4_0"}
	hcl := memBlock("4GiB", "1MiB")
	for _, typ := range types {
		// 4 slots of 4096 tokens: 96 MiB of f16 KV, enough to see.
		hcl += fmt.Sprintf("model %q {\n  path = %q\n  context = 4096\n  parallel = 4\n  threads = 1\n  flash_attention = true\n  kv_cache = %q\n  keep_alive = \"forever\"\n}\n", typ, file, typ)
	}
	p := newPool(t, hcl, func(p *Pool) {
		p.overhead = DefaultRunnerOverhead
		p.opts.RunnerEnv = append(p.opts.RunnerEnv, "JETAI_EAGER_CLEAR=1")
	})
	est := map[string]Estimate{}
	rss := map[string]uint64{}
	for _, typ := range types {
		est[typ] = state(t, p, typ).Estimate
		if _, err := p.Complete(context.Background(), typ, short, nil); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		s := state(t, p, typ)
		for deadline := time.Now().Add(10 * time.Second); s.MeasuredBytes == 0 && time.Now().Before(deadline); s = state(t, p, typ) {
			time.Sleep(20 * time.Millisecond)
		}
		rss[typ] = s.MeasuredBytes
		e := est[typ]
		t.Logf("%s: estimate %s (kv %s, %d B a token), measured %s", typ, human(e.Total), human(e.KV), e.KVPerToken, human(s.MeasuredBytes))
		if e.KVType != typ {
			t.Errorf("%s: estimate's type %q", typ, e.KVType)
		}
		if e.Total+16<<20 < s.MeasuredBytes {
			t.Errorf("%s: estimate %s is below the measured %s by more than 16MiB", typ, human(e.Total), human(s.MeasuredBytes))
		}
		if e.Total > s.MeasuredBytes+64<<20 {
			t.Errorf("%s: estimate %s is far above the measured %s", typ, human(e.Total), human(s.MeasuredBytes))
		}
	}
	// What the smaller cache saves shows in the RSS, within 8 MiB.
	for _, typ := range types[1:] {
		saved := int64(est["f16"].KV) - int64(est[typ].KV)
		measured := int64(rss["f16"]) - int64(rss[typ])
		if d := measured - saved; d < -8<<20 || d > 8<<20 {
			t.Errorf("%s: RSS is %s below f16's, the estimate says %s", typ, human(uint64(max(measured, 0))), human(uint64(saved)))
		}
	}
}

// TestKVTypeAdmission: a budget too small for a model's f16 KV cache
// admits the same model and context with a q4_0 cache.
func TestKVTypeAdmission(t *testing.T) {
	file := testmodel.Gen(t, modelgen.Small())
	// Estimates: f16 199 MiB, q4_0 130 MiB (TestEstimateKVTypesAgainstRunners).
	hcl := memBlock("170MiB", "1MiB")
	for _, typ := range []string{"f16", "q4_0"} {
		hcl += fmt.Sprintf("model %q {\n  path = %q\n  context = 4096\n  parallel = 4\n  threads = 1\n  flash_attention = true\n  kv_cache = %q\n  keep_alive = \"forever\"\n}\n", typ, file, typ)
	}
	p := newPool(t, hcl, func(p *Pool) { p.overhead = DefaultRunnerOverhead })
	_, err := p.Complete(context.Background(), "f16", short, nil)
	var nr *NoRoomError
	if !errors.As(err, &nr) {
		t.Fatalf("f16 under a 170MiB budget: %v, want a NoRoomError", err)
	}
	if _, err := p.Complete(context.Background(), "q4_0", short, nil); err != nil {
		t.Fatalf("q4_0 under a 170MiB budget: %v", err)
	}
}
