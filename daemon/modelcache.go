package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/ingest"
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

// openIngest builds the import/quantize service over the cache (nil
// without one).
func openIngest(c *cache.Cache, opts Options, log *slog.Logger) *ingest.Ingester {
	if c == nil {
		return nil
	}
	g, err := ingest.New(ingest.Options{Cache: c, Command: opts.ToolCommand, Env: opts.ToolEnv})
	if err != nil {
		log.Error("import and quantize unavailable", "err", err)
		return nil
	}
	return g
}

// initModelCache opens cache.dir and the import/quantize service.
func (d *Daemon) initModelCache(cfg *config.Config) {
	d.cache = openCache(cfg, d.log)
	d.ingest = openIngest(d.cache, d.opts, d.log)
}

// applyCacheConfig applies a reloaded cache block (the reload's "model
// cache" part): max_size is live, evicting what no longer fits; a new dir
// needs a restart (config.Diff says so).
func (d *Daemon) applyCacheConfig(cfg *config.Config) {
	if d.cache != nil && d.cache.MaxSize() != int64(cfg.Cache.MaxSize) {
		d.cache.SetMaxSize(int64(cfg.Cache.MaxSize))
		d.log.Info("model cache: max_size changed", "max_size", cfg.Cache.MaxSize.String(), "used", d.cache.Used())
	}
}

// pauseQuantize pauses running quantize jobs while the thermal policy
// holds the box back (level other than normal) and resumes them after; the
// platform actuator calls it on every poll.
func (d *Daemon) pauseQuantize(hot bool) {
	if d.ingest == nil {
		return
	}
	if hot {
		d.ingest.PauseAll()
	} else {
		d.ingest.ResumeAll()
	}
}

// errNoCache answers import and quantize when cache.dir is unusable.
var errNoCache = admin.Errorf(http.StatusServiceUnavailable, admin.CodeUnavailable, "the model cache (cache.dir) is unusable; see the daemon's log")

// CacheStatus reports the model cache.
func (d *Daemon) CacheStatus() (admin.CacheStatus, error) {
	if d.cache == nil {
		return admin.CacheStatus{}, errNoCache
	}
	s := admin.CacheStatus{Dir: d.cache.Dir(), MaxSize: d.cache.MaxSize(), Used: d.cache.Used(), ParkedBytes: d.cache.ParkedBytes(),
		Files: []admin.CacheFile{}, Quantizing: []admin.QuantizeJob{}}
	for _, e := range d.cache.Entries() {
		s.Files = append(s.Files, wireCacheFile(e))
	}
	if d.ingest == nil {
		return s, nil
	}
	for _, j := range d.ingest.Jobs() {
		done, total := j.Progress()
		s.Quantizing = append(s.Quantizing, admin.QuantizeJob{Name: j.Name, Type: j.Type, Source: j.Source, Done: done, Total: total, Paused: j.Paused()})
	}
	return s, nil
}

// VerifyCache hashes every cached model file against its recorded
// sha256 (see cache.Verify).
func (d *Daemon) VerifyCache(ctx context.Context) (admin.VerifyResult, error) {
	res := admin.VerifyResult{OK: []string{}, Corrupt: []admin.CorruptFile{}}
	if d.cache == nil {
		return res, errNoCache
	}
	for _, e := range d.cache.Entries() {
		err := d.cache.Verify(ctx, e.Name)
		switch {
		case err == nil:
			res.OK = append(res.OK, e.Name)
		case ctx.Err() != nil:
			return res, ctx.Err()
		default:
			_, kept := d.cache.Lookup(e.Name)
			res.Corrupt = append(res.Corrupt, admin.CorruptFile{Name: e.Name, Error: err.Error(), Removed: !kept})
			d.log.Warn("model cache: corrupt file", "name", e.Name, "err", err, "removed", !kept)
		}
	}
	return res, nil
}

