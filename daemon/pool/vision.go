package pool

import (
	"sync"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

type projectorKey struct {
	path string
	size config.Size
	mod  time.Time
}

// projectorHeaders caches projector headers by file identity: estimates
// run on every admission.
var projectorHeaders sync.Map // projectorKey → gguf.Projector

// projectorEstimate is the memory of m's projector in its runner: its
// weights and clip's compute buffer for one image, from its header; the
// file size when the header cannot be read (the runner reports that at
// load); 0 without a projector.
func projectorEstimate(m config.Model) uint64 {
	if m.Mmproj == "" {
		return 0
	}
	k := projectorKey{m.Mmproj, m.MmprojFileSize, m.MmprojFileModTime}
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
	return bytesize.AddSat(p.TensorBytes, p.ComputeBytes())
}
