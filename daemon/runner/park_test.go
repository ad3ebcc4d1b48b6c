package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
)

// TestParkRestore saves a conversation's KV state from one runner and
// restores it into a fresh one: the same prompt then reuses every restored
// token, and the greedy answer is the same as without the restore.
func TestParkRestore(t *testing.T) {
	model := testmodel.Path(t)
	ctx := context.Background()
	p := start(t, model, 2, 256)
	ready(t, p)
	first, err := p.Complete(ctx, runner.Request{Prompt: testmodel.GoldenPrompt, Sampling: greedy, MaxTokens: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	follow := testmodel.GoldenPrompt + first.Text + " One day"
	dir := t.TempDir()
	res, err := p.Park(ctx, runner.ParkRequest{Dir: dir, MaxSlots: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Slots) != 1 || res.Slots[0].Tokens != first.Timings.PromptTokens+first.Timings.GeneratedTokens-1 || res.Bytes == 0 {
		t.Fatalf("park result %+v; want one slot of %d tokens", res, first.Timings.PromptTokens+first.Timings.GeneratedTokens-1)
	}

	// Without a restore: nothing cached.
	cold := start(t, model, 2, 256)
	ready(t, cold)
	want, err := cold.Complete(ctx, runner.Request{Prompt: follow, Sampling: greedy, MaxTokens: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want.Timings.CachedTokens != 0 {
		t.Fatalf("fresh runner reused %d tokens", want.Timings.CachedTokens)
	}

	warm := start(t, model, 2, 256)
	ready(t, warm)
	// A garbage file beside the good one is skipped, not fatal.
	os.WriteFile(filepath.Join(dir, "bad.state"), []byte("not a state file"), 0o600)
	rr, err := warm.Restore(ctx, runner.RestoreRequest{Dir: dir, Files: []string{"bad.state", res.Slots[0].File}})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Restored != 1 || rr.Tokens != res.Slots[0].Tokens || len(rr.Failed) != 1 {
		t.Fatalf("restore result %+v", rr)
	}
	got, err := warm.Complete(ctx, runner.Request{Prompt: follow, Sampling: greedy, MaxTokens: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Timings.CachedTokens != res.Slots[0].Tokens {
		t.Fatalf("resumed conversation reused %d tokens, want %d", got.Timings.CachedTokens, res.Slots[0].Tokens)
	}
	if got.Text != want.Text {
		t.Fatalf("restored state changed the answer:\n got %q\nwant %q", got.Text, want.Text)
	}

	// State longer than the slot context does not load; the runner carries on.
	other := start(t, model, 1, 16)
	ready(t, other)
	rr, err = other.Restore(ctx, runner.RestoreRequest{Dir: dir, Files: []string{res.Slots[0].File}})
	if err != nil || rr.Restored != 0 || len(rr.Failed) != 1 {
		t.Fatalf("restore into a small context: %+v %v", rr, err)
	}
	if _, err := other.Complete(ctx, runner.Request{Prompt: "Once", Sampling: greedy, MaxTokens: 5}, nil); err != nil {
		t.Fatalf("runner unusable after a failed restore: %v", err)
	}
	// State saved with another KV cache type is refused by name, file
	// unread; the runner carries on.
	rr, err = other.Restore(ctx, runner.RestoreRequest{Dir: dir, Files: []string{res.Slots[0].File}, KVType: "q8_0"})
	if err != nil || rr.Restored != 0 || len(rr.Failed) != 1 || !strings.Contains(rr.Failed[0], "saved with a q8_0 KV cache; this runner's is f16") {
		t.Fatalf("restore of q8_0 state into an f16 cache: %+v %v", rr, err)
	}
	if _, err := other.Complete(ctx, runner.Request{Prompt: "Once", Sampling: greedy, MaxTokens: 5}, nil); err != nil {
		t.Fatalf("runner unusable after a refused restore: %v", err)
	}
	// Bad requests.
	if _, err := warm.Park(ctx, runner.ParkRequest{Dir: "relative"}); err == nil {
		t.Fatal("relative park dir accepted")
	}
	if _, err := warm.Restore(ctx, runner.RestoreRequest{Dir: dir, Files: []string{"../x"}}); err == nil {
		t.Fatal("path in restore file name accepted")
	}
}
