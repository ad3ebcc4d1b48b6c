// Command qemurunner runs one generation through a jetai runner started
// under an emulator, for the package test of a foreign-architecture .deb
// (packaging/test/deb-systemd.sh): it starts `EMULATOR... JETAID runner`
// with the daemon's own runner client (package runner), so the model is
// loaded and decoded by the packaged binary exactly as jetaid would drive it.
//
//	qemurunner -model stories260K.gguf -- qemu-aarch64-static -L /usr/aarch64-linux-gnu ./jetaid
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

func main() {
	model := flag.String("model", "", "GGUF model `FILE`")
	prompt := flag.String("prompt", "Once upon a time", "prompt")
	tokens := flag.Int("tokens", 32, "tokens to generate")
	timeout := flag.Duration("timeout", 5*time.Minute, "limit for load and generation")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: qemurunner -model FILE [-prompt TEXT] [-tokens N] -- EMULATOR... JETAID")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *model == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*model, *prompt, *tokens, *timeout, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "qemurunner:", err)
		os.Exit(1)
	}
}

func run(model, prompt string, tokens int, timeout time.Duration, command []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p, err := runner.Start(runner.Options{
		Name: "probe", Model: model, SlotContext: 256, Slots: 1, Threads: 1, Queue: 1,
		Command: append(append([]string{}, command...), "runner"),
		Log:     os.Stderr,
	})
	if err != nil {
		return err
	}
	defer p.Stop(context.Background())
	info, err := p.WaitReady(ctx)
	if err != nil {
		return err
	}
	seed := uint32(1)
	res, err := p.Complete(ctx, runner.Request{
		Prompt: prompt, MaxTokens: tokens, IgnoreEOS: true,
		Sampling: runner.Sampling{Temperature: 0, Seed: &seed},
	}, nil)
	if err != nil {
		return err
	}
	fmt.Printf("model %s (%s, %d parameters)\n", info.Path, info.Architecture, info.Parameters)
	fmt.Printf("generated %d tokens in %.0f ms (%s): %q\n", res.Timings.GeneratedTokens, res.Timings.GenerationMS, res.FinishReason, res.Text)
	if res.Timings.GeneratedTokens != tokens || res.Text == "" {
		return fmt.Errorf("asked for %d tokens, got %d (%q)", tokens, res.Timings.GeneratedTokens, res.Text)
	}
	return nil
}
