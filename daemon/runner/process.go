package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LoadError is a model that the runner could not load.
type LoadError struct {
	Name string
	Msg  string
}

func (e *LoadError) Error() string { return fmt.Sprintf("load model %s: %s", e.Name, e.Msg) }

// RequestError is a request the runner refused (status 4xx/5xx); Reason
// is the runner's code (CodeBusy, CodeContextOverflow, …).
type RequestError struct {
	Status int
	Reason string
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

// Process is a started runner. Every process starts awaiting its model
// (Options.AwaitModel); Load hands it one. Start does both at once, and a
// warm spare is a process that Spawn started and Load has not yet been
// called on.
type Process struct {
	// optsMu guards opts' Name and Model, which Load sets while the status
	// reader may read them; other fields of opts are read only after Load.
	optsMu   sync.Mutex
	opts     Options
	cmd      *exec.Cmd
	sockPath string
	sockDir  string
	client   *http.Client
	stdin    io.WriteCloser
	tail     *tailBuffer

	progressMu sync.Mutex
	progress   float32

	ready   chan struct{}
	info    ModelInfo
	phases  []Phase
	startAt time.Time // just before the exec

	// waiting closes when the runner reports its engine ready and waits
	// for a model; handedAt is when Load wrote the model's flags (the
	// load's start), handed that Load ran. Guarded by optsMu.
	waiting  chan struct{}
	handedAt time.Time
	handed   bool
	spare    bool // the process was waiting when Load came
	loadErr  error
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Start starts a runner for opts.Model. It returns once the process runs;
// WaitReady waits for the model to load. It is Spawn, then Load.
func Start(opts Options) (*Process, error) {
	if opts.Name == "" {
		opts.Name = filepath.Base(opts.Model)
	}
	p, err := Spawn(opts)
	if err != nil {
		return nil, err
	}
	if err := p.Load(opts); err != nil {
		p.Kill()
		<-p.done
		return nil, err
	}
	return p, nil
}

// Spawn starts a runner process that initialises its engine and awaits a
// model (Load). Of opts only the process's settings count (Command, Env,
// Dir, Log, BackendsDir, Verbose: see ProcessKey); Name names it in errors
// until it has a model ("spare" when empty).
func Spawn(opts Options) (*Process, error) {
	if opts.Name == "" {
		opts.Name = "spare"
	}
	if len(opts.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("runner %s: %w", opts.Name, err)
		}
		opts.Command = []string{exe, "runner"}
	}
	dir := opts.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	sockDir, err := os.MkdirTemp(dir, "jetai-runner-")
	if err != nil {
		return nil, fmt.Errorf("runner %s: socket directory: %w", opts.Name, err)
	}
	sockPath := filepath.Join(sockDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, fmt.Errorf("runner %s: listen: %w", opts.Name, err)
	}
	ln.SetUnlinkOnClose(false)
	lnFile, err := ln.File()
	ln.Close()
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, fmt.Errorf("runner %s: listener fd: %w", opts.Name, err)
	}
	defer lnFile.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, fmt.Errorf("runner %s: status pipe: %w", opts.Name, err)
	}
	defer statusW.Close()

	args := append(append([]string{}, opts.Command[1:]...), opts.ProcessArgs()...)
	cmd := exec.Command(opts.Command[0], args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.ExtraFiles = []*os.File{lnFile, statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	tail := &tailBuffer{max: 8 << 10}
	var logw io.Writer = tail
	if opts.Log != nil {
		logw = io.MultiWriter(tail, opts.Log)
	}
	cmd.Stderr = logw
	cmd.Stdout = logw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		statusR.Close()
		os.RemoveAll(sockDir)
		return nil, fmt.Errorf("runner %s: stdin: %w", opts.Name, err)
	}
	startAt := time.Now()
	if err := cmd.Start(); err != nil {
		statusR.Close()
		os.RemoveAll(sockDir)
		return nil, fmt.Errorf("runner %s: start: %w", opts.Name, err)
	}

	p := &Process{
		opts: opts, cmd: cmd, sockPath: sockPath, sockDir: sockDir, stdin: stdin, tail: tail,
		ready: make(chan struct{}), done: make(chan struct{}), waiting: make(chan struct{}), startAt: startAt,
	}
	p.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sockPath)
		},
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}}
	go p.readStatus(statusR)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
		os.RemoveAll(sockDir)
	}()
	return p, nil
}

