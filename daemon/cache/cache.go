package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// Options configure a Cache.
type Options struct {
	// Dir is the cache directory (cache.dir); it is created when missing.
	Dir string
	// MaxSize bounds the bytes of every file the cache holds (cache.max_size);
	// 0 means no bound.
	MaxSize int64
	// StageSameDevice stages files that already live on the cache
	// directory's file system too. Off by default: a copy on the same disk
	// is no faster to load and only takes space. Tests turn it on.
	StageSameDevice bool
	Log             *slog.Logger
}

// noRoomError is ErrNoRoom: it knows how it reaches a client (Code,
// HTTPStatus), as the admin socket reads it.
type noRoomError struct{}

func (noRoomError) Error() string   { return "no room in the model cache" }
func (noRoomError) Code() string    { return "cache_full" }
func (noRoomError) HTTPStatus() int { return http.StatusInsufficientStorage }

// Errors that callers tell apart.
var (
	// ErrNoRoom: the file does not fit in max_size even after evicting every
	// file no loaded model uses, or the disk has too little free space. A
	// client gets it as 507 "cache_full".
	ErrNoRoom error = noRoomError{}
	// ErrSourceChanged: the source file changed while it was being copied.
	ErrSourceChanged = errors.New("source file changed during the copy")
	// ErrCorrupt: a cached file no longer matches its record.
	ErrCorrupt = errors.New("cached file is corrupt")
)

// Record is what the cache knows of one model file, stored beside it as
// NAME.gguf.json.
type Record struct {
	Name string `json:"name"` // file name under models/
	// Source is the file it was copied from (absolute), with that file's
	// size and modification time when it was copied.
	Source        string    `json:"source"`
	SourceSize    int64     `json:"source_size"`
	SourceModTime time.Time `json:"source_mod_time"`
	Size          int64     `json:"size"`
	// SHA256 of the copy; "" until computed (a staged copy is hashed in
	// the background once it is usable; see copyIn).
	SHA256 string `json:"sha256"`
	// Origin says how it got here: "staged", "imported" or "quantized".
	Origin   string    `json:"origin"`
	Created  time.Time `json:"created"`
	CopyMS   float64   `json:"copy_ms,omitempty"`
	LastUsed time.Time `json:"last_used"` // the record file's mtime
}

// Entry is a Record as the index shows it, with the model's path and whether
// a loaded model uses it.
type Entry struct {
	Record
	Path  string `json:"path"`
	InUse int    `json:"in_use"`
}

type entry struct {
	rec   Record
	inUse int
	// sealed: the copy is synced and its record written (see copyIn).
	sealed bool
}

type park struct {
	key      string // directory name under parked/
	size     int64
	lastUsed time.Time
}

// Cache is the cache directory's index. Safe for concurrent use.
type Cache struct {
	dir, models, parked, tmp string
	sameDev                  bool
	dev                      uint64
	log                      *slog.Logger

	bg     context.Context // ends at Close: background hashing
	stopBg context.CancelFunc
	bgWG   sync.WaitGroup

	mu      sync.Mutex
	max     int64
	entries map[string]*entry // by file name
	parks   map[string]*park  // by key
	flight  map[string]*flight
	stats   Stats // counters; the sizes are filled in by Stats
}

type flight struct {
	done chan struct{}
}

