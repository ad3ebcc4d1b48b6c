// Package promtool runs Prometheus's `promtool check metrics` on an
// exposition in tests. promtool comes from Debian's prometheus package;
// .ci/run installs it. Without it a test skips, or fails when CI is set.
package promtool

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

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
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, text)
	}
}
