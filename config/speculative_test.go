package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jetai/jetai/modelgen"
)

func TestSpeculativeBlock(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string, s modelgen.Spec) {
		if err := modelgen.Generate(filepath.Join(dir, name), s); err != nil {
			t.Fatal(err)
		}
	}
	target := modelgen.Tiny()
	draft := target
	draft.Embd, draft.FF, draft.Layers, draft.Heads, draft.HeadsKV = 256, 256, 1, 2, 1
	other := target
	other.Vocab = 1024
	gen("target.gguf", target)
	gen("draft.gguf", draft)
	gen("other.gguf", other)
	src := func(spec string) string {
		return "model \"m\" {\n  path = \"target.gguf\"\n" + spec + "}\nmodel \"small\" {\n  path = \"draft.gguf\"\n}\n"
	}

	c := parseIn(t, dir, src("  speculative {\n    draft = \"small\"\n    max_draft = 4\n  }\n"))
	s := c.Models[0].Speculative
	if !s.NGram || s.MaxDraft != 4 || s.Draft != filepath.Join(dir, "draft.gguf") || s.DraftModel != "small" || !s.On() || s.DraftFileSize == 0 {
		t.Fatalf("speculative %+v", s)
	}
	if c.Models[1].Speculative.On() {
		t.Fatal("a model without the block speculates")
	}
	c = parseIn(t, dir, src("  speculative {}\n"))
	if s := c.Models[0].Speculative; !s.NGram || s.MaxDraft != DefaultSpecMaxDraft || s.Draft != "" {
		t.Fatalf("defaults %+v", s)
	}
	c = parseIn(t, dir, src("  speculative {\n    draft = \"draft.gguf\"\n    ngram = false\n  }\n"))
	if s := c.Models[0].Speculative; s.NGram || s.Draft != filepath.Join(dir, "draft.gguf") || s.DraftModel != "" {
		t.Fatalf("draft by path %+v", s)
	}

	for name, tc := range map[string]struct{ spec, want string }{
		"max_draft":  {"  speculative {\n    max_draft = 99\n  }\n", "jetai.hcl:4:17: max_draft is 99; max_draft must be from 0 (off) to 32"},
		"vocabulary": {"  speculative {\n    draft = \"other.gguf\"\n  }\n", "jetai.hcl:4:13: speculative draft " + filepath.Join(dir, "other.gguf") + " cannot draft for model \"m\": its vocabulary differs (1024 tokens, not 768)"},
		"itself":     {"  speculative {\n    draft = \"m\"\n  }\n", "jetai.hcl:4:13: model \"m\" cannot draft for itself"},
		"empty":      {"  speculative {\n    draft = \"\"\n  }\n", "jetai.hcl:4:13: speculative draft of model \"m\" is empty"},
		"directory":  {"  speculative {\n    draft = \".\"\n  }\n", "is a directory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(src(tc.spec)), filepath.Join(dir, "jetai.hcl"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}

	// A missing draft is a warning: the model is unavailable until it is
	// there.
	c = parseIn(t, dir, src("  speculative {\n    draft = \"nope.gguf\"\n  }\n"))
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), "jetai.hcl:4:13: warning: speculative draft of model \"m\"") || c.Models[0].FileError == "" {
		t.Fatalf("warnings %v, file error %q", c.Warnings, c.Models[0].FileError)
	}

	// Reload: a new draft restarts the runner; ngram and max_draft do not.
	old := parseIn(t, dir, src("  speculative {\n    max_draft = 4\n  }\n"))
	for _, tc := range []struct {
		spec    string
		restart bool
		fields  []string
	}{
		{"  speculative {\n    max_draft = 8\n  }\n", false, []string{"speculative.max_draft"}},
		{"  speculative {\n    max_draft = 4\n    ngram = false\n  }\n", false, []string{"speculative.ngram"}},
		{"", false, []string{"speculative.ngram", "speculative.max_draft"}},
		{"  speculative {\n    max_draft = 4\n    draft = \"small\"\n  }\n", true, []string{"speculative.draft"}},
	} {
		p := Diff(old, parseIn(t, dir, src(tc.spec)))
		changes := p.Updated
		if tc.restart {
			changes = p.Restarted
		}
		if len(changes) != 1 || changes[0].Name != "m" || !slices.Equal(fieldNames(changes[0].Fields), tc.fields) {
			t.Fatalf("%q: plan %+v", tc.spec, p)
		}
	}
}
