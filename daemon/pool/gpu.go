package pool

import "fmt"

// GPU memory. A runner reports the bytes of the backend's buffers on GPU
// devices (runner.ModelInfo.GPUBytes). Where they are charged depends on
// the machine:
//
//   - unified memory (Options.UnifiedMemory: a Jetson), the GPU's buffers
//     are RAM that does not show in the runner's RSS. The model's GPU share
//     is the larger of the backend's buffer bytes and the fall of
//     MemAvailable across the load less the runner's RSS, and it is added
//     to the RSS in the model's charge against memory.budget. The CUDA
//     driver's free-memory figure (MemFree there) is not used.
//   - a discrete GPU: the buffer bytes are the model's charge against
//     memory.gpu_budget, a budget of its own; RAM charges are unchanged.

// gpuState is a model's GPU accounting.
type gpuState struct {
	availBefore uint64 // MemAvailable when the runner was started
	availKnown  bool
	share       uint64 // unified memory: GPU bytes added to the RAM charge
	device      uint64 // discrete GPU: bytes charged to gpu_budget
}

// noteLoadStart reads MemAvailable before m's runner starts.
func (p *Pool) noteLoadStart(m *model) {
	avail, ok := p.memAvailable()
	p.mu.Lock()
	m.gpu = gpuState{availBefore: avail, availKnown: ok}
	p.mu.Unlock()
}

// gpuChargeLocked updates m's GPU accounting from its runner's report and
// the measured RSS, and returns the bytes to add to its RAM charge.
func (p *Pool) gpuChargeLocked(m *model, rss uint64) uint64 {
	if m.info == nil || m.info.GPUBytes == 0 {
		m.gpu.share, m.gpu.device = 0, 0
		return 0
	}
	if !p.opts.UnifiedMemory {
		m.gpu.device = m.info.GPUBytes
		return 0
	}
	share := m.info.GPUBytes
	if m.gpu.availKnown {
		if after, ok := p.memAvailable(); ok && after < m.gpu.availBefore {
			if drop := m.gpu.availBefore - after; drop > rss && drop-rss > share {
				share = drop - rss
			}
		}
		// Measured once, right after the load: later falls are other
		// processes'.
		m.gpu.availKnown = false
	}
	m.gpu.share = max(m.gpu.share, share)
	return m.gpu.share
}

// gpuUsedLocked sums the models' charges against memory.gpu_budget.
func (p *Pool) gpuUsedLocked() uint64 {
	var u uint64
	for _, m := range p.order {
		u += m.gpu.device
	}
	return u
}

// enforceGPULocked evicts idle models holding GPU memory (never except,
// never pinned, lowest priority and least recently used first) while a
// discrete GPU's charges add up to more than memory.gpu_budget.
func (p *Pool) enforceGPULocked(except *model) {
	budget := uint64(p.cfg.Memory.GPUBudget)
	used := p.gpuUsedLocked()
	if budget == 0 || used <= budget {
		return
	}
	for _, c := range p.idleCandidatesLocked(except) {
		if used <= budget {
			break
		}
		if c.gpu.device == 0 {
			continue
		}
		used -= c.gpu.device
		c.evictions++
		p.beginUnloadLocked(c, fmt.Sprintf("GPU memory is over memory.gpu_budget (%s of %s)", human(used+c.gpu.device), human(budget)))
	}
}
