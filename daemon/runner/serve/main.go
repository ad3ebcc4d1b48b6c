package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
)

// Main runs the runner process until its parent goes away or asks it to
// stop. The listener is fd 3 and the status pipe fd 4.
func Main(args []string) error {
	mainAt = time.Now()
	opts, err := runner.ParseArgs(args, os.Stderr)
	if err != nil {
		return err
	}
	if opts.ListDevices {
		return listDevices(opts.BackendsDir, os.Stdout)
	}
	status := os.NewFile(4, "status")
	lnFile := os.NewFile(3, "listener")
	if status == nil || lnFile == nil {
		return errors.New("runner: fd 3 (listener) and fd 4 (status) must be open; the runner is started by jetaid")
	}
	ln, err := net.FileListener(lnFile)
	lnFile.Close()
	if err != nil {
		reportError(status, fmt.Errorf("listener on fd 3: %w", err))
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
	}()
	stdin := bufio.NewReader(os.Stdin)
	if !opts.AwaitModel {
		watchParent(stdin, cancel)
		return Run(ctx, opts, ln, status)
	}

	// A runner that awaits its model: the engine first, then the model's
	// flags from the daemon, which may come at once (a fresh process) or
	// much later (a warm spare).
	warnings := initEngine(opts)
	clock := loadClock{main: mainAt, engine: time.Now()}
	enc := json.NewEncoder(status)
	if err := enc.Encode(runner.StatusLine{Waiting: true, MainAt: clock.main.UnixNano(), EngineAt: clock.engine.UnixNano()}); err != nil {
		return fmt.Errorf("runner: report waiting: %w", err)
	}
	line := make(chan []byte, 1)
	go func() {
		// EOF (the parent is gone) gives nil: the runner exits quietly.
		b, err := stdin.ReadBytes('\n')
		if err != nil {
			b = nil
		}
		line <- b
	}()
	var b []byte
	select {
	case <-ctx.Done():
		return nil
	case b = <-line:
	}
	if b == nil {
		return nil
	}
	clock.model = time.Now()
	var ml runner.ModelLine
	if err := json.Unmarshal(b, &ml); err != nil {
		err = fmt.Errorf("model line on stdin: %w", err)
		reportError(status, err)
		return err
	}
	mo, err := runner.ParseArgs(ml.Args, nil)
	if err != nil {
		reportError(status, err)
		return err
	}
	if mo.Model == "" {
		err := errors.New("model line on stdin: no -model")
		reportError(status, err)
		return err
	}
	// The process's own settings stay those it started with.
	mo.BackendsDir, mo.Verbose = opts.BackendsDir, opts.Verbose
	watchParent(stdin, cancel)
	return serveModel(ctx, mo, ln, status, clock, warnings)
}

// watchParent cancels when stdin ends: the parent holds its write end, so
// EOF means the parent is gone.
func watchParent(stdin io.Reader, cancel func()) {
	go func() {
		io.Copy(io.Discard, stdin)
		cancel()
	}()
}

// mainAt is when Main began: the end of the process start phase.
var mainAt time.Time

// loadClock is when a runner began (main), had its engine (engine) and
// had its model's flags (model: the start of its own load phases).
type loadClock struct {
	main, engine, model time.Time
}

// Run initialises the engine, loads opts.Model, reports on status and
// serves on ln until ctx ends or a shutdown request arrives.
func Run(ctx context.Context, opts runner.Options, ln net.Listener, status io.Writer) error {
	begin := mainAt
	if begin.IsZero() {
		begin = time.Now()
	}
	warnings := initEngine(opts)
	now := time.Now()
	return serveModel(ctx, opts, ln, status, loadClock{main: begin, engine: now, model: now}, warnings)
}

// initEngine sets llama.cpp's logging, initialises it and loads the ggml
// backends of opts.BackendsDir; it returns a warning per backend that did
// not load (the runner goes on without it).
func initEngine(opts runner.Options) []string {
	engine.SetLogOutput(os.Stderr, opts.Verbose)
	engine.Init()
	var backendWarnings []string
	for _, l := range engine.LoadBackends(opts.BackendsDir) {
		if l.Err != nil {
			w := fmt.Sprintf("backend %s not loaded: %v", l.Path, l.Err)
			fmt.Fprintf(os.Stderr, "runner: %s; continuing without it\n", w)
			backendWarnings = append(backendWarnings, w)
		}
	}
	return backendWarnings
}