// Open opens (creating it when missing) the cache directory and rebuilds
// the index from it, removing whatever an interrupted copy left behind.
func Open(opts Options) (*Cache, error) {
	if opts.Dir == "" {
		return nil, errors.New("cache: no directory")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{
		dir: dir, models: filepath.Join(dir, "models"), parked: filepath.Join(dir, "parked"), tmp: filepath.Join(dir, "tmp"),
		sameDev: opts.StageSameDevice, log: opts.Log, max: opts.MaxSize,
		entries: map[string]*entry{}, parks: map[string]*park{}, flight: map[string]*flight{},
	}
	c.bg, c.stopBg = context.WithCancel(context.Background())
	for _, d := range []string{c.models, c.parked, c.tmp} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("cache: %s: %w", dir, err)
	}
	c.dev = uint64(st.Dev)
	if err := c.rebuild(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.evictLocked(0)
	c.mu.Unlock()
	return c, nil
}

// Close stops background hashing and waits for it. The index stays valid:
// copies not yet hashed are hashed at the next Open.
func (c *Cache) Close() {
	c.stopBg()
	c.bgWG.Wait()
}

// Flush waits until background hashing is done.
func (c *Cache) Flush() { c.bgWG.Wait() }

// sealLater syncs a staged copy to disk, computes its sha256 and then
// writes its record, in the background (unless the entry was replaced or
// removed meanwhile). Until then the copy is served from the page cache
// and a restart would discard it.
func (c *Cache) sealLater(name string, created time.Time) {
	c.bgWG.Add(1)
	go func() {
		defer c.bgWG.Done()
		path := filepath.Join(c.models, name)
		err := syncFile(path)
		sum := ""
		if err == nil {
			sum, err = hashFile(c.bg, path)
		}
		if err != nil {
			if c.bg.Err() == nil {
				c.log.Warn("cache: sealing a copy failed; it is not kept over a restart", "name", name, "err", err)
			}
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if e := c.entries[name]; e != nil && e.rec.Created.Equal(created) && !e.sealed {
			if e.rec.SHA256 != "" && e.rec.SHA256 != sum {
				c.log.Error("cache: copy changed before it was sealed; dropping it", "name", name)
				if e.inUse == 0 {
					c.removeLocked(name)
				}
				return
			}
			e.rec.SHA256 = sum
			if err := c.writeRecordLocked(e.rec); err != nil {
				c.log.Warn("cache: writing a record failed; the copy is not kept over a restart", "name", name, "err", err)
				return
			}
			e.sealed = true
		}
	}()
}

// writeRecordLocked replaces a model's record (tmp + rename).
func (c *Cache) writeRecordLocked(rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(c.tmp, rec.Name+".json-*.partial")
	if err != nil {
		return err
	}
	f.Close()
	tmp := f.Name()
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, filepath.Join(c.models, rec.Name+".json"))
}

// Dir returns the cache directory.
func (c *Cache) Dir() string { return c.dir }

// ModelsDir returns the directory of cached model files.
func (c *Cache) ModelsDir() string { return c.models }

// rebuild reads the directory into the index.
func (c *Cache) rebuild() error {
	tmps, err := os.ReadDir(c.tmp)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, t := range tmps {
		p := filepath.Join(c.tmp, t.Name())
		c.log.Info("cache: removing an interrupted copy", "path", p)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("cache: remove %s: %w", p, err)
		}
	}
	files, err := os.ReadDir(c.models)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	have := map[string]os.FileInfo{}
	for _, f := range files {
		if info, err := f.Info(); err == nil && info.Mode().IsRegular() {
			have[f.Name()] = info
		}
	}
	for name, info := range have {
		if strings.HasSuffix(name, ".json") {
			continue
		}
		meta := filepath.Join(c.models, name+".json")
		rec, err := readRecord(meta)
		switch {
		case err != nil:
			c.log.Warn("cache: removing a model file without a usable record", "path", filepath.Join(c.models, name), "err", err)
		case rec.Name != name || rec.Size != info.Size():
			c.log.Warn("cache: removing a model file that does not match its record", "path", filepath.Join(c.models, name), "size", info.Size(), "recorded", rec.Size)
		default:
			c.entries[name] = &entry{rec: rec, sealed: rec.SHA256 != ""}
			if rec.SHA256 == "" { // a record of an earlier version, without the hash
				c.sealLater(name, rec.Created)
			}
			continue
		}
		os.Remove(filepath.Join(c.models, name))
		os.Remove(meta)
	}
	for name := range have {
		if base, ok := strings.CutSuffix(name, ".json"); ok && c.entries[base] == nil {
			os.Remove(filepath.Join(c.models, name))
		}
	}
	parks, err := os.ReadDir(c.parked)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, d := range parks {
		p := filepath.Join(c.parked, d.Name())
		m, err := readManifest(p)
		if err != nil || !d.IsDir() {
			c.log.Warn("cache: removing unusable parked state", "path", p, "err", err)
			os.RemoveAll(p)
			continue
		}
		c.parks[d.Name()] = &park{key: d.Name(), size: dirSize(p), lastUsed: m.modTime}
	}
	return nil
}

