package pool

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// gpuRunner is a fake runner whose model reports gpuBytes of GPU buffers.
type gpuRunner struct {
	*fakeRunner
	gpuBytes uint64
}

func (r gpuRunner) WaitReady(ctx context.Context) (runner.ModelInfo, error) {
	return runner.ModelInfo{Path: r.opts.Model, GPULayers: 5, LayersTotal: 5, GPUBytes: r.gpuBytes}, nil
}

func newGPUPool(t *testing.T, hcl string, unified bool, avail *atomic.Uint64, gpuBytes uint64, onStart func()) *Pool {
	t.Helper()
	f := newFakeRunners()
	return newPool(t, hcl, func(p *Pool) {
		p.opts.UnifiedMemory = unified
		p.memAvailable = func() (uint64, bool) { return avail.Load(), true }
		p.newRunner = func(o runner.Options) (Runner, error) {
			r, err := f.start(o)
			if err != nil {
				return nil, err
			}
			if onStart != nil {
				onStart()
			}
			return gpuRunner{r.(*fakeRunner), gpuBytes}, nil
		}
		p.stopGrace = time.Second
	})
}

// On unified memory a model's GPU buffers are charged to the RAM budget:
// the larger of the backend's figure and MemAvailable's fall across the
// load less the RSS.
func TestGPUUnifiedCharge(t *testing.T) {
	paths := tinyModels(t, "a", "b")
	for _, c := range []struct {
		name      string
		gpuBytes  uint64
		drop      uint64 // MemAvailable's fall while the runner starts
		wantShare uint64
	}{
		{"buffers larger than the fall", 300 << 20, 100 << 20, 300 << 20},
		{"fall larger than the buffers", 100 << 20, 500 << 20, 500<<20 - 1<<20}, // less the fake's 1 MiB RSS
	} {
		t.Run(c.name, func(t *testing.T) {
			var avail atomic.Uint64
			avail.Store(4 << 30)
			p := newGPUPool(t, memBlock("2GiB", "1MiB")+modelBlock("a", paths["a"], ""), true, &avail, c.gpuBytes,
				func() { avail.Add(^(c.drop - 1)) })
			if _, err := p.Complete(context.Background(), "a", short, nil); err != nil {
				t.Fatal(err)
			}
			// The runner is measured just after the load completes.
			waitFake(t, "a measured", func() bool { return state(t, p, "a").MeasuredBytes != 0 })
			s := state(t, p, "a")
			if s.GPUShareBytes != c.wantShare || s.GPUChargedBytes != 0 {
				t.Errorf("share %d, gpu charge %d; want share %d and nothing against gpu_budget", s.GPUShareBytes, s.GPUChargedBytes, c.wantShare)
			}
			if s.ChargedBytes < c.wantShare+1<<20 {
				t.Errorf("charged %d, want at least RSS + GPU share %d", s.ChargedBytes, c.wantShare+1<<20)
			}
		})
	}
}

// On a discrete GPU the buffers count against memory.gpu_budget, and a
// load that goes over it evicts an idle model holding GPU memory.
func TestGPUDiscreteBudget(t *testing.T) {
	paths := tinyModels(t, "a", "b")
	var avail atomic.Uint64
	avail.Store(4 << 30)
	hcl := "memory {\n  budget = \"2GiB\"\n  reserve = \"1MiB\"\n  gpu_budget = \"1GiB\"\n}\n" +
		modelBlock("a", paths["a"], "priority = 10") + modelBlock("b", paths["b"], "priority = 50")
	p := newGPUPool(t, hcl, false, &avail, 600<<20, nil)
	if _, err := p.Complete(context.Background(), "a", short, nil); err != nil {
		t.Fatal(err)
	}
	waitFake(t, "a measured", func() bool { return state(t, p, "a").MeasuredBytes != 0 })
	if s := state(t, p, "a"); s.GPUChargedBytes != 600<<20 || s.GPUShareBytes != 0 {
		t.Fatalf("a: gpu charge %d, share %d; want 600 MiB against gpu_budget", s.GPUChargedBytes, s.GPUShareBytes)
	}
	if _, err := p.Complete(context.Background(), "b", short, nil); err != nil {
		t.Fatal(err)
	}
	waitFake(t, "a evicted for GPU memory", func() bool {
		return state(t, p, "a").State == StateUnloaded && state(t, p, "b").State == StateReady
	})
	if s := state(t, p, "a"); s.Evictions != 1 {
		t.Errorf("a: %d evictions, want 1", s.Evictions)
	}
}
