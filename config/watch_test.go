package config

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jetai/jetai/internal/testburst"
)

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// watchEnv runs a Watcher on a file and collects the changes it reports.
type watchEnv struct {
	t       *testing.T
	dir     string
	path    string
	changes chan Change
	errs    chan error
}

// startWatch watches path (created by setup, which may also lay out
// symlinks) with opts.
func startWatch(t *testing.T, opts WatchOptions, setup func(dir string) string) *watchEnv {
	t.Helper()
	e := &watchEnv{t: t, dir: t.TempDir(), changes: make(chan Change, 100), errs: make(chan error, 100)}
	e.path = setup(e.dir)
	opts.OnError = func(err error) { e.errs <- err }
	w, err := NewWatcher(e.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx, func(c Change) { e.changes <- c })
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func plainFile(content string) func(string) string {
	return func(dir string) string {
		p := filepath.Join(dir, "jetai.hcl")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			panic(err)
		}
		return p
	}
}

// next waits for the next change.
func (e *watchEnv) next(within time.Duration) Change {
	e.t.Helper()
	select {
	case c := <-e.changes:
		return c
	case err := <-e.errs:
		e.t.Fatalf("watch error: %v", err)
	case <-time.After(within):
		e.t.Fatalf("no change reported within %v", within)
	}
	return Change{}
}

// none asserts that no change comes within d.
func (e *watchEnv) none(d time.Duration) {
	e.t.Helper()
	select {
	case c := <-e.changes:
		e.t.Fatalf("unexpected change: %+v", c)
	case <-time.After(d):
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// inotify only (no polling): each way of saving a file is seen, once, with
// the final content's hash.
func TestWatchSaves(t *testing.T) {
	// 250 ms of quiet, not the default 100 ms: a writer on a loaded test
	// machine can stall between truncating and writing.
	notifyOnly := WatchOptions{Debounce: 250 * time.Millisecond, Poll: -1}
	tests := []struct {
		name  string
		setup func(dir string) string
		save  func(t *testing.T, dir, path, content string)
	}{
		{"rename", plainFile("a = 1\n"), func(t *testing.T, dir, path, content string) {
			tmp := filepath.Join(dir, ".jetai.hcl.swp")
			must(t, os.WriteFile(tmp, []byte(content), 0o644))
			must(t, os.Rename(tmp, path))
		}},
		{"truncate and write", plainFile("a = 1\n"), func(t *testing.T, dir, path, content string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			must(t, err)
			// The empty file in between is a save in progress, not a
			// change; the two halves are one change.
			time.Sleep(20 * time.Millisecond)
			_, err = f.WriteString(content[:3])
			must(t, err)
			time.Sleep(10 * time.Millisecond)
			_, err = f.WriteString(content[3:])
			must(t, err)
			must(t, f.Close())
		}},
		{"kubernetes symlink swap", func(dir string) string {
			// jetai.hcl -> ..data/jetai.hcl; ..data -> ..v1 (as kubelet lays
			// out a config map volume).
			must(t, os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, "..v1", "jetai.hcl"), []byte("a = 1\n"), 0o644))
			must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
			p := filepath.Join(dir, "jetai.hcl")
			must(t, os.Symlink(filepath.Join("..data", "jetai.hcl"), p))
			return p
		}, func(t *testing.T, dir, path, content string) {
			must(t, os.Mkdir(filepath.Join(dir, "..v2"), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, "..v2", "jetai.hcl"), []byte(content), 0o644))
			must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
			must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
			must(t, os.RemoveAll(filepath.Join(dir, "..v1")))
		}},
		{"symlink into another directory, edited there", func(dir string) string {
			other := filepath.Join(dir, "elsewhere")
			must(t, os.Mkdir(other, 0o755))
			must(t, os.Mkdir(filepath.Join(dir, "etc"), 0o755))
			must(t, os.WriteFile(filepath.Join(other, "real.hcl"), []byte("a = 1\n"), 0o644))
			p := filepath.Join(dir, "etc", "jetai.hcl")
			must(t, os.Symlink(filepath.Join(other, "real.hcl"), p))
			return p
		}, func(t *testing.T, dir, path, content string) {
			must(t, os.WriteFile(filepath.Join(dir, "elsewhere", "real.hcl"), []byte(content), 0o644))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startWatch(t, notifyOnly, tc.setup)
			for i, content := range []string{"a = 2\n", "a = 3\n"} {
				tc.save(t, e.dir, e.path, content)
				c := e.next(5 * time.Second)
				if c.Hash != hashOf(content) || c.Deleted || c.Cause == "poll" {
					t.Fatalf("save %d: %+v, want the hash of %q from fsnotify", i, c, content)
				}
				e.none(400 * time.Millisecond)
				if i == 0 && tc.name == "kubernetes symlink swap" {
					// The next swap goes from ..v2 to a new ..v1.
					tc.save = func(t *testing.T, dir, path, content string) {
						must(t, os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
						must(t, os.WriteFile(filepath.Join(dir, "..v1", "jetai.hcl"), []byte(content), 0o644))
						must(t, os.Symlink("..v1", filepath.Join(dir, "..data_tmp")))
						must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
						must(t, os.RemoveAll(filepath.Join(dir, "..v2")))
					}
				}
			}
		})
	}
}

