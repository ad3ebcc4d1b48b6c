package daemon

import (
	"log/slog"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
)

// openCache opens cache.dir. A cache that cannot be opened (a missing or
// read-only disk) is logged and left out: models then load from their own
// paths and nothing is parked, but serving goes on.
func openCache(cfg *config.Config, log *slog.Logger) *cache.Cache {
	c, err := cache.Open(cache.Options{Dir: cfg.Cache.Dir, MaxSize: int64(cfg.Cache.MaxSize), Log: log})
	if err != nil {
		log.Error("model cache unusable; serving without staging or parked conversations", "dir", cfg.Cache.Dir, "err", err)
		return nil
	}
	log.Info("model cache", "dir", c.Dir(), "used", c.Used(), "max_size", cfg.Cache.MaxSize.String(), "files", len(c.Entries()))
	return c
}

// Cache is the daemon's model cache; nil when cache.dir is unusable.
func (d *Daemon) Cache() *cache.Cache { return d.cache }

// applyCacheConfig applies a reloaded cache block: max_size is live
// (evicting what no longer fits); a new dir needs a restart (config.Diff
// says so).
func (d *Daemon) applyCacheConfig(cfg *config.Config) {
	if d.cache != nil {
		d.cache.SetMaxSize(int64(cfg.Cache.MaxSize))
	}
}
