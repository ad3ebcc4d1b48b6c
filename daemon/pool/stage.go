package pool

import (
	"path/filepath"
	"time"

	"github.com/jetai/jetai/config"
)

// stageModel returns the file a runner for mc loads: its copy in the model
// cache (made now when missing or stale), or the configured file when the
// pool has no cache, the model opts out (cache = false), or staging fails.
// A failed stage is logged and never fails the load: the source serves.
// release marks the copy unused; call it once the runner has exited.
func (p *Pool) stageModel(mc config.Model) (path string, release func()) {
	c := p.opts.Cache
	// A file inside the cache (imported, quantized) goes through Stage even
	// with cache = false: that marks it in use, so it is never evicted
	// from under its runner.
	if c == nil || (!mc.Cache && filepath.Dir(mc.Path) != c.ModelsDir()) {
		return mc.Path, func() {}
	}
	start := time.Now()
	logged := 0
	setStaging := func(frac float32) {
		p.mu.Lock()
		if m := p.models[mc.Name]; m != nil {
			m.staging = frac
		}
		p.mu.Unlock()
	}
	h, err := c.Stage(p.ctx, mc.Path, func(done, total int64) {
		frac := float32(done) / float32(max(total, 1))
		setStaging(frac)
		if pct := int(frac * 100); pct/25 > logged/25 && pct < 100 {
			logged = pct
			p.log.Info("model cache: staging", "model", mc.Name, "percent", pct)
		}
	})
	setStaging(0)
	if err != nil {
		if p.ctx.Err() == nil {
			p.log.Warn("model cache: staging failed, loading from the source", "model", mc.Name, "err", err)
		}
		return mc.Path, func() {}
	}
	switch {
	case !h.Staged:
	case h.Hit:
		p.log.Debug("model cache: hit", "model", mc.Name, "path", h.Path)
	default:
		secs := time.Since(start).Seconds()
		p.log.Info("model cache: staged", "model", mc.Name, "path", h.Path, "bytes", h.Entry.Size,
			"seconds", secs, "MBps", float64(h.Entry.Size)/1e6/max(secs, 1e-9))
	}
	return h.Path, h.Release
}
