package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/jetai/jetai/admin"
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
model's runner) side by side with a minimal loop over the engine on the same file, context
and slots, and prints the same table as make bench: prompt tok/s, decode tok/s of one
stream, and aggregate tok/s at each concurrency level (up to the model's parallel). The
daemon runs the measurement in a child process (jetaid tool bench) that loads a second
copy of the model for the raw figure, so the machine needs memory for that copy; the
daemon's model is loaded if it is not. Progress goes to stderr. Figures are ratios on a
shared machine: run it when the box is quiet. llama.cpp's log of the raw engine is left
out but for errors; --verbose shows all of it on stderr. Ctrl-C stops the run.`,
		Flags: func(fs *flag.FlagSet, e *Env) {
			fs.StringVar(&e.bench.streams, "streams", "1,2,4,8", "concurrency `LEVELS` (those above the model's parallel are dropped)")
			fs.IntVar(&e.bench.promptTokens, "prompt-tokens", 0, "prompt length in `TOKENS` (0: a quarter of the context, at most 256)")
			fs.IntVar(&e.bench.genTokens, "gen-tokens", 0, "`TOKENS` generated per stream (0: half the context, at most 512)")
			fs.IntVar(&e.bench.threads, "threads", 0, "CPU `THREADS` for the raw engine (0: the model's threads setting)")
			fs.BoolVar(&e.bench.verbose, "verbose", false, "show llama.cpp's whole log of the raw engine on stderr")
		},
		Run: runBench}
}

func runBench(ctx context.Context, e *Env, args []string) error {
	req := admin.BenchRequest{Model: args[0], PromptTokens: e.bench.promptTokens, GenTokens: e.bench.genTokens,
		Threads: e.bench.threads, Verbose: e.bench.verbose}
	for _, s := range strings.Split(e.bench.streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return usageErr("bad --streams %q: want numbers like 1,2,4,8", e.bench.streams)
		}
		req.Streams = append(req.Streams, n)
	}
	ms, err := e.Client.Models(ctx)
	if err != nil {
		return err
	}
	m, ok := admin.FindModel(ms, args[0])
	if !ok {
		var names []string
		for _, x := range ms {
			names = append(names, x.Name)
		}
		return &exitError{code: ExitFailed, msg: fmt.Sprintf("no model %q in the daemon's config (configured: %s)", args[0], strings.Join(names, ", "))}
	}
	// The daemon checks the same; checked here, a bad size is a usage
	// error with the flags' names.
	if _, err := req.Sized(m); err != nil {
		var ae *admin.Error
		if errors.As(err, &ae) {
			return usageErr("%s (--streams, --prompt-tokens, --gen-tokens)", ae.Message)
		}
		return err
	}
	res, err := e.Client.Bench(ctx, req, func(line string) { fmt.Fprintln(e.Stderr, line) })
	if err != nil {
		return err
	}
	if e.JSON {
		res.Table = ""
		return printJSON(e.Stdout, res)
	}
	_, err = fmt.Fprint(e.Stdout, res.Table)
	return err
}
