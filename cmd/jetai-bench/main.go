// Command jetai-bench prints jetai's speed next to the raw engine's, measured
// side by side in one run (see package bench). `make bench` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jetai/jetai/bench"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/modelgen"
)

func main() {
	tiny := flag.String("tiny", os.Getenv("JETAI_TEST_MODEL"), "`PATH` of stories260K.gguf (default $JETAI_TEST_MODEL; empty = skip)")
	large := flag.Bool("large", true, "also measure a generated 0.8B Q4_K_M model")
	cache := flag.String("cache", ".cache/models", "directory for generated models")
	threads := flag.Int("threads", 0, "CPU threads for the raw engine and the runner (0 = all)")
	streams := flag.String("streams", "1,2,4,8", "concurrency levels")
	repeats := flag.Int("repeats", 3, "measurements of each raw/runner figure, the two back to back; the best of each side counts (requests per size for -special: the median counts)")
	runnerCmd := flag.String("runner", "bin/jetaid", "the jetaid `BINARY` whose runner (jetaid runner) is measured")
	httpBench := flag.Bool("http", true, "also measure jetaid over HTTP against the runner, endpoint latency and a model swap")
	rate := flag.Int("rate", 500, "requests/s for the /health and /models latency figure")
	idle := flag.Duration("idle", 30*time.Second, "how long to measure the CPU share of idle daemons for the cost of platform monitoring (0 = skip)")
	fakeRoot := flag.String("platform-root", "testdata/platform/orin-nano", "fake machine tree for the monitoring cost")
	reload := flag.Int("reload", 10, "rounds of the config reload latency figures (0 = skip)")
	engineBench := flag.Bool("engine", true, "measure the raw engine and the runner side by side")
	flood := flag.String("flood", "", "`COUNTS` of idle connections (e.g. 3000,6000) to hold while timing /health, then a burst of -burst requests, on stories260K (empty = skip)")
	burst := flag.Int("burst", 2000, "requests sent at once after the -flood counts")
	special := flag.String("special", "50,100,200,400", "`SIZES` in KB of /inference bodies of special-token text (\"</s>x\" repeated) whose runner CPU is measured, on stories260K (empty = skip)")
	kv := flag.Bool("kv", true, "also measure the KV cache types (f16, q8_0, q4_0): bytes a token, what fits -kv-budget, decode speed and the NLL of -kv-text")
	kvText := flag.String("kv-text", "testdata/kvcache/stories-greedy.txt", "`PATH` of the fixed text whose NLL -kv measures")
	kvBudget := flag.String("kv-budget", "1.5GiB", "memory `SIZE` of -kv's fit table")
	kvGenText := flag.String("kv-gen-text", "", "write stories260K's greedy stories (the -kv-text fixture) to `PATH` and exit")
	pullBench := flag.Bool("pull", true, "also measure jetai-ctl pull from a local hub: throughput against curl, bytes fetched twice after a cut, download to first answer (the 0.8B Q4_K_M with -large, else a generated 54 MB model)")
	ollama := flag.Bool("ollama", true, "also measure the Ollama API's streams (/api/chat, /api/generate) against /v1's on stories260K")
	swap := flag.Bool("swap", true, "also measure model swaps of two generated 0.8B Q4_K_M models: each phase of the load, the whole alternating request, and cold loads against dd iflag=direct")
	swapRounds := flag.Int("swap-rounds", 6, "swapping requests per binary of -swap")
	swapCold := flag.Bool("swap-cold", true, "-swap also measures loads with the files dropped from the page cache")
	baseline := flag.String("baseline-runner", "", "another jetaid `BINARY` (e.g. built from main) that -swap measures the same way in the same run")
	tools := flag.String("tools", "tiny,small", "`PRESETS` of generated models carrying -tools-template on which to measure tool calling: first tool_calls delta against a plain chat's first token, decode per token with and without the call grammar (empty = skip)")
	toolsTemplate := flag.String("tools-template", "daemon/chattmpl/testdata/templates/qwen2.5.jinja", "the Jinja chat template `PATH` (with tool support) of the -tools models")
	spec := flag.Bool("spec", true, "also measure speculative decoding: its bounds on the raw engine (oracle and always-wrong drafts, 0.8B Q4_K_M with -large) and n-gram drafts on stories260K through the runner and jetaid")
	specGen := flag.Int("spec-gen", 64, "tokens generated per run of -spec's bounds on the 0.8B model")
	modelCache := flag.Bool("model-cache", true, "also measure the model cache: a parked conversation's first token after evict + reload, and staging vs cp")
	respShadow := flag.Int("respcache-shadow", 40, "requests of each kind (shadow on, off) for -respcache's shadow figure")
	respCache := flag.Int("respcache", 2000, "cached answers to time through HTTP (response cache hit p50/p99 against /health, on stories260K and the 0.8B model) and shadow mode's cost to the primary (0 = skip)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `usage: jetai-bench [flags]

jetai-bench measures jetai side by side with the raw engine in one run and
prints tables: the runner against a minimal in-process engine loop (for
stories260K and a generated 0.8B Q4_K_M model), jetaid over HTTP, endpoint
latency, a model swap, config reload latency, the model cache, the CPU
cost of platform monitoring, the runner CPU that refusing special-token
text costs, the KV cache types: memory, speed and perplexity, model
swaps phase by phase (against -baseline-runner, a build from main), the
response cache's hit latency and shadow mode's cost, and downloads
(jetai-ctl pull against curl from a local hub), and speculative decoding:
its bounds and its n-gram acceptance. Not a test: the figures are for a quiet machine.
make bench runs it with the defaults below.

Flags:
`)
		flag.PrintDefaults()
	}
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
	if *tiny != "" {
		abs, err := filepath.Abs(*tiny)
		if err != nil {
			fmt.Fprintln(os.Stderr, "jetai-bench:", err)
			os.Exit(2)
		}
		*tiny = abs
	}
	if abs, err := filepath.Abs(*cache); err == nil {
		*cache = abs
	}
	exe, err := filepath.Abs(*runnerCmd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetai-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *kvGenText != "" {
		if err := genText(ctx, *tiny, *kvGenText); err != nil {
			fmt.Fprintln(os.Stderr, "jetai-bench:", err)
			os.Exit(1)
		}
		return
	}
	var cases []bench.Case
	if *engineBench {
		cases, err = bench.PrepareCases(*tiny, *cache, *large, os.Stderr)
	}
	if err == nil && *engineBench {
		_, err = bench.Run(ctx, bench.Config{Cases: cases, Threads: *threads, Streams: levels, Repeats: *repeats,
			Runner: []string{exe, "runner"}, Out: os.Stdout, Log: os.Stderr})
	}
	if err == nil && *httpBench {
		err = runHTTP(ctx, *large, *tiny, *cache, exe, *threads, *rate)
	}
	if err == nil && *idle > 0 {
		root, _ := filepath.Abs(*fakeRoot)
		_, err = bench.RunIdle(ctx, bench.IdleConfig{Jetaid: exe, Model: *tiny, FakeRoot: root, Duration: *idle, Out: os.Stdout, Log: os.Stderr})
	}
	if err == nil && *reload > 0 && *tiny != "" {
		rc := bench.ReloadConfig{Jetaid: exe, Model: *tiny, Rounds: *reload, Out: os.Stdout, Log: os.Stderr}
		if *large {
			rc.Large, err = bench.LargeModel(*cache, os.Stderr)
		}
		if err == nil {
			_, err = bench.RunReload(ctx, rc)
		}
	}
	if err == nil && *flood != "" && *tiny != "" {
		var counts []int
		for _, s := range strings.Split(*flood, ",") {
			n, cerr := strconv.Atoi(strings.TrimSpace(s))
			if cerr != nil || n < 0 {
				fmt.Fprintf(os.Stderr, "jetai-bench: bad -flood %q\n", *flood)
				os.Exit(2)
			}
			counts = append(counts, n)
		}
		_, err = bench.RunFlood(ctx, bench.FloodConfig{Jetaid: exe, Model: *tiny, Idle: counts, Burst: *burst, Out: os.Stdout, Log: io.Discard})
	}
	if err == nil && *special != "" && *tiny != "" {
		var sizes []int
		for _, s := range strings.Split(*special, ",") {
			n, cerr := strconv.Atoi(strings.TrimSpace(s))
			if cerr != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "jetai-bench: bad -special %q\n", *special)
				os.Exit(2)
			}
			sizes = append(sizes, n)
		}
		_, err = bench.RunSpecial(ctx, bench.SpecialConfig{Jetaid: exe, Model: *tiny, SizesKB: sizes, Repeats: *repeats, Out: os.Stdout, Log: io.Discard})
	}
	if err == nil && *kv {
		err = runKV(ctx, *tiny, *large, *cache, *kvText, *kvBudget, *threads, *repeats)
	}
	if err == nil && *ollama && *tiny != "" {
		_, err = bench.RunOllama(ctx, bench.OllamaConfig{Jetaid: exe, Model: *tiny, Cache: *cache, Threads: *threads,
			GenTokens: 1024, Streams: 4, Repeats: max(*repeats, 5), Out: os.Stdout, Log: os.Stderr})
	}
	if err == nil && *tools != "" {
		_, err = bench.RunTools(ctx, bench.ToolsConfig{Jetaid: exe, Cache: *cache, TemplatePath: *toolsTemplate,
			Presets: strings.Split(*tools, ","), Repeats: *repeats, Tokens: 128, Threads: *threads, Out: os.Stdout, Log: io.Discard})
	}
	if err == nil && *spec {
		err = runSpec(ctx, *tiny, *large, *cache, *kvText, exe, *threads, *repeats, *specGen)
	}
	if err == nil && *modelCache {
		err = runCache(ctx, *large, *cache, exe, *threads)
	}
	if err == nil && *swap && *large {
		err = runSwap(ctx, *cache, exe, *baseline, *threads, *swapRounds, *swapCold)
	}
	if err == nil && *respCache > 0 {
		err = runRespCache(ctx, *tiny, *large, *cache, exe, *respCache, *respShadow)
	}
	if err == nil && *pullBench {
		err = runPull(ctx, *large, *cache, exe)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetai-bench:", err)
		os.Exit(1)
	}
}

func runSwap(ctx context.Context, cache, exe, baseline string, threads, rounds int, cold bool) error {
	a, err := bench.LargeModel(cache, os.Stderr)
	if err != nil {
		return err
	}
	b, err := bench.SecondLargeModel(cache, os.Stderr)
	if err != nil {
		return err
	}
	if baseline != "" {
		if baseline, err = filepath.Abs(baseline); err != nil {
			return err
		}
	}
	_, err = bench.RunSwap(ctx, bench.SwapConfig{Jetaid: exe, Baseline: baseline, A: a, B: b, Rounds: rounds,
		Threads: threads, Cold: cold, Out: os.Stdout, Log: os.Stderr})
	return err
}

func runPull(ctx context.Context, large bool, cache, exe string) error {
	var model string
	var err error
	if large {
		model, err = bench.LargeModel(cache, os.Stderr)
	} else {
		model, err = modelgen.Cached(cache, modelgen.Small())
	}
	if err != nil {
		return err
	}
	_, err = bench.RunPull(ctx, bench.PullConfig{Jetaid: exe, Model: model, Out: os.Stdout, Log: os.Stderr})
	return err
}

func runKV(ctx context.Context, tiny string, large bool, cache, text, budget string, threads, repeats int) error {
	b, err := config.ParseSize(budget)
	if err != nil {
		return fmt.Errorf("-kv-budget: %w", err)
	}
	cfg := bench.KVConfig{Tiny: tiny, Text: text, TinyTokens: 4096, LargeTokens: 1022, Budget: uint64(b),
		SlotContext: 1024, Streams: 8, GenTokens: 32, Threads: threads, Repeats: repeats, Out: os.Stdout, Log: os.Stderr}
	if large {
		if cfg.Large, err = bench.LargeModel(cache, os.Stderr); err != nil {
			return err
		}
	}
	_, err = bench.RunKV(ctx, cfg)
	return err
}

// genText writes the greedy stories of stories260K that -kv scores.
func genText(ctx context.Context, tiny, path string) error {
	if tiny == "" {
		return fmt.Errorf("-kv-gen-text needs -tiny (stories260K.gguf)")
	}
	text, err := bench.GreedyText(ctx, tiny, bench.StoryPrompts, 400)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

func runSpec(ctx context.Context, tiny string, large bool, cache, text, exe string, threads, repeats, gen int) error {
	cfg := bench.SpecConfig{Tiny: tiny, Jetaid: exe, Text: text, Threads: threads, Repeats: repeats, LargeGen: gen, Out: os.Stdout, Log: os.Stderr}
	if large {
		var err error
		if cfg.Large, err = bench.LargeModel(cache, os.Stderr); err != nil {
			return err
		}
	}
	_, err := bench.RunSpec(ctx, cfg)
	return err
}

func runCache(ctx context.Context, large bool, cache, exe string, threads int) error {
	model, other, stage, err := bench.CacheModels(cache, large, os.Stderr)
	if err != nil {
		return err
	}
	_, err = bench.RunCache(ctx, bench.CacheConfig{Model: model, Other: other, StageFile: stage, History: 1000,
		Threads: threads, Jetaid: exe, Out: os.Stdout, Log: os.Stderr})
	return err
}

func runHTTP(ctx context.Context, large bool, tiny, cache, exe string, threads, rate int) error {
	cfg := bench.HTTPConfig{Jetaid: exe, Model: tiny, Threads: threads, GenTokens: 512, Streams: 8, Rate: rate, Out: os.Stdout, Log: os.Stderr}
	if large {
		a, err := bench.LargeModel(cache, os.Stderr)
		if err != nil {
			return err
		}
		b, err := bench.SecondLargeModel(cache, os.Stderr)
		if err != nil {
			return err
		}
		cfg.SwapA, cfg.SwapB = a, b
		if tiny == "" {
			cfg.Model, cfg.GenTokens = a, 64
		}
	}
	if cfg.Model == "" {
		return nil
	}
	_, err := bench.RunHTTP(ctx, cfg)
	return err
}

func runRespCache(ctx context.Context, tiny string, large bool, cache, exe string, hits, shadow int) error {
	cfg := bench.RespCacheConfig{Jetaid: exe, Hits: hits, Shadow: shadow, Out: os.Stdout, Log: io.Discard}
	if tiny != "" {
		cfg.Models = append(cfg.Models, tiny)
	}
	if large {
		m, err := bench.LargeModel(cache, os.Stderr)
		if err != nil {
			return err
		}
		cfg.Models = append(cfg.Models, m)
	}
	if len(cfg.Models) == 0 {
		return nil
	}
	_, err := bench.RunRespCache(ctx, cfg)
	return err
}
