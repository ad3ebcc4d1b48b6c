// Package ingest brings model files into the model cache for
// `jetai-ctl import` and `jetai-ctl quantize`: it inspects a GGUF (header
// facts, a real load by the engine in a child process, the memory estimate
// at the default context), copies or quantizes it into the cache, and
// renders a ready-to-paste `model` block. Quantizing runs in a child
// process at the lowest CPU priority that can be paused, resumed (thermal
// policy) and cancelled. This package is pure Go; the llama.cpp side is
// package ingest/tool, run as `jetaid tool …`.
package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// Options configure an Ingester.
type Options struct {
	Cache *cache.Cache
	// Command runs the tool child: the executable and leading arguments
	// before "check"/"quantize". Default: this executable, "tool".
	Command []string
	Env     []string
	// CheckTimeout bounds the engine's trial load; default 2 minutes.
	CheckTimeout time.Duration
}

// Ingester imports and quantizes models into a cache.
type Ingester struct {
	opts Options
	mu   sync.Mutex
	jobs map[string]*Job // running quantize jobs by output name
}

// New builds an Ingester.
func New(opts Options) (*Ingester, error) {
	if opts.Cache == nil {
		return nil, errors.New("ingest: no model cache (cache.dir is unusable)")
	}
	if len(opts.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		opts.Command = []string{exe, "tool"}
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 2 * time.Minute
	}
	return &Ingester{opts: opts, jobs: map[string]*Job{}}, nil
}

// Facts are what the GGUF header and the engine say about a model file.
type Facts struct {
	Path         string        `json:"path"`
	Architecture string        `json:"architecture"`
	Name         string        `json:"name,omitempty"`
	FileType     string        `json:"file_type"`
	Parameters   uint64        `json:"parameters"`
	FileBytes    int64         `json:"file_bytes"`
	ContextTrain int           `json:"context_train"`
	Layers       int           `json:"layers"`
	ChatTemplate bool          `json:"chat_template"`
	Estimate     pool.Estimate `json:"estimate"` // at the default context and parallel
	Context      int           `json:"context"`  // the context the estimate uses
	Parallel     int           `json:"parallel"`
}

// engineInfo is the part of engine.Info that `tool check` prints.
type engineInfo struct {
	Architecture  string `json:"architecture"`
	Name          string `json:"name"`
	Parameters    uint64 `json:"parameters"`
	FileType      string `json:"file_type"`
	ContextTrain  int    `json:"context_train"`
	Layers        int    `json:"layers"`
	ChatSupported bool   `json:"chat_supported"`
}

