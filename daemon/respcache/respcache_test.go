package respcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
)

func key(i int) Key { return Key{byte(i), byte(i >> 8), byte(i >> 16), 1} }

func answer(text string, chunks ...string) *Answer {
	return &Answer{Result: runner.Result{Text: text, FinishReason: runner.FinishStop}, Chunks: chunks}
}

// TestKeyCoversEveryRequestField sets each field of runner.Request
// (recursively, through Sampling and Messages) to a non-zero value and
// checks that the key changes: a field added to the runner's request
// later is in the key without anyone remembering to add it.
func TestKeyCoversEveryRequestField(t *testing.T) {
	m := &config.Model{Name: "m", Context: 256}
	base, err := MakeKey(m, "abc", nil, runner.Request{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Key]string{base: "zero"}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			fv := v.Field(i)
			name := path + f.Name
			if f.Tag.Get("json") == "-" {
				continue // not sent to the runner: a callback, not a setting
			}
			if f.Type.Kind() == reflect.Struct {
				walk(fv, name+".")
				continue
			}
			var req runner.Request
			target := reflect.ValueOf(&req).Elem()
			for _, p := range strings.Split(name, ".") {
				target = target.FieldByName(p)
			}
			setNonZero(t, target, name)
			k, err := MakeKey(m, "abc", nil, req)
			if err != nil {
				t.Fatal(err)
			}
			if prev, dup := seen[k]; dup {
				t.Errorf("setting runner.Request.%s gives the same key as %s: the field is not in the key", name, prev)
			}
			seen[k] = name
		}
	}
	walk(reflect.ValueOf(runner.Request{}), "")
	if len(seen) < 12 {
		t.Fatalf("only %d fields walked", len(seen)-1)
	}
}

func setNonZero(t *testing.T, v reflect.Value, name string) {
	if v.Type() == reflect.TypeFor[json.RawMessage]() {
		v.SetBytes([]byte(`{"set":true}`))
		return
	}
	if v.Type() == reflect.TypeFor[[][]byte]() {
		v.Set(reflect.ValueOf([][]byte{[]byte("image")}))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		v.SetUint(3)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(3)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		setNonZero(t, p.Elem(), name)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		el := s.Index(0)
		if el.Kind() == reflect.Struct {
			el.Field(0).SetString("user")
		} else {
			setNonZero(t, el, name)
		}
		v.Set(s)
	default:
		t.Fatalf("runner.Request.%s: kind %s: teach this test how to set it", name, v.Kind())
	}
}

// TestKeyModelSettings checks every field of config.Model: a field is
// either listed in modelIgnored (with its reason) or changes the key.
func TestKeyModelSettings(t *testing.T) {
	base := config.Model{Name: "m", Context: 256, KVCache: "f16"}
	k0, _ := MakeKey(&base, "abc", nil, runner.Request{Prompt: "p"})
	typ := reflect.TypeOf(base)
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || tag == "-" {
			continue
		}
		m := base
		v := reflect.ValueOf(&m).Elem().Field(i)
		switch v.Kind() {
		case reflect.Struct, reflect.Slice, reflect.Map, reflect.Pointer:
			// Composite settings: in the key unless ignored, which the
			// settings' JSON shows.
			settings, err := modelSettings(&m)
			if err != nil {
				t.Fatal(err)
			}
			_, ignored := modelIgnored[tag]
			if _, in := settings[tag]; in == ignored && !(v.Kind() == reflect.Slice && !ignored) {
				t.Errorf("config.Model.%s (%s): in the key %v, listed as ignored %v", f.Name, tag, in, ignored)
			}
			continue
		case reflect.Int64:
			v.SetInt(v.Int() + 7)
		default:
			setNonZero(t, v, f.Name)
		}
		k, _ := MakeKey(&m, "abc", nil, runner.Request{Prompt: "p"})
		_, ignored := modelIgnored[tag]
		switch {
		case ignored && k != k0:
			t.Errorf("config.Model.%s is listed as not affecting output but changes the key", f.Name)
		case !ignored && k == k0:
			t.Errorf("config.Model.%s (%s) does not change the key and is not in modelIgnored", f.Name, tag)
		}
	}
	// The file and the adapters by their hashes.
	kf, _ := MakeKey(&base, "abd", nil, runner.Request{Prompt: "p"})
	ka, _ := MakeKey(&base, "abc", []Adapter{{SHA256: "ff", Scale: 1}}, runner.Request{Prompt: "p"})
	kb, _ := MakeKey(&base, "abc", []Adapter{{SHA256: "ff", Scale: 0.5}}, runner.Request{Prompt: "p"})
	if kf == k0 || ka == k0 || kb == ka {
		t.Error("model sha256, adapter sha256 or adapter scale does not change the key")
	}
}

