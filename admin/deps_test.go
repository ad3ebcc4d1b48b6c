package admin_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDeps: package admin is the protocol and nothing else. It links only
// the standard library, so its wire types cannot drift into the daemon's
// internal structs and its clients (jetai-ctl) stay small.
func TestDeps(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("go list: odd line %q", line)
		}
		n++
		if f[1] == "false" && f[0] != "github.com/jetai/jetai/admin" {
			t.Errorf("package admin links %s; it may use only the standard library", f[0])
		}
	}
	if n < 10 {
		t.Fatalf("go list found %d packages; want admin's whole graph", n)
	}
}