// Load hands the process its model: the flags of opts (Options.Args) on
// its stdin. It may come before the process has initialised its engine
// (Start) or long after (a warm spare); WaitReady then waits for the
// load. A process takes one model in its life.
func (p *Process) Load(opts Options) error {
	if opts.Name == "" {
		opts.Name = filepath.Base(opts.Model)
	}
	b, err := json.Marshal(ModelLine{Args: opts.Args()})
	if err != nil {
		return fmt.Errorf("runner %s: %w", opts.Name, err)
	}
	p.optsMu.Lock()
	if p.handed {
		p.optsMu.Unlock()
		return fmt.Errorf("runner %s: already has model %s", opts.Name, p.opts.Name)
	}
	// The process's own settings stay those it was spawned with.
	keep := p.opts
	p.opts = opts
	p.opts.Command, p.opts.Env, p.opts.Dir, p.opts.Log = keep.Command, keep.Env, keep.Dir, keep.Log
	p.opts.BackendsDir, p.opts.Verbose = keep.BackendsDir, keep.Verbose
	p.handed, p.handedAt = true, time.Now()
	select {
	case <-p.waiting:
		p.spare = true
	default:
	}
	p.optsMu.Unlock()
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("runner %s: hand over the model: %w (%s)", opts.Name, err, p.exitReason())
	}
	return nil
}

// WaitSpare waits until the process has initialised its engine and awaits
// a model, the process exits (an error) or ctx ends.
func (p *Process) WaitSpare(ctx context.Context) error {
	select {
	case <-p.waiting:
		return nil
	case <-p.done:
		return fmt.Errorf("runner %s: %w before it was ready: %s", p.name(), ErrExited, p.exitReason())
	case <-ctx.Done():
		return fmt.Errorf("runner %s: %w", p.name(), ctx.Err())
	}
}

// name is the runner's name, safe beside Load.
func (p *Process) name() string {
	p.optsMu.Lock()
	defer p.optsMu.Unlock()
	return p.opts.Name
}

func (p *Process) readStatus(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	readyClosed, waitingClosed := false, false
	for sc.Scan() {
		var line StatusLine
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch {
		case line.Waiting && !waitingClosed:
			close(p.waiting)
			waitingClosed = true
		case line.Progress != nil:
			p.progressMu.Lock()
			p.progress = *line.Progress
			p.progressMu.Unlock()
		case line.Error != "" && !readyClosed:
			p.loadErr = &LoadError{Name: p.name(), Msg: line.Error}
			close(p.ready)
			readyClosed = true
		case line.Ready && !readyClosed:
			if line.Info != nil {
				p.info = *line.Info
			}
			p.phases = p.loadPhases(line)
			close(p.ready)
			readyClosed = true
		}
	}
	if !readyClosed {
		// The child died (or closed fd 4) before reporting.
		<-p.done
		p.loadErr = &LoadError{Name: p.name(), Msg: "runner exited: " + p.exitReason()}
		close(p.ready)
	}
}