func readRecord(path string) (Record, error) {
	var rec Record
	st, err := os.Stat(path)
	if err != nil {
		return rec, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", path, err)
	}
	if rec.Name == "" {
		return rec, fmt.Errorf("%s: incomplete record", path)
	}
	rec.LastUsed = st.ModTime()
	return rec, nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// SetMaxSize changes the bound (a live config change) and evicts what no
// longer fits.
func (c *Cache) SetMaxSize(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max = n
	c.evictLocked(0)
}

// MaxSize returns the bound; 0 is none.
func (c *Cache) MaxSize() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

// Used returns the bytes of every file in the index.
func (c *Cache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.usedLocked()
}

func (c *Cache) usedLocked() int64 {
	var n int64
	for _, e := range c.entries {
		n += e.rec.Size
	}
	for _, p := range c.parks {
		n += p.size
	}
	return n
}

// Entries lists the cached model files, most recently used first.
func (c *Cache) Entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Entry, 0, len(c.entries))
	for name, e := range c.entries {
		out = append(out, Entry{Record: e.rec, Path: filepath.Join(c.models, name), InUse: e.inUse})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out
}

// Lookup returns the entry of a cached file by name.
func (c *Cache) Lookup(name string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	if !ok {
		return Entry{}, false
	}
	return Entry{Record: e.rec, Path: filepath.Join(c.models, name), InUse: e.inUse}, true
}

// lruItem is one evictable thing.
type lruItem struct {
	last  time.Time
	size  int64
	evict func()
	what  string
}

// evictLocked removes least recently used files no loaded model uses (and
// parked state) until need more bytes fit under max. It reports whether
// they do.
func (c *Cache) evictLocked(need int64) bool {
	if c.max <= 0 {
		return true
	}
	used := c.usedLocked()
	if used+need <= c.max {
		return true
	}
	var items []lruItem
	for name, e := range c.entries {
		if e.inUse > 0 {
			continue
		}
		items = append(items, lruItem{last: e.rec.LastUsed, size: e.rec.Size, what: "model " + name, evict: func() {
			os.Remove(filepath.Join(c.models, name+".json"))
			os.Remove(filepath.Join(c.models, name))
			delete(c.entries, name)
			c.stats.EvictedModels++
		}})
	}
	for key, p := range c.parks {
		items = append(items, lruItem{last: p.lastUsed, size: p.size, what: "parked " + key, evict: func() {
			os.RemoveAll(filepath.Join(c.parked, key))
			delete(c.parks, key)
			c.stats.EvictedParked++
		}})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].last.Before(items[j].last) })
	for _, it := range items {
		if used+need <= c.max {
			break
		}
		c.log.Info("cache: evicting least recently used", "what", it.what, "bytes", it.size)
		it.evict()
		used -= it.size
	}
	return used+need <= c.max
}

// touchLocked marks a model file used now.
func (c *Cache) touchLocked(name string) {
	now := time.Now()
	if e := c.entries[name]; e != nil {
		e.rec.LastUsed = now
		os.Chtimes(filepath.Join(c.models, name+".json"), now, now)
	}
}

// Handle is a model file in use; Release it when the model is unloaded.
type Handle struct {
	// Path is the file to load: the cached copy, or the source itself when
	// it was not staged.
	Path string
	// Hit says the copy was already there; Staged says Path is in the cache.
	Hit, Staged bool
	Entry       Entry
	c           *Cache
	name        string
	once        sync.Once
}

