package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
	"golang.org/x/sys/unix"
)

// The copy reads chunkSize bytes at a time and hands each chunk to a writer
// and a hasher that run side by side, so hashing costs no extra time as
// long as it is faster than the disk; copyBuffers chunks are in flight.
const (
	chunkSize   = 4 << 20
	copyBuffers = 4
)

// copyIn copies src into the cache as name: into tmp/, checked, then
// renamed into models/. The result is not yet indexed.
//
// The bytes move in the kernel (copy_file_range, as cp does) where the
// file systems allow it; where the kernel cannot copy, they pass through
// this process and are hashed on the way.
//
// With durable set (import, whose caller waits and prints the sha256) the
// copy is synced and hashed before its rename, and its record written
// after it. Without (staging, on a model's load path) the copy is renamed
// as soon as it is complete and usable at once, and sealLater syncs it,
// hashes it and only then writes its record: a record is never written for
// a copy that is not on disk, and Open removes a copy without a record, so
// a power loss before the seal costs a new copy, never a torn one.
func (c *Cache) copyIn(ctx context.Context, src, name, origin string, progress Progress, durable bool) (Record, error) {
	st0, err := os.Stat(src)
	if err != nil {
		return Record{}, fmt.Errorf("source unreadable: %w", err)
	}
	if err := c.reserve(st0.Size()); err != nil {
		return Record{}, err
	}
	in, err := os.Open(src)
	if err != nil {
		return Record{}, fmt.Errorf("source unreadable: %w", err)
	}
	defer in.Close()
	// Read ahead hard, as cp does; afterwards drop the source's pages: the
	// copy is what will be read from now on, and on an 8 GB board the page
	// cache is memory the models need.
	unix.Fadvise(int(in.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	defer unix.Fadvise(int(in.Fd()), 0, 0, unix.FADV_DONTNEED)
	tmp := filepath.Join(c.tmp, name+".partial")
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return Record{}, fmt.Errorf("cache: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	start := time.Now()
	n, err := kernelCopy(ctx, out, in, st0.Size(), progress)
	sum := ""
	if errors.Is(err, errNoKernelCopy) {
		n, sum, err = pipeCopy(ctx, out, in, st0.Size(), progress)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return Record{}, fmt.Errorf("%w: the disk of %s is full: %v", ErrNoRoom, c.dir, err)
		}
		return Record{}, err
	}
	st1, err := os.Stat(src)
	if err != nil {
		return Record{}, fmt.Errorf("source unreadable after the copy: %w", err)
	}
	if n != st0.Size() || st1.Size() != st0.Size() || !st1.ModTime().Equal(st0.ModTime()) {
		return Record{}, fmt.Errorf("%w: %d bytes at the start, %d copied, %d at the end (modified %s → %s)",
			ErrSourceChanged, st0.Size(), n, st1.Size(), st0.ModTime().Format(time.RFC3339Nano), st1.ModTime().Format(time.RFC3339Nano))
	}
	if durable {
		if err := out.Sync(); err != nil {
			return Record{}, fmt.Errorf("cache: sync %s: %w", tmp, err)
		}
	}
	if err := out.Close(); err != nil {
		return Record{}, fmt.Errorf("cache: %w", err)
	}
	copied := time.Since(start)
	if sum == "" && durable {
		if sum, err = hashFile(ctx, tmp); err != nil {
			return Record{}, fmt.Errorf("cache: hash %s: %w", tmp, err)
		}
	}
	if f, err := gguf.Open(tmp); err != nil {
		return Record{}, fmt.Errorf("not a usable GGUF model: %w", err)
	} else if err := f.Validate(); err != nil {
		return Record{}, fmt.Errorf("not a usable GGUF model: %w", err)
	}
	rec := Record{
		Name: name, Source: src, SourceSize: st0.Size(), SourceModTime: st0.ModTime(),
		Size: n, SHA256: sum, Origin: origin, Created: time.Now().UTC(),
		CopyMS: float64(copied.Microseconds()) / 1000,
	}
	if durable {
		err = c.commit(tmp, rec)
	} else {
		err = os.Rename(tmp, filepath.Join(c.models, name))
	}
	if err != nil {
		return Record{}, fmt.Errorf("cache: %w", err)
	}
	ok = true
	return rec, nil
}

// commit moves a complete, synced file from tmp/ into models/ and writes
// its record after it. The record itself is not synced, nor the directory:
// after a crash a record that is missing or torn only makes Open discard
// the copy, while the copy's own bytes were synced before its rename, so a
// record never vouches for a torn file.
func (c *Cache) commit(tmp string, rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	metaTmp := filepath.Join(c.tmp, rec.Name+".json.partial")
	if err := os.WriteFile(metaTmp, b, 0o640); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer os.Remove(metaTmp)
	final := filepath.Join(c.models, rec.Name)
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.Rename(metaTmp, final+".json"); err != nil {
		os.Remove(final)
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// kernelStep is how much one copy_file_range call moves: small enough for
// steady progress and a prompt cancel, large enough that the calls cost
// nothing (60 for a 500 MB model).
const kernelStep = 8 << 20

// errNoKernelCopy: copy_file_range cannot copy between these files.
var errNoKernelCopy = errors.New("no kernel copy")

// kernelCopy copies in to out with copy_file_range in steps of
// kernelStep bytes (so progress and ctx are seen), or returns
// errNoKernelCopy before copying anything when the kernel cannot.
func kernelCopy(ctx context.Context, out, in *os.File, total int64, progress Progress) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, kernelStep, 0)
		if err != nil {
			// EPERM: a seccomp filter (SystemCallErrorNumber=EPERM in
			// the unit) that does not know the call.
			if n == 0 && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
				errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM)) {
				return 0, errNoKernelCopy
			}
			return n, fmt.Errorf("cache: copy: %w", err)
		}
		if k == 0 {
			return n, nil
		}
		n += int64(k)
		if progress != nil {
			progress(n, total)
		}
	}
}

