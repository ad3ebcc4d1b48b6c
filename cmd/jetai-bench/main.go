// Command jetai-bench prints jetai's speed next to the raw engine's, measured
// side by side in one run (see package bench). `make bench` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jetai/jetai/bench"
)

func main() {
	tiny := flag.String("tiny", os.Getenv("JETAI_TEST_MODEL"), "path of stories260K.gguf (empty = skip)")
	large := flag.Bool("large", true, "also measure a generated 0.8B Q4_K_M model")
	cache := flag.String("cache", ".cache/models", "directory for generated models")
	threads := flag.Int("threads", 0, "CPU threads for the raw engine and the runner (0 = all)")
	streams := flag.String("streams", "1,2,4,8", "concurrency levels")
	runnerCmd := flag.String("runner", "bin/jetaid", "jetaid binary that provides `jetaid runner`")
	flag.Parse()

	var levels []int
	for _, s := range strings.Split(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "jetai-bench: bad -streams %q\n", *streams)
			os.Exit(2)
		}
		levels = append(levels, n)
	}
	exe, err := filepath.Abs(*runnerCmd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetai-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cases, err := bench.PrepareCases(*tiny, *cache, *large, os.Stderr)
	if err == nil {
		_, err = bench.Run(ctx, bench.Config{Cases: cases, Threads: *threads, Streams: levels,
			Runner: []string{exe, "runner"}, Out: os.Stdout, Log: os.Stderr})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetai-bench:", err)
		os.Exit(1)
	}
}
