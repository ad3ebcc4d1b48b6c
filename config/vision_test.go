package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jetai/jetai/modelgen"
)

func TestMmproj(t *testing.T) {
	dir := t.TempDir()
	model := modelgen.Tiny() // embedding length 256
	if err := modelgen.Generate(filepath.Join(dir, "model.gguf"), model); err != nil {
		t.Fatal(err)
	}
	for name, embd := range map[string]int{"proj.gguf": model.Embd, "wide.gguf": model.Embd * 2} {
		if err := modelgen.GenerateProjector(filepath.Join(dir, name), modelgen.TinyProjector(embd)); err != nil {
			t.Fatal(err)
		}
	}
	src := func(spec string) string { return "model \"m\" {\n  path = \"model.gguf\"\n" + spec + "}\n" }

	c := parseIn(t, dir, src("  mmproj = \"proj.gguf\"\n"))
	m := c.Models[0]
	if m.Mmproj != filepath.Join(dir, "proj.gguf") || m.MmprojOffload || m.MmprojFileSize == 0 {
		t.Fatalf("mmproj %q offload %v size %v", m.Mmproj, m.MmprojOffload, m.MmprojFileSize)
	}
	if c.Server.MaxImagePixels != DefaultMaxImagePixels || c.Server.FetchImages {
		t.Fatalf("server defaults: %+v", c.Server)
	}
	c = parseIn(t, dir, src("  mmproj = \"proj.gguf\"\n  mmproj_offload = true\n"))
	if !c.Models[0].MmprojOffload {
		t.Fatal("mmproj_offload = true not read")
	}
	c = parseIn(t, dir, "server {\n  fetch_images = true\n  max_image_pixels = 1000000\n}\n"+src(""))
	if !c.Server.FetchImages || c.Server.MaxImagePixels != 1000000 || c.Models[0].Mmproj != "" {
		t.Fatalf("server %+v, mmproj %q", c.Server, c.Models[0].Mmproj)
	}

	for name, tc := range map[string]struct{ src, want string }{
		"missing":   {src("  mmproj = \"nope.gguf\"\n"), "jetai.hcl:3:12: mmproj " + filepath.Join(dir, "nope.gguf") + " of model \"m\" does not exist"},
		"empty":     {src("  mmproj = \" \"\n"), "jetai.hcl:3:12: mmproj of model \"m\" is empty"},
		"directory": {src("  mmproj = \".\"\n"), "jetai.hcl:3:12: mmproj " + dir + " of model \"m\" is a directory"},
		"mismatch":  {src("  mmproj = \"wide.gguf\"\n"), "jetai.hcl:3:12: mmproj " + filepath.Join(dir, "wide.gguf") + " makes embeddings of 512 values, but model \"m\" (" + filepath.Join(dir, "model.gguf") + ") has an embedding length of 256"},
		"not clip":  {src("  mmproj = \"model.gguf\"\n"), "jetai.hcl:3:12: mmproj " + filepath.Join(dir, "model.gguf") + " of model \"m\": not a CLIP vision projector"},
		"pixels":    {"server {\n  max_image_pixels = 0\n}\n" + src(""), "jetai.hcl:2:22: max_image_pixels is 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), filepath.Join(dir, "jetai.hcl"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}

	// Reload: a projector added, removed or moved to the GPU restarts the runner.
	old := parseIn(t, dir, src(""))
	for _, tc := range []struct {
		spec   string
		fields []string
	}{
		{"  mmproj = \"proj.gguf\"\n", []string{"mmproj"}},
		{"  mmproj = \"proj.gguf\"\n  mmproj_offload = true\n", []string{"mmproj", "mmproj_offload"}},
	} {
		p := Diff(old, parseIn(t, dir, src(tc.spec)))
		if len(p.Restarted) != 1 || !slices.Equal(fieldNames(p.Restarted[0].Fields), tc.fields) {
			t.Fatalf("%q: plan %+v", tc.spec, p)
		}
	}
}
