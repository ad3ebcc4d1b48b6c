package dropin_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/dropin"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

type coded interface {
	Code() string
	HTTPStatus() int
}

func codeOf(err error) (string, int) {
	var c coded
	if errors.As(err, &c) {
		return c.Code(), c.HTTPStatus()
	}
	return "", 0
}

func params(t *testing.T) gguf.Params {
	t.Helper()
	g, err := gguf.Open(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Params()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func est(p gguf.Params, ctx, par int) uint64 {
	return pool.EstimateParams(p, config.Model{Context: ctx, Parallel: par, KVCache: "f16"}, pool.DefaultRunnerOverhead).Total
}

// FitContext on the real tiny model (trained context 2048): the trained
// context when the budget holds it, otherwise the largest multiple of 256
// that fits, fewer slots when even 512 tokens do not fit four, and a clear
// refusal when nothing fits.
func TestFitContext(t *testing.T) {
	p := params(t)
	if p.ContextLength != 2048 {
		t.Fatalf("trained context %d; the test expects the real stories260K (2048)", p.ContextLength)
	}
	full := est(p, 2048, config.DefaultParallel)
	f, err := dropin.FitContext(p, 6<<30, "f16", "")
	if err != nil || f.Context != 2048 || f.Parallel != config.DefaultParallel || f.TrainedContext != 2048 || f.Estimate.Total != full || !strings.Contains(f.Reason, "the trained context") {
		t.Fatalf("roomy budget: %+v, %v", f, err)
	}

	// A budget between the estimates at 1024 and 1280 tokens: 1024.
	budget := (est(p, 1024, 4) + est(p, 1280, 4)) / 2
	f, err = dropin.FitContext(p, budget, "f16", "")
	if err != nil || f.Context != 1024 || f.Parallel != 4 || f.Estimate.Total > budget || !strings.Contains(f.Reason, "capped from the trained 2048") {
		t.Fatalf("budget %d: %+v, %v", budget, f, err)
	}

	// 512 tokens do not fit four slots but fit two.
	budget = est(p, 512, 2)
	if est(p, 512, 4) <= budget {
		t.Fatal("the tiny model's KV cache is too small for this case")
	}
	f, err = dropin.FitContext(p, budget, "f16", "")
	if err != nil || f.Parallel != 2 || f.Context < 512 || f.Estimate.Total > budget {
		t.Fatalf("budget %d: %+v, %v", budget, f, err)
	}

	_, err = dropin.FitContext(p, 1<<20, "f16", "")
	if code, status := codeOf(err); code != "exceeds_budget" || status != http.StatusInsufficientStorage || !strings.Contains(err.Error(), "raise memory.budget") {
		t.Fatalf("a 1 MiB budget: %v (%s %d)", err, code, status)
	}
}

// FitContext with a projector counts it: a budget that holds the whole
// trained context without one caps the context with it, the estimate
// within the budget and the projector in it; a projector file that is
// gone is a clear error.
func TestFitContextProjector(t *testing.T) {
	p := params(t)
	spec := modelgen.TinyProjector(int(p.EmbeddingLength))
	spec.ImageSize, spec.PatchSize = 336, 14 // a compute buffer of some MiB
	proj := filepath.Join(t.TempDir(), "mmproj.gguf")
	if err := modelgen.GenerateProjector(proj, spec); err != nil {
		t.Fatal(err)
	}
	// What the model with its projector needs at 1024 tokens: the whole
	// trained context fits it without the projector.
	budget := pool.EstimateParams(p, config.Model{Context: 1024, Parallel: config.DefaultParallel, KVCache: "f16", Mmproj: proj}, pool.DefaultRunnerOverhead).Total
	if est(p, 2048, config.DefaultParallel) > budget {
		t.Fatal("the projector is too small for this case")
	}
	cases := []struct {
		name, mmproj string
		capped       bool
		err          string
	}{
		{"text only", "", false, ""},
		{"with the projector", proj, true, ""},
		{"projector gone", proj + ".gone", false, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := dropin.FitContext(p, budget, "f16", tc.mmproj)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Estimate.Total > budget || (f.Context < 2048) != tc.capped || (f.Estimate.Projector > 0) != (tc.mmproj != "") {
				t.Fatalf("budget %d: %+v", budget, f)
			}
			if tc.mmproj != "" && (f.Context != 1024 || !strings.Contains(f.Reason, "beside the projector's")) {
				t.Errorf("context %d (want 1024), reason %q", f.Context, f.Reason)
			}
		})
	}
}

// A rendered drop-in is a config that loads, with the comment a person
// reads and the block's settings.
func TestRenderLoads(t *testing.T) {
	model := testmodel.Path(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "jetai.hcl")
	if err := os.WriteFile(conf, []byte("memory { budget = \"1GiB\" }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := dropin.FitContext(params(t), 1<<30, "f16", "")
	if err != nil {
		t.Fatal(err)
	}
	f.KVCache = "f16"
	sum := strings.Repeat("ab", 32)
	at := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	content := dropin.Render(dropin.Block{Name: "chat", Path: model, Source: "hf.co/o/r:Q4_K_M", SHA256: sum, Added: at, Facts: "llama, F32", Fit: f})
	for _, want := range []string{"# source: hf.co/o/r:Q4_K_M\n", "# sha256: " + sum + "\n", "2026-03-04 05:06 UTC", "# llama, F32\n", "jetai-ctl rm chat"} {
		if !strings.Contains(string(content), want) {
			t.Errorf("drop-in lacks %q:\n%s", want, content)
		}
	}
	file, err := dropin.Write(config.DropInDir(conf), "chat", content)
	if err != nil || file != filepath.Join(dir, "jetai.d", "chat.hcl") {
		t.Fatalf("Write: %s, %v", file, err)
	}
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatalf("the drop-in does not load: %v\n%s", err, content)
	}
	m, ok := cfg.Lookup("chat")
	if !ok || m.Path != model || m.Context != f.Context || m.Parallel != f.Parallel || m.KVCache != "f16" || m.File != file {
		t.Fatalf("model %+v", m)
	}
}

// Write never replaces a file and leaves no temporary file behind.
func TestWriteRefusesExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jetai.d")
	if _, err := dropin.Write(dir, "a", []byte("# one\n")); err != nil {
		t.Fatal(err)
	}
	_, err := dropin.Write(dir, "a", []byte("# two\n"))
	if code, status := codeOf(err); code != "name_taken" || status != http.StatusConflict {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.hcl")); string(b) != "# one\n" {
		t.Fatalf("the first file was changed: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	if err := dropin.Remove(filepath.Join(dir, "a.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := dropin.Remove(filepath.Join(dir, "a.hcl")); err != nil {
		t.Fatalf("removing a file already gone: %v", err)
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"chat": true, "llama3.2:1b": true, "Qwen2.5-0.5B_instruct": true,
		"": false, "auto": false, ".hidden": false, "-x": false, "a/b": false, "a b": false, "../x": false,
		strings.Repeat("x", 65): false, "é": false,
	} {
		err := dropin.CheckName(name)
		if (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
		if code, status := codeOf(err); err != nil && (code != "invalid_name" || status != 400) {
			t.Errorf("%q: %s %d", name, code, status)
		}
	}
}
