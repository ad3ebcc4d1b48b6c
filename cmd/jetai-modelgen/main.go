// Command jetai-modelgen writes a llama-architecture GGUF model with
// realistic shapes and deterministic random weights (see package modelgen).
//
//	jetai-modelgen -preset 0.8b -out /var/cache/jetai/llama-0.8b-f16.gguf
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jetai/jetai/modelgen"
)

func main() {
	preset := flag.String("preset", "tiny", "model shape: tiny, small or 0.8b")
	out := flag.String("out", "", "output file (required)")
	seed := flag.Uint64("seed", 1, "seed of the random weights")
	chat := flag.Bool("chat-template", false, "include the ChatML chat template and its control tokens")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: jetai-modelgen -preset tiny|small|0.8b -out PATH [-seed N] [-chat-template]")
		os.Exit(2)
	}
	spec, err := modelgen.Preset(*preset)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetai-modelgen:", err)
		os.Exit(2)
	}
	spec.Seed = *seed
	if *chat {
		spec.ChatTemplate = modelgen.ChatML
	}
	start := time.Now()
	if err := modelgen.Generate(*out, spec); err != nil {
		fmt.Fprintln(os.Stderr, "jetai-modelgen:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s, %d parameters, %s\n", *out, spec.Name, spec.ParamCount(), time.Since(start).Round(time.Millisecond))
}
