// Package promtool runs Prometheus's `promtool check metrics` on an
// exposition in tests. promtool comes from Debian's prometheus package;
// .ci/run installs it. Without it a test skips, or fails when CI is set.
package promtool

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// fixedNamePrefixes are metric names that another project's convention
// fixes, colon and all: vLLM's, which the Gateway API Inference
// Extension's endpoint picker reads. promtool's lint (exit status 3, after
// a clean parse) says names should not hold ':' (a convention for
// recording rules); that one remark is accepted for these names only.
var fixedNamePrefixes = []string{"vllm:"}

// Check fails t when promtool finds problems in text.
func Check(t testing.TB, text []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not found (%v): CI must install Debian's prometheus package", err)
		}
		t.Skipf("promtool not found (%v); apt-get install prometheus to run this check", err)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 && onlyFixedNames(out) {
		return
	}
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, text)
	}
}

// onlyFixedNames reports whether every lint remark in out is the colon
// remark about a name of fixedNamePrefixes.
func onlyFixedNames(out []byte) bool {
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, remark, _ := strings.Cut(strings.TrimSpace(line), " ")
		fixed := false
		for _, p := range fixedNamePrefixes {
			fixed = fixed || strings.HasPrefix(name, p)
		}
		if !fixed || remark != "metric names should not contain ':'" {
			return false
		}
	}
	return true
}
