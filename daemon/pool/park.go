package pool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/runner"
)

// Parked conversations: when the pool unloads a model (eviction,
// keep-alive, Optimize, Unload) it first asks the runner to save the KV
// state of its most recently used idle slots into the cache; the next load
// of the same model file with the same context settings restores them
// before the model is ready, so a returning conversation's prompt is
// reused as cached tokens instead of decoded again. Close (daemon
// shutdown, e.g. for an upgrade) parks every ready model the same way,
// all at once and within closeParkTimeout and Close's deadline, so
// conversations survive a restart. Parking is skipped for models with
// cache = false and when the pool has no cache; a failure to park or
// restore is logged, never fatal.
const (
	// parkMinTokens: shorter slot caches are cheaper to recompute than to
	// save and load.
	parkMinTokens = 32
	// parkTimeout bounds saving (and restoring) one model's slots.
	parkTimeout = 30 * time.Second
	// closeParkTimeout bounds parking at Close, so that requests' drain
	// (30 s), parking and stopping the runners stay within the unit's
	// TimeoutStopSec (45 s).
	closeParkTimeout = 10 * time.Second
)

// fingerprint identifies what parked state depends on: the model file and
// the settings that shape its context. State parked under another
// fingerprint is dropped, never restored.
func fingerprint(m config.Model) string {
	s := fmt.Sprintf("path=%s size=%d mtime=%d ctx=%d parallel=%d fa=%t gpu=%d adapters=%v",
		m.Path, m.FileSize, m.FileModTime.UnixNano(), m.Context, m.Parallel, m.FlashAttention, m.GPULayers, adapterKey(m))
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// park saves proc's slots into the cache as cfg's parked state, within
// parkTimeout and ctx.
func (p *Pool) park(ctx context.Context, cfg config.Model, proc Runner) {
	c := p.opts.Cache
	if c == nil || !cfg.Cache {
		return
	}
	dir, err := c.ParkTemp(cfg.Name)
	if err != nil {
		c.CountPark(false)
		p.log.Warn("park: no directory", "model", cfg.Name, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, parkTimeout)
	defer cancel()
	start := time.Now()
	res, err := proc.Park(ctx, runner.ParkRequest{Dir: dir, MaxSlots: max(cfg.Parallel, 1), MinTokens: parkMinTokens})
	if err != nil || len(res.Slots) == 0 {
		os.RemoveAll(dir)
		if err != nil {
			c.CountPark(false)
			p.log.Warn("park: runner could not save its slots", "model", cfg.Name, "err", err)
		}
		return
	}
	man := cache.Manifest{Model: cfg.Name, Fingerprint: fingerprint(cfg), KVType: cfg.KVCache}
	tokens := 0
	for _, s := range res.Slots {
		man.Slots = append(man.Slots, cache.ParkedSlot{File: s.File, Tokens: s.Tokens})
		tokens += s.Tokens
	}
	err = c.CommitPark(dir, man)
	c.CountPark(err == nil)
	if err != nil {
		p.log.Warn("park: not kept", "model", cfg.Name, "err", err)
		return
	}
	p.log.Info("parked conversations", "model", cfg.Name, "slots", len(res.Slots), "tokens", tokens,
		"bytes", res.Bytes, "seconds", time.Since(start).Seconds())
}

// parking is a runner whose slots Close parks, with its model's config.
type parking struct {
	cfg  config.Model
	proc Runner
}

// parkAll parks the runners' conversations all at once (Close), within
// closeParkTimeout and ctx.
func (p *Pool) parkAll(ctx context.Context, runners []parking) {
	ctx, cancel := context.WithTimeout(ctx, closeParkTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.park(ctx, r.cfg, r.proc)
		}()
	}
	wg.Wait()
}

// restore loads cfg's parked state, if any was saved under the same
// fingerprint, into proc's free slots, then drops it from the cache. It
// says whether there was parked state to restore.
func (p *Pool) restore(cfg config.Model, proc Runner) bool {
	c := p.opts.Cache
	if c == nil || !cfg.Cache {
		return false
	}
	dir, man, ok := c.TakePark(cfg.Name, fingerprint(cfg))
	if !ok {
		return false
	}
	defer c.DropPark(cfg.Name)
	files := make([]string, len(man.Slots))
	for i, s := range man.Slots {
		files[i] = s.File
	}
	ctx, cancel := context.WithTimeout(p.ctx, parkTimeout)
	defer cancel()
	start := time.Now()
	// The fingerprint leaves the KV cache type out: the runner refuses state
	// of another type itself, the prompts are then evaluated again.
	res, err := proc.Restore(ctx, runner.RestoreRequest{Dir: dir, Files: files, KVType: man.KVType})
	c.CountRestore(err == nil && len(res.Failed) == 0)
	if err != nil {
		p.log.Warn("restore of parked conversations failed; they are discarded", "model", cfg.Name, "err", err)
		return true
	}
	if len(res.Failed) > 0 {
		p.log.Warn("some parked conversations did not restore and are discarded", "model", cfg.Name, "failed", res.Failed)
	}
	p.log.Info("restored parked conversations", "model", cfg.Name, "slots", res.Restored, "tokens", res.Tokens,
		"seconds", time.Since(start).Seconds())
	return true
}

// adapterKey renders m's adapters for the fingerprint.
func adapterKey(m config.Model) string {
	s := ""
	for _, a := range m.Adapters {
		s += fmt.Sprintf("[%s %g %d %d]", a.Path, a.Scale, a.FileSize, a.FileModTime.UnixNano())
	}
	return s
}