// Release says the model no longer uses the file; it may be evicted.
func (h *Handle) Release() {
	if h == nil || h.c == nil {
		return
	}
	h.once.Do(func() {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		if e := h.c.entries[h.name]; e != nil {
			e.inUse--
			h.c.touchLocked(h.name)
		}
	})
}

// Progress receives the bytes copied so far and the total.
type Progress func(done, total int64)

// stageName is the cache's file name for a source: its base name and a
// hash of its absolute path, so two sources of the same base name differ.
func stageName(abs string) string {
	base := strings.TrimSuffix(filepath.Base(abs), ".gguf")
	sum := sha256.Sum256([]byte(abs))
	return sanitize(base) + "-" + hex.EncodeToString(sum[:6]) + ".gguf"
}

func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, s)
	if s == "" || s[0] == '.' {
		s = "m" + s
	}
	return s
}

// Stage returns the file to load for the model at src: its copy in the
// cache, made now when missing or stale (the source's size or modification
// time changed). The handle keeps the copy from eviction until Released.
// Files already on the cache's disk are not copied (Handle.Staged false).
// On any error nothing half-written stays behind, and the caller may load
// src itself.
func (c *Cache) Stage(ctx context.Context, src string, progress Progress) (*Handle, error) {
	h, err := c.stage(ctx, src, progress)
	c.mu.Lock()
	switch {
	case err != nil:
		c.stats.StageFailures++
	case !h.Staged: // loaded from its own path: the cache is not involved
	case h.Hit:
		c.stats.StageHits++
	default:
		c.stats.StageMisses++
		c.stats.StagedBytes += uint64(h.Entry.Size)
	}
	c.mu.Unlock()
	return h, err
}

func (c *Cache) stage(ctx context.Context, src string, progress Progress) (*Handle, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", src, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("stage %s: source unreadable: %w", src, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("stage %s: not a regular file", src)
	}
	if filepath.Dir(abs) == c.models {
		// A model imported or quantized into the cache: loaded in place,
		// and kept from eviction while in use like a staged copy.
		name := filepath.Base(abs)
		c.mu.Lock()
		defer c.mu.Unlock()
		e := c.entries[name]
		if e == nil {
			return &Handle{Path: abs}, nil
		}
		if err := c.checkLocked(name); err != nil {
			return nil, fmt.Errorf("stage %s: %w", src, err)
		}
		e.inUse++
		c.touchLocked(name)
		return &Handle{Path: abs, Hit: true, Staged: true, c: c, name: name,
			Entry: Entry{Record: e.rec, Path: abs, InUse: e.inUse}}, nil
	}
	if strings.HasPrefix(abs, c.dir+string(filepath.Separator)) {
		return &Handle{Path: abs}, nil
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && uint64(sys.Dev) == c.dev && !c.sameDev {
		return &Handle{Path: abs}, nil
	}
	name := stageName(abs)
	for {
		c.mu.Lock()
		if f := c.flight[name]; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("stage %s: %w", src, ctx.Err())
			}
		}
		if e := c.entries[name]; e != nil {
			fresh := e.rec.Source == abs && e.rec.SourceSize == st.Size() && e.rec.SourceModTime.Equal(st.ModTime())
			if fresh {
				if err := c.checkLocked(name); err == nil {
					e.inUse++
					c.touchLocked(name)
					h := &Handle{Path: filepath.Join(c.models, name), Hit: true, Staged: true, c: c, name: name,
						Entry: Entry{Record: e.rec, Path: filepath.Join(c.models, name), InUse: e.inUse}}
					c.mu.Unlock()
					return h, nil
				} else {
					c.log.Warn("cache: dropping a corrupt copy", "name", name, "err", err)
				}
			}
			if e.inUse > 0 {
				c.mu.Unlock()
				return nil, fmt.Errorf("stage %s: the cached copy %s is stale but still in use by a loaded model; loading from the source", src, name)
			}
			c.removeLocked(name)
		}
		f := &flight{done: make(chan struct{})}
		c.flight[name] = f
		c.mu.Unlock()
		rec, err := c.copyIn(ctx, abs, name, "staged", progress, false)
		c.mu.Lock()
		delete(c.flight, name)
		close(f.done)
		if err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("stage %s: %w", src, err)
		}
		e := &entry{rec: rec, inUse: 1}
		c.entries[name] = e
		c.sealLater(name, rec.Created)
		h := &Handle{Path: filepath.Join(c.models, name), Staged: true, c: c, name: name,
			Entry: Entry{Record: rec, Path: filepath.Join(c.models, name), InUse: 1}}
		c.mu.Unlock()
		return h, nil
	}
}