// ImportModel checks the GGUF at path (which the daemon must be able to
// read) and copies it into the cache as name; progress gets the bytes
// copied.
func (d *Daemon) ImportModel(ctx context.Context, path, name string, progress cache.Progress) (ingest.Result, error) {
	if d.ingest == nil {
		return ingest.Result{}, errNoCache
	}
	if !filepath.IsAbs(path) {
		return ingest.Result{}, admin.Errorf(http.StatusBadRequest, admin.CodeBadRequest, "import: %q: give an absolute path (the daemon does not share your working directory)", path)
	}
	res, err := d.ingest.Import(ctx, path, name, progress)
	if err == nil {
		if name == "" {
			name = strings.TrimSuffix(res.Entry.Name, ".gguf")
		}
		res.Block = d.nameTakenNote(name) + res.Block
	}
	return res, err
}

// nameTakenNote warns, above a printed model block, when its name is
// already a model or alias of the running config: pasted as it is, the
// block would make the file invalid ("defined twice").
func (d *Daemon) nameTakenNote(name string) string {
	m, ok := d.Config().Lookup(name)
	if !ok {
		return ""
	}
	return fmt.Sprintf("# NOTE: %q is already a model name or alias in the config (model %q): rename this block before pasting it\n", name, m.Name)
}

// QuantizeModel quantizes the configured model's file to typ into the
// cache as name (default MODEL-TYPE), in a low-priority child process;
// ending ctx cancels it. progress gets tensors done and total.
func (d *Daemon) QuantizeModel(ctx context.Context, model, name, typ string, progress func(done, total int)) (ingest.Result, error) {
	if d.ingest == nil {
		return ingest.Result{}, errNoCache
	}
	cfg := d.Config()
	m, ok := cfg.Lookup(model)
	if !ok {
		return ingest.Result{}, admin.Errorf(http.StatusNotFound, admin.CodeNotFound, "quantize: no model %q; configured models: %s", model, strings.Join(cfg.ModelNames(), ", "))
	}
	if name == "" {
		name = m.Name + "-" + strings.ToLower(typ)
	}
	j, err := d.ingest.Quantize(ctx, m.Path, name, typ)
	if err != nil {
		return ingest.Result{}, err
	}
	d.log.Info("quantizing", "model", m.Name, "type", typ, "as", name)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-j.Done():
			res, err := j.Wait(context.Background())
			if err != nil {
				d.log.Warn("quantize failed", "model", m.Name, "type", typ, "err", err)
			} else {
				d.log.Info("quantized", "model", m.Name, "type", typ, "path", res.Entry.Path, "bytes", res.Entry.Size)
				res.Block = d.nameTakenNote(name) + res.Block
			}
			return res, err
		case <-t.C:
			if progress != nil {
				progress(j.Progress())
			}
		}
	}
}

// The admin socket's model-file endpoints (admin.ModelFiles).
var _ admin.ModelFiles = adminBackend{}

func (b adminBackend) CacheStatus(ctx context.Context) (admin.CacheStatus, error) {
	return b.d.CacheStatus()
}

func (b adminBackend) VerifyCache(ctx context.Context) (admin.VerifyResult, error) {
	return b.d.VerifyCache(ctx)
}

func (b adminBackend) Import(ctx context.Context, req admin.ImportRequest, progress func(admin.Progress)) (admin.FileResult, error) {
	name := req.Name
	if req.Add != "" {
		// Refused before a byte is copied; AddModelDropIn checks again.
		if err := b.d.CheckAddName(req.Add); err != nil {
			return admin.FileResult{}, err
		}
		if name == "" {
			name = req.Add
		}
	}
	var last time.Time
	r, err := b.d.ImportModel(ctx, req.Path, name, func(done, total int64) {
		if done < total && time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		progress(admin.Progress{Done: done, Total: total, Unit: "bytes"})
	})
	res := wireFileResult(r)
	if err != nil || req.Add == "" {
		return res, err
	}
	dr, err := b.d.AddModelDropIn(ctx, req.Add, r.Entry.Path, req.Path, r.Entry.SHA256)
	if err != nil {
		return res, fmt.Errorf("imported %s, but: %w", r.Entry.Path, err)
	}
	res.DropIn = &dr
	return res, nil
}

func (b adminBackend) Quantize(ctx context.Context, req admin.QuantizeRequest, progress func(admin.Progress)) (admin.FileResult, error) {
	r, err := b.d.QuantizeModel(ctx, req.Model, req.Name, req.Type, func(done, total int) {
		progress(admin.Progress{Done: int64(done), Total: int64(total), Unit: "tensors"})
	})
	return wireFileResult(r), err
}
