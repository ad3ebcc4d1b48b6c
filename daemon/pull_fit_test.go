package daemon

import (
	"testing"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/gguf"
)

// TestFitContext: --add's context is the trained one, halved until the
// estimate fits half of memory.budget, and never below 512.
func TestFitContext(t *testing.T) {
	// A 1B-like shape: 16 layers, 8 KV heads of 64, 800 MiB of weights.
	p := gguf.Params{Architecture: "llama", ContextLength: 131072, BlockCount: 16, EmbeddingLength: 2048, FeedForwardLength: 8192,
		HeadCount: 32, HeadCountKV: 8, KeyLength: 64, ValueLength: 64, VocabSize: 128256, TensorBytes: 800 << 20}
	for _, c := range []struct {
		budget string
		want   int
	}{
		{"64GiB", 131072}, // fits as trained
		{"6GiB", 8192},
		{"3GiB", 2048},
		{"2GiB", 512}, // weights and compute alone are over half: the floor
	} {
		b, err := config.ParseSize(c.budget)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &config.Config{Memory: config.Memory{Budget: b, KVCache: "f16"}}
		got, est, limit := fitContext(cfg, p)
		if got != c.want {
			t.Errorf("budget %s: context %d (estimate %d, limit %d), want %d", c.budget, got, est.Total, limit, c.want)
		}
		if got > 512 && est.Total > limit {
			t.Errorf("budget %s: the estimate %d is over the limit %d", c.budget, est.Total, limit)
		}
		if got < int(p.ContextLength) {
			m := config.Model{Context: got * 2, Parallel: config.DefaultParallel, KVCache: "f16"}
			if e := pool.EstimateParams(p, m, pool.DefaultRunnerOverhead); got > 512 && e.Total <= limit {
				t.Errorf("budget %s: context %d fits too (%d ≤ %d); the cap is not the largest", c.budget, got*2, e.Total, limit)
			}
		}
	}
}
