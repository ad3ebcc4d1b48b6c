// Package testmodel gives tests their models: the real tiny model
// (stories260K.gguf from ../shared/models), failing rather than skipping
// when it is missing under CI, and generated models of any shape, cached
// under the repository's .cache/models.
package testmodel

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/jetai/jetai/modelgen"
)

// Env names the variable that points at the model.
const Env = "JETAI_TEST_MODEL"

// SkipLogEnv names a file each test skipped for want of the model appends
// one line to ("pkg.test TestName<TAB>reason"; a test may add its line
// more than once), so that `make test` can say at its end how many were
// skipped, which go test's "ok" does not.
const SkipLogEnv = "JETAI_TEST_SKIP_LOG"

// Path returns the path of stories260K.gguf: $JETAI_TEST_MODEL, else
// ../shared/models/stories260K.gguf beside the repository. Without it the
// test is skipped with a message, or fails when CI is set.
func Path(t testing.TB) string {
	t.Helper()
	p := os.Getenv(Env)
	if p == "" {
		_, file, _, _ := runtime.Caller(0)
		p = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "models", "stories260K.gguf")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("real test model missing (%v): CI must not skip real-model tests; set %s", err, Env)
		} else {
			reason := fmt.Sprintf("real test model not found (%v); set %s to stories260K.gguf to run this test", err, Env)
			logSkip(t, reason)
			t.Skip(reason)
		}
	}
	abs, _ := filepath.Abs(p)
	return abs
}

// Golden is the greedy continuation of "Once upon a time" (with BOS) that
// llama.cpp produces for stories260K on each architecture (see the model's
// README): floating-point paths differ between them.
var Golden = map[string]string{
	"amd64": ", there was a little girl named Lily. She loved to play outside in the park.",
	"arm64": " was a little girl named Lily. She loved to play with her toys",
}

// GoldenPrompt is the prompt Golden continues.
const GoldenPrompt = "Once upon a time"

// Gen returns the path of a model generated from spec, made once and
// cached under the repository's .cache/models (see modelgen.Cached).
func Gen(t testing.TB, spec modelgen.Spec) string {
	t.Helper()
	p, err := modelgen.Cached(CacheDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// CacheDir is where generated models are kept: .cache/models in the
// repository.
func CacheDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".cache", "models")
}

// logSkip appends the skip to the file SkipLogEnv names, if any. Lines
// are short and the file is opened for appending, so the test binaries
// that go test runs side by side do not mix their lines.
func logSkip(t testing.TB, reason string) {
	p := os.Getenv(SkipLogEnv)
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Logf("skip log %s: %v", p, err)
		return
	}
	defer f.Close()
	test, _, _ := strings.Cut(t.Name(), "/")
	if _, err := fmt.Fprintf(f, "%s %s\t%s\n", filepath.Base(os.Args[0]), test, reason); err != nil {
		t.Logf("skip log %s: %v", p, err)
	}
}
