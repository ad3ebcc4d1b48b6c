package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// fakeRunners starts fake runners: no process, no model. They load at
// once, answer "ok", and obey the test: hold requests, crash with a cause.
// They make pool tests of eviction, draining and swaps fast and
// deterministic.
type fakeRunners struct {
	mu      sync.Mutex
	all     []*fakeRunner
	hold    map[string]chan struct{} // model → requests wait for it to close
	crash   map[string]string        // model → requests crash the runner with this cause
	entered chan string              // a request reached a runner (model name)
	// dieSpares makes runners die with this cause in WaitSpare.
	dieSpares string
	// spareGone makes the next Load on a spare find it dead.
	spareGone bool
	nextPid   atomic.Int32
}

func newFakeRunners() *fakeRunners {
	return &fakeRunners{hold: map[string]chan struct{}{}, crash: map[string]string{}, entered: make(chan string, 100)}
}

func (f *fakeRunners) start(o runner.Options) (Runner, error) {
	// As runner.Spawn: the process's settings only; Load brings the model.
	po := runner.Options{Command: o.Command, Env: o.Env, Dir: o.Dir, Log: o.Log, BackendsDir: o.BackendsDir, Verbose: o.Verbose}
	r := &fakeRunner{f: f, opts: po, pid: 100000 + int(f.nextPid.Add(1)), done: make(chan struct{})}
	f.mu.Lock()
	f.all = append(f.all, r)
	f.mu.Unlock()
	return r, nil
}

// starts counts the runners started for model.
func (f *fakeRunners) starts(model string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.all {
		if r.opts.Name == model {
			n++
		}
	}
	return n
}

// forget drops the requests that entered runners so far from entered.
func (f *fakeRunners) forget() {
	for {
		select {
		case <-f.entered:
		default:
			return
		}
	}
}

// byPid is the runner with pid.
func (f *fakeRunners) byPid(pid int) *fakeRunner {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.all {
		if r.pid == pid {
			return r
		}
	}
	return nil
}

// holdRequests makes model's requests wait until the returned func runs.
func (f *fakeRunners) holdRequests(model string) (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.hold[model] = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.hold, model)
			f.mu.Unlock()
			close(ch)
		})
	}
}

type fakeRunner struct {
	f        *fakeRunners
	opts     runner.Options
	pid      int
	done     chan struct{}
	once     sync.Once
	why      string
	cause    string
	served   atomic.Int32
	stopped  atomic.Bool
	threadsN atomic.Int32
	// waited: WaitSpare returned (a warm spare); spareLoad: it had when
	// Load came. Guarded by f.mu.
	waited, spareLoad bool
}

func (r *fakeRunner) exit(why, cause string) {
	r.once.Do(func() {
		r.why, r.cause = why, cause
		close(r.done)
	})
}

// Load takes the model as the real runner does: once.
func (r *fakeRunner) Load(o runner.Options) error {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if r.opts.Model != "" {
		return fmt.Errorf("runner %s: already has model %s", o.Name, r.opts.Name)
	}
	if r.waited && r.f.spareGone {
		r.f.spareGone = false
		r.exit("signal: killed", "")
	}
	select {
	case <-r.done:
		return fmt.Errorf("runner %s: hand over the model: %w", o.Name, runner.ErrExited)
	default:
	}
	r.opts = o
	r.spareLoad = r.waited
	return nil
}

// WaitSpare: a fake runner waits for its model at once, unless the test
// made its spares fail (dieSpares).
func (r *fakeRunner) WaitSpare(ctx context.Context) error {
	r.f.mu.Lock()
	die := r.f.dieSpares
	r.f.mu.Unlock()
	if die != "" {
		r.exit("exit status 1", die)
		return fmt.Errorf("runner spare: %w before it was ready: %s", runner.ErrExited, die)
	}
	r.f.mu.Lock()
	r.waited = true
	r.f.mu.Unlock()
	return nil
}

func (r *fakeRunner) WaitReady(ctx context.Context) (runner.ModelInfo, error) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return runner.ModelInfo{Path: r.opts.Model}, nil
}
func (r *fakeRunner) Progress() float32     { return 1 }
func (r *fakeRunner) Pid() int              { return r.pid }
func (r *fakeRunner) Done() <-chan struct{} { return r.done }
func (r *fakeRunner) Exited() (bool, error) {
	select {
	case <-r.done:
		return true, fmt.Errorf("%w: %s", runner.ErrExited, r.why)
	default:
		return false, nil
	}
}
func (r *fakeRunner) Cause() string {
	select {
	case <-r.done:
		return r.cause
	default:
		return ""
	}
}
func (r *fakeRunner) RSS() (uint64, error) { return 1 << 20, nil }

func (r *fakeRunner) Complete(ctx context.Context, req runner.Request, onText func(string)) (runner.Result, error) {
	name := r.opts.Name
	r.f.entered <- name
	r.f.mu.Lock()
	hold, cause := r.f.hold[name], r.f.crash[name]
	r.f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return runner.Result{}, ctx.Err()
		case <-r.done:
		}
	}
	if cause != "" {
		r.exit("signal: aborted", cause)
	}
	select {
	case <-r.done:
		return runner.Result{}, fmt.Errorf("model %s: %w during the request: %s (%s)", name, runner.ErrExited, r.why, r.cause)
	default:
	}
	r.served.Add(1)
	if onText != nil {
		onText("ok")
	}
	return runner.Result{Text: "ok", Timings: runner.Timings{GeneratedTokens: 1}}, nil
}

func (r *fakeRunner) Embed(ctx context.Context, input string) (runner.EmbedResult, error) {
	return runner.EmbedResult{Embedding: []float32{1}}, nil
}
func (r *fakeRunner) Health(ctx context.Context) (runner.Health, error) {
	return runner.Health{Threads: int(r.threadsN.Load())}, nil
}
func (r *fakeRunner) SetThreads(ctx context.Context, n int) error {
	r.threadsN.Store(int32(n))
	return nil
}
func (r *fakeRunner) StartThreads() int { return r.opts.Threads }
func (r *fakeRunner) Park(ctx context.Context, req runner.ParkRequest) (runner.ParkResult, error) {
	return runner.ParkResult{}, nil
}
func (r *fakeRunner) Restore(ctx context.Context, req runner.RestoreRequest) (runner.RestoreResult, error) {
	return runner.RestoreResult{}, nil
}
func (r *fakeRunner) Stop(ctx context.Context) error {
	r.stopped.Store(true)
	r.exit("stopped", "")
	return nil
}
func (r *fakeRunner) Kill() { r.exit("signal: killed", "") }

// newFakePool is newPool with fake runners.
func newFakePool(t *testing.T, hcl string) (*Pool, *fakeRunners) {
	t.Helper()
	f := newFakeRunners()
	p := newPool(t, hcl, func(p *Pool) {
		p.newRunner = f.start
		p.stopGrace = time.Second
	})
	return p, f
}

// completeBg runs a request in the background; its error arrives on the
// channel.
func completeBg(p *Pool, model string) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := p.Complete(context.Background(), model, short, nil)
		ch <- err
	}()
	return ch
}

// waitFake waits for cond (fake runners make it quick).
func waitFake(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func errIs[T error](err error) bool {
	var e T
	return errors.As(err, &e)
}
