package pool

import (
	"time"

	"github.com/jetai/jetai/daemon/cache"
)

// stageModel returns the file m's runner loads: its copy in the model
// cache (made now when missing or stale), or the configured file when the
// pool has no cache, the model opts out (cache = false), or staging fails.
// A failed stage is logged and never fails the load: the source serves.
// release marks the copy unused; call it once the runner has exited.
func (p *Pool) stageModel(m *model) (path string, release func()) {
	c := p.opts.Cache
	if c == nil || !m.cfg.Cache {
		return m.cfg.Path, func() {}
	}
	start := time.Now()
	h, err := c.Stage(p.ctx, m.cfg.Path, nil)
	if err != nil {
		if p.ctx.Err() == nil {
			p.log.Warn("model cache: staging failed, loading from the source", "model", m.cfg.Name, "err", err)
		}
		return m.cfg.Path, func() {}
	}
	switch {
	case !h.Staged:
	case h.Hit:
		p.log.Debug("model cache: hit", "model", m.cfg.Name, "path", h.Path)
	default:
		secs := time.Since(start).Seconds()
		p.log.Info("model cache: staged", "model", m.cfg.Name, "path", h.Path, "bytes", h.Entry.Size,
			"seconds", secs, "MBps", float64(h.Entry.Size)/1e6/max(secs, 1e-9), "sha256", h.Entry.SHA256)
	}
	return h.Path, h.Release
}

// Cache returns the pool's model cache (nil without one).
func (p *Pool) Cache() *cache.Cache { return p.opts.Cache }
