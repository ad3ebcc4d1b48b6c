package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jetai/jetai/daemon/cache"
)

// sidecar is NAME.partial.json beside a partial download: what the bytes
// are meant to be, so a later pull (after a cut or a restart) resumes
// only a download of the same file.
type sidecar struct {
	URL     string    `json:"url"`
	Origin  string    `json:"origin"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Started time.Time `json:"started"`
}

func readSidecar(p string) (sidecar, error) {
	var sc sidecar
	b, err := os.ReadFile(p)
	if err != nil {
		return sc, err
	}
	err = json.Unmarshal(b, &sc)
	return sc, err
}

func writeSidecar(p string, sc sidecar) error {
	b, _ := json.MarshalIndent(sc, "", "  ")
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}

// chunkSize is one read from the network; bufs of them are in flight
// between the reader, the writer and the hasher.
const (
	chunkSize = 1 << 20
	bufs      = 4
)

// download fetches f into DIR/downloads/NAME.partial (resuming what an
// earlier attempt left), verifies its sha256, syncs it and adds it to the
// cache. A cancel leaves the partial file for a later pull; a checksum
// mismatch deletes it.
func (m *Manager) download(ctx context.Context, o Options, f File, fl *flight) (FileResult, error) {
	res := FileResult{File: f}
	dir, err := m.cfg.Store.DownloadsDir()
	if err != nil {
		return res, err
	}
	part := filepath.Join(dir, f.Name+".partial")
	side := part + ".json"
	h := sha256.New()
	var off int64
	if sc, err := readSidecar(side); err == nil && sc.SHA256 == f.SHA256 && sc.Size == f.Size {
		if st, err := os.Stat(part); err == nil && st.Size() <= f.Size {
			off = st.Size()
		}
	}
	if off > 0 {
		phase := PhaseVerify
		fl.phase.Store(&phase)
		n, err := hashPrefix(ctx, part, h, off, &fl.n)
		if err != nil {
			return res, fmt.Errorf("%s: reading the partial download: %w", f.Name, err)
		}
		off = n
		res.Resumed = off
		m.log.Info("pull: resuming", "file", f.Name, "have", off, "size", f.Size)
	} else {
		os.Remove(part)
		if err := writeSidecar(side, sidecar{URL: f.URL, Origin: f.Origin, SHA256: f.SHA256, Size: f.Size, Started: time.Now().UTC()}); err != nil {
			return res, fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	dl := PhaseDownload
	fl.phase.Store(&dl)
	out, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return res, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer out.Close()
	if err := out.Truncate(off); err != nil {
		return res, fmt.Errorf("%s: %w", f.Name, err)
	}
	if _, err := out.Seek(off, io.SeekStart); err != nil {
		return res, fmt.Errorf("%s: %w", f.Name, err)
	}
	fl.n.Store(off)
	fails := 0
	var last error
	for off < f.Size {
		before := off
		err := m.fetch(ctx, o, f, out, h, &off, &fl.n)
		res.Fetched += max(off-before, 0)
		if err == nil && off < f.Size {
			err = fmt.Errorf("the server ended the file at byte %d of %d", off, f.Size)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		var perm *Error
		if errors.As(err, &perm) {
			return res, err
		}
		if off > before {
			fails = 0
		}
		fails++
		last = err
		if fails > m.cfg.Retries {
			return res, errorf(http.StatusBadGateway, CodeUpstream, "%s: giving up after %d attempts without progress (%s of %s here; the same pull resumes): %v",
				f.Name, fails, strconv.FormatInt(off, 10), strconv.FormatInt(f.Size, 10), last)
		}
		wait := min(m.cfg.Backoff<<(fails-1), 30*time.Second)
		m.log.Warn("pull: download interrupted; resuming", "file", f.Name, "at", off, "size", f.Size, "attempt", fails, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(wait):
		}
	}
	if off > f.Size {
		return res, m.reject(part, side, errorf(http.StatusBadGateway, CodeUpstream, "%s: the server sent %d bytes, the hub declares %d; the partial file was deleted", f.Name, off, f.Size))
	}
	vp := PhaseVerify
	fl.phase.Store(&vp)
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != f.SHA256 {
		return res, m.reject(part, side, &ChecksumError{File: f.Origin, Want: f.SHA256, Got: sum})
	}
	if err := out.Sync(); err != nil {
		return res, fmt.Errorf("%s: sync: %w", f.Name, err)
	}
	if err := out.Close(); err != nil {
		return res, fmt.Errorf("%s: %w", f.Name, err)
	}
	e, err := m.cfg.Store.AddVerified(ctx, part, f.Name, f.Origin, "pulled", sum)
	if errors.Is(err, cache.ErrInUse) {
		// A newer file of a name that a loaded model uses: kept, complete
		// and verified, for the pull after the unload.
		return res, errorf(http.StatusConflict, "conflict", "%s: %v", f.Name, err)
	}
	if err != nil {
		return res, m.reject(part, side, fmt.Errorf("%s: %w", f.Name, err))
	}
	os.Remove(side)
	res.CachePath = e.Path
	return res, nil
}

// reject deletes a partial download that cannot become a cache file.
func (m *Manager) reject(part, side string, err error) error {
	os.Remove(part)
	os.Remove(side)
	m.log.Warn("pull: download rejected", "err", err)
	return err
}

// hashPrefix hashes the first n bytes of the file at p into h and returns
// how many there were.
func hashPrefix(ctx context.Context, p string, h hash.Hash, n int64, progress interface{ Store(int64) }) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		k, err := f.Read(buf[:min(int64(len(buf)), n-done)])
		h.Write(buf[:k])
		done += int64(k)
		progress.Store(done)
		if err == io.EOF {
			break
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// fetch makes one request for the bytes from *off on and writes them to
// out, hashing them; *off moves with every byte written. A server that
// ignores the Range starts the file over. An *Error is permanent.
func (m *Manager) fetch(ctx context.Context, o Options, f File, out *os.File, h hash.Hash, off *int64, progress interface{ Store(int64) }) (err error) {
	// A request silent for StallTimeout is ended, and said so.
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := m.cfg.StallTimeout
	errStalled := fmt.Errorf("no byte for %s: the link is down or the server stalled", stall)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()
	defer func() {
		if err != nil && ctx.Err() == nil && context.Cause(rctx) == errStalled {
			err = errStalled
		}
	}()
	req, err := http.NewRequestWithContext(rctx, "GET", f.URL, nil)
	if err != nil {
		return err
	}
	if *off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", *off))
	}
	if f.auth {
		m.authorize(req, o)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr := resp.Header.Get("Content-Range")
		if !strings.HasPrefix(cr, fmt.Sprintf("bytes %d-", *off)) {
			return fmt.Errorf("asked for bytes from %d, got Content-Range %q", *off, cr)
		}
	case http.StatusOK:
		if *off > 0 {
			m.log.Warn("pull: the server ignored the Range; starting the file over", "file", f.Name)
			if err := restart(out, h, off); err != nil {
				return err
			}
			progress.Store(0)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if *off == f.Size {
			return nil
		}
		if err := restart(out, h, off); err != nil {
			return err
		}
		return fmt.Errorf("the server refused the Range from byte %d; starting over", *off)
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		if f.auth {
			err := hubStatus(resp, o)
			if nf, ok := err.(*notFound); ok {
				return errorf(http.StatusNotFound, CodeNotFound, "%s: %s (it was listed a moment ago: was it removed?)", f.Origin, nf.msg)
			}
			return err
		}
		return errorf(http.StatusBadGateway, CodeUpstream, "%s: the registry answered %s", f.Origin, resp.Status)
	default:
		return fmt.Errorf("%s answered %s", req.URL.Host, resp.Status)
	}
	return copyHashed(ctx, out, h, stallReader{resp.Body, watchdog, stall}, off, progress)
}

// stallReader re-arms the watchdog at every byte that comes.
type stallReader struct {
	r     io.Reader
	t     *time.Timer
	after time.Duration
}

func (s stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.Reset(s.after)
	}
	return n, err
}

func restart(out *os.File, h hash.Hash, off *int64) error {
	if err := out.Truncate(0); err != nil {
		return err
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h.Reset()
	*off = 0
	return nil
}

// writebackStep is how many written bytes start their writeback to disk
// (sync_file_range, asynchronous): the final fsync then has little left
// to wait for, and a large download does not pile up dirty pages in the
// memory that an 8 GB board's models need.
const writebackStep = 32 << 20

// copyHashed copies body to out while a second goroutine hashes the same
// chunks, so hashing costs no time as long as it keeps up with the link.
func copyHashed(ctx context.Context, out *os.File, h hash.Hash, body io.Reader, off *int64, progress interface{ Store(int64) }) error {
	flushed := *off
	defer func() {
		if *off > flushed {
			unix.SyncFileRange(int(out.Fd()), flushed, *off-flushed, unix.SYNC_FILE_RANGE_WRITE)
		}
	}()
	free := make(chan []byte, bufs)
	for range bufs {
		free <- make([]byte, chunkSize)
	}
	type chunk struct{ b []byte }
	hashes := make(chan chunk, bufs)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for c := range hashes {
			h.Write(c.b)
			free <- c.b[:cap(c.b)]
		}
	}()
	defer func() {
		close(hashes)
		wg.Wait()
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := <-free
		k, rerr := readChunk(body, b)
		if k > 0 {
			if _, err := out.Write(b[:k]); err != nil {
				free <- b
				return fmt.Errorf("write: %w", err)
			}
			hashes <- chunk{b[:k]}
			*off += int64(k)
			progress.Store(*off)
			if *off-flushed >= writebackStep {
				// Errors (a file system without it) only lose the head start.
				unix.SyncFileRange(int(out.Fd()), flushed, *off-flushed, unix.SYNC_FILE_RANGE_WRITE)
				flushed = *off
			}
		} else {
			free <- b
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr // a cut link: net/http says io.ErrUnexpectedEOF
		}
	}
}

// readChunk fills b from r; err is r's (io.EOF at a clean end).
func readChunk(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
