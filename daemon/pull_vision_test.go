package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/internal/testhub"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// TestPullAddsProjector: a repo with a vision projector beside the model
// gets a drop-in whose model block names it, when its width is the
// model's; one of another width is left out and the model added for text.
func TestPullAddsProjector(t *testing.T) {
	dir := t.TempDir()
	hub := testhub.New(t)
	model := chatTiny(t, 61)
	gen := func(name string, embd int) string {
		p := filepath.Join(t.TempDir(), name)
		if err := modelgen.GenerateProjector(p, modelgen.TinyProjector(embd)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hub.AddRepo(t, "org/Vision-GGUF", map[string]string{"Vision-Q8_0.gguf": model, "mmproj-Vision-F16.gguf": gen("good.gguf", modelgen.Tiny().Embd)}, false)
	hub.AddRepo(t, "org/Wrong-GGUF", map[string]string{"Wrong-Q8_0.gguf": chatTiny(t, 62), "mmproj-Wrong-F16.gguf": gen("wrong.gguf", 2*modelgen.Tiny().Embd)}, false)
	_, _, sock := pullDaemon(t, dir, hub, testmodel.Path(t))
	for _, tc := range []struct {
		repo, name string
		mmproj     bool
	}{
		{"hf.co/org/Vision-GGUF:Q8_0", "eyes", true},
		{"hf.co/org/Wrong-GGUF:Q8_0", "blind", false},
	} {
		if code, out, errs := ctlRun(sock, "pull", tc.repo, "--add", tc.name); code != 0 {
			t.Fatalf("pull %s: exit %d\n%s%s", tc.repo, code, out, errs)
		}
		dropIn := filepath.Join(dir, "jetai.d", tc.name+".hcl")
		b, err := os.ReadFile(dropIn)
		if err != nil {
			t.Fatal(err)
		}
		dc, err := config.Parse(b, dropIn)
		if err != nil || len(dc.Models) != 1 {
			t.Fatalf("drop-in: %v\n%s", err, b)
		}
		if got := dc.Models[0].Mmproj != ""; got != tc.mmproj || strings.Contains(string(b), "mmproj") != tc.mmproj {
			t.Fatalf("%s: mmproj %q, want one: %v\n%s", tc.repo, dc.Models[0].Mmproj, tc.mmproj, b)
		}
	}
}
