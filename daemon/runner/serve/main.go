package serve

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

// Options are the runner's command-line settings.
type Options struct {
	Model          string
	SlotContext    int
	Slots          int
	BatchSize      int
	Threads        int
	GPULayers      int
	FlashAttention bool
	KVType         string
	NoMmap         bool
	Queue          int
	Verbose        bool
	Adapters       []runner.Adapter
}

// ParseFlags reads the runner's flags (after the "runner" word).
func ParseFlags(args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("jetaid runner", flag.ContinueOnError)
	fs.StringVar(&o.Model, "model", "", "GGUF model file")
	fs.IntVar(&o.SlotContext, "ctx", 2048, "context per slot, in tokens")
	fs.IntVar(&o.Slots, "parallel", 4, "sequence slots (concurrent requests)")
	fs.IntVar(&o.BatchSize, "batch", 512, "most tokens per decode step")
	fs.IntVar(&o.Threads, "threads", 0, "CPU threads (0 = all)")
	fs.IntVar(&o.GPULayers, "gpu-layers", 0, "layers offloaded to the GPU")
	fs.BoolVar(&o.FlashAttention, "flash-attn", false, "use flash attention")
	fs.StringVar(&o.KVType, "kv-type", "f16", "KV cache type: f16, q8_0, q4_0")
	fs.BoolVar(&o.NoMmap, "no-mmap", false, "read the model instead of mapping it")
	fs.IntVar(&o.Queue, "queue", 16, "requests that may wait for a slot")
	fs.BoolVar(&o.Verbose, "verbose", false, "log llama.cpp's info lines")
	fs.Func("lora", "LoRA adapter `SCALE:PATH` (repeatable)", func(s string) error {
		a, err := runner.ParseAdapter(s)
		if err == nil {
			o.Adapters = append(o.Adapters, a)
		}
		return err
	})
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "jetaid runner serves one model for jetaid; it is started by the daemon, not by hand.\nIt expects a listening Unix socket on fd 3 and a status pipe on fd 4.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.Model == "" {
		return o, errors.New("runner: -model is required")
	}
	return o, nil
}

// Main runs the runner process until its parent goes away or asks it to
// stop. The listener is fd 3 and the status pipe fd 4.
func Main(args []string) error {
	opts, err := ParseFlags(args)
	if err != nil {
		return err
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
	// The parent holds the write end of stdin: EOF means it is gone.
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
	}()

	return Run(ctx, opts, ln, status)
}

// Run loads the model, reports on status and serves on ln until ctx ends
// or a shutdown request arrives.
func Run(ctx context.Context, opts Options, ln net.Listener, status io.Writer) error {
	engine.SetLogOutput(os.Stderr, opts.Verbose)
	enc := json.NewEncoder(status)
	lastSent := time.Time{}
	model, err := engine.Load(ctx, opts.Model, engine.LoadOptions{
		GPULayers: opts.GPULayers,
		NoMmap:    opts.NoMmap,
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
	for _, a := range opts.Adapters {
		if err := lctx.ApplyAdapter(a.Path, a.Scale); err != nil {
			reportError(status, err)
			return err
		}
	}

	sched, err := newScheduler(lctx, opts.Queue)
	if err != nil {
		reportError(status, err)
		return err
	}
	srv := &http.Server{Handler: newHandler(sched, model), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	go sched.loop()

	info := modelInfo(model.Info())
	if err := enc.Encode(runner.StatusLine{Ready: true, Info: &info}); err != nil {
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
