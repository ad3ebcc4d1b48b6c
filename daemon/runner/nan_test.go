package runner_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/modelgen"
)

// TestNaNWeightsAbortCause: a model with a valid header and NaN weights
// loads, then llama.cpp aborts the runner at its first decode. The error
// names the assertion that failed, not the runner's log tail (CPU
// features, tokenizer warnings).
func TestNaNWeightsAbortCause(t *testing.T) {
	spec := modelgen.Tiny()
	spec.NaN = true
	path := filepath.Join(t.TempDir(), "nan.gguf")
	if err := modelgen.Generate(path, spec); err != nil {
		t.Fatal(err)
	}
	p := start(t, path, 1, 256)
	ready(t, p)
	_, err := p.Complete(context.Background(), runner.Request{Prompt: "Once upon a time", Sampling: greedy, MaxTokens: 4}, nil)
	if !errors.Is(err, runner.ErrExited) {
		t.Fatalf("want ErrExited, got %v", err)
	}
	if !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), ".c:") {
		t.Errorf("error %q does not name the failed assertion", err)
	}
	for _, noise := range []string{"CPU.0.", "special_eos_id", "n_ctx_per_seq"} {
		if strings.Contains(err.Error(), noise) {
			t.Errorf("error %q carries the log line with %q", err, noise)
		}
	}
	if c := p.Cause(); !strings.Contains(c, "failed") {
		t.Errorf("Cause() = %q, want the assertion", c)
	}
}
