package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
)

// ToolMain is `jetaid tool bench SOCKET REQUEST`: Served for the daemon's
// admin socket SOCKET and the JSON admin.BenchRequest REQUEST, the result
// as JSON on stdout, progress on stderr. SIGTERM (the daemon's cancel)
// stops it.
func ToolMain(args []string) error {
	if len(args) != 2 {
		return errors.New("tool bench: want SOCKET REQUEST")
	}
	var req admin.BenchRequest
	if err := json.Unmarshal([]byte(args[1]), &req); err != nil {
		return fmt.Errorf("tool bench: request: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Served(ctx, args[0], req, os.Stderr)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// Served measures a model as a running jetaid serves it (through its admin
// socket, the pool and the model's runner) against the raw engine in this
// process on the same file, context and slots. The daemon runs it in a
// child process (`jetaid tool bench`) for `jetai-ctl bench`, so the engine
// never runs inside the daemon. Progress lines go to log; llama.cpp's log
// of the raw engine is left out but for errors unless req.Verbose.
func Served(ctx context.Context, socket string, req admin.BenchRequest, log io.Writer) (admin.BenchResult, error) {
	c := admin.NewClient(socket)
	defer c.Close()
	ms, err := c.Models(ctx)
	if err != nil {
		return admin.BenchResult{}, err
	}
	m, ok := admin.FindModel(ms, req.Model)
	if !ok {
		return admin.BenchResult{}, fmt.Errorf("no model %q", req.Model)
	}
	req, err = req.Sized(m)
	if err != nil {
		return admin.BenchResult{}, err
	}
	// llama.cpp's load chatter (and the binding's "system" line, logged
	// with slog) would land between the progress lines.
	if req.Verbose {
		engine.SetLogOutput(log, true)
	} else {
		engine.SetLogErrorsOnly(log)
		old := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})))
		defer slog.SetDefault(old)
	}
	defer engine.SetLogOutput(os.Stderr, false)
	cfg := Config{
		Cases:   []Case{{Name: m.Name, Path: m.Path, PromptTokens: req.PromptTokens, GenTokens: req.GenTokens}},
		Threads: req.Threads, Streams: req.Streams, Log: log,
		Target:      servedModel{c: c, model: m.Name},
		TargetNote:  fmt.Sprintf("model %q of the running jetaid (admin socket, pool, runner; its threads setting: %d)", m.Name, m.Threads),
		SlotContext: m.Context, Slots: m.Parallel,
	}
	rows, err := Run(ctx, cfg)
	if err != nil {
		return admin.BenchResult{}, err
	}
	res := admin.BenchResult{Model: m.Name, Path: m.Path, Threads: req.Threads, Rows: make([]admin.BenchRow, len(rows))}
	for i, r := range rows {
		res.Rows[i] = admin.BenchRow{Model: r.Model, Metric: r.Metric, Raw: r.Raw, Runner: r.Runner, Target: r.Target,
			PairMin: r.PairMin, PairMax: r.PairMax, RawWakeups: r.RawWakeups, RunnerWakeups: r.RunnerWakeups, Ratio: r.Ratio()}
	}
	var table bytes.Buffer
	PrintNote(&table, rows, req.Threads, cfg.TargetNote)
	res.Table = table.String()
	return res, nil
}

// servedModel runs completions on a model of the running daemon.
type servedModel struct {
	c     *admin.Client
	model string
}

func (s servedModel) Complete(ctx context.Context, req runner.Request, onText func(string)) (runner.Result, error) {
	msgs := make([]admin.Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = admin.Message{Role: m.Role, Content: m.Content}
	}
	r, err := s.c.Complete(ctx, admin.CompleteRequest{Model: s.model, Prompt: req.Prompt, Messages: msgs,
		Sampling: admin.Sampling(req.Sampling), MaxTokens: req.MaxTokens, Stop: req.Stop, IgnoreEOS: req.IgnoreEOS}, onText)
	return runner.Result{Text: r.Text, FinishReason: r.FinishReason, Timings: runner.Timings(r.Timings)}, err
}
