package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
)

// The test binary doubles as the runner executable.
func TestMain(m *testing.M) {
	testrunner.ServeIfRunner()
	if os.Getenv("JETAI_TEST_PARENT") == "1" {
		parentMain()
		return
	}
	os.Exit(m.Run())
}

// parentMain is a stand-in daemon: it starts a runner, prints its pid once
// the model is ready and waits to be killed.
func parentMain() {
	p, err := runner.Start(runner.Options{
		Name: "orphan", Model: os.Getenv("JETAI_TEST_MODEL"), Slots: 1, SlotContext: 64, Threads: 1,
		Command: testrunner.Command(), Env: append(testrunner.Env(), "JETAI_TEST_PARENT="),
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	if _, err := p.WaitReady(context.Background()); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(p.Pid())
	select {}
}

func start(t testing.TB, model string, slots, ctx int) *runner.Process {
	t.Helper()
	return startOpts(t, runner.Options{Name: "test", Model: model, Slots: slots, SlotContext: ctx, Threads: threadsForTest, Queue: 16})
}

// startOpts starts a runner of this test binary with o, stopped when the
// test ends.
func startOpts(t testing.TB, o runner.Options) *runner.Process {
	t.Helper()
	o.Command, o.Env = testrunner.Command(), testrunner.Env()
	p, err := runner.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	return p
}

// stopAtEnd stops p when the test ends.
func stopAtEnd(t testing.TB, p *runner.Process) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
}

func ready(t *testing.T, p *runner.Process) runner.ModelInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info, err := p.WaitReady(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

var greedy = runner.Sampling{Temperature: 0}

var threadsForTest = 1

func TestGoldenStreamingAndNot(t *testing.T) {
	p := start(t, testmodel.Path(t), 2, 256)
	info := ready(t, p)
	if info.Architecture != "llama" || info.VocabSize != 512 {
		t.Fatalf("info: %+v", info)
	}
	want := testmodel.Golden[runtime.GOARCH]
	var chunks []string
	// 200 tokens: the runner coalesces the tokens of a few milliseconds
	// into one frame, and a reader descheduled on a loaded machine for
	// that long would see 40 tokens in one. Banning end-of-generation
	// leaves the greedy golden prefix as it is (it holds none).
	golden := runner.Request{Prompt: testmodel.GoldenPrompt, Sampling: greedy, MaxTokens: 200, IgnoreEOS: true}
	res, err := p.Complete(context.Background(), golden, func(s string) { chunks = append(chunks, s) })
	if err != nil {
		t.Fatal(err)
	}
	if want != "" && !strings.HasPrefix(res.Text, want) {
		t.Fatalf("got %q, want prefix %q", res.Text, want)
	}
	if strings.Join(chunks, "") != res.Text || len(chunks) < 2 {
		t.Fatalf("streamed %d chunks %q, result %q", len(chunks), chunks, res.Text)
	}
	if res.FinishReason != runner.FinishLength || res.Timings.GeneratedTokens != 200 || res.Timings.PromptTokens == 0 {
		t.Fatalf("finish %q timings %+v", res.FinishReason, res.Timings)
	}
	again, err := p.Complete(context.Background(), golden, nil)
	if err != nil || again.Text != res.Text {
		t.Fatalf("non-streaming %q (%v), streaming %q", again.Text, err, res.Text)
	}
	// The second request shares the whole prompt with the first one's slot.
	if again.Timings.CachedTokens == 0 {
		t.Fatalf("no prefix reuse: %+v", again.Timings)
	}
}

func TestConcurrentSlotsAndCancel(t *testing.T) {
	// 8192 per slot so that the long generations below last seconds: they
	// must all still run when the queued request arrives and one is
	// cancelled, however loaded the machine.
	p := start(t, testmodel.Path(t), 4, 8192)
	ready(t, p)
	prompts := []string{"Once upon a time", "The little dog", "Lily and Ben", "One day, a cat",
		"The sun was", "Tom had a red ball", "There was a bird", "A girl named Sue"}
	var wg sync.WaitGroup
	results := make([]runner.Result, len(prompts))
	errs := make([]error, len(prompts))
	for i, pr := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = p.Complete(context.Background(), runner.Request{Prompt: pr, Sampling: runner.Sampling{Temperature: 0.7, TopK: 40, TopP: 0.9}, MaxTokens: 60}, nil)
		}()
	}
	wg.Wait()
	slotsUsed := map[int]bool{}
	for i := range prompts {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		r := results[i]
		if r.FinishReason != runner.FinishLength && r.FinishReason != runner.FinishStop {
			t.Fatalf("request %d: finish %q", i, r.FinishReason)
		}
		if r.FinishReason == runner.FinishLength && r.Timings.GeneratedTokens != 60 {
			t.Fatalf("request %d: length after %d tokens", i, r.Timings.GeneratedTokens)
		}
		// Coherent: words of the tiny story vocabulary, not byte soup.
		words := strings.Fields(r.Text)
		if len(words) < 5 {
			t.Fatalf("request %d: incoherent %q", i, r.Text)
		}
		slotsUsed[r.Timings.Slot] = true
	}
	if len(slotsUsed) != 4 {
		t.Fatalf("8 requests used slots %v, want all 4", slotsUsed)
	}

	// Fill every slot with long generations, queue one more, cancel one of
	// the four: the queued one starts right after.
	ctxs := make([]context.CancelFunc, 4)
	done := make(chan error, 5)
	for i := range 4 {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		go func() {
			_, err := p.Complete(ctx, runner.Request{Prompt: prompts[i], Sampling: greedy, MaxTokens: 8000, IgnoreEOS: true}, nil)
			done <- err
		}()
	}
	waitActive(t, p, 4)
	queued := make(chan runner.Result, 1)
	go func() {
		r, err := p.Complete(context.Background(), runner.Request{Prompt: "Queued", Sampling: greedy, MaxTokens: 5}, nil)
		if err != nil {
			t.Error(err)
		}
		queued <- r
	}()
	time.Sleep(50 * time.Millisecond)
	ctxs[0]()
	select {
	case r := <-queued:
		if r.Timings.GeneratedTokens == 0 {
			t.Fatalf("queued request generated nothing: %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("queued request did not start after a cancel")
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
	for _, c := range ctxs[1:] {
		c()
	}
}

func waitActive(t *testing.T, p *runner.Process, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		h, err := p.Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if h.Active >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("runner never had %d active requests", n)
}

func TestRefusals(t *testing.T) {
	p := start(t, testmodel.Path(t), 1, 64)
	ready(t, p)
	long := strings.Repeat("the cat sat on the mat. ", 40)
	cases := []struct {
		name string
		req  runner.Request
		code string
	}{
		{"overflow", runner.Request{Prompt: long}, runner.CodeContextOverflow},
		{"empty", runner.Request{}, runner.CodeInvalid},
		{"chat without template", runner.Request{Messages: []runner.Message{{Role: "user", Content: "hi"}}}, runner.CodeNoChatTemplate},
		{"bad grammar", runner.Request{Prompt: "x", Sampling: runner.Sampling{Grammar: "root ::= ("}}, runner.CodeInvalidGrammar},
		{"negative max", runner.Request{Prompt: "x", MaxTokens: -1}, runner.CodeInvalid},
		{"bad top_p", runner.Request{Prompt: "x", Sampling: runner.Sampling{TopP: 7}}, runner.CodeInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.Complete(context.Background(), c.req, nil)
			var re *runner.RequestError
			if !errors.As(err, &re) || re.Reason != c.code || re.Status != 400 {
				t.Fatalf("want 400 %s, got %v", c.code, err)
			}
		})
	}
	// Still serving.
	if _, err := p.Complete(context.Background(), runner.Request{Prompt: "Once", MaxTokens: 3}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestStopStringsAndGrammar(t *testing.T) {
	p := start(t, testmodel.Path(t), 1, 256)
	ready(t, p)
	full, err := p.Complete(context.Background(), runner.Request{Prompt: testmodel.GoldenPrompt, Sampling: greedy, MaxTokens: 40}, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(full.Text, "Lily")
	if i < 0 {
		t.Skipf("continuation %q has no Lily", full.Text)
	}
	res, err := p.Complete(context.Background(), runner.Request{Prompt: testmodel.GoldenPrompt, Sampling: greedy, MaxTokens: 40, Stop: []string{"Lily"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != full.Text[:i] || res.FinishReason != runner.FinishStop {
		t.Fatalf("stop: got %q (%s), want %q", res.Text, res.FinishReason, full.Text[:i])
	}
	g, err := p.Complete(context.Background(), runner.Request{Prompt: "Is it", Sampling: runner.Sampling{Temperature: 0.8, Grammar: `root ::= ("yes" | "no") "."`}, MaxTokens: 10}, nil)
	if err != nil || (g.Text != "yes." && g.Text != "no.") {
		t.Fatalf("grammar: %q %v", g.Text, err)
	}
	e, err := p.Embed(context.Background(), "the cat sat")
	if err != nil || len(e.Embedding) == 0 {
		t.Fatalf("embed: %v", err)
	}
}

func TestBadModelFiles(t *testing.T) {
	good, err := os.ReadFile(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	corrupt := append([]byte(nil), good...)
	for i := 24; i < 4096 && i < len(corrupt); i++ {
		corrupt[i] = byte(i * 7)
	}
	files := map[string][]byte{
		"not-gguf":  []byte("#!/bin/sh\necho this is not a model\n"),
		"truncated": good[:len(good)/2],
		"corrupt":   corrupt,
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".gguf")
			os.WriteFile(path, data, 0o644)
			p := start(t, path, 1, 64)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := p.WaitReady(ctx)
			var le *runner.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("want a load error, got %v", err)
			}
			t.Logf("%s: %v", name, err)
		})
	}
}

func TestKilledMidStream(t *testing.T) {
	// Thousands of tokens past end-of-generation: the request is still
	// generating when the kill comes, however loaded the machine (a short
	// one may have written its last frame into the socket already, and
	// then it rightly succeeds).
	p := start(t, testmodel.Path(t), 1, 8192)
	ready(t, p)
	first := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		_, err := p.Complete(context.Background(), runner.Request{Prompt: testmodel.GoldenPrompt, Sampling: runner.Sampling{Temperature: 1}, MaxTokens: 8000, IgnoreEOS: true},
			func(string) { once.Do(func() { close(first) }) })
		errc <- err
	}()
	<-first
	killed := time.Now()
	syscall.Kill(p.Pid(), syscall.SIGKILL)
	// The socket closes with the process, so the error comes at once; the
	// bounds only leave room for a loaded machine's scheduling.
	select {
	case err := <-errc:
		if !errors.Is(err, runner.ErrExited) {
			t.Fatalf("want ErrExited, got %v", err)
		}
		if d := time.Since(killed); d > 5*time.Second {
			t.Fatalf("error after %v", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no error 15s after the runner was killed")
	}
}

// TestGrammarDeadEnds: a grammar that no token can continue (on which
// llama.cpp asserts, which would abort the runner and fail every request
// on the model) is the request's own 400, and a whole grammar under
// ignore_eos simply stops.
func TestGrammarDeadEnds(t *testing.T) {
	p := start(t, testmodel.Path(t), 2, 256)
	ready(t, p)
	ctx := context.Background()
	for _, s := range []runner.Sampling{
		{Grammar: `root ::= [\x00]`},
		{JSONSchema: `{"type": "integer", "minimum": 5, "maximum": 1}`},
	} {
		for _, ignoreEOS := range []bool{false, true} {
			_, err := p.Complete(ctx, runner.Request{Prompt: "Once upon", Sampling: s, MaxTokens: 8, IgnoreEOS: ignoreEOS}, nil)
			var re *runner.RequestError
			if !errors.As(err, &re) || re.Status != 400 || re.Reason != runner.CodeInvalidGrammar {
				t.Errorf("%+v ignore_eos %v: %v, want a 400 %s", s, ignoreEOS, err, runner.CodeInvalidGrammar)
			}
		}
	}
	res, err := p.Complete(ctx, runner.Request{Prompt: "Once upon", Sampling: runner.Sampling{Grammar: `root ::= "a"`}, MaxTokens: 8, IgnoreEOS: true}, nil)
	if err != nil || res.Text != "a" || res.FinishReason != runner.FinishStop {
		t.Errorf("whole grammar under ignore_eos: %+v, %v; want \"a\", stop", res, err)
	}
	if gone, why := p.Exited(); gone {
		t.Fatalf("the runner died: %v", why)
	}
	if _, err := p.Complete(ctx, runner.Request{Prompt: "Once upon", MaxTokens: 4}, nil); err != nil {
		t.Fatalf("a plain request after the dead ends: %v", err)
	}
}

func TestRunnerExitsWithParent(t *testing.T) {
	model := testmodel.Path(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "JETAI_TEST_PARENT=1", "JETAI_TEST_MODEL="+model)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil || pid <= 0 {
		cmd.Process.Kill()
		t.Fatalf("parent did not report a runner pid: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		// A zombie still answers kill(0); it is gone once reaped by init.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("runner %d still running 15 s after its parent was killed", pid)
}

func TestSetThreads(t *testing.T) {
	p := start(t, testmodel.Path(t), 1, 128)
	ready(t, p)
	if err := p.SetThreads(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	h, err := p.Health(context.Background())
	if err != nil || h.Threads != 1 {
		t.Fatalf("threads %d, %v", h.Threads, err)
	}
	if _, err := p.Complete(context.Background(), runner.Request{Prompt: "Once", MaxTokens: 5}, nil); err != nil {
		t.Fatal(err)
	}
}
