package respcache

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// Outcome says how an answer was served.
type Outcome string

// Outcomes, as the X-Jetai-Cache header shows them.
const (
	Hit    Outcome = "hit"    // from the cache, or from an identical generation in flight
	Miss   Outcome = "miss"   // generated (and stored if it finished)
	Bypass Outcome = "bypass" // not looked up: not deterministic, opted out, or asked not to
)

// Answer is a stored completion: the runner's result and the text chunks
// in the order the runner sent them, so that a stream served from the
// cache has the same chunk sequence as the one that was generated.
type Answer struct {
	Result runner.Result
	Chunks []string
}

// entryOverhead approximates the bytes an entry costs besides its text:
// the map slot, the list element, the Answer and its slice headers.
const entryOverhead = 320

// chunkOverhead is a string header per chunk.
const chunkOverhead = 16

func (a *Answer) size() int64 {
	n := int64(entryOverhead + len(a.Result.Text) + len(a.Result.FinishReason))
	for _, c := range a.Chunks {
		n += int64(chunkOverhead + len(c))
	}
	return n
}

// Options configure a Cache.
type Options struct {
	// MaxBytes bounds the stored answers' accounted size; 0 stores nothing
	// (lookups miss, in-flight collapse still works).
	MaxBytes int64
	// TTL drops an answer this long after it was stored; 0 keeps it until
	// evicted.
	TTL time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Dir and DiskBytes turn on the disk tier (disk.go): answers are also
	// written under Dir, up to DiskBytes, and found there after a restart.
	Dir       string
	DiskBytes int64
}

// Stats are the cache's counters and gauges.
type Stats struct {
	Hits      uint64 `json:"hits"`
	Misses    uint64 `json:"misses"`
	Bypasses  uint64 `json:"bypasses"`
	Collapsed uint64 `json:"collapsed"` // hits that joined a generation in flight
	Evictions uint64 `json:"evictions"`
	Expired   uint64 `json:"expired"`
	Entries   int    `json:"entries"`
	Bytes     int64  `json:"bytes"`
	MaxBytes  int64  `json:"max_bytes"`
	InFlight  int    `json:"in_flight"`
	// The disk tier: hits served from it, its files and their bytes.
	DiskHits    uint64 `json:"disk_hits,omitempty"`
	DiskEntries int    `json:"disk_entries,omitempty"`
	DiskBytes   int64  `json:"disk_bytes,omitempty"`
}

type entry struct {
	key     Key
	ans     *Answer
	size    int64
	expires time.Time
}

// Cache is the response cache. It is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	max     int64
	ttl     time.Duration
	now     func() time.Time
	lru     *list.List // front: most recently used; values *entry
	items   map[Key]*list.Element
	flights map[Key]*flight
	used    int64
	st      Stats
	disk    *disk // nil: memory only
}

// New returns an empty cache. A disk tier that cannot be opened is an
// error; the cache then works from memory alone.
func New(opts Options) (*Cache, error) {
	c := &Cache{max: opts.MaxBytes, ttl: opts.TTL, now: opts.Now, lru: list.New(), items: map[Key]*list.Element{}, flights: map[Key]*flight{}}
	if c.now == nil {
		c.now = time.Now
	}
	if opts.Dir != "" && opts.DiskBytes > 0 {
		d, err := openDisk(opts.Dir, opts.DiskBytes)
		if err != nil {
			return c, err
		}
		c.disk = d
	}
	return c, nil
}

// SetDiskBytes changes the disk tier's bound (when it has one), removing
// what no longer fits.
func (c *Cache) SetDiskBytes(max int64) {
	if c.disk == nil {
		return
	}
	c.disk.mu.Lock()
	c.disk.max = max
	c.disk.shrink(0)
	c.disk.mu.Unlock()
}

// Flush waits for the disk tier's writes in flight.
func (c *Cache) Flush() {
	if c.disk != nil {
		c.disk.wait()
	}
}

// SetLimits changes the byte bound and the TTL (a reload), evicting what
// no longer fits.
func (c *Cache) SetLimits(maxBytes int64, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max, c.ttl = maxBytes, ttl
	c.shrink(0)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Entries, s.Bytes, s.MaxBytes, s.InFlight = c.lru.Len(), c.used, c.max, len(c.flights)
	if c.disk != nil {
		s.DiskEntries, s.DiskBytes = c.disk.stats()
	}
	return s
}

// Skipped counts a request that did not use the cache.
func (c *Cache) Skipped() {
	c.mu.Lock()
	c.st.Bypasses++
	c.mu.Unlock()
}

// Purge drops every stored answer.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Init()
	clear(c.items)
	c.used = 0
}

// get returns the stored answer for k; the lock is held.
func (c *Cache) get(k Key) *Answer {
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	e := el.Value.(*entry)
	if !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.remove(el)
		c.st.Expired++
		return nil
	}
	c.lru.MoveToFront(el)
	return e.ans
}

// Get returns the answer stored under k, if any (no counters change).
func (c *Cache) Get(k Key) (*Answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.get(k)
	return a, a != nil
}

// Put stores a under k. An answer larger than an eighth of the bound is
// not stored: it would evict many small ones for one.
func (c *Cache) Put(k Key, a *Answer) {
	c.mu.Lock()
	c.put(k, a)
	c.mu.Unlock()
	if c.disk != nil {
		c.disk.put(k, a, c.now())
	}
}

