package pool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// TestAdapterServedAsOwnModel: a model block with an adapter is its own
// model (own runner) whose answers differ from the base model's, while the
// base model's answers stay what they were; an adapter for another base
// fails that model's load with llama.cpp's reason and nothing else.
func TestAdapterServedAsOwnModel(t *testing.T) {
	dir := t.TempDir()
	spec := modelgen.Tiny()
	base := testmodel.Gen(t, spec)
	lora := filepath.Join(dir, "tiny-lora.gguf")
	if err := modelgen.GenerateLoRA(lora, modelgen.LoRA{Base: spec, Rank: 8, StdDev: 0.5, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "small-lora.gguf")
	if err := modelgen.GenerateLoRA(wrong, modelgen.LoRA{Base: modelgen.Small(), Rank: 4, StdDev: 0.1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	hcl := modelBlock("base", base, "") +
		modelBlock("tuned", base, fmt.Sprintf("adapter {\n  path = %q\n  scale = 1.0\n}", lora)) +
		modelBlock("broken", base, fmt.Sprintf("adapter {\n  path = %q\n}", wrong))
	p := newPool(t, hcl, nil)
	ctx := context.Background()
	req := runner.Request{Prompt: "hello world", Sampling: runner.Sampling{Temperature: 0}, MaxTokens: 12, IgnoreEOS: true}
	before, err := p.Complete(ctx, "base", req, nil)
	if err != nil {
		t.Fatal(err)
	}
	tuned, err := p.Complete(ctx, "tuned", req, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, err := p.Complete(ctx, "base", req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if before.Text != after.Text {
		t.Fatalf("base model's answer changed after the adapter model loaded:\n%q\n%q", before.Text, after.Text)
	}
	if tuned.Text == before.Text {
		t.Fatalf("adapter changed nothing: both answered %q", tuned.Text)
	}
	sb, st := state(t, p, "base"), state(t, p, "tuned")
	if sb.Pid == 0 || sb.Pid == st.Pid {
		t.Fatalf("base and tuned share a runner (pids %d, %d)", sb.Pid, st.Pid)
	}
	_, err = p.Complete(ctx, "broken", req, nil)
	var lf *LoadFailedError
	if !errors.As(err, &lf) || !strings.Contains(err.Error(), "adapter") {
		t.Fatalf("adapter for another base: err = %v, want a load failure naming the adapter", err)
	}
	if _, err := p.Complete(ctx, "tuned", req, nil); err != nil {
		t.Fatalf("tuned after broken failed: %v", err)
	}
}
