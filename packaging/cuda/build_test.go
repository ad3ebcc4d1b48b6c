// Package cuda_test checks packaging/cuda/build.sh where it can run without
// the CUDA toolkit; the build itself runs on a GPU machine (check.sh).
package cuda_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Without nvcc, make cuda-backend stops before any work and says how to
// get the toolkit on both targets.
func TestBuildWithoutNVCC(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		cmd := exec.Command("sh", "build.sh")
		cmd.Env = append(os.Environ(), "ARCH="+arch, "NVCC=/nonexistent/nvcc")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("%s: build.sh without nvcc: err = %v, want exit status 2\n%s", arch, err, out)
		}
		for _, want := range []string{"nvcc (the CUDA compiler) was not found", "non-free", "nvidia-cuda-toolkit", "cuda-toolkit-12"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: message lacks %q:\n%s", arch, want, out)
			}
		}
		if _, err := os.Stat("../../.cache/cuda"); err == nil && strings.Contains(string(out), "cmake") {
			t.Errorf("%s: build.sh reached cmake without nvcc", arch)
		}
	}
	cmd := exec.Command("sh", "build.sh")
	cmd.Env = append(os.Environ(), "ARCH=riscv64")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "ARCH must be amd64 or arm64") {
		t.Errorf("ARCH=riscv64: err = %v, out %s", err, out)
	}
}
