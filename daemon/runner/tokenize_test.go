package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// runnerCPU is the runner process's user+system CPU time so far.
func runnerCPU(t *testing.T, p *runner.Process) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// specialFlood is a prompt of n repeats of "</s>x": 5n bytes, 3n tokens.
func specialFlood(n int) string { return strings.Repeat("</s>x", n) }

// TestSpecialTokenFloodRefusedCheaply sends 400 KB of special-token text
// to a runner whose slots hold 1,024 tokens: it is refused as a context
// overflow for little CPU. Tokenizing it whole with llama.cpp's own split
// took about 40 s of the runner's CPU on a 2-core x86-64 box.
func TestSpecialTokenFloodRefusedCheaply(t *testing.T) {
	p := start(t, testmodel.Path(t), 1, 1024)
	ready(t, p)
	for _, req := range []runner.Request{
		{Prompt: specialFlood(80000), MaxTokens: 4},
		{Messages: []runner.Message{{Role: "user", Content: specialFlood(80000)}}, MaxTokens: 4},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		before := runnerCPU(t, p)
		_, err := p.Complete(ctx, req, nil)
		used := runnerCPU(t, p) - before
		cancel()
		var re *runner.RequestError
		if len(req.Messages) > 0 {
			// stories260K has no chat template: refused before tokenizing.
			if !errors.As(err, &re) || re.Reason != runner.CodeNoChatTemplate {
				t.Fatalf("chat: %v", err)
			}
			continue
		}
		if !errors.As(err, &re) || re.Reason != runner.CodeContextOverflow || re.Status != 400 {
			t.Fatalf("want 400 %s, got %v", runner.CodeContextOverflow, err)
		}
		if used > 2*time.Second {
			t.Fatalf("refusing 400 KB of special-token text took %v of the runner's CPU", used)
		}
	}
	r, err := p.Complete(context.Background(), runner.Request{Prompt: "Once", MaxTokens: 3, Sampling: greedy}, nil)
	if err != nil || r.Timings.GeneratedTokens == 0 {
		t.Fatalf("next request: %+v, %v", r, err)
	}
}

// TestCancelStopsRunnerWork cancels requests while the runner tokenizes
// and while it evaluates a long prompt: its CPU use stops, the slot is
// freed and the next request is served. The bounds are generous for a
// loaded machine; a runner that goes on working uses a whole core.
func TestCancelStopsRunnerWork(t *testing.T) {
	p := start(t, testmodel.Path(t), 1, 32768)
	ready(t, p)
	cases := []struct {
		name   string
		prompt string
		active bool // wait until the request holds the slot before cancelling
	}{
		// Refused at once now; with llama.cpp's own split its
		// tokenization ran for a minute after the client left.
		{"special-token text", specialFlood(80000), false},
		// About 30,000 tokens of prompt evaluation.
		{"long prompt", strings.Repeat("the cat sat on the mat. ", 3000), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := p.Complete(ctx, runner.Request{Prompt: c.prompt, MaxTokens: 4, Sampling: greedy}, nil)
				done <- err
			}()
			for c.active {
				select {
				case err := <-done:
					t.Fatalf("the request ended before it was cancelled: %v", err)
				default:
				}
				if h, err := p.Health(context.Background()); err != nil || h.Active == 1 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			if h, err := p.Health(context.Background()); c.active && (err != nil || h.Active != 1) {
				t.Fatalf("the request was over before the cancel (%+v, %v): the case tests nothing", h, err)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the cancelled request did not return")
			}
			time.Sleep(300 * time.Millisecond)
			before := runnerCPU(t, p)
			time.Sleep(time.Second)
			if used := runnerCPU(t, p) - before; used > 250*time.Millisecond {
				t.Fatalf("the runner used %v of CPU in the second after the cancel settled", used)
			}
			h, err := p.Health(context.Background())
			if err != nil || h.Active != 0 || h.Queued != 0 {
				t.Fatalf("after the cancel: %+v, %v", h, err)
			}
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer rcancel()
			r, err := p.Complete(rctx, runner.Request{Prompt: "Once", MaxTokens: 3, Sampling: greedy}, nil)
			if err != nil || r.Timings.GeneratedTokens == 0 {
				t.Fatalf("next request: %+v, %v", r, err)
			}
		})
	}
}

// TestCancelInterruptsStep cancels a request at the start of a decode step
// that takes about half a second of CPU (a 512-token batch of a
// 27M-parameter model on one thread): the runner stops computing at once,
// not at the end of the step.
func TestCancelInterruptsStep(t *testing.T) {
	path, err := modelgen.Cached(t.TempDir(), modelgen.Small())
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, path, 1, 2048)
	ready(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Complete(ctx, runner.Request{Prompt: strings.Repeat("the cat sat on the mat. ", 150), MaxTokens: 4, Sampling: greedy}, nil)
		done <- err
	}()
	waitActive(t, p, 1)
	time.Sleep(50 * time.Millisecond)
	start := runnerCPU(t, p)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	before := runnerCPU(t, p)
	time.Sleep(time.Second)
	used := runnerCPU(t, p) - before
	t.Logf("runner CPU: %v from the cancel to 50 ms after it, %v in the second after that", before-start, used)
	if used > 100*time.Millisecond {
		t.Fatalf("the runner used %v of CPU in the second from 50 ms after the cancel (%v between the cancel and then)", used, before-start)
	}
	h, err := p.Health(context.Background())
	if err != nil || h.Active != 0 {
		t.Fatalf("after the cancel: %+v, %v", h, err)
	}
	r, err := p.Complete(context.Background(), runner.Request{Prompt: "the cat", MaxTokens: 2, Sampling: greedy}, nil)
	if err != nil || r.Timings.GeneratedTokens == 0 {
		t.Fatalf("next request: %+v, %v", r, err)
	}
}