type chunk struct {
	b  []byte
	n  int
	wg sync.WaitGroup
}

// pipeCopy copies in to out, hashing on the way, and returns the bytes
// copied and their hex sha256. It stops at ctx's end.
func pipeCopy(ctx context.Context, out io.Writer, in io.Reader, total int64, progress Progress) (int64, string, error) {
	free := make(chan []byte, copyBuffers)
	for range copyBuffers {
		free <- make([]byte, chunkSize)
	}
	writes := make(chan *chunk, copyBuffers)
	hashes := make(chan *chunk, copyBuffers)
	h := sha256.New()
	var werr atomic.Pointer[error]
	var workers sync.WaitGroup
	workers.Add(2)
	go func() {
		defer workers.Done()
		for ch := range writes {
			if werr.Load() == nil {
				if _, err := out.Write(ch.b[:ch.n]); err != nil {
					werr.Store(&err)
				}
			}
			ch.wg.Done()
		}
	}()
	go func() {
		defer workers.Done()
		for ch := range hashes {
			h.Write(ch.b[:ch.n])
			ch.wg.Done()
		}
	}()
	var n int64
	var rerr error
	for {
		if err := ctx.Err(); err != nil {
			rerr = err
			break
		}
		if werr.Load() != nil {
			break
		}
		b := <-free
		k, err := io.ReadFull(in, b)
		if k > 0 {
			ch := &chunk{b: b, n: k}
			ch.wg.Add(2)
			writes <- ch
			hashes <- ch
			go func() { ch.wg.Wait(); free <- ch.b }()
			n += int64(k)
			if progress != nil {
				progress(n, total)
			}
		} else {
			free <- b
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			rerr = fmt.Errorf("source unreadable: %w", err)
			break
		}
	}
	close(writes)
	close(hashes)
	workers.Wait()
	if p := werr.Load(); p != nil {
		return n, "", fmt.Errorf("cache: write: %w", *p)
	}
	if rerr != nil {
		return n, "", rerr
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, chunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// Import copies the GGUF at src into the cache as NAME.gguf (name defaults
// to the source's base name), checking its layout on the way. An existing
// entry of that name is replaced unless a loaded model uses it.
func (c *Cache) Import(ctx context.Context, src, name string, progress Progress) (Entry, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}
	file := ImportName(abs, name)
	c.mu.Lock()
	if c.flight[file] != nil {
		c.mu.Unlock()
		return Entry{}, fmt.Errorf("import %s: %s is being written already", src, file)
	}
	if e := c.entries[file]; e != nil {
		if e.inUse > 0 {
			c.mu.Unlock()
			return Entry{}, fmt.Errorf("import %s: %s exists and a loaded model uses it", src, file)
		}
		c.removeLocked(file)
	}
	f := &flight{done: make(chan struct{})}
	c.flight[file] = f
	c.mu.Unlock()
	rec, err := c.copyIn(ctx, abs, file, "imported", progress, true)
	c.mu.Lock()
	delete(c.flight, file)
	close(f.done)
	c.mu.Unlock()
	if err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}
	return c.add(rec), nil
}