func TestCacheable(t *testing.T) {
	seed := uint32(7)
	for _, tc := range []struct {
		name string
		s    runner.Sampling
		ok   bool
	}{
		{"greedy", runner.Sampling{Temperature: 0}, true},
		{"greedy with top_k", runner.Sampling{Temperature: 0, TopK: 40}, true},
		{"seeded", runner.Sampling{Temperature: 0.8, Seed: &seed}, true},
		{"sampled without seed", runner.Sampling{Temperature: 0.8}, false},
		{"sampled, top_p, no seed", runner.Sampling{Temperature: 1, TopP: 0.9}, false},
	} {
		ok, why := Cacheable(runner.Request{Prompt: "p", Sampling: tc.s})
		if ok != tc.ok || (!ok && why == "") {
			t.Errorf("%s: Cacheable = %v %q, want %v", tc.name, ok, why, tc.ok)
		}
	}
}

// TestMemoryBound stores 10,000 distinct answers in a 256 KiB cache: the
// accounted bytes never pass the bound, the oldest go first, and the heap
// does not grow past the bound by more than the accounting allows.
func TestMemoryBound(t *testing.T) {
	const max = 256 << 10
	c := must(New(Options{MaxBytes: max}))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range 10000 {
		text := strings.Repeat(fmt.Sprint(i%10), 100+i%400)
		c.Put(key(i), answer(text, text[:50], text[50:]))
		if st := c.Stats(); st.Bytes > max {
			t.Fatalf("after %d puts: %d bytes stored, bound %d", i+1, st.Bytes, max)
		}
	}
	st := c.Stats()
	if st.Evictions == 0 || st.Entries == 0 || st.Entries >= 10000 {
		t.Fatalf("stats %+v: want evictions and a bounded number of entries", st)
	}
	if _, ok := c.Get(key(0)); ok {
		t.Error("the first key survived 10,000 later ones")
	}
	if _, ok := c.Get(key(9999)); !ok {
		t.Error("the last key is missing")
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 2*max {
		t.Errorf("heap grew %d bytes for a %d byte cache", grown, max)
	}
	// An entry larger than an eighth of the bound is not stored.
	big := strings.Repeat("x", max/4)
	c.Put(key(20000), answer(big))
	if _, ok := c.Get(key(20000)); ok {
		t.Error("an answer of a quarter of the bound was stored")
	}
	c.SetLimits(1<<10, 0)
	if st := c.Stats(); st.Bytes > 1<<10 {
		t.Errorf("after shrinking to 1 KiB: %d bytes", st.Bytes)
	}
}

func TestLRUAndTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	c := must(New(Options{MaxBytes: 3 * (entryOverhead + 10 + 4) * 8, TTL: time.Minute, Now: func() time.Time { return now }}))
	c.Put(key(1), answer("aaaaaaaaaa"))
	c.Put(key(2), answer("bbbbbbbbbb"))
	if _, ok := c.Get(key(1)); !ok {
		t.Fatal("key 1 missing")
	}
	now = now.Add(59 * time.Second)
	if _, ok := c.Get(key(2)); !ok {
		t.Fatal("key 2 expired early")
	}
	now = now.Add(2 * time.Second)
	if _, ok := c.Get(key(2)); ok {
		t.Fatal("key 2 outlived its TTL")
	}
	if st := c.Stats(); st.Expired == 0 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// gen is a fake generation that counts its runs and sends chunks slowly
// enough for requests to pile up.
type gen struct {
	runs    atomic.Int32
	release chan struct{}
	chunks  []string
}

func (g *gen) run(ctx context.Context, onText func(string)) (runner.Result, error) {
	g.runs.Add(1)
	var sb strings.Builder
	for i, c := range g.chunks {
		if i == 1 && g.release != nil {
			select {
			case <-g.release:
			case <-ctx.Done():
				return runner.Result{FinishReason: runner.FinishCancelled}, ctx.Err()
			}
		}
		onText(c)
		sb.WriteString(c)
	}
	return runner.Result{Text: sb.String(), FinishReason: runner.FinishStop, Timings: runner.Timings{GeneratedTokens: len(g.chunks)}}, nil
}

// TestCollapse: 50 identical requests arriving together share one
// generation, streaming and not; each streaming one sees the whole chunk
// sequence; the next request is a hit with the same sequence.
func TestCollapse(t *testing.T) {
	c := must(New(Options{MaxBytes: 1 << 20}))
	g := &gen{release: make(chan struct{}), chunks: []string{"Once", " upon", " a", " time"}}
	var wg sync.WaitGroup
	outs := make([]Outcome, 50)
	seqs := make([][]string, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seq []string
			onText := func(s string) { seq = append(seq, s) }
			if i%2 == 1 {
				onText = nil
			}
			res, out, err := c.Do(context.Background(), key(1), nil, onText, g.run)
			if err != nil || res.Text != "Once upon a time" {
				t.Errorf("request %d: %q %v", i, res.Text, err)
			}
			outs[i], seqs[i] = out, seq
		}()
	}
	for c.Stats().Hits+c.Stats().Misses < 50 {
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
	if n := g.runs.Load(); n != 1 {
		t.Fatalf("%d generations for 50 identical requests", n)
	}
	misses := 0
	for i, o := range outs {
		if o == Miss {
			misses++
		}
		if i%2 == 0 && !slices.Equal(seqs[i], g.chunks) {
			t.Errorf("request %d streamed %q", i, seqs[i])
		}
	}
	if misses != 1 {
		t.Errorf("%d misses, want 1", misses)
	}
	var seq []string
	res, out, _ := c.Do(context.Background(), key(1), nil, func(s string) { seq = append(seq, s) }, g.run)
	if out != Hit || res.Text != "Once upon a time" || !slices.Equal(seq, g.chunks) || g.runs.Load() != 1 {
		t.Errorf("repeat: %s %q %q runs %d", out, res.Text, seq, g.runs.Load())
	}
	if st := c.Stats(); st.Collapsed != 49 || st.Hits != 50 || st.Misses != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestLeaderCancelled: the first request's client goes away mid-stream;
// the one that joined it still gets the whole answer.
func TestLeaderCancelled(t *testing.T) {
	c := must(New(Options{MaxBytes: 1 << 20}))
	g := &gen{release: make(chan struct{}), chunks: []string{"a", "b", "c"}}
	lctx, lcancel := context.WithCancel(context.Background())
	leaderDone := make(chan error)
	go func() {
		_, _, err := c.Do(lctx, key(1), nil, nil, g.run)
		leaderDone <- err
	}()
	for c.Stats().Misses == 0 {
		time.Sleep(time.Millisecond)
	}
	followerDone := make(chan runner.Result)
	go func() {
		res, _, err := c.Do(context.Background(), key(1), nil, nil, g.run)
		if err != nil {
			t.Error(err)
		}
		followerDone <- res
	}()
	for c.Stats().Hits == 0 {
		time.Sleep(time.Millisecond)
	}
	lcancel()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	close(g.release)
	if res := <-followerDone; res.Text != "abc" {
		t.Fatalf("follower got %q", res.Text)
	}
	if _, ok := c.Get(key(1)); !ok {
		t.Error("the finished answer was not stored")
	}
}

// TestAllGoneCancels: when every waiter has gone, the generation is
// cancelled and nothing is stored; a new request starts a new one.
func TestAllGoneCancels(t *testing.T) {
	c := must(New(Options{MaxBytes: 1 << 20}))
	g := &gen{release: make(chan struct{}), chunks: []string{"a", "b"}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Do(ctx, key(1), nil, nil, g.run); close(done) }()
	for c.Stats().Misses == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	for c.Stats().InFlight != 0 {
		time.Sleep(time.Millisecond)
	}
	if _, ok := c.Get(key(1)); ok {
		t.Fatal("a cancelled generation was stored")
	}
	g2 := &gen{chunks: []string{"x"}}
	res, out, err := c.Do(context.Background(), key(1), nil, nil, g2.run)
	if err != nil || out != Miss || res.Text != "x" {
		t.Fatalf("after cancel: %q %s %v", res.Text, out, err)
	}
}

func TestFailureNotStored(t *testing.T) {
	c := must(New(Options{MaxBytes: 1 << 20}))
	boom := errors.New("runner died")
	_, _, err := c.Do(context.Background(), key(1), nil, nil, func(context.Context, func(string)) (runner.Result, error) {
		return runner.Result{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, ok := c.Get(key(1)); ok {
		t.Fatal("a failure was stored")
	}
}

func TestFileHashes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	os.WriteFile(p, []byte("one"), 0o644)
	h := NewFileHashes()
	s1, ok := h.Sum(p)
	// sha256("one"), computed with sha256sum.
	if !ok || s1 != "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed" {
		t.Fatalf("sum %q %v", s1, ok)
	}
	os.WriteFile(p+".new", []byte("two"), 0o644)
	os.Rename(p+".new", p)
	s2, ok := h.Sum(p)
	if !ok || s2 == s1 {
		t.Fatalf("a replaced file kept its sum: %q", s2)
	}
	if _, ok := h.Sum(filepath.Join(dir, "missing")); ok {
		t.Fatal("a missing file has a sum")
	}
}

func must(c *Cache, err error) *Cache {
	if err != nil {
		panic(err)
	}
	return c
}

// TestDiskTier: answers written to the disk tier are found by a new cache
// over the same directory (a restart), with their chunks; temporaries are
// removed; the bound holds; a corrupt file is a miss and is removed.
func TestDiskTier(t *testing.T) {
	dir := t.TempDir()
	c := must(New(Options{MaxBytes: 1 << 20, Dir: dir, DiskBytes: 64 << 10}))
	g := &gen{chunks: []string{"Once", " upon"}}
	if _, out, err := c.Do(context.Background(), key(1), nil, nil, g.run); err != nil || out != Miss {
		t.Fatal(out, err)
	}
	c.Flush()
	os.WriteFile(filepath.Join(dir, "junk.json.tmp"), []byte("half"), 0o640)

	c2 := must(New(Options{MaxBytes: 1 << 20, Dir: dir, DiskBytes: 64 << 10}))
	if _, err := os.Stat(filepath.Join(dir, "junk.json.tmp")); !os.IsNotExist(err) {
		t.Error("a temporary file survived the open")
	}
	var seq []string
	res, out, err := c2.Do(context.Background(), key(1), nil, func(s string) { seq = append(seq, s) }, g.run)
	if err != nil || out != Hit || res.Text != "Once upon" || !slices.Equal(seq, g.chunks) || g.runs.Load() != 1 {
		t.Fatalf("after a restart: %s %q %q runs %d %v", out, res.Text, seq, g.runs.Load(), err)
	}
	if st := c2.Stats(); st.DiskHits != 1 || st.DiskEntries != 1 {
		t.Errorf("stats %+v", st)
	}
	// The bound: 200 answers of about 1 KiB in 64 KiB.
	for i := range 200 {
		c2.Put(key(100+i), answer(strings.Repeat("y", 1000)))
		c2.Flush()
	}
	if st := c2.Stats(); st.DiskBytes > 64<<10 || st.DiskEntries == 0 {
		t.Errorf("disk stats %+v", st)
	}
	// A corrupt file: a miss, removed.
	k := key(299)
	p := filepath.Join(dir, fmt.Sprintf("%x.json", k[:]))
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("{not json"), 0o640)
	c3 := must(New(Options{MaxBytes: 1 << 20, Dir: dir, DiskBytes: 64 << 10}))
	g3 := &gen{chunks: []string{"z"}}
	if _, out, _ := c3.Do(context.Background(), key(299), nil, nil, g3.run); out != Miss {
		t.Errorf("corrupt file: %s", out)
	}
	c3.Flush()
	if b, err := os.ReadFile(p); err != nil || !strings.Contains(string(b), `"z"`) {
		t.Errorf("the corrupt file was not replaced by the new answer: %q %v", b, err)
	}
}

// TestSumWhilePriming: a small file's sum is there at once even while
// Prime hashes it in the background (a request right after a start or a
// reload must not bypass the cache for that).
func TestSumWhilePriming(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	os.WriteFile(p, []byte(strings.Repeat("x", 1<<20)), 0o644)
	for range 20 {
		h := NewFileHashes()
		h.Prime([]string{p})
		if _, ok := h.Sum(p); !ok {
			t.Fatal("no sum for a small file while it is being primed")
		}
	}
}
