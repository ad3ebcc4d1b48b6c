package pool

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// TestCheckedVersionPassed: a load tells its runner the version of the
// model file whose header the pool checked, so that the runner does not
// parse it again; a file rewritten since the config was read is read
// again before the load, and its new version is the one passed.
func TestCheckedVersionPassed(t *testing.T) {
	paths := tinyModels(t, "a")
	var mu sync.Mutex
	var seen []runner.FileVersion
	f := newFakeRunners()
	hcl := "memory {\n  budget = \"2GiB\"\n  reserve = \"1MiB\"\n  warm_spare = false\n}\n" + modelBlock("a", paths["a"], "")
	p := newPool(t, hcl, func(p *Pool) {
		p.newRunner = func(o runner.Options) (Runner, error) {
			mu.Lock()
			seen = append(seen, o.Checked)
			mu.Unlock()
			return f.start(o)
		}
	})
	ctx := context.Background()
	load := func() runner.FileVersion {
		t.Helper()
		if _, err := p.Complete(ctx, "a", short, nil); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1]
	}
	version := func() runner.FileVersion {
		t.Helper()
		fi, err := os.Stat(paths["a"])
		if err != nil {
			t.Fatal(err)
		}
		return runner.FileVersion{Size: fi.Size(), ModTime: fi.ModTime()}
	}

	if got, want := load(), version(); !got.ModTime.Equal(want.ModTime) || got.Size != want.Size {
		t.Fatalf("first load passed %v, want the file's %v", got, want)
	}
	if err := p.Unload(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(paths["a"], later, later); err != nil {
		t.Fatal(err)
	}
	if got, want := load(), version(); !got.ModTime.Equal(want.ModTime) || got.Size != want.Size {
		t.Fatalf("load after a rewrite passed %v, want the new version %v", got, want)
	}
}