// exitReason describes how the process ended ("exit status 2", "signal:
// killed") and why: the llama.cpp assertion that aborted it, or the first
// line of a Go crash report. The rest of the runner's log (CPU features,
// tokenizer warnings) is in the daemon's log, not in errors that reach
// clients. Callers say "runner exited" before it.
func (p *Process) exitReason() string {
	msg := "exit status 0"
	if p.waitErr != nil {
		msg = p.waitErr.Error()
	}
	if c := p.tail.causeLine(); c != "" {
		return msg + " (" + c + ")"
	}
	if f := p.tail.fatalLine(); f != "" {
		// A Go crash dump's last lines are registers and goroutine
		// frames; its first line says what happened.
		msg += " (" + f + ")"
		if strings.HasPrefix(f, "SIGBUS") {
			p.optsMu.Lock()
			model := p.opts.Model
			p.optsMu.Unlock()
			msg += "; a bus error in a runner usually means its model file " + model +
				" was truncated or overwritten in place while loaded: replace a model file by moving a new file over it (mv), not by writing into it"
		}
		return msg
	}
	return msg + " (the runner's log is in the daemon's log)"
}

// Cause is the line of the runner's log that says why it died (a
// llama.cpp assertion, a Go crash report's first line), or "" when it has
// not died or said nothing of the kind.
func (p *Process) Cause() string {
	if c := p.tail.causeLine(); c != "" {
		return c
	}
	return p.tail.fatalLine()
}

// WaitReady waits until the model is loaded and returns its facts. A load
// error, the runner's death or ctx ending return an error; on ctx's end the
// runner is killed (a hung load must not linger).
func (p *Process) WaitReady(ctx context.Context) (ModelInfo, error) {
	select {
	case <-p.ready:
		if p.loadErr != nil {
			p.Kill()
			return ModelInfo{}, p.loadErr
		}
		return p.info, nil
	case <-ctx.Done():
		p.Kill()
		return ModelInfo{}, fmt.Errorf("load model %s: %w", p.opts.Name, ctx.Err())
	}
}

// loadPhases are the phases of the load the ready line reports: the
// process start (exec to the runner's main) and the engine's init as far
// as they fell after the model was handed over, then the runner's own.
// A warm spare had both done before its load began: they are 0.
func (p *Process) loadPhases(line StatusLine) []Phase {
	p.optsMu.Lock()
	from := p.handedAt
	p.optsMu.Unlock()
	var out []Phase
	if line.MainAt > 0 {
		mainAt := time.Unix(0, line.MainAt)
		out = append(out, Phase{Name: PhaseProcessStart, Seconds: after(p.startAt, mainAt, from)})
		if line.EngineAt > 0 {
			out = append(out, Phase{Name: PhaseEngineInit, Seconds: after(mainAt, time.Unix(0, line.EngineAt), from)})
		}
	}
	return append(out, line.Phases...)
}

// after is the part of the span [a, b] after from, in seconds.
func after(a, b, from time.Time) float64 {
	if a.Before(from) {
		a = from
	}
	return max(b.Sub(a), 0).Seconds()
}

// Spare says whether the process had initialised its engine and was
// waiting before its model was handed over: a warm spare's load.
func (p *Process) Spare() bool {
	p.optsMu.Lock()
	defer p.optsMu.Unlock()
	return p.spare
}

// Phases are the timed steps of the runner's load, in order, once it is
// ready (nil before, and after a failed load).
func (p *Process) Phases() []Phase {
	select {
	case <-p.ready:
		if p.loadErr == nil {
			return append([]Phase(nil), p.phases...)
		}
	default:
	}
	return nil
}

// Progress is the load progress in [0,1].
func (p *Process) Progress() float32 {
	p.progressMu.Lock()
	defer p.progressMu.Unlock()
	return p.progress
}

// Info returns the loaded model's facts (zero before it is ready).
func (p *Process) Info() ModelInfo { return p.info }

// Pid is the runner's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the runner process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process is gone, and why.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, fmt.Errorf("%w: %s", ErrExited, p.exitReason())
	default:
		return false, nil
	}
}

// RSS is the runner's resident memory in bytes, from /proc.
func (p *Process) RSS() (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("VmRSS not found")
}

// exitGrace is how long a transport error waits for the process's exit to
// be noticed before it is reported as a connection error. A killed
// runner's socket closes at once, but Wait returns only once the process
// is reaped, which on a loaded machine can take a while; the error code
// (runner_exited) and the hybrid fallback depend on telling the two apart.
const exitGrace = 2 * time.Second

