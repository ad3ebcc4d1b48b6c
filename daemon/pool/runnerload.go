package pool

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// RunnerLoad is a loaded model's load as its runner reports it: what a
// model-aware router (the Gateway API Inference Extension's endpoint
// picker) scores a server by, besides the queue and running requests.
type RunnerLoad struct {
	Model string
	// Slots × SlotContext is the KV cache's size in cells; KVUsed is the
	// cells running requests hold.
	Slots, SlotContext, KVUsed int
	// Adapters are the LoRA adapters applied to the model (file names
	// without .gguf), in config order.
	Adapters []string
	// LoadedAt is when the runner became ready, with its adapters.
	LoadedAt time.Time
}

// KVUsage is KVUsed over the KV cache's size, in [0,1].
func (l RunnerLoad) KVUsage() float64 {
	if l.Slots <= 0 || l.SlotContext <= 0 {
		return 0
	}
	return min(1, float64(l.KVUsed)/float64(l.Slots*l.SlotContext))
}

// RunnerLoads asks each ready model's runner for its load, all at once,
// each bounded by ctx; a runner that does not answer in time is left out.
// The result is in config order.
func (p *Pool) RunnerLoads(ctx context.Context) []RunnerLoad {
	type ask struct {
		load RunnerLoad
		proc Runner
	}
	p.mu.Lock()
	var asks []ask
	for _, m := range p.order {
		if m.state != stReady || m.proc == nil {
			continue
		}
		a := ask{load: RunnerLoad{Model: m.cfg.Name, LoadedAt: m.loadedAt}, proc: m.proc}
		for _, ad := range m.cfg.Adapters {
			a.load.Adapters = append(a.load.Adapters, strings.TrimSuffix(filepath.Base(ad.Path), ".gguf"))
		}
		asks = append(asks, a)
	}
	p.mu.Unlock()
	ok := make([]bool, len(asks))
	var wg sync.WaitGroup
	for i := range asks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := asks[i].proc.Health(ctx)
			if err != nil {
				return
			}
			asks[i].load.Slots, asks[i].load.SlotContext, asks[i].load.KVUsed = h.Slots, h.SlotContext, h.KVUsed
			ok[i] = true
		}()
	}
	wg.Wait()
	var out []RunnerLoad
	for i, a := range asks {
		if ok[i] {
			out = append(out, a.load)
		}
	}
	return out
}