func (c *Cache) put(k Key, a *Answer) {
	size := a.size()
	if c.max <= 0 || size > c.max/8 {
		return
	}
	if el, ok := c.items[k]; ok {
		c.remove(el)
	}
	c.shrink(size)
	e := &entry{key: k, ans: a, size: size}
	if c.ttl > 0 {
		e.expires = c.now().Add(c.ttl)
	}
	c.items[k] = c.lru.PushFront(e)
	c.used += size
}

// shrink evicts from the back until room more bytes fit.
func (c *Cache) shrink(room int64) {
	for c.used+room > c.max && c.lru.Len() > 0 {
		c.remove(c.lru.Back())
		c.st.Evictions++
	}
}

func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.items, e.key)
	c.used -= e.size
}

// Generate runs one completion; onText receives its text as it is made.
type Generate func(ctx context.Context, onText func(string)) (runner.Result, error)

// cacheable finishes are the ones a repeat would reproduce: not cancelled,
// not failed.
func cacheableFinish(r string) bool { return r == runner.FinishStop || r == runner.FinishLength }

// Do answers from the cache, or joins the generation of k already in
// flight, or starts it. onOutcome (may be nil) learns the outcome before
// the first chunk; onText (nil for a non-streaming request) receives the
// chunks in order, whichever way the answer comes.
//
// The generation runs detached from any one caller: it goes on while at
// least one caller waits for it and is cancelled when the last one has
// gone, so a leader whose client disconnects does not fail the others.
func (c *Cache) Do(ctx context.Context, k Key, onOutcome func(Outcome), onText func(string), gen Generate) (runner.Result, Outcome, error) {
	c.mu.Lock()
	a := c.get(k)
	if a == nil && c.disk != nil && c.flights[k] == nil && c.disk.has(k) {
		// Read outside the lock; memory and flights are looked at again
		// after.
		c.mu.Unlock()
		da := c.disk.get(k, c.ttl, c.now())
		c.mu.Lock()
		if a = c.get(k); a == nil && da != nil {
			c.put(k, da)
			c.st.DiskHits++
			a = da
		}
	}
	if a != nil {
		c.st.Hits++
		c.mu.Unlock()
		if onOutcome != nil {
			onOutcome(Hit)
		}
		for _, t := range a.Chunks {
			if onText != nil {
				onText(t)
			}
		}
		return a.Result, Hit, nil
	}
	f, joined := c.flights[k]
	if joined {
		c.st.Hits++
		c.st.Collapsed++
	} else {
		c.st.Misses++
		f = &flight{notify: make(chan struct{}), done: make(chan struct{})}
		var fctx context.Context
		fctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
		c.flights[k] = f
		go c.run(fctx, k, f, gen)
	}
	f.waiters++
	c.mu.Unlock()
	if onOutcome != nil {
		if joined {
			onOutcome(Hit)
		} else {
			onOutcome(Miss)
		}
	}

	res, err, left := f.wait(ctx, onText)
	if left {
		c.leave(k, f)
	}
	if joined {
		return res, Hit, err
	}
	return res, Miss, err
}

// leave drops a waiter that went away; the last one cancels the
// generation and unlists it, so that a new request starts afresh.
func (c *Cache) leave(k Key, f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	f.cancel()
}

func (c *Cache) run(ctx context.Context, k Key, f *flight, gen Generate) {
	res, err := gen(ctx, f.add)
	f.mu.Lock()
	f.res, f.err = res, err
	chunks := f.chunks
	f.mu.Unlock()
	c.mu.Lock()
	stored := err == nil && cacheableFinish(res.FinishReason) && ctx.Err() == nil
	if stored {
		a := &Answer{Result: res, Chunks: chunks}
		c.put(k, a)
		if c.disk != nil {
			c.disk.put(k, a, c.now())
		}
	}
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	c.mu.Unlock()
	f.cancel()
	close(f.done)
}

// flight is one generation in progress and what it has produced so far.
type flight struct {
	mu      sync.Mutex
	chunks  []string
	notify  chan struct{} // closed and replaced on each chunk
	done    chan struct{}
	res     runner.Result
	err     error
	waiters int // under Cache.mu
	cancel  context.CancelFunc
}

func (f *flight) add(t string) {
	f.mu.Lock()
	f.chunks = append(f.chunks, t)
	close(f.notify)
	f.notify = make(chan struct{})
	f.mu.Unlock()
}

// wait follows the flight: it passes each chunk to onText as it comes and
// returns the flight's result, or ctx's error (and left) when ctx ends
// first.
func (f *flight) wait(ctx context.Context, onText func(string)) (res runner.Result, err error, left bool) {
	sent := 0
	for {
		f.mu.Lock()
		fresh := f.chunks[sent:]
		notify := f.notify
		f.mu.Unlock()
		if onText != nil {
			for _, t := range fresh {
				onText(t)
			}
		}
		sent += len(fresh)
		select {
		case <-f.done:
			f.mu.Lock()
			fresh = f.chunks[sent:]
			res, err = f.res, f.err
			f.mu.Unlock()
			if onText != nil {
				for _, t := range fresh {
					onText(t)
				}
			}
			return res, err, false
		case <-notify:
		case <-ctx.Done():
			return runner.Result{}, ctx.Err(), true
		}
	}
}