// diedError turns a transport error into ErrExited when the process is
// gone (it may take a moment for Wait to notice).
func (p *Process) diedError(err error) error {
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-p.done:
		return fmt.Errorf("model %s: %w during the request: %s", p.opts.Name, ErrExited, p.exitReason())
	case <-t.C:
		return fmt.Errorf("model %s: runner connection: %w", p.opts.Name, err)
	}
}

func (p *Process) post(ctx context.Context, path string, body any) (*http.Response, error) {
	// Prompts are sent as they are: HTML escaping would triple every < and >
	// of special-token text on the way to the runner.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://runner"+path, &b)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, p.diedError(err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var eb ErrorBody
		json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&eb)
		if eb.Error == "" {
			eb.Error = resp.Status
		}
		return nil, &RequestError{Status: resp.StatusCode, Reason: eb.Code, Msg: eb.Error}
	}
	return resp, nil
}

// Complete runs a completion. onText, when not nil, receives the text as
// it is generated (on the calling goroutine). Cancelling ctx cancels the
// request in the runner and frees its slot.
func (p *Process) Complete(ctx context.Context, req Request, onText func(string)) (Result, error) {
	resp, err := p.post(ctx, "/completion", req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	var res Result
	var text strings.Builder
	r := bufio.NewReaderSize(resp.Body, 16<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if ctx.Err() != nil {
				return Result{Text: text.String(), FinishReason: FinishCancelled}, ctx.Err()
			}
			return Result{Text: text.String(), FinishReason: FinishError}, p.diedError(err)
		}
		var f Frame
		if err := json.Unmarshal(line, &f); err != nil {
			return Result{Text: text.String(), FinishReason: FinishError}, fmt.Errorf("model %s: bad frame from runner: %w", p.opts.Name, err)
		}
		if len(f.ToolCalls) > 0 || len(f.Logprobs) > 0 {
			res.addFrame(f)
			if req.Observe != nil {
				req.Observe(f)
			}
		}
		if f.Text != "" {
			text.WriteString(f.Text)
			if onText != nil {
				onText(f.Text)
			}
		}
		if f.Done {
			res.Text = text.String()
			res.FinishReason = f.FinishReason
			if f.Timings != nil {
				res.Timings = *f.Timings
			}
			if f.Error != "" && f.Code != "" {
				return res, &RequestError{Status: http.StatusBadRequest, Reason: f.Code, Msg: f.Error}
			}
			if f.Error != "" {
				return res, fmt.Errorf("model %s: %s", p.opts.Name, f.Error)
			}
			return res, nil
		}
	}
}

// Embed returns the embedding of input.
func (p *Process) Embed(ctx context.Context, input string) (EmbedResult, error) {
	return call[EmbedResult](ctx, p, "/embed", EmbedRequest{Input: input})
}

// Health asks the runner for its state.
func (p *Process) Health(ctx context.Context) (Health, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://runner/health", nil)
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Health{}, ctx.Err()
		}
		return Health{}, p.diedError(err)
	}
	defer resp.Body.Close()
	var h Health
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// SetThreads changes the runner's CPU thread count (0 = all CPUs).
func (p *Process) SetThreads(ctx context.Context, n int) error {
	resp, err := p.post(ctx, "/threads", ThreadsRequest{Threads: n})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// SetSpeculative changes the runner's n-gram drafting and max_draft.
func (p *Process) SetSpeculative(ctx context.Context, ngram bool, maxDraft int) error {
	resp, err := p.post(ctx, "/speculative", SpeculativeRequest{NGram: ngram, MaxDraft: maxDraft})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// StartThreads is the thread count the runner was started with (0 = all
// CPUs); SetThreads may have changed it since.
func (p *Process) StartThreads() int { return p.opts.Threads }

// Stop asks the runner to exit, failing requests still in flight, and
// kills it if it has not exited by ctx's end.
func (p *Process) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		// Only a loaded runner serves /shutdown; one awaiting or loading
		// its model (a warm spare) would leave the request unanswered, and
		// exits on stdin's EOF.
		if p.Phases() != nil {
			if resp, err := p.post(ctx, "/shutdown", struct{}{}); err == nil {
				resp.Body.Close()
			}
		}
		p.stdin.Close()
	})
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Kill()
		<-p.done
	}
	p.client.CloseIdleConnections()
	return nil
}

