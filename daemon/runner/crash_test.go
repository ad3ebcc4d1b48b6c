package runner_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
)

// TestModelFileTruncatedWhileLoaded: a model file written over in place
// (truncated) under a loaded runner makes its mapped weights vanish; the
// runner dies of SIGBUS at its next step. That fails the request and
// leaves the daemon serving, and the error names the signal, the file
// and what to do (not the last lines of the Go crash dump, CPU
// registers).
func TestModelFileTruncatedWhileLoaded(t *testing.T) {
	src, err := os.Open(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "model.gguf")
	dst, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	p := start(t, path, 1, 256)
	ready(t, p)
	if _, err := p.Complete(context.Background(), runner.Request{Prompt: testmodel.GoldenPrompt, Sampling: greedy, MaxTokens: 4}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err = p.Complete(context.Background(), runner.Request{Prompt: "A different prompt, to be evaluated", Sampling: greedy, MaxTokens: 32}, nil)
	if !errors.Is(err, runner.ErrExited) {
		t.Fatalf("want ErrExited, got %v", err)
	}
	for _, want := range []string{"SIGBUS: bus error", path, "truncated or overwritten in place", "(mv)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
