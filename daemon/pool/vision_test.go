package pool

import (
	"path/filepath"
	"testing"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/modelgen"
)

func TestProjectorEstimate(t *testing.T) {
	dir := t.TempDir()
	proj := filepath.Join(dir, "mmproj.gguf")
	spec := modelgen.TinyProjector(64)
	if err := modelgen.GenerateProjector(proj, spec); err != nil {
		t.Fatal(err)
	}
	h, err := gguf.ReadProjector(proj)
	if err != nil {
		t.Fatal(err)
	}
	m := config.Model{Context: 256, Parallel: 1}
	base := EstimateParams(gguf.Params{TensorBytes: 1 << 20, EmbeddingLength: 64, FeedForwardLength: 172, VocabSize: 512}, m, 0)
	m.Mmproj, m.MmprojFileSize = proj, 1
	with := EstimateParams(gguf.Params{TensorBytes: 1 << 20, EmbeddingLength: 64, FeedForwardLength: 172, VocabSize: 512}, m, 0)
	if with.Projector != h.TensorBytes+h.ComputeBytes()+projectorOverhead || with.Total != base.Total+with.Projector {
		t.Fatalf("projector %d (weights %d compute %d), total %d without %d", with.Projector, h.TensorBytes, h.ComputeBytes(), with.Total, base.Total)
	}
	if h.TensorBytes == 0 || h.ComputeBytes() < uint64(spec.ImageSize*spec.ImageSize*3*4) {
		t.Fatalf("header %+v, compute %d", h, h.ComputeBytes())
	}
	// An unreadable projector is charged its file size.
	m.Mmproj, m.MmprojFileSize = filepath.Join(dir, "absent.gguf"), 12345
	if e := EstimateParams(gguf.Params{}, m, 0); e.Projector != 12345 {
		t.Fatalf("unreadable projector: %d", e.Projector)
	}
}
