package config

import "github.com/hashicorp/hcl/v2"

// GPU is the gpu block: where the runners find ggml backend libraries.
type GPU struct {
	// BackendsDir holds the backend libraries (libggml-cuda.so and the
	// libggml-base.so it needs) each runner loads at start. A missing
	// directory means CPU only.
	BackendsDir string `json:"backends_dir"`
}

// GPULayersAuto is gpu_layers left out: as many layers as fit the GPU
// devices the runner finds, none without one.
const GPULayersAuto = -2

// DefaultBackendsDir is where the jetai-cuda package installs the backend.
const DefaultBackendsDir = "/usr/lib/jetai/backends"

type gpuBlock struct {
	BackendsDir *string   `hcl:"backends_dir,optional"`
	Body        hcl.Body  `hcl:",body"`
	DefRange    hcl.Range `hcl:",def_range"`
}

func (d *decoder) gpu(g *GPU, b *gpuBlock) {
	if b == nil {
		b = &gpuBlock{}
	}
	g.BackendsDir = DefaultBackendsDir
	if b.BackendsDir != nil {
		if *b.BackendsDir == "" {
			d.errf(valueRange(b.Body, "backends_dir", b.DefRange), "gpu backends_dir must not be empty (leave it out for %s)", DefaultBackendsDir)
			return
		}
		g.BackendsDir = d.path(*b.BackendsDir)
	}
}

func (d *decoder) gpuBudget(m *Memory, b *memoryBlock) {
	if b == nil {
		return
	}
	m.GPUBudget = d.size(b.Body, b.DefRange, "gpu_budget", b.GPUBudget, 0)
	if m.GPUBudget < 0 {
		d.errf(valueRange(b.Body, "gpu_budget", b.DefRange), "memory gpu_budget must not be negative")
		m.GPUBudget = 0
	}
}