// checkLocked verifies a cached file against its record cheaply: its size,
// and that its GGUF header and tensor layout are sound. Verify hashes it.
func (c *Cache) checkLocked(name string) error {
	e := c.entries[name]
	p := filepath.Join(c.models, name)
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if st.Size() != e.rec.Size {
		return fmt.Errorf("%w: %s is %d bytes, recorded %d", ErrCorrupt, name, st.Size(), e.rec.Size)
	}
	f, err := gguf.Open(p)
	if err == nil {
		err = f.Validate()
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return nil
}

// Verify hashes a cached file and compares it with its recorded sha256; a
// mismatch removes the file (unless a loaded model uses it) and returns
// ErrCorrupt.
func (c *Cache) Verify(ctx context.Context, name string) error {
	c.mu.Lock()
	e := c.entries[name]
	c.mu.Unlock()
	if e == nil {
		return fmt.Errorf("verify %s: not in the cache", name)
	}
	sum, err := hashFile(ctx, filepath.Join(c.models, name))
	c.mu.Lock()
	recorded := e.rec.SHA256
	c.mu.Unlock()
	if recorded == "" {
		recorded = sum // not sealed yet: nothing to compare with
	}
	if err == nil && sum != recorded {
		err = fmt.Errorf("%w: %s has sha256 %s, recorded %s", ErrCorrupt, name, sum, recorded)
	}
	if err != nil {
		c.mu.Lock()
		if errors.Is(err, ErrCorrupt) && c.entries[name] == e && e.inUse == 0 {
			c.removeLocked(name)
		}
		c.mu.Unlock()
		return fmt.Errorf("verify %s: %w", name, err)
	}
	return nil
}

func (c *Cache) removeLocked(name string) {
	os.Remove(filepath.Join(c.models, name+".json"))
	os.Remove(filepath.Join(c.models, name))
	delete(c.entries, name)
}

// Remove deletes a cached model file that no loaded model uses.
func (c *Cache) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[name]
	if e == nil {
		return fmt.Errorf("cache: %s is not in the cache", name)
	}
	if e.inUse > 0 {
		return fmt.Errorf("cache: %s is used by a loaded model", name)
	}
	c.removeLocked(name)
	return nil
}

// reserve makes room for size more bytes (evicting), and checks the disk's
// free space; the bytes are not yet charged to the index.
func (c *Cache) reserve(size int64) error {
	c.mu.Lock()
	ok := c.evictLocked(size)
	used, max := c.usedLocked(), c.max
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s needed, %s of max_size %s used by files that loaded models use", ErrNoRoom, bytesize.IEC(uint64(size)), bytesize.IEC(uint64(used)), bytesize.IEC(uint64(max)))
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(c.dir, &fs); err == nil {
		if free := int64(fs.Bavail) * int64(fs.Bsize); free < size {
			return fmt.Errorf("%w: %s needed, the disk of %s has %s free", ErrNoRoom, bytesize.IEC(uint64(size)), c.dir, bytesize.IEC(uint64(free)))
		}
	}
	return nil
}

// add puts a complete file into the index (Import and Quantize).
func (c *Cache) add(rec Record) Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[rec.Name] = &entry{rec: rec, sealed: true}
	c.touchLocked(rec.Name)
	return Entry{Record: c.entries[rec.Name].rec, Path: filepath.Join(c.models, rec.Name)}
}
