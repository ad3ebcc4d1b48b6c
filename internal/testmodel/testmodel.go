// Package testmodel gives tests their models: the real tiny model
// (stories260K.gguf from ../shared/models), failing rather than skipping
// when it is missing under CI, and generated models of any shape, cached
// under the repository's .cache/models.
package testmodel

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/jetai/jetai/modelgen"
)

// Env names the variable that points at the model.
const Env = "JETAI_TEST_MODEL"

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
		}
		t.Skipf("real test model not found (%v); set %s to stories260K.gguf to run this test", err, Env)
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
