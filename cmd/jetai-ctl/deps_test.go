package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDeps keeps jetai-ctl a small pure-Go client of the admin socket: it
// must not link the engine (llama.cpp), the config parser (HCL) or the
// file watcher, nor any package with cgo, and it must build with
// CGO_ENABLED=0. The daemon's parts reach it only as package admin's wire
// types.
func TestDeps(t *testing.T) {
	forbidden := []string{
		"github.com/jetai/jetai/daemon/",
		"github.com/jetai/jetai/config",
		"github.com/jetai/jetai/bench",
		"github.com/ollama/ollama",
		"github.com/hashicorp/hcl",
		"github.com/fsnotify/fsnotify",
	}
	// With cgo on, as the project builds: no package outside the standard
	// library has cgo files.
	for _, line := range goList(t, "1", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("go list: odd line %q", line)
		}
		for _, p := range forbidden {
			if f[0] == strings.TrimSuffix(p, "/") || strings.HasPrefix(f[0], p) {
				t.Errorf("jetai-ctl links %s", f[0])
			}
		}
		if f[1] == "false" && f[2] != "0" {
			t.Errorf("jetai-ctl links %s, which uses cgo", f[0])
		}
	}
	// With cgo off: every dependency still builds.
	for _, line := range goList(t, "0", "{{if .Error}}{{.ImportPath}}: {{.Error}}{{end}}") {
		if line != "" {
			t.Errorf("jetai-ctl without cgo: %s", line)
		}
	}
}

func goList(t *testing.T, cgo, format string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gobin, "list", "-e", "-deps", "-f", format, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list (CGO_ENABLED=%s): %v", cgo, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if cgo == "1" && len(lines) < 10 {
		t.Fatalf("go list found %d packages; want jetai-ctl's whole graph", len(lines))
	}
	return lines
}
