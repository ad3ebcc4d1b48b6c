package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// TestUnavailableModel: a model whose file is missing (the config only
// warns) is listed as unavailable with the file and what to do; requests
// and loads for it fail at once with an UnavailableError while the other
// model serves on untouched; a file that is not GGUF is unavailable too;
// once a GGUF file is copied into place the next load loads it, with an
// estimate read from the new file.
func TestUnavailableModel(t *testing.T) {
	dir := t.TempDir()
	later := filepath.Join(dir, "later.gguf")
	p := newPool(t, memBlock("1GiB", "1MiB")+
		modelBlock("good", realModel(t), "preload = true")+
		modelBlock("gone", later, "preload = true"), nil)
	ctx := context.Background()
	good := waitState(t, p, "good", StateReady, 60*time.Second)

	// Preloads go one at a time: "gone" is tried after "good" and passes
	// through loading until its file check fails.
	s := waitState(t, p, "gone", StateUnavailable, 10*time.Second)
	if s.State != StateUnavailable || s.Pid != 0 || s.ChargedBytes != 0 {
		t.Fatalf("gone: %+v", s)
	}
	for _, f := range []string{`model "gone" is unavailable`, later + " does not exist", "jetai-ctl import"} {
		if !strings.Contains(s.LastError, f) {
			t.Errorf("last error %q lacks %q", s.LastError, f)
		}
	}
	// No file, no size: the estimate is the runner overhead alone.
	if s.Estimate.Weights != 0 || s.EstimatedBytes != s.Estimate.Overhead || s.EstimatedBytes == 0 {
		t.Errorf("estimate of a missing file: %+v", s.Estimate)
	}

	unavailable := func(err error, frag string) {
		t.Helper()
		var ue *UnavailableError
		if !errors.As(err, &ue) || ue.Model != "gone" || !strings.Contains(err.Error(), frag) {
			t.Errorf("want UnavailableError with %q, got %v", frag, err)
		}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Complete(ctx, "gone", short, nil)
			unavailable(err, "does not exist")
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("requests for a missing file took %v; they must fail at once", d)
	}
	unavailable(p.Load(ctx, "gone"), "does not exist")
	if _, err := p.Complete(ctx, "good", short, nil); err != nil {
		t.Fatalf("good: %v", err)
	}
	if s := state(t, p, "good"); s.State != StateReady || s.Pid != good.Pid || s.Evictions != 0 {
		t.Errorf("good was disturbed: %+v", s)
	}
	if s := state(t, p, "gone"); s.State != StateUnavailable || s.Failures != 4 {
		t.Errorf("gone after requests: state %s failures %d", s.State, s.Failures)
	}

	// Something that is not a model at the path.
	if err := os.WriteFile(later, []byte("not a model\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unavailable(p.Load(ctx, "gone"), "is not a GGUF file")
	if s := state(t, p, "gone"); s.State != StateUnavailable || !strings.Contains(s.LastError, "put a GGUF model file there") {
		t.Errorf("not GGUF: %+v", s)
	}

	// The model arrives: the next load takes it.
	copyModel(t, realModel(t), dir, "later.gguf")
	if err := p.Load(ctx, "gone"); err != nil {
		t.Fatalf("load once the file is there: %v", err)
	}
	s = state(t, p, "gone")
	if s.State != StateReady || s.LastError != "" || s.Estimate.Weights == 0 {
		t.Errorf("gone once loaded: %+v", s)
	}
	if _, err := p.Complete(ctx, "gone", short, nil); err != nil {
		t.Errorf("request once loaded: %v", err)
	}
}

// TestUnavailableAdapter: a model whose adapter file is missing is
// unavailable the same way (the error names the adapter file), and loads
// once the adapter is there.
func TestUnavailableAdapter(t *testing.T) {
	dir := t.TempDir()
	spec := modelgen.Tiny()
	base := testmodel.Gen(t, spec)
	lora := filepath.Join(dir, "tiny-lora.gguf")
	p := newPool(t, modelBlock("tuned", base, fmt.Sprintf("adapter {\n  path = %q\n}", lora)), nil)
	ctx := context.Background()
	s := state(t, p, "tuned")
	if s.State != StateUnavailable || !strings.Contains(s.LastError, `model "tuned" is unavailable: adapter file `+lora+" does not exist; copy the adapter's GGUF file there") {
		t.Fatalf("tuned: %+v", s)
	}
	var ue *UnavailableError
	if _, err := p.Complete(ctx, "tuned", short, nil); !errors.As(err, &ue) || !strings.Contains(err.Error(), lora) {
		t.Fatalf("request: want UnavailableError naming the adapter, got %v", err)
	}
	if err := modelgen.GenerateLoRA(lora, modelgen.LoRA{Base: spec, Rank: 8, StdDev: 0.5, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Complete(ctx, "tuned", short, nil); err != nil {
		t.Fatalf("request once the adapter is there: %v", err)
	}
}
