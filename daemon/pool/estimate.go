package pool

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// DefaultRunnerOverhead is the memory of a runner process beyond its
// model's weights, KV cache and compute buffers (Go runtime, llama.cpp
// code, scheduler state) until a real runner has been measured. A runner
// of this tree on amd64 measures about 24 MiB beyond its model.
const DefaultRunnerOverhead = 32 << 20

// Estimate is a model's memory estimate in bytes, from its GGUF header.
type Estimate struct {
	Weights uint64 `json:"weights"`
	KV      uint64 `json:"kv"`
	// KVType is the KV cache's element type (the model's kv_cache) and
	// KVPerToken the bytes one token takes in it, all layers, K and V.
	KVType     string `json:"kv_type"`
	KVPerToken uint64 `json:"kv_per_token"`
	Compute    uint64 `json:"compute"`
	// Draft is the speculative draft model's weights, KV cache and
	// compute buffers (speculative.go); 0 without one.
	Draft uint64 `json:"draft,omitempty"`
	// Projector is the multimodal projector's weights and compute buffer
	// (from its header; vision.go); 0 without one.
	Projector uint64 `json:"projector,omitempty"`
	Overhead  uint64 `json:"overhead"`
	Total     uint64 `json:"total"`
}

// estimateBatch is the runner's decode batch (its -batch default).
const estimateBatch = 512

// EstimateParams estimates the memory of a runner for m with the given
// hyperparameters and runner overhead. See the package documentation for
// the formula.
//
// The arithmetic saturates at the largest uint64: a GGUF header may claim
// absurd sizes (2^40 layers, 2^32 heads), and a product that wrapped
// around would make such a model look small enough to load.
func EstimateParams(p gguf.Params, m config.Model, overhead uint64) Estimate {
	ctx := bytesize.MulSat(uint64(max(m.Context, 1)), uint64(max(m.Parallel, 1)))
	batch := min(uint64(estimateBatch), ctx)
	kvType := m.KVCache
	if kvType == "" {
		kvType = gguf.KVCacheF16
	}
	perToken := gguf.KVCacheTokenBytes(p, kvType)
	e := Estimate{
		Weights:    p.TensorBytes,
		KV:         bytesize.MulSat(kvCells(ctx, m.FlashAttention), perToken),
		KVType:     kvType,
		KVPerToken: perToken,
		Compute:    bytesize.AddSat(bytesize.MulSat(bytesize.MulSat(4, p.VocabSize), batch), bytesize.MulSat(bytesize.MulSat(4, batch), bytesize.AddSat(p.EmbeddingLength, p.FeedForwardLength))),
		Overhead:   overhead,
	}
	e.Draft = draftEstimate(m)
	e.Total = bytesize.AddSat(bytesize.AddSat(e.Weights, e.KV), bytesize.AddSat(e.Compute, e.Overhead))
	e.Total = bytesize.AddSat(e.Total, e.Draft)
	e.Projector = projectorEstimate(m)
	e.Total = bytesize.AddSat(e.Total, e.Projector)
	return e
}

// kvCells is the number of cells llama.cpp allocates for a context of ctx
// tokens: rounded up to its padding (256 with flash attention, else 32).
func kvCells(ctx uint64, flashAttention bool) uint64 {
	pad := gguf.KVCachePadding(flashAttention)
	if ctx > math.MaxUint64-pad {
		return math.MaxUint64
	}
	return (ctx + pad - 1) / pad * pad
}

// checkedHeaders remembers, per model path, the version (size and
// modification time) of the file whose GGUF header passed the runner's
// own check (gguf.Open and Validate, engine.CheckFile): a load of that
// version tells its runner not to parse the header again. It holds facts
// about files, not about a pool, so every pool of the process shares it.
var checkedHeaders sync.Map // path → runner.FileVersion

// checkedVersion is the version of path whose header was checked, if any.
func checkedVersion(path string) runner.FileVersion {
	if v, ok := checkedHeaders.Load(path); ok {
		return v.(runner.FileVersion)
	}
	return runner.FileVersion{}
}

// estimateFile reads the GGUF header of m's file. Without a readable
// header the estimate is the file size plus overhead, and the error says why
// (the runner will report the real load error).
func estimateFile(m config.Model) (gguf.Params, error) {
	before, serr := os.Stat(m.Path)
	f, err := gguf.Open(m.Path)
	if err != nil {
		return gguf.Params{TensorBytes: uint64(max(m.FileSize, 0))}, &headerError{path: m.Path, err: err}
	}
	if serr == nil && f.Validate() == nil {
		if after, err := os.Stat(m.Path); err == nil && after.Size() == before.Size() && after.ModTime().Equal(before.ModTime()) {
			checkedHeaders.Store(m.Path, runner.FileVersion{Size: after.Size(), ModTime: after.ModTime()})
		}
	}
	p, err := f.Params()
	if err != nil {
		return gguf.Params{TensorBytes: max(f.TensorBytes(), uint64(max(m.FileSize, 0)))}, fmt.Errorf("gguf %s: %w", m.Path, err)
	}
	return p, nil
}

// warnHeader logs what a model file's unusable header means: an unreadable
// one (headerError) fails the model's loads; metadata the estimate does not
// find leaves the estimate to the file size.
func (p *Pool) warnHeader(name string, err error) {
	var he *headerError
	if errors.As(err, &he) {
		p.log.Warn("model GGUF header unreadable; its loads fail until the file is fixed", "model", name, "err", err)
		return
	}
	p.log.Warn("model GGUF metadata incomplete; estimating its memory from the file size", "model", name, "err", err)
}