// Kill ends the runner at once.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	p.stdin.Close()
}

// tailBuffer keeps the last max bytes written to it, the first line of a
// Go runtime crash ("SIGBUS: bus error", "fatal error: …", "panic: …"),
// which a long goroutine dump would push out of the tail, and the first
// llama.cpp/ggml assertion or abort line.
type tailBuffer struct {
	mu    sync.Mutex
	buf   []byte
	max   int
	fatal string
	cause string
}

// crashStarts are how the Go runtime begins a crash report at the start
// of a line.
var crashStarts = []string{"SIGBUS: ", "SIGSEGV: ", "SIGILL: ", "SIGFPE: ", "SIGABRT: ", "fatal error: ", "panic: "}

// abortLine matches how ggml and llama.cpp say why they abort: GGML_ASSERT
// and GGML_ABORT write "file.c:123: message", and a C assert (glibc)
// writes "prog: file.c:123: func: Assertion `x' failed.".
var abortLine = regexp.MustCompile(`(?m)^(?:[^\s:]+: )?([\w./+-]+\.(?:c|cc|cpp|h|hpp|cu|m):\d+: .*\S)\s*$`)

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fatal == "" || t.cause == "" {
		// A line may be split across writes: look at it with the end of
		// what is buffered.
		from := max(len(t.buf)-256, 0)
		s := string(t.buf[from:]) + string(b)
		if t.fatal == "" {
			t.fatal = crashLine(s, from == 0)
		}
		if t.cause == "" {
			t.cause = abortCause(s, from == 0)
		}
	}
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

// abortCause returns the first complete ggml/llama.cpp abort line in s;
// atStart says s begins at the start of a line.
func abortCause(s string, atStart bool) string {
	if !atStart {
		// The first line may be a fragment.
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return ""
		}
		s = s[i+1:]
	}
	// Only complete lines.
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i+1]
	} else {
		return ""
	}
	if m := abortLine.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// causeLine returns the first abort line seen in the log, or "".
func (t *tailBuffer) causeLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cause
}

// crashLine returns the first complete line of s that starts a Go crash
// report; atStart says s begins at the start of a line.
func crashLine(s string, atStart bool) string {
	for _, start := range crashStarts {
		i := strings.Index(s, "\n"+start) + 1 // 0: not after a newline
		if i == 0 && !(atStart && strings.HasPrefix(s, start)) {
			continue
		}
		if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
			return strings.TrimSpace(s[i : i+j])
		}
	}
	return ""
}

// fatalLine returns the first line of a Go crash report seen in the log,
// or "".
func (t *tailBuffer) fatalLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fatal
}

// Park saves the KV state of the runner's most recently used idle slots
// into req.Dir (see ParkRequest).
func (p *Process) Park(ctx context.Context, req ParkRequest) (ParkResult, error) {
	return call[ParkResult](ctx, p, "/park", req)
}

// Restore loads parked slot state into the runner's free slots.
func (p *Process) Restore(ctx context.Context, req RestoreRequest) (RestoreResult, error) {
	return call[RestoreResult](ctx, p, "/restore", req)
}

// call posts req to the runner's path and decodes its JSON answer; errors
// name the model and the call.
func call[T any](ctx context.Context, p *Process, path string, req any) (T, error) {
	var out T
	resp, err := p.post(ctx, path, req)
	if err != nil {
		return out, fmt.Errorf("model %s: %s: %w", p.opts.Name, strings.TrimPrefix(path, "/"), err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("model %s: %s: %w", p.opts.Name, strings.TrimPrefix(path, "/"), p.diedError(err))
	}
	return out, nil
}