// Inspect reads the header of the GGUF at path and has the engine load it
// in a child process; either failing is a clear error.
func (g *Ingester) Inspect(ctx context.Context, path string) (Facts, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Facts{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return Facts{}, fmt.Errorf("%s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return Facts{}, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := gguf.Open(abs)
	if err != nil {
		return Facts{}, fmt.Errorf("%s is not a GGUF model: %w", path, err)
	}
	if err := f.Validate(); err != nil {
		return Facts{}, fmt.Errorf("%s: invalid GGUF layout: %w", path, err)
	}
	params, err := f.Params()
	if err != nil {
		return Facts{}, fmt.Errorf("%s: not a model the engine can size: %w", path, err)
	}
	cctx, cancel := context.WithTimeout(ctx, g.opts.CheckTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := g.command(cctx, "check", abs)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if cctx.Err() != nil {
			return Facts{}, fmt.Errorf("%s: engine check: %w", path, cctx.Err())
		}
		return Facts{}, fmt.Errorf("%s: the engine cannot load it: %s", path, lastLines(errb.String(), 4, err))
	}
	var info engineInfo
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		return Facts{}, fmt.Errorf("%s: engine check: %w", path, err)
	}
	m := config.Model{Context: config.DefaultContext, Parallel: config.DefaultParallel}
	_, hasTmpl := f.ChatTemplate()
	return Facts{
		Path: abs, Architecture: info.Architecture, Name: info.Name, FileType: info.FileType,
		Parameters: info.Parameters, FileBytes: st.Size(), ContextTrain: info.ContextTrain, Layers: info.Layers,
		ChatTemplate: hasTmpl && info.ChatSupported,
		Estimate:     pool.EstimateParams(params, m, pool.DefaultRunnerOverhead),
		Context:      m.Context, Parallel: m.Parallel,
	}, nil
}

func (g *Ingester) command(ctx context.Context, args ...string) *exec.Cmd {
	all := append(append([]string{}, g.opts.Command[1:]...), args...)
	cmd := exec.CommandContext(ctx, g.opts.Command[0], all...)
	cmd.Env = append(os.Environ(), g.opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func lastLines(s string, n int, err error) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return err.Error()
	}
	return strings.Join(lines, " | ")
}

// Result is an imported or quantized model in the cache.
type Result struct {
	Entry cache.Entry `json:"entry"`
	Facts Facts       `json:"facts"`
	// Block is a model block for the config file.
	Block string `json:"block"`
}

// Import checks the GGUF at path and copies it into the cache under name
// (default: the file's base name), reporting copy progress.
func (g *Ingester) Import(ctx context.Context, path, name string, progress cache.Progress) (Result, error) {
	facts, err := g.Inspect(ctx, path)
	if err != nil {
		return Result{}, fmt.Errorf("import: %w", err)
	}
	e, err := g.opts.Cache.Import(ctx, facts.Path, name, progress)
	if err != nil {
		return Result{}, err
	}
	facts.Path = e.Path
	return Result{Entry: e, Facts: facts, Block: Block(modelName(name, e.Name), facts)}, nil
}

func modelName(name, file string) string {
	if name != "" {
		return name
	}
	return strings.TrimSuffix(file, ".gguf")
}

// Block renders a ready-to-paste model block for facts.
func Block(name string, f Facts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s, %s, %s parameters, %s on disk\n", f.Architecture, f.FileType, humanCount(f.Parameters), bytesize.IEC(uint64(f.FileBytes)))
	fmt.Fprintf(&b, "# estimated memory at context %d × parallel %d: %s (weights %s, KV cache %s, compute %s, runner %s)\n",
		f.Context, f.Parallel, bytesize.IEC(f.Estimate.Total), bytesize.IEC(f.Estimate.Weights), bytesize.IEC(f.Estimate.KV), bytesize.IEC(f.Estimate.Compute), bytesize.IEC(f.Estimate.Overhead))
	fmt.Fprintf(&b, "model %q {\n", name)
	fmt.Fprintf(&b, "  path     = %q\n", f.Path)
	if f.ContextTrain > 0 {
		fmt.Fprintf(&b, "  context  = %d # trained context: %d\n", min(f.Context, f.ContextTrain), f.ContextTrain)
	} else {
		fmt.Fprintf(&b, "  context  = %d\n", f.Context)
	}
	fmt.Fprintf(&b, "  parallel = %d\n", f.Parallel)
	if !f.ChatTemplate {
		b.WriteString("  # no usable chat template: send plain prompts (/v1/completions)\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return strconv.FormatUint(n, 10)
}

// QuantTypes are the accepted --type names.
var QuantTypes = gguf.QuantTypes()

// Job is a quantize child process.
type Job struct {
	Name   string // output model name
	Type   string
	Source string
	cmd    *exec.Cmd
	tmp    string

	mu       sync.Mutex
	done     int
	total    int
	paused   bool
	finished chan struct{}
	err      error
	res      Result
}

// Progress returns tensors done and total (0/0 before the first).
func (j *Job) Progress() (done, total int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done, j.total
}

// Pause stops the child (SIGSTOP) until Resume: for the thermal policy,
// which may want the CPU back without losing the work done.
func (j *Job) Pause() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("quantize %s: pause: %w", j.Name, err)
	}
	j.paused = true
	return nil
}

// Resume continues a paused child (SIGCONT).
func (j *Job) Resume() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("quantize %s: resume: %w", j.Name, err)
	}
	j.paused = false
	return nil
}

// Paused says whether the job is paused.
func (j *Job) Paused() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.paused
}

// Cancel kills the child; Wait then returns context.Canceled and nothing
// is added to the cache.
func (j *Job) Cancel() {
	j.cmd.Process.Kill()
	j.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued
}

