package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// Downloads (package pull) write their partial files under DIR/downloads/,
// which Open leaves alone: a partial download is resumed, not discarded,
// after a restart. A complete one is added with AddVerified.

// ErrInUse: AddVerified would replace a file that a loaded model uses.
var ErrInUse = errors.New("a loaded model uses the cached file of that name")

// DownloadsDir returns the directory of partial downloads (created when
// missing).
func (c *Cache) DownloadsDir() (string, error) {
	d := filepath.Join(c.dir, "downloads")
	if err := os.MkdirAll(d, 0o750); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return d, nil
}

// Reserve makes room for size more bytes under max_size, evicting least
// recently used files no loaded model uses, and checks the disk's free
// space; it charges nothing. The error wraps ErrNoRoom.
func (c *Cache) Reserve(size int64) error { return c.reserve(size) }

// AddVerified moves the complete file at path (on the cache's file system,
// already synced and hashed by its writer: sum is its hex sha256) into the
// cache as name, recording src as its source. An existing entry of that
// name is replaced unless a loaded model uses it.
func (c *Cache) AddVerified(ctx context.Context, path, name, src, origin, sum string) (Entry, error) {
	file := ImportName(src, name)
	st, err := os.Stat(path)
	if err != nil {
		return Entry{}, fmt.Errorf("cache: %w", err)
	}
	if gf, err := gguf.Open(path); err != nil {
		return Entry{}, fmt.Errorf("cache: %s is not a usable GGUF file: %w", name, err)
	} else if err := gf.Validate(); err != nil {
		return Entry{}, fmt.Errorf("cache: %s is not a usable GGUF file: %w", name, err)
	}
	rec := Record{Name: file, Source: src, SourceSize: st.Size(), Size: st.Size(), SHA256: sum, Origin: origin, Created: time.Now().UTC()}
	c.mu.Lock()
	if e := c.entries[file]; e != nil {
		if e.inUse > 0 {
			c.mu.Unlock()
			return Entry{}, fmt.Errorf("cache: %s: %w; unload it and pull again (the download is kept)", file, ErrInUse)
		}
		c.removeLocked(file)
	}
	fits := c.evictLocked(st.Size())
	c.mu.Unlock()
	if !fits {
		return Entry{}, fmt.Errorf("%w: %s does not fit max_size %s beside the files loaded models use", ErrNoRoom, bytesize.IEC(uint64(st.Size())), bytesize.IEC(uint64(c.MaxSize())))
	}
	if err := c.commit(path, rec); err != nil {
		return Entry{}, err
	}
	syncDir(c.models)
	return c.add(rec), nil
}
