package pool

import (
	"sync"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// projectorHeaders caches projector headers by file identity: estimates
// run on every admission.
var projectorHeaders sync.Map // fileKey → gguf.Projector

// projectorOverhead is what a runner with a projector holds beyond its
// weights and compute buffer: clip's own CPU backend and the buffers of an
// image being decoded and resized (a 512×512 PNG). Measured: 5.4 MiB more
// RSS than weights and compute for the generated 224-pixel projector
// (BenchmarkVisionMemory in daemon/runner).
const projectorOverhead = 6 << 20

// projectorEstimate is the memory of m's projector in its runner: its
// weights, clip's compute buffer for one image (from its header) and
// projectorOverhead; the file size when the header cannot be read (the
// runner reports that at load); 0 without a projector.
func projectorEstimate(m config.Model) uint64 {
	if m.Mmproj == "" {
		return 0
	}
	k := fileKey{m.Mmproj, m.MmprojFileSize, m.MmprojFileModTime}
	v, ok := projectorHeaders.Load(k)
	if !ok {
		p, err := gguf.ReadProjector(m.Mmproj)
		if err != nil {
			return uint64(max(m.MmprojFileSize, 0))
		}
		projectorHeaders.Store(k, p)
		v = p
	}
	p := v.(gguf.Projector)
	return bytesize.AddSat(bytesize.AddSat(p.TensorBytes, p.ComputeBytes()), projectorOverhead)
}
