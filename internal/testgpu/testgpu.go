// Package testgpu builds ggml backend libraries for tests that exercise the
// GPU path without a GPU: a fake device (testdata/fakegpu.cpp: type GPU,
// host-memory buffers, no supported op, memory it reports) and a library
// that cannot load (an unresolvable dependency). Both are compiled with the
// system's g++ against the ggml headers of the pinned module.
package testgpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// FakeLib is the file name Dir gives the fake backend.
const FakeLib = "libggml-fakegpu.so"

// BrokenLib is the file name of the library AddBroken writes.
const BrokenLib = "libggml-broken.so"

// MissingDep is the library BrokenLib needs and nobody has.
const MissingDep = "libjetai-missing-dep.so"

func ggmlDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/ollama/ollama").Output()
	if err != nil {
		t.Fatalf("testgpu: locate github.com/ollama/ollama: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "ml", "backend", "ggml", "ggml")
}

func source() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "fakegpu.cpp")
}

// Dir returns a new directory holding the fake backend as FakeLib.
func Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	g := ggmlDir(t)
	cmd := exec.Command("g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-fvisibility=hidden",
		"-I"+filepath.Join(g, "include"), "-I"+filepath.Join(g, "src"),
		source(), "-o", filepath.Join(dir, FakeLib))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testgpu: build fake backend: %v\n%s", err, out)
	}
	return dir
}

// AddBroken writes BrokenLib into dir: a library that needs MissingDep,
// which is then removed, so loading it fails the way a CUDA backend without
// libcudart does.
func AddBroken(t testing.TB, dir string) {
	t.Helper()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "dep.c")
	if err := os.WriteFile(src, []byte("int jetai_missing_dep(void) { return 1; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(tmp, "broken.c")
	if err := os.WriteFile(main, []byte("int jetai_missing_dep(void);\nint ggml_backend_score(void) { return jetai_missing_dep(); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{"gcc", "-shared", "-fPIC", src, "-o", filepath.Join(tmp, MissingDep)},
		{"gcc", "-shared", "-fPIC", main, "-o", filepath.Join(dir, BrokenLib), "-L" + tmp, "-l:" + MissingDep},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("testgpu: %s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	os.Remove(filepath.Join(tmp, MissingDep))
}
