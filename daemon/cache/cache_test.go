package cache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// model writes a generated GGUF of a distinct seed into dir and returns its
// path and size.
func model(t *testing.T, dir string, seed uint64) (string, int64) {
	t.Helper()
	spec := modelgen.Tiny()
	spec.Seed = seed
	p := filepath.Join(dir, fmt.Sprintf("m%d.gguf", seed))
	if err := modelgen.Generate(p, spec); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	return p, st.Size()
}

func sum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func open(t *testing.T, dir string, max int64) *Cache {
	t.Helper()
	c, err := Open(Options{Dir: dir, MaxSize: max, StageSameDevice: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// hashed waits for the background hash of a staged copy and returns it.
func hashed(t *testing.T, c *Cache, name string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if e, ok := c.Lookup(name); ok && e.SHA256 != "" {
			return e.SHA256
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not hashed within 10s", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noLeftovers fails when tmp/ holds anything.
func noLeftovers(t *testing.T, c *Cache) {
	t.Helper()
	left, _ := os.ReadDir(c.tmp)
	if len(left) > 0 {
		t.Fatalf("tmp/ holds %d files after the copy: %v", len(left), left[0].Name())
	}
}

func TestStageMissThenHit(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	src, size := model(t, slow, 1)
	c := open(t, dir, 0)
	var last, total int64
	h, err := c.Stage(context.Background(), src, func(d, t int64) { last, total = d, t })
	if err != nil {
		t.Fatal(err)
	}
	if h.Hit || !h.Staged || !strings.HasPrefix(h.Path, c.ModelsDir()) {
		t.Fatalf("first stage: hit=%v staged=%v path=%s", h.Hit, h.Staged, h.Path)
	}
	if last != size || total != size {
		t.Fatalf("progress ended at %d/%d, want %d", last, total, size)
	}
	if got, want, rec := sum(t, h.Path), sum(t, src), hashed(t, c, h.Entry.Name); got != want || rec != want {
		t.Fatalf("copy sha256 %s, record %s, source %s", got, rec, want)
	}
	if b, _ := os.ReadFile(h.Path + ".json"); !strings.Contains(string(b), sum(t, src)) {
		t.Fatalf("the record file does not hold the sha256:\n%s", b)
	}
	noLeftovers(t, c)
	h.Release()

	h2, err := c.Stage(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !h2.Hit || h2.Path != h.Path {
		t.Fatalf("second stage: hit=%v path=%s", h2.Hit, h2.Path)
	}
	h2.Release()

	// The index survives a restart.
	c.Close()
	c2 := open(t, dir, 0)
	h3, err := c2.Stage(context.Background(), src, nil)
	if err != nil || !h3.Hit {
		t.Fatalf("after reopen: hit=%v err=%v", h3 != nil && h3.Hit, err)
	}

	// A changed source is copied again.
	h3.Release()
	later := time.Now().Add(time.Minute)
	os.Chtimes(src, later, later)
	h4, err := c2.Stage(context.Background(), src, nil)
	if err != nil || h4.Hit {
		t.Fatalf("changed source: hit=%v err=%v", h4 != nil && h4.Hit, err)
	}
}

func TestSizeBoundEvictsLRUNeverInUse(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	a, size := model(t, slow, 1)
	b, _ := model(t, slow, 2)
	cc, _ := model(t, slow, 3)
	c := open(t, dir, 2*size+size/2) // room for two
	ctx := context.Background()

	ha, err := c.Stage(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := c.Stage(ctx, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Both in use: a third does not fit and nothing is evicted.
	if _, err := c.Stage(ctx, cc, nil); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("third file with two in use: err = %v, want ErrNoRoom", err)
	}
	if len(c.Entries()) != 2 {
		t.Fatalf("entries = %d after a refused stage", len(c.Entries()))
	}
	noLeftovers(t, c)
	// b released first, then a: b is the least recently used.
	hb.Release()
	time.Sleep(10 * time.Millisecond)
	ha.Release()
	ha2, err := c.Stage(ctx, a, nil) // a in use again
	if err != nil || !ha2.Hit {
		t.Fatalf("restage a: %v", err)
	}
	hc, err := c.Stage(ctx, cc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Release()
	names := map[string]bool{}
	for _, e := range c.Entries() {
		names[e.Source] = true
	}
	if !names[a] || names[b] || !names[cc] {
		t.Fatalf("after eviction the cache holds %v; want a and c (b was LRU and unused)", names)
	}
	if _, err := os.Stat(hb.Path); !os.IsNotExist(err) {
		t.Fatalf("evicted file still on disk: %v", err)
	}
	if c.Used() > c.MaxSize() {
		t.Fatalf("used %d over max %d", c.Used(), c.MaxSize())
	}
	// Three copies made (a, b, c), one refused for room, one hit (a), one
	// eviction (b).
	st := c.Stats()
	if st.StageMisses != 3 || st.StageFailures != 1 || st.StageHits != 1 || st.StagedBytes != uint64(3*size) ||
		st.EvictedModels != 1 || st.EvictedParked != 0 || st.ModelFiles != 2 || st.ModelBytes != c.Used() || st.MaxBytes != c.MaxSize() {
		t.Fatalf("stats %+v", st)
	}
}

func TestSourceChangesDuringCopy(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	src, _ := model(t, slow, 1)
	c := open(t, dir, 0)
	once := false
	_, err := c.Stage(context.Background(), src, func(d, total int64) {
		if !once {
			once = true
			f, _ := os.OpenFile(src, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("more"))
			f.Close()
		}
	})
	if !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("err = %v, want ErrSourceChanged", err)
	}
	if len(c.Entries()) != 0 {
		t.Fatal("a copy of a changing source was indexed")
	}
	noLeftovers(t, c)
	files, _ := os.ReadDir(c.ModelsDir())
	if len(files) != 0 {
		t.Fatalf("models/ holds %v", files[0].Name())
	}
}

func TestBadSources(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	c := open(t, dir, 0)
	notGGUF := filepath.Join(slow, "x.gguf")
	os.WriteFile(notGGUF, []byte("this is not a model"), 0o644)
	src, _ := model(t, slow, 1)
	trunc := filepath.Join(slow, "trunc.gguf")
	b, _ := os.ReadFile(src)
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	for name, tc := range map[string]struct{ path, want string }{
		"missing":   {filepath.Join(slow, "nope.gguf"), "source unreadable"},
		"directory": {slow, "not a regular file"},
		"not gguf":  {notGGUF, "not a usable GGUF"},
		"truncated": {trunc, "not a usable GGUF"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Stage(context.Background(), tc.path, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			noLeftovers(t, c)
		})
	}
	if len(c.Entries()) != 0 {
		t.Fatal("a bad source was indexed")
	}
}

func TestCorruptCopyIsNotServed(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	src, _ := model(t, slow, 1)
	c := open(t, dir, 0)
	h, err := c.Stage(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	hashed(t, c, h.Entry.Name)
	// A flipped byte in the weights: the header is fine, the hash is not.
	f, _ := os.OpenFile(h.Path, os.O_WRONLY, 0)
	f.WriteAt([]byte{0xff, 0xee}, h.Entry.Size-10)
	f.Close()
	if err := c.Verify(context.Background(), h.Entry.Name); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify: %v, want ErrCorrupt", err)
	}
	if _, ok := c.Lookup(h.Entry.Name); ok {
		t.Fatal("a corrupt file stays indexed after Verify")
	}
	// A truncated copy: Stage notices and copies again.
	h2, err := c.Stage(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	h2.Release()
	os.Truncate(h2.Path, h2.Entry.Size/2)
	c.Close()             // as the process would be gone
	c2 := open(t, dir, 0) // the size check at open drops it
	if _, ok := c2.Lookup(h2.Entry.Name); ok {
		t.Fatal("a truncated copy survived Open")
	}
	h3, err := c2.Stage(context.Background(), src, nil)
	if err != nil || h3.Hit || sum(t, h3.Path) != sum(t, src) {
		t.Fatalf("restage after corruption: hit=%v err=%v", h3 != nil && h3.Hit, err)
	}
}

// TestCrashDuringCopy kills a process in the middle of a copy and checks
// that the next Open offers nothing half-written.
func TestCrashDuringCopy(t *testing.T) {
	dir := t.TempDir()
	// A model of several copy steps, so the kill lands between two.
	src := testmodel.Gen(t, modelgen.Small())
	st, _ := os.Stat(src)
	if st.Size() < 3*kernelStep {
		t.Fatalf("source of %d bytes is too small to interrupt", st.Size())
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "JETAI_CACHE_HELPER=forever", "JETAI_CACHE_DIR="+dir, "JETAI_CACHE_SRC="+src)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	copying := false
	for sc.Scan() {
		if sc.Text() == "copying" {
			copying = true
			break
		}
	}
	if !copying {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper never started copying")
	}
	cmd.Process.Kill()
	cmd.Wait()
	left, _ := filepath.Glob(filepath.Join(dir, "tmp", "*.partial"))
	if len(left) != 1 {
		t.Fatalf("the killed copy left %d partial files: the test did not interrupt a copy", len(left))
	}
	if pst, _ := os.Stat(left[0]); pst.Size() >= st.Size() {
		t.Fatalf("partial file of %d bytes: the copy was not interrupted (source %d)", pst.Size(), st.Size())
	}
	// Also a crash between the two renames: a model file without a record.
	os.WriteFile(filepath.Join(dir, "models", "orphan.gguf"), []byte("GGUF"), 0o640)

	c := open(t, dir, 0)
	noLeftovers(t, c)
	if n := len(c.Entries()); n != 0 {
		t.Fatalf("%d entries after a crash", n)
	}
	files, _ := os.ReadDir(c.ModelsDir())
	if len(files) != 0 {
		t.Fatalf("models/ holds %s after Open", files[0].Name())
	}
	h, err := c.Stage(context.Background(), src, nil)
	if err != nil || h.Hit || sum(t, h.Path) != sum(t, src) {
		t.Fatalf("stage after crash: %v", err)
	}
}

// The test binary doubles as the helper processes of TestCrashDuringCopy
// and TestWriteFailure (JETAI_CACHE_HELPER=forever or limited).
func TestMain(m *testing.M) {
	switch os.Getenv("JETAI_CACHE_HELPER") {
	case "forever":
		stageForever()
	case "limited":
		stageLimited()
	default:
		os.Exit(m.Run())
	}
	os.Exit(0)
}

// stageForever stages a file and hangs in the middle of the copy.
func stageForever() {
	c, err := Open(Options{Dir: os.Getenv("JETAI_CACHE_DIR"), StageSameDevice: true})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	c.Stage(context.Background(), os.Getenv("JETAI_CACHE_SRC"), func(d, total int64) {
		fmt.Println("copying")
		os.Stdout.Sync()
		time.Sleep(time.Hour)
	})
}

func TestParkFingerprint(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 0)
	d, err := c.ParkTemp("m/1")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, "slot-0.state"), make([]byte, 1000), 0o640)
	if err := c.CommitPark(d, Manifest{Model: "m/1", Fingerprint: "fp1", Slots: []ParkedSlot{{File: "slot-0.state", Tokens: 10}}}); err != nil {
		t.Fatal(err)
	}
	if c.ParkedBytes() < 1000 {
		t.Fatalf("parked bytes %d", c.ParkedBytes())
	}
	c2 := open(t, dir, 0) // survives a restart
	if _, m, ok := c2.TakePark("m/1", "fp1"); !ok || len(m.Slots) != 1 {
		t.Fatalf("TakePark with the same fingerprint: ok=%v", ok)
	}
	if _, _, ok := c2.TakePark("m/1", "fp2"); ok {
		t.Fatal("state restored under another fingerprint")
	}
	if _, _, ok := c2.TakePark("m/1", "fp1"); ok {
		t.Fatal("state saved under another fingerprint was not dropped")
	}
	if c2.ParkedBytes() != 0 {
		t.Fatalf("parked bytes %d after drop", c2.ParkedBytes())
	}
	// Bounded: state bigger than max_size is refused, not kept.
	c3 := open(t, t.TempDir(), 100)
	d, _ = c3.ParkTemp("m")
	os.WriteFile(filepath.Join(d, "slot-0.state"), make([]byte, 1000), 0o640)
	if err := c3.CommitPark(d, Manifest{Model: "m", Fingerprint: "x"}); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("oversized park: %v", err)
	}
	noLeftovers(t, c3)
}

func TestImportAndAddFile(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	src, size := model(t, slow, 1)
	c := open(t, dir, 0)
	e, err := c.Import(context.Background(), src, "my model", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "my_model.gguf" || e.Size != size || e.Origin != "imported" || e.SHA256 != sum(t, src) {
		t.Fatalf("import entry %+v", e)
	}
	tmp, err := c.TempPath("q")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(src)
	os.WriteFile(tmp, b, 0o640)
	e2, err := c.AddFile(context.Background(), tmp, "q", src, "quantized")
	if err != nil || e2.Name != "q.gguf" || e2.SHA256 != sum(t, src) {
		t.Fatalf("AddFile: %+v %v", e2, err)
	}
	noLeftovers(t, c)
	// A file of garbage is refused and removed.
	tmp, _ = c.TempPath("bad")
	os.WriteFile(tmp, []byte("garbage"), 0o640)
	if _, err := c.AddFile(context.Background(), tmp, "bad", src, "quantized"); err == nil {
		t.Fatal("garbage accepted")
	}
	noLeftovers(t, c)
}

// TestUnhashedRecordIsHashedAtOpen: a copy whose background hash did not
// finish before the daemon stopped is hashed at the next Open.
func TestUnhashedRecordIsHashedAtOpen(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	src, _ := model(t, slow, 1)
	c := open(t, dir, 0)
	h, err := c.Stage(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := hashed(t, c, h.Entry.Name)
	c.Close()
	e, _ := c.Lookup(h.Entry.Name)
	e.SHA256 = ""
	b, _ := json.Marshal(e.Record)
	os.WriteFile(h.Path+".json", b, 0o640)
	c2 := open(t, dir, 0)
	if got := hashed(t, c2, h.Entry.Name); got != want {
		t.Fatalf("hash at open %s, want %s", got, want)
	}
}

// TestPipeCopy checks the fallback copy (file systems without
// copy_file_range between them): bytes, count and sha256.
func TestPipeCopy(t *testing.T) {
	data := make([]byte, 3*chunkSize+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var out bytes.Buffer
	var last int64
	n, s, err := pipeCopy(context.Background(), &out, bytes.NewReader(data), int64(len(data)), func(d, _ int64) { last = d })
	want := sha256.Sum256(data)
	if err != nil || n != int64(len(data)) || last != n || !bytes.Equal(out.Bytes(), data) || s != hex.EncodeToString(want[:]) {
		t.Fatalf("pipeCopy: n=%d last=%d err=%v equal=%v sum ok=%v", n, last, err, bytes.Equal(out.Bytes(), data), s == hex.EncodeToString(want[:]))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := pipeCopy(ctx, &out, bytes.NewReader(data), int64(len(data)), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pipeCopy: %v", err)
	}
}

// TestWriteFailure: a copy whose writes fail (here the file size limit,
// standing in for a full disk) ends with a clear error and leaves nothing
// behind, in a helper process that has the limit set.
func TestWriteFailure(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	src, _ := model(t, slow, 1)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "JETAI_CACHE_HELPER=limited", "JETAI_CACHE_DIR="+dir, "JETAI_CACHE_SRC="+src)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "stage error: ") || !strings.Contains(string(out), "file too large") {
		t.Fatalf("helper output:\n%s", out)
	}
	c := open(t, dir, 0)
	if len(c.Entries()) != 0 {
		t.Fatal("a failed copy was indexed")
	}
	files, _ := os.ReadDir(c.ModelsDir())
	left, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(files)+len(left) != 0 {
		t.Fatalf("a failed copy left files: models %d, tmp %d", len(files), len(left))
	}
}

// stageLimited stages a file under a 1 MiB file size limit.
func stageLimited() {
	c, err := Open(Options{Dir: os.Getenv("JETAI_CACHE_DIR"), StageSameDevice: true})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	// Writes past 1 MiB fail with EFBIG (Go ignores SIGXFSZ).
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	_, err = c.Stage(context.Background(), os.Getenv("JETAI_CACHE_SRC"), nil)
	fmt.Printf("stage error: %v\n", err)
	left, _ := os.ReadDir(filepath.Join(os.Getenv("JETAI_CACHE_DIR"), "tmp"))
	fmt.Printf("tmp files: %d\n", len(left))
}

// TestImportedModelInUseIsKept: a model loaded from the cache itself (an
// imported file) counts as in use, so the size bound never evicts it.
func TestImportedModelInUseIsKept(t *testing.T) {
	slow, dir := t.TempDir(), t.TempDir()
	a, size := model(t, slow, 1)
	b, _ := model(t, slow, 2)
	c := open(t, dir, size+size/2) // room for one
	e, err := c.Import(context.Background(), a, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Stage(context.Background(), e.Path, nil)
	if err != nil || h.Path != e.Path || !h.Hit {
		t.Fatalf("stage of an imported file: %+v %v", h, err)
	}
	if _, err := c.Stage(context.Background(), b, nil); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("staging past the bound with the imported model in use: %v, want ErrNoRoom", err)
	}
	if _, ok := c.Lookup("a.gguf"); !ok {
		t.Fatal("the imported model in use was evicted")
	}
	h.Release()
	if _, err := c.Stage(context.Background(), b, nil); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, ok := c.Lookup("a.gguf"); ok {
		t.Fatal("the released imported model should have made room")
	}
}