// serveModel loads opts.Model into an initialised engine, reports ready
// on status with the load's phases (timed from clock.model) and serves.
func serveModel(ctx context.Context, opts runner.Options, ln net.Listener, status io.Writer, clock loadClock, backendWarnings []string) error {
	if clock.main.IsZero() {
		clock.main = clock.engine
	}
	phases := runner.NewPhaseTimer(clock.model)
	enc := json.NewEncoder(status)
	lastSent := time.Time{}
	var checked *engine.FileVersion
	if !opts.Checked.IsZero() {
		checked = &engine.FileVersion{Size: opts.Checked.Size, ModTime: opts.Checked.ModTime}
	}
	model, err := engine.Load(ctx, opts.Model, engine.LoadOptions{
		GPULayers: opts.GPULayers,
		NoMmap:    opts.NoMmap,
		Checked:   checked,
		Progress: func(p float32) {
			if p < 1 && time.Since(lastSent) < 100*time.Millisecond {
				return
			}
			lastSent = time.Now()
			enc.Encode(runner.StatusLine{Progress: &p})
		},
	})
	if err != nil {
		reportError(status, err)
		return err
	}
	defer model.Close()
	lt := model.Timings()
	phases.Add(runner.PhaseCheck, lt.Check)
	phases.Add(runner.PhaseMetadata, lt.Metadata)
	phases.Add(runner.PhaseMmap, lt.Mmap)
	phases.Add(runner.PhaseWeights, lt.Weights)
	phases.Mark(runner.PhaseModelInfo)
	if opts.Slots < 1 {
		opts.Slots = 1
	}
	lctx, err := model.NewContext(engine.ContextOptions{
		SlotContext:    opts.SlotContext,
		Slots:          opts.Slots,
		BatchSize:      opts.BatchSize,
		Threads:        opts.Threads,
		FlashAttention: opts.FlashAttention,
		KVType:         opts.KVType,
	})
	if err != nil {
		reportError(status, err)
		return err
	}
	defer lctx.Close()
	phases.Mark(runner.PhaseContext)
	for _, a := range opts.Adapters {
		if err := lctx.ApplyAdapter(a.Path, a.Scale); err != nil {
			reportError(status, err)
			return err
		}
	}
	if len(opts.Adapters) > 0 {
		phases.Mark(runner.PhaseAdapters)
	}

	sched, err := newScheduler(lctx, opts.Queue)
	if err != nil {
		reportError(status, err)
		return err
	}
	if opts.Draft != "" {
		d, err := loadDrafter(ctx, opts, model)
		if err != nil {
			reportError(status, err)
			return err
		}
		defer d.close()
		sched.drafter = d
	}
	sched.setSpec(opts.NGram, opts.MaxDraft)
	if opts.Mmproj != "" {
		proj, err := engine.LoadProjector(ctx, opts.Mmproj, model, engine.ProjectorOptions{Offload: opts.MmprojOffload})
		if err != nil {
			reportError(status, err)
			return err
		}
		defer proj.Close()
		// The encode runs beside the decode loop, with half the
		// model's threads, so the slots that generate keep the rest.
		sched.vision = newVision(proj, func() int { return max(1, int(sched.threads.Load())/2) })
		phases.Mark(runner.PhaseProjector)
	}
	srv := &http.Server{Handler: newHandler(sched, model), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	go sched.loop()

	info := modelInfo(model.Info())
	off := engine.TakeOffload()
	info.GPULayers, info.LayersTotal, info.GPUBytes = off.Layers, off.LayersTotal, off.DeviceBytes()
	info.Devices = runnerDevices(engine.Devices())
	info.BackendWarnings = backendWarnings
	phases.Mark(runner.PhaseReady)
	if err := enc.Encode(runner.StatusLine{Ready: true, Info: &info, MainAt: clock.main.UnixNano(), EngineAt: clock.engine.UnixNano(), Phases: phases.Phases()}); err != nil {
		return fmt.Errorf("runner: report ready: %w", err)
	}

	select {
	case <-ctx.Done():
	case <-sched.stopRequested:
	case err := <-serveErr:
		sched.stop()
		return err
	}
	// Fail what is in flight, then close connections.
	sched.stop()
	shutdownCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
	defer done()
	srv.Shutdown(shutdownCtx)
	return nil
}

func reportError(status io.Writer, err error) {
	json.NewEncoder(status).Encode(runner.StatusLine{Error: err.Error()})
}

func modelInfo(i engine.Info) runner.ModelInfo {
	return runner.ModelInfo{
		Path: i.Path, Architecture: i.Architecture, Name: i.Name, Description: i.Description,
		Parameters: i.Parameters, FileType: i.FileType, SizeBytes: i.SizeBytes, FileBytes: i.FileBytes,
		ContextTrain: i.ContextTrain, Layers: i.Layers, Embedding: i.Embedding, Heads: i.Heads,
		HeadsKV: i.HeadsKV, VocabSize: i.VocabSize, ChatTemplate: i.ChatTemplate, ChatSupported: i.ChatSupported,
	}
}

func runnerDevices(ds []engine.Device) []runner.Device {
	out := make([]runner.Device, len(ds))
	for i, d := range ds {
		out[i] = runner.Device{Name: d.Name, Description: d.Description, Type: d.Type, FreeBytes: d.FreeBytes, TotalBytes: d.TotalBytes}
	}
	return out
}
