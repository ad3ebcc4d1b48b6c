package respcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// SyncHashLimit is the largest file FileHashes hashes on the request path;
// larger ones are hashed in the background and bypass the cache until done
// (a 4 GB model takes seconds to hash on a Jetson's NVMe).
const SyncHashLimit = 64 << 20

// fileID is what says a file is still the one hashed: a changed file (a new
// download renamed into place, an edit in place) changes one of them.
type fileID struct {
	path  string
	size  int64
	mtime time.Time
	ino   uint64
	dev   uint64
}

// FileHashes memoizes the sha256 of model and adapter files by path, size,
// modification time and inode.
type FileHashes struct {
	mu      sync.Mutex
	sums    map[fileID]string
	pending map[fileID]bool
}

// NewFileHashes returns an empty memo.
func NewFileHashes() *FileHashes {
	return &FileHashes{sums: map[fileID]string{}, pending: map[fileID]bool{}}
}

func statID(path string) (fileID, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	id := fileID{path: path, size: st.Size(), mtime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id.ino, id.dev = uint64(sys.Ino), uint64(sys.Dev)
	}
	return id, nil
}

// Sum returns the hex sha256 of the file at path as it is now. ok is false
// when the sum is not known yet: a large file being hashed in the
// background (started by this call if need be), or a file that cannot be
// read.
func (h *FileHashes) Sum(path string) (sum string, ok bool) {
	id, err := statID(path)
	if err != nil {
		return "", false
	}
	h.mu.Lock()
	if s, ok := h.sums[id]; ok {
		h.mu.Unlock()
		return s, true
	}
	if id.size <= SyncHashLimit {
		// Small: hash here, even when Prime's hashing of it is under way
		// (waiting for that would cost as much).
		h.mu.Unlock()
		return h.hash(id)
	}
	if h.pending[id] {
		h.mu.Unlock()
		return "", false
	}
	h.pending[id] = true
	h.mu.Unlock()
	go h.hash(id)
	return "", false
}

// Prime starts hashing the files in the background (at start and after a
// reload), so that the first requests find their sums.
func (h *FileHashes) Prime(paths []string) {
	for _, p := range paths {
		id, err := statID(p)
		if err != nil {
			continue
		}
		h.mu.Lock()
		_, known := h.sums[id]
		busy := h.pending[id]
		if !known && !busy {
			h.pending[id] = true
		}
		h.mu.Unlock()
		if !known && !busy {
			go h.hash(id)
		}
	}
}

func (h *FileHashes) hash(id fileID) (string, bool) {
	sum, err := hashFile(context.Background(), id.path)
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, id)
	if err != nil {
		return "", false
	}
	// The file may have changed while it was read; the sum is kept only
	// for the identity it had before, and a later stat of a changed file
	// misses it.
	if now, err := statID(id.path); err != nil || now != id {
		return "", false
	}
	for old := range h.sums {
		if old.path == id.path {
			delete(h.sums, old)
		}
	}
	h.sums[id] = sum
	return sum, true
}

func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hs := sha256.New()
	if _, err := io.Copy(hs, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(hs.Sum(nil)), ctx.Err()
}