// Wait waits for the job and returns its result.
func (j *Job) Wait(ctx context.Context) (Result, error) {
	select {
	case <-j.finished:
		return j.res, j.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.finished }

var progressLine = regexp.MustCompile(`^\[\s*(\d+)/\s*(\d+)\]`)

// Quantize starts quantizing the model file src to typ as model name
// (default: the source's base name and the type) in the cache. The job
// runs until done, cancelled, or ctx ends (which cancels it).
func (g *Ingester) Quantize(ctx context.Context, src, name, typ string) (*Job, error) {
	typ = strings.ToLower(typ)
	if _, ok := gguf.QuantFileType(typ); !ok {
		return nil, fmt.Errorf("quantize: unknown type %q; one of %s", typ, strings.Join(QuantTypes, ", "))
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(abs), ".gguf") + "-" + typ
	}
	if f, err := gguf.Open(abs); err != nil {
		return nil, fmt.Errorf("quantize: %s is not a GGUF model: %w", src, err)
	} else if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("quantize: %s: invalid GGUF layout: %w", src, err)
	}
	file := cache.ImportName(abs, name)
	g.mu.Lock()
	if g.jobs[file] != nil {
		g.mu.Unlock()
		return nil, fmt.Errorf("quantize: %s is already being written", file)
	}
	tmp, err := g.opts.Cache.TempPath(name)
	if err != nil {
		g.mu.Unlock()
		return nil, err
	}
	cmd := g.command(context.Background(), "quantize", abs, tmp, typ)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		g.mu.Unlock()
		os.Remove(tmp)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		g.mu.Unlock()
		os.Remove(tmp)
		return nil, fmt.Errorf("quantize: start: %w", err)
	}
	j := &Job{Name: name, Type: typ, Source: abs, cmd: cmd, tmp: tmp, finished: make(chan struct{})}
	g.jobs[file] = j
	g.mu.Unlock()
	go func() {
		defer func() {
			g.mu.Lock()
			delete(g.jobs, file)
			g.mu.Unlock()
			close(j.finished)
		}()
		stop := context.AfterFunc(ctx, j.Cancel)
		defer stop()
		tail := readProgress(stderr, j)
		err := cmd.Wait()
		if err != nil {
			os.Remove(tmp)
			os.Remove(tmp + ".partial")
			if ctx.Err() != nil {
				j.err = fmt.Errorf("quantize %s: %w", name, ctx.Err())
			} else if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				j.err = fmt.Errorf("quantize %s: %w", name, context.Canceled)
			} else {
				j.err = fmt.Errorf("quantize %s: %s", name, lastLines(tail.String(), 4, err))
			}
			return
		}
		e, err := g.opts.Cache.AddFile(context.Background(), tmp, name, abs, "quantized")
		if err != nil {
			j.err = fmt.Errorf("quantize %s: %w", name, err)
			return
		}
		facts, err := g.Inspect(context.Background(), e.Path)
		if err != nil {
			g.opts.Cache.Remove(e.Name)
			j.err = fmt.Errorf("quantize %s: the quantized file does not load: %w", name, err)
			return
		}
		j.res = Result{Entry: e, Facts: facts, Block: Block(name, facts)}
	}()
	return j, nil
}

// readProgress follows the child's stderr for "[ i/ n]" lines and keeps
// the other lines' tail for error messages.
func readProgress(r io.Reader, j *Job) *bytes.Buffer {
	var tail bytes.Buffer
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := progressLine.FindStringSubmatch(line); m != nil {
			d, _ := strconv.Atoi(m[1])
			t, _ := strconv.Atoi(m[2])
			j.mu.Lock()
			j.done, j.total = d, t
			j.mu.Unlock()
			continue
		}
		tail.WriteString(line + "\n")
		if tail.Len() > 16<<10 {
			rest := tail.Bytes()[tail.Len()-8<<10:]
			tail = *bytes.NewBuffer(append([]byte{}, rest...))
		}
	}
	return &tail
}

// Jobs lists the running quantize jobs by output name.
func (g *Ingester) Jobs() []*Job {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Job, 0, len(g.jobs))
	for _, j := range g.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// PauseAll pauses every running quantize job (thermal policy hook) and
// ResumeAll resumes them.
func (g *Ingester) PauseAll() {
	for _, j := range g.Jobs() {
		j.Pause()
	}
}

// ResumeAll resumes every paused quantize job.
func (g *Ingester) ResumeAll() {
	for _, j := range g.Jobs() {
		j.Resume()
	}
}
