package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAdapterBlocks(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"m.gguf", "lora.gguf", "lora2.gguf"} {
		os.WriteFile(filepath.Join(dir, n), []byte("GGUF\x03\x00\x00\x00"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "text.gguf"), []byte("hello"), 0o644)
	model := func(adapters string) string {
		return "model \"m\" {\n  path = \"m.gguf\"\n" + adapters + "}\n"
	}
	c := parseIn(t, dir, model("  adapter {\n    path = \"lora.gguf\"\n    scale = 0.5\n  }\n  adapter {\n    path = \"lora2.gguf\"\n  }\n"))
	as := c.Models[0].Adapters
	if len(as) != 2 || as[0].Path != filepath.Join(dir, "lora.gguf") || as[0].Scale != 0.5 || as[1].Scale != DefaultAdapterScale || as[0].FileSize != 8 {
		t.Fatalf("adapters %+v", as)
	}

	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	for name, tc := range map[string]struct{ src, want string }{
		"scale":     {model("  adapter {\n    path = \"lora.gguf\"\n    scale = 20\n  }\n"), "jetai.hcl:5:13: adapter scale"},
		"no path":   {model("  adapter {\n    scale = 1\n  }\n"), "path"},
		"empty":     {model("  adapter {\n    path = \"\"\n  }\n"), "jetai.hcl:4:12: adapter of model \"m\" has an empty path"},
		"directory": {model("  adapter {\n    path = \"adir\"\n  }\n"), "jetai.hcl:4:12: adapter path " + filepath.Join(dir, "adir") + " of model \"m\" is a directory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), filepath.Join(dir, "jetai.hcl"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}

	// A missing or non-GGUF adapter file is a warning, like the model's
	// own file: the model is recorded as unavailable (FileError).
	for name, tc := range map[string]struct{ src, want string }{
		"missing file": {model("  adapter {\n    path = \"nope.gguf\"\n  }\n"), "jetai.hcl:4:12: warning: adapter file " + filepath.Join(dir, "nope.gguf") + " of model \"m\" does not exist; the model is unavailable until it is fixed (copy the adapter's GGUF file there)"},
		"not gguf":     {model("  adapter {\n    path = \"text.gguf\"\n  }\n"), "jetai.hcl:4:12: warning: adapter file " + filepath.Join(dir, "text.gguf") + " of model \"m\" is not a GGUF file"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(tc.src), filepath.Join(dir, "jetai.hcl"))
			if err != nil {
				t.Fatalf("error, want a warning: %v", err)
			}
			if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), tc.want) {
				t.Fatalf("warnings %v, want %q", c.Warnings, tc.want)
			}
			if m := c.Models[0]; !strings.HasPrefix(m.FileError, "adapter file ") || m.FileSize == 0 {
				t.Errorf("model: file error %q size %d", m.FileError, m.FileSize)
			}
		})
	}

	// Any adapter change restarts the model.
	base := model("  adapter {\n    path = \"lora.gguf\"\n  }\n")
	for name, src := range map[string]string{
		"added":   model("  adapter {\n    path = \"lora.gguf\"\n  }\n  adapter {\n    path = \"lora2.gguf\"\n  }\n"),
		"removed": model(""),
		"scale":   model("  adapter {\n    path = \"lora.gguf\"\n    scale = 0.9\n  }\n"),
		"path":    model("  adapter {\n    path = \"lora2.gguf\"\n  }\n"),
	} {
		p := Diff(parseIn(t, dir, base), parseIn(t, dir, src))
		if len(p.Restarted) != 1 || p.Restarted[0].Fields[0].Field != "adapters" || !p.Restarted[0].Fields[0].Restart {
			t.Errorf("%s: plan %s", name, p)
		}
	}
	// A replaced adapter file (same path) restarts it too.
	old := parseIn(t, dir, base)
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "lora.gguf"), later, later)
	if p := Diff(old, parseIn(t, dir, base)); len(p.Restarted) != 1 {
		t.Errorf("replaced adapter file: plan %s", p)
	}
	if p := Diff(parseIn(t, dir, base), parseIn(t, dir, base)); !p.Empty() {
		t.Errorf("unchanged adapters: plan %s", p)
	}
}
