package testmodel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands for the test Path is called from: it records a skip or
// a failure instead of ending the test.
type recorder struct {
	testing.TB
	name            string
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Name() string                 { return r.name }
func (r *recorder) Logf(string, ...any)          {}
func (r *recorder) Skip(args ...any)             { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

// TestMissingModel: without the model a test skips and says so in the
// skip log (one line per call, the binary and the top-level test named);
// under CI it fails instead and logs nothing.
func TestMissingModel(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "skips.txt")
	t.Setenv(Env, filepath.Join(dir, "nope.gguf"))
	t.Setenv(SkipLogEnv, log)
	t.Setenv("CI", "")
	for _, name := range []string{"TestA", "TestB/sub"} {
		r := &recorder{name: name}
		Path(r)
		if r.failed != "" || !strings.Contains(r.skipped, "real test model not found") {
			t.Fatalf("%s: skipped %q, failed %q", name, r.skipped, r.failed)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Base(os.Args[0])
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], bin+" TestA\treal test model not found") ||
		!strings.HasPrefix(lines[1], bin+" TestB\t") {
		t.Fatalf("skip log:\n%s", b)
	}

	t.Setenv("CI", "true")
	os.Remove(log)
	r := &recorder{name: "TestC"}
	Path(r)
	if !strings.Contains(r.failed, "CI must not skip") {
		t.Fatalf("under CI: skipped %q, failed %q", r.skipped, r.failed)
	}
	if _, err := os.Stat(log); err == nil {
		t.Fatal("a failure under CI was logged as a skip")
	}
}