// TestWatchBurst: twenty writes within a second are one change, with the
// last content, or one more per writer stall longer than the debounce
// (testburst.Write counts them).
func TestWatchBurst(t *testing.T) {
	const debounce = 250 * time.Millisecond
	e := startWatch(t, WatchOptions{Debounce: debounce, Poll: -1}, plainFile("a = 0\n"))
	last := ""
	minSplits, maxSplits := testburst.Write(t, 20, 50*time.Millisecond, debounce, func(i int) {
		last = fmt.Sprintf("a = %d\n", i+1)
		must(t, os.WriteFile(e.path, []byte(last), 0o644))
	})
	var got []Change
	for {
		c := e.next(5 * time.Second)
		got = append(got, c)
		if c.Hash == hashOf(last) {
			break
		}
	}
	e.none(500 * time.Millisecond)
	if n := len(got) - 1; n < minSplits || n > maxSplits {
		t.Fatalf("%d changes for %d to %d bursts: %+v", len(got), minSplits+1, maxSplits+1, got)
	}
}

// TestWatchNoise: touching the file, rewriting the same content and other
// files in the directory report nothing.
func TestWatchNoise(t *testing.T) {
	e := startWatch(t, WatchOptions{Debounce: 20 * time.Millisecond, Poll: -1}, plainFile("a = 1\n"))
	now := time.Now()
	must(t, os.Chtimes(e.path, now, now))
	must(t, os.WriteFile(e.path, []byte("a = 1\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(e.dir, "jetai.hcl~"), []byte("backup"), 0o644))
	must(t, os.WriteFile(filepath.Join(e.dir, "4913"), nil, 0o644))
	must(t, os.Chmod(e.path, 0o600))
	e.none(300 * time.Millisecond)
}

// TestWatchDeleteAndReturn: a deleted file is one Deleted change; its
// return is a change again, even with the old content.
func TestWatchDeleteAndReturn(t *testing.T) {
	e := startWatch(t, WatchOptions{Debounce: 20 * time.Millisecond, Poll: -1}, plainFile("a = 1\n"))
	must(t, os.Remove(e.path))
	if c := e.next(5 * time.Second); !c.Deleted {
		t.Fatalf("after the delete: %+v", c)
	}
	e.none(200 * time.Millisecond)
	must(t, os.WriteFile(e.path, []byte("a = 1\n"), 0o644))
	if c := e.next(5 * time.Second); c.Deleted || c.Hash != hashOf("a = 1\n") {
		t.Fatalf("after the return: %+v", c)
	}
}

// TestWatchPoll: without inotify (a bind mount or NFS that sends no
// events) the fingerprint poll finds the change.
func TestWatchPoll(t *testing.T) {
	e := startWatch(t, WatchOptions{NoNotify: true, Poll: 50 * time.Millisecond}, plainFile("a = 1\n"))
	must(t, os.WriteFile(e.path, []byte("a = 2\n"), 0o644))
	if c := e.next(5 * time.Second); c.Hash != hashOf("a = 2\n") || c.Cause != "poll" {
		t.Fatalf("%+v", c)
	}
}

// TestWatchStartsFromInitial: a change made before the watch started (the
// file differs from the content in force) is reported at once.
func TestWatchStartsFromInitial(t *testing.T) {
	e := startWatch(t, WatchOptions{Poll: -1, Initial: hashOf("a = 1\n")}, plainFile("a = 2\n"))
	if c := e.next(5 * time.Second); c.Hash != hashOf("a = 2\n") || c.Cause != "start" {
		t.Fatalf("%+v", c)
	}
}

// TestWatchMaxDelay: events that never stop still give a change after
// MaxDelay.
func TestWatchMaxDelay(t *testing.T) {
	e := startWatch(t, WatchOptions{Debounce: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond, Poll: -1}, plainFile("a = 1\n"))
	must(t, os.WriteFile(e.path, []byte("a = 2\n"), 0o644))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				os.WriteFile(filepath.Join(e.dir, "noise"), []byte{byte(i)}, 0o644)
			}
		}
	}()
	if c := e.next(2 * time.Second); c.Hash != hashOf("a = 2\n") {
		t.Fatalf("%+v", c)
	}
}
