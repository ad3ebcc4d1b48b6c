package ctl

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/bench"
	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
)

// benchFlags are bench's own flags.
type benchFlags struct {
	streams                 string
	promptTokens, genTokens int
	threads                 int
	verbose                 bool
}

func benchCommand() *Command {
	return &Command{Name: "bench", Args: "MODEL", Summary: "benchmark a model of the running daemon against the raw engine (the table of make bench)",
		MinArgs: 1, MaxArgs: 1, Complete: []string{"models"},
		Help: `Measures the model as the daemon serves it (through the admin socket, the pool and the
model's runner) side by side with a minimal in-process loop over the engine on the same
file, context and slots, and prints the same table as make bench: prompt tok/s, decode
tok/s of one stream, and aggregate tok/s at each concurrency level (up to the model's
parallel). jetai-ctl loads a second copy of the model for the raw figure, so it needs
read access to the model file and memory for that copy; the daemon's model is loaded
if it is not. Figures are ratios on a shared machine: run it when the box is quiet.
llama.cpp's log of the raw engine (its model load) is left out but for errors;
--verbose shows all of it on stderr.`,
		Flags: func(fs *flag.FlagSet, e *Env) {
			fs.StringVar(&e.bench.streams, "streams", "1,2,4,8", "concurrency `LEVELS` (those above the model's parallel are dropped)")
			fs.IntVar(&e.bench.promptTokens, "prompt-tokens", 0, "prompt length in `TOKENS` (0: a quarter of the context, at most 256)")
			fs.IntVar(&e.bench.genTokens, "gen-tokens", 0, "`TOKENS` generated per stream (0: half the context, at most 512)")
			fs.IntVar(&e.bench.threads, "threads", -1, "CPU `THREADS` for the raw engine (-1: the model's threads setting)")
			fs.BoolVar(&e.bench.verbose, "verbose", false, "show llama.cpp's whole log of the raw engine on stderr")
		},
		Run: runBench}
}

// daemonTarget runs completions on a model of the running daemon.
type daemonTarget struct {
	c     *admin.Client
	model string
}

func (d daemonTarget) Complete(ctx context.Context, req runner.Request, onText func(string)) (runner.Result, error) {
	return d.c.Complete(ctx, admin.CompleteRequest{Model: d.model, Request: req}, onText)
}

func runBench(ctx context.Context, e *Env, args []string) error {
	ms, err := e.Client.Models(ctx)
	if err != nil {
		return err
	}
	var m *admin.Model
	for i := range ms {
		if ms[i].Name == args[0] || contains(ms[i].Aliases, args[0]) {
			m = &ms[i]
		}
	}
	if m == nil {
		var names []string
		for _, x := range ms {
			names = append(names, x.Name)
		}
		return &exitError{code: ExitFailed, msg: fmt.Sprintf("no model %q in the daemon's config (configured: %s)", args[0], strings.Join(names, ", "))}
	}
	var levels []int
	for _, s := range strings.Split(e.bench.streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return usageErr("bad --streams %q: want numbers like 1,2,4,8", e.bench.streams)
		}
		if n <= m.Parallel {
			levels = append(levels, n)
		}
	}
	if len(levels) == 0 {
		return usageErr("no --streams level fits the model's parallel = %d", m.Parallel)
	}
	prompt, gen := e.bench.promptTokens, e.bench.genTokens
	if prompt <= 0 {
		prompt = min(256, m.Context/4)
	}
	if gen <= 0 {
		gen = min(512, m.Context/2)
	}
	if prompt+gen+16 > m.Context {
		return usageErr("--prompt-tokens %d + --gen-tokens %d do not fit the model's context of %d tokens", prompt, gen, m.Context)
	}
	threads := e.bench.threads
	if threads < 0 {
		threads = m.Threads
	}
	// The raw engine runs in this process: llama.cpp's load chatter (and
	// the binding's "system" line, logged with slog) would land between
	// the table's progress lines.
	if e.bench.verbose {
		engine.SetLogOutput(e.Stderr, true)
	} else {
		engine.SetLogErrorsOnly(e.Stderr)
		old := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		defer slog.SetDefault(old)
	}
	defer engine.SetLogOutput(os.Stderr, false)
	cfg := bench.Config{
		Cases:   []bench.Case{{Name: m.Name, Path: m.Path, PromptTokens: prompt, GenTokens: gen}},
		Threads: threads, Streams: levels, Log: e.Stderr,
		Target:      daemonTarget{c: e.Client, model: m.Name},
		TargetNote:  fmt.Sprintf("model %q of the running jetaid (admin socket, pool, runner; its threads setting: %d)", m.Name, m.Threads),
		SlotContext: m.Context, Slots: m.Parallel,
	}
	if !e.JSON {
		cfg.Out = e.Stdout
	}
	rows, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if e.JSON {
		type row struct {
			bench.Row
			Ratio float64 `json:"ratio"`
		}
		out := make([]row, len(rows))
		for i, r := range rows {
			out[i] = row{r, r.Ratio()}
		}
		return printJSON(e.Stdout, map[string]any{"model": m.Name, "path": m.Path, "threads": threads, "rows": out})
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
