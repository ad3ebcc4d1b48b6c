package pool

import (
	"fmt"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/gguf"
)

// DefaultRunnerOverhead is the memory of a runner process beyond its
// model's weights, KV cache and compute buffers (Go runtime, llama.cpp
// code, scheduler state) until a real runner has been measured. A runner
// of this tree on amd64 measures about 24 MiB beyond its model.
const DefaultRunnerOverhead = 32 << 20

// Estimate is a model's memory estimate in bytes, from its GGUF header.
type Estimate struct {
	Weights  uint64 `json:"weights"`
	KV       uint64 `json:"kv"`
	Compute  uint64 `json:"compute"`
	Overhead uint64 `json:"overhead"`
	Total    uint64 `json:"total"`
}

// estimateBatch is the runner's decode batch (its -batch default).
const estimateBatch = 512

// EstimateParams estimates the memory of a runner for m with the given
// hyperparameters and runner overhead. See the package documentation for
// the formula.
func EstimateParams(p gguf.Params, m config.Model, overhead uint64) Estimate {
	ctx := uint64(max(m.Context, 1)) * uint64(max(m.Parallel, 1))
	batch := min(uint64(estimateBatch), ctx)
	e := Estimate{
		Weights:  p.TensorBytes,
		KV:       ctx * p.BlockCount * p.KVWidth() * 2,
		Compute:  4*p.VocabSize*batch + 4*batch*(p.EmbeddingLength+p.FeedForwardLength),
		Overhead: overhead,
	}
	e.Total = e.Weights + e.KV + e.Compute + e.Overhead
	return e
}

// estimateFile reads the GGUF header of m's file. Without a readable
// header the estimate is the file size plus overhead, and the error says why
// (the runner will report the real load error).
func estimateFile(m config.Model) (gguf.Params, error) {
	f, err := gguf.Open(m.Path)
	if err != nil {
		return gguf.Params{TensorBytes: uint64(max(m.FileSize, 0))}, err
	}
	p, err := f.Params()
	if err != nil {
		return gguf.Params{TensorBytes: max(f.TensorBytes(), uint64(max(m.FileSize, 0)))}, fmt.Errorf("gguf %s: %w", m.Path, err)
	}
	return p, nil
}
