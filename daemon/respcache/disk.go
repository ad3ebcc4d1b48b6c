package respcache

import (
	"container/list"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The disk tier: answers also written to a directory (cache.dir/responses),
// so that a restart does not empty the cache. One file per key, named by
// the key's hex; written to a temporary name, synced and renamed into
// place, the directory synced after, so a file under its final name is
// always complete. Bounded by its own byte limit, least recently used
// first (recency is the file's modification time, touched on each use, so
// the order survives a restart). A file that does not decode, or is past
// the TTL, is removed when met.

// diskFile is what a file holds.
type diskFile struct {
	Stored time.Time `json:"stored"`
	Answer *Answer   `json:"answer"`
}

type diskEntry struct {
	key  Key
	size int64
}

// disk is the on-disk tier; its own lock, never held with Cache.mu while
// a file is read or written.
type disk struct {
	mu    sync.Mutex
	dir   string
	max   int64
	used  int64
	lru   *list.List // front: most recent; *diskEntry
	items map[Key]*list.Element
	// writes bounds the background writes in flight; a put that finds it
	// full is skipped (the answer stays in memory).
	writes chan struct{}
	wg     sync.WaitGroup
}

// openDisk indexes dir (created if missing), removing temporaries and
// files beyond the bound (oldest first).
func openDisk(dir string, max int64) (*disk, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("response cache dir: %w", err)
	}
	d := &disk{dir: dir, max: max, lru: list.New(), items: map[Key]*list.Element{}, writes: make(chan struct{}, 4)}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("response cache dir: %w", err)
	}
	type found struct {
		key   Key
		size  int64
		mtime time.Time
	}
	var fs []found
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		k, ok := parseKeyName(name)
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		fs = append(fs, found{k, info.Size(), info.ModTime()})
	}
	// Oldest first, so PushFront leaves the newest at the front.
	sortFound := func(i, j int) bool { return fs[i].mtime.Before(fs[j].mtime) }
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && sortFound(j, j-1); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
	for _, f := range fs {
		d.items[f.key] = d.lru.PushFront(&diskEntry{key: f.key, size: f.size})
		d.used += f.size
	}
	d.shrink(0)
	return d, nil
}

func parseKeyName(name string) (Key, bool) {
	base, ok := strings.CutSuffix(name, ".json")
	var k Key
	if !ok || len(base) != 2*len(k) {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(base)); err != nil {
		return k, false
	}
	return k, true
}

func (d *disk) path(k Key) string { return filepath.Join(d.dir, hex.EncodeToString(k[:])+".json") }

// shrink removes the least recently used files until room bytes fit; the
// lock is held.
func (d *disk) shrink(room int64) {
	for d.used+room > d.max && d.lru.Len() > 0 {
		e := d.lru.Remove(d.lru.Back()).(*diskEntry)
		delete(d.items, e.key)
		d.used -= e.size
		os.Remove(d.path(e.key))
	}
}

func (d *disk) drop(k Key) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.items[k]; ok {
		e := d.lru.Remove(el).(*diskEntry)
		delete(d.items, k)
		d.used -= e.size
	}
	os.Remove(d.path(k))
}

// has reports whether k is on disk (without reading it).
func (d *disk) has(k Key) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.items[k]
	return ok
}

// get reads k's answer; nil when absent, unreadable or older than ttl
// (such a file is removed).
func (d *disk) get(k Key, ttl time.Duration, now time.Time) *Answer {
	if !d.has(k) {
		return nil
	}
	b, err := os.ReadFile(d.path(k))
	var f diskFile
	if err != nil || json.Unmarshal(b, &f) != nil || f.Answer == nil || (ttl > 0 && now.Sub(f.Stored) >= ttl) {
		d.drop(k)
		return nil
	}
	d.mu.Lock()
	if el, ok := d.items[k]; ok {
		d.lru.MoveToFront(el)
	}
	d.mu.Unlock()
	os.Chtimes(d.path(k), now, now)
	return f.Answer
}

// put writes a in the background; skipped when four writes are already
// in flight or the answer alone exceeds an eighth of the bound.
func (d *disk) put(k Key, a *Answer, now time.Time) {
	select {
	case d.writes <- struct{}{}:
	default:
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-d.writes }()
		d.write(k, a, now)
	}()
}

func (d *disk) write(k Key, a *Answer, now time.Time) error {
	b, err := json.Marshal(diskFile{Stored: now, Answer: a})
	if err != nil {
		return err
	}
	size := int64(len(b))
	if size > d.max/8 {
		return nil
	}
	final := d.path(k)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if dh, err := os.Open(d.dir); err == nil {
		dh.Sync()
		dh.Close()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.items[k]; ok {
		e := d.lru.Remove(el).(*diskEntry)
		delete(d.items, k)
		d.used -= e.size
	}
	d.shrink(size)
	d.items[k] = d.lru.PushFront(&diskEntry{key: k, size: size})
	d.used += size
	return nil
}

func (d *disk) stats() (entries int, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lru.Len(), d.used
}

// wait waits for the background writes (tests, shutdown).
func (d *disk) wait() { d.wg.Wait() }
