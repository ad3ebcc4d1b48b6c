package runner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// visionRunner starts a runner for the test model with a generated
// projector of its width.
func visionRunner(t *testing.T, slots, ctx int) (*runner.Process, modelgen.ProjectorSpec) {
	t.Helper()
	proj, spec := testProjector(t)
	return startVision(t, proj, slots, ctx), spec
}

// testProjector writes a generated projector of the test model's width.
func testProjector(t *testing.T) (string, modelgen.ProjectorSpec) {
	t.Helper()
	f, err := gguf.Open(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	embd, _ := f.Uint("llama.embedding_length")
	spec := modelgen.TinyProjector(int(embd))
	proj := filepath.Join(t.TempDir(), "mmproj.gguf")
	if err := modelgen.GenerateProjector(proj, spec); err != nil {
		t.Fatal(err)
	}
	return proj, spec
}

// startVision starts a runner for the test model with the projector proj.
func startVision(t *testing.T, proj string, slots, ctx int) *runner.Process {
	t.Helper()
	p := startOpts(t, runner.Options{Name: "vision", Model: testmodel.Path(t), Mmproj: proj, Slots: slots, SlotContext: ctx, Threads: threadsForTest, Queue: 16})
	ready(t, p)
	return p
}

func testImage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVisionCompletion(t *testing.T) {
	p, spec := visionRunner(t, 2, 256)
	ctx := context.Background()
	ask := func(images ...[]byte) runner.Result {
		t.Helper()
		res, err := p.Complete(ctx, runner.Request{Prompt: "Once upon a time", Images: images, Sampling: greedy, MaxTokens: 24, IgnoreEOS: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	text := ask()
	grad := ask(testImage(t, "gradient.png"))
	again := ask(testImage(t, "gradient.png"))
	checker := ask(testImage(t, "checker.jpg"))
	if grad.Text == text.Text {
		t.Errorf("the image did not change the answer: %q", grad.Text)
	}
	if again.Text != grad.Text {
		t.Errorf("the same image gave %q, then %q", grad.Text, again.Text)
	}
	if checker.Text == grad.Text {
		t.Errorf("two images gave the same answer %q", grad.Text)
	}
	n := spec.ImageTokens()
	if grad.Timings.ImageTokens != n || grad.Timings.PromptTokens != text.Timings.PromptTokens+n {
		t.Errorf("timings with an image %+v, without %+v: want %d more prompt tokens, all image tokens", grad.Timings, text.Timings, n)
	}
	// The same image and prompt again reuse the KV cache, image included.
	if again.Timings.CachedTokens < n+1 {
		t.Errorf("second identical request reused %d tokens, want at least %d (BOS and the image)", again.Timings.CachedTokens, n+1)
	}
	// Two images: both in the prompt.
	both := ask(testImage(t, "gradient.png"), testImage(t, "checker.jpg"))
	if both.Timings.ImageTokens != 2*n {
		t.Errorf("two images: %d image tokens, want %d", both.Timings.ImageTokens, 2*n)
	}
}

// TestVisionAlongsideText checks that slots generating text go on while
// another slot takes an image, and both answers are whole.
func TestVisionAlongsideText(t *testing.T) {
	p, _ := visionRunner(t, 2, 512)
	ctx := context.Background()
	var wg sync.WaitGroup
	var textRes, imgRes runner.Result
	var err1, err2 error
	wg.Add(2)
	go func() {
		defer wg.Done()
		textRes, err1 = p.Complete(ctx, runner.Request{Prompt: "The little dog", Sampling: greedy, MaxTokens: 120, IgnoreEOS: true}, nil)
	}()
	go func() {
		defer wg.Done()
		imgRes, err2 = p.Complete(ctx, runner.Request{Prompt: "Lily saw", Images: [][]byte{testImage(t, "checker.jpg")}, Sampling: greedy, MaxTokens: 40, IgnoreEOS: true}, nil)
	}()
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	alone, err := p.Complete(ctx, runner.Request{Prompt: "The little dog", Sampling: greedy, MaxTokens: 120, IgnoreEOS: true, Speculative: new(bool)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if textRes.Text != alone.Text || textRes.Timings.GeneratedTokens != 120 || imgRes.Timings.GeneratedTokens != 40 {
		t.Errorf("beside an image: %q (%d tokens), alone %q; image request %d tokens", textRes.Text, textRes.Timings.GeneratedTokens, alone.Text, imgRes.Timings.GeneratedTokens)
	}
}

func TestVisionErrors(t *testing.T) {
	p, _ := visionRunner(t, 1, 96)
	plain := start(t, testmodel.Path(t), 1, 256)
	ready(t, plain)
	for _, tc := range []struct {
		name   string
		p      *runner.Process
		req    runner.Request
		status int
		code   string
		msg    string
	}{
		{"no projector", plain, runner.Request{Prompt: "Hi", Images: [][]byte{testImage(t, "gradient.png")}}, 400, runner.CodeNoVision, "mmproj"},
		{"corrupt", p, runner.Request{Prompt: "Hi", Images: [][]byte{testImage(t, "truncated.png")}}, 400, runner.CodeInvalidImage, "image 1"},
		{"not an image", p, runner.Request{Prompt: "Hi", Images: [][]byte{[]byte("hello")}}, 400, runner.CodeInvalidImage, "could not be decoded"},
		{"over the context", p, runner.Request{Prompt: "Hi", Images: [][]byte{testImage(t, "gradient.png"), testImage(t, "checker.jpg")}}, 400, runner.CodeContextOverflow, "at most 95"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.MaxTokens = 4
			_, err := tc.p.Complete(context.Background(), tc.req, nil)
			var re *runner.RequestError
			if !errors.As(err, &re) || re.HTTPStatus() != tc.status || re.Code() != tc.code || !strings.Contains(re.Error(), tc.msg) {
				t.Fatalf("got %v, want %d %s with %q", err, tc.status, tc.code, tc.msg)
			}
		})
	}
}

// TestVisionChatPlacement: a chat message's images go at the start of its
// content (after the template's text for the user's turn), not before the
// whole conversation as a plain prompt's do; the two prompts differ.
func TestVisionChatPlacement(t *testing.T) {
	spec := modelgen.Tiny()
	spec.ChatTemplate = modelgen.ChatML
	model := testmodel.Gen(t, spec)
	proj := filepath.Join(t.TempDir(), "mmproj.gguf")
	if err := modelgen.GenerateProjector(proj, modelgen.TinyProjector(spec.Embd)); err != nil {
		t.Fatal(err)
	}
	// A queue: the slot may not be free yet when the next request comes.
	p := startOpts(t, runner.Options{Name: "chat-vision", Model: model, Mmproj: proj, Slots: 1, SlotContext: 256, Threads: threadsForTest, Queue: 4})
	ready(t, p)
	ask := func(images int) runner.Result {
		t.Helper()
		res, err := p.Complete(context.Background(), runner.Request{
			Messages: []runner.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "what is this", Images: images}},
			Images:   [][]byte{testImage(t, "gradient.png")}, Sampling: greedy, MaxTokens: 12, IgnoreEOS: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	inTurn, again, first := ask(1), ask(1), ask(0)
	if inTurn.Timings.ImageTokens != 64 || first.Timings.ImageTokens != 64 {
		t.Fatalf("image tokens %d and %d, want 64", inTurn.Timings.ImageTokens, first.Timings.ImageTokens)
	}
	if inTurn.Text == first.Text {
		t.Errorf("the image in the user's turn and before the conversation gave the same answer %q", inTurn.Text)
	}
	if again.Text != inTurn.Text || again.Timings.CachedTokens < 64 {
		t.Errorf("again: %q (cached %d), first %q", again.Text, again.Timings.CachedTokens, inTurn.Text)
	}
}

// TestVisionParkRestore parks a conversation that holds an image and
// restores it into a fresh runner: the same image and prompt then reuse
// every restored token, image rows included, and the greedy answer is the
// one a runner without the restore gives.
func TestVisionParkRestore(t *testing.T) {
	proj, spec := testProjector(t)
	p := startVision(t, proj, 2, 256)
	ctx := context.Background()
	img := testImage(t, "gradient.png")
	first, err := p.Complete(ctx, runner.Request{Prompt: "Once upon a time", Images: [][]byte{img}, Sampling: greedy, MaxTokens: 20, IgnoreEOS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := p.Park(ctx, runner.ParkRequest{Dir: dir, MaxSlots: 4})
	if err != nil {
		t.Fatal(err)
	}
	parked := first.Timings.PromptTokens + first.Timings.GeneratedTokens - 1
	if len(res.Slots) != 1 || res.Slots[0].Tokens != parked {
		t.Fatalf("park result %+v; want one slot of %d tokens (%d of them the image's)", res, parked, spec.ImageTokens())
	}
	follow := runner.Request{Prompt: "Once upon a time" + first.Text + " One day", Images: [][]byte{img}, Sampling: greedy, MaxTokens: 20, IgnoreEOS: true}

	cold := startVision(t, proj, 2, 256)
	want, err := cold.Complete(ctx, follow, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want.Timings.CachedTokens != 0 {
		t.Fatalf("fresh runner reused %d tokens", want.Timings.CachedTokens)
	}

	warm := startVision(t, proj, 2, 256)
	rr, err := warm.Restore(ctx, runner.RestoreRequest{Dir: dir, Files: []string{res.Slots[0].File}})
	if err != nil || rr.Restored != 1 || rr.Tokens != parked {
		t.Fatalf("restore: %+v %v", rr, err)
	}
	got, err := warm.Complete(ctx, follow, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Timings.CachedTokens != parked || got.Timings.ImageTokens != spec.ImageTokens() {
		t.Fatalf("resumed conversation reused %d tokens (%d image tokens), want %d", got.Timings.CachedTokens, got.Timings.ImageTokens, parked)
	}
	if got.Text != want.Text {
		t.Fatalf("restored state changed the answer:\n got %q\nwant %q", got.Text, want.Text)
	}
	// Another image with the same text reuses only what precedes the image.
	other, err := warm.Complete(ctx, runner.Request{Prompt: follow.Prompt, Images: [][]byte{testImage(t, "checker.jpg")}, Sampling: greedy, MaxTokens: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.Timings.CachedTokens > 1 {
		t.Fatalf("a different image reused %d tokens of the restored one", other.Timings.CachedTokens)
	}
}

// TestVisionCancelEncode cancels a request during its image's encode: the
// runner holds no slot or queue place for it, a text request runs beside
// it, and the next request for the same image encodes it whole (the abort
// does not linger, and nothing of the stopped encode is kept). That the
// encode itself stops early is TestProjectorEncodeCancel's (engine).
func TestVisionCancelEncode(t *testing.T) {
	f, err := gguf.Open(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	embd, _ := f.Uint("llama.embedding_length")
	// A wide tower: an encode slow enough to cancel in the middle.
	spec := modelgen.TinyProjector(int(embd))
	spec.ImageSize, spec.PatchSize, spec.Layers, spec.Hidden, spec.FF = 224, 14, 8, 384, 1536
	proj := filepath.Join(t.TempDir(), "slow.gguf")
	if err := modelgen.GenerateProjector(proj, spec); err != nil {
		t.Fatal(err)
	}
	p := startVision(t, proj, 1, 1100)
	ctx := context.Background()
	req := func(img []byte) runner.Request {
		return runner.Request{Prompt: "Lily saw", Images: [][]byte{img}, Sampling: greedy, MaxTokens: 4, IgnoreEOS: true}
	}
	// The first request pays for the compute buffers; the second is the
	// time of an image request.
	var full time.Duration
	for i := range 2 {
		t0 := time.Now()
		if _, err := p.Complete(ctx, req(noiseImage(uint64(i), 64)), nil); err != nil {
			t.Fatal(err)
		}
		full = time.Since(t0)
	}
	img := noiseImage(2, 64)

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := p.Complete(cctx, req(img), nil)
		done <- err
	}()
	// A text request while the image encodes takes the only slot.
	text, err := p.Complete(ctx, runner.Request{Prompt: "The little dog", Sampling: greedy, MaxTokens: 8, IgnoreEOS: true}, nil)
	if err != nil || text.Timings.GeneratedTokens != 8 {
		t.Fatalf("text beside the encode: %+v %v", text.Timings, err)
	}
	time.Sleep(time.Until(start.Add(full / 5)))
	cancel()
	cancelled := time.Now()
	if err := <-done; err == nil {
		t.Fatal("the cancelled request succeeded")
	}
	res, err := p.Complete(ctx, req(img), nil)
	if err != nil || res.Timings.ImageTokens != spec.ImageTokens() {
		t.Fatalf("image request after the cancel: %+v %v", res.Timings, err)
	}
	t.Logf("an image request takes %v; cancelled %v into one, the next ended %v after the cancel", full, cancelled.Sub(start), time.Since(cancelled))
	h, err := p.Health(ctx)
	if err != nil || h.Active != 0 || h.Queued != 0 {
		t.Fatalf("after the requests: %+v %v", h, err)
	}
}