// ImportName is the cache file name Import and AddFile use for a model
// called name (or, when empty, named after src).
func ImportName(src, name string) string {
	if name == "" {
		name = filepath.Base(src)
	}
	name = sanitize(name)
	if filepath.Ext(name) != ".gguf" {
		name += ".gguf"
	}
	return name
}

// TempPath returns a fresh path under tmp/ for a file that another process
// writes (a quantized model); AddFile moves it into the cache. Open removes
// it if the writer never finishes.
func (c *Cache) TempPath(name string) (string, error) {
	f, err := os.CreateTemp(c.tmp, sanitize(name)+"-*.partial")
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	f.Close()
	return f.Name(), nil
}

// AddFile moves the complete file at tmp (from TempPath) into the cache as
// name, hashing it and recording src as its source.
func (c *Cache) AddFile(ctx context.Context, tmp, name, src, origin string) (Entry, error) {
	file := ImportName(src, name)
	st, err := os.Stat(tmp)
	if err != nil {
		return Entry{}, fmt.Errorf("cache: %w", err)
	}
	if gf, err := gguf.Open(tmp); err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("cache: %s is not a usable GGUF model: %w", tmp, err)
	} else if err := gf.Validate(); err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("cache: %s is not a usable GGUF model: %w", tmp, err)
	}
	// The writer (llama.cpp's quantizer) does not sync; the record must
	// not vouch for bytes that are not on disk.
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("cache: sync %s: %w", tmp, err)
	}
	sum, err := hashFile(ctx, tmp)
	if err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("cache: hash %s: %w", tmp, err)
	}
	rec := Record{Name: file, Source: src, Size: st.Size(), SHA256: sum, Origin: origin, Created: time.Now().UTC()}
	if sst, err := os.Stat(src); err == nil {
		rec.SourceSize, rec.SourceModTime = sst.Size(), sst.ModTime()
	}
	c.mu.Lock()
	if e := c.entries[file]; e != nil {
		if e.inUse > 0 {
			c.mu.Unlock()
			os.Remove(tmp)
			return Entry{}, fmt.Errorf("cache: %s exists and a loaded model uses it", file)
		}
		c.removeLocked(file)
	}
	fits := c.evictLocked(st.Size())
	c.mu.Unlock()
	if !fits {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("%w: %s does not fit max_size %s beside the files loaded models use", ErrNoRoom, bytesize.IEC(uint64(st.Size())), bytesize.IEC(uint64(c.MaxSize())))
	}
	if err := c.commit(tmp, rec); err != nil {
		os.Remove(tmp)
		return Entry{}, err
	}
	return c.add(rec), nil
}
