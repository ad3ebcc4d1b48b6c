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

	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/modelgen"
)

func main() {
	preset := flag.String("preset", "tiny", "model `SHAPE`: tiny (1.6M parameters, 3 MiB), small (27M, 52 MiB) or 0.8b (~0.8B)")
	out := flag.String("out", "", "output `PATH` (required)")
	seed := flag.Uint64("seed", 1, "`N`, the seed of the random weights")
	chat := flag.Bool("chat-template", false, "include the ChatML chat template and its control tokens")
	chatFile := flag.String("chat-template-file", "", "include the chat template in `FILE` (a model family's Jinja template, for tool calling) and the ChatML control tokens")
	nan := flag.Bool("nan", false, "make every F16 weight NaN: a model llama.cpp loads and then aborts on (for fault tests)")
	projector := flag.Bool("projector", false, "write a LLaVA-style vision projector (mmproj) instead of a text model; -text-embd or -for gives its output width")
	textEmbd := flag.Int("text-embd", 0, "projector output width `N`: the text model's embedding length")
	forModel := flag.String("for", "", "projector for the text model `GGUF`: its embedding length sets the output width")
	imageSize := flag.Int("image-size", 224, "projector input side in `PIXELS`")
	patchSize := flag.Int("patch-size", 28, "projector patch side in `PIXELS`; an image becomes (image-size/patch-size)² tokens")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `usage: jetai-modelgen -out PATH [-preset tiny|small|0.8b|0.8b-draft] [-seed N] [-chat-template | -chat-template-file FILE] [-nan]
       jetai-modelgen -projector -out PATH (-text-embd N | -for MODEL.gguf) [-image-size PIXELS] [-patch-size PIXELS] [-seed N]

jetai-modelgen writes a llama-architecture GGUF model (F16) with realistic
shapes and deterministic random weights: it loads and generates like a real
model, but its text is noise. For trying jetai (jetai-ctl import and quantize)
and for the tests and benchmarks when no real model is at hand.

With -projector it writes a LLaVA-style multimodal projector (a CLIP vision
tower and an MLP) with random weights, for the model's mmproj setting: images
go through the whole pipeline, and the model answers with noise.

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: jetai-modelgen -preset tiny|small|0.8b|0.8b-draft -out PATH [-seed N] [-chat-template | -chat-template-file FILE] [-nan]")
		os.Exit(2)
	}
	if *projector {
		writeProjector(*out, *seed, *textEmbd, *forModel, *imageSize, *patchSize)
		return
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
	if *chatFile != "" {
		b, err := os.ReadFile(*chatFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "jetai-modelgen:", err)
			os.Exit(2)
		}
		spec.ChatTemplate = string(b)
	}
	spec.NaN = *nan
	start := time.Now()
	if err := modelgen.Generate(*out, spec); err != nil {
		fmt.Fprintln(os.Stderr, "jetai-modelgen:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s, %d parameters, %s\n", *out, spec.Name, spec.ParamCount(), time.Since(start).Round(time.Millisecond))
}

// writeProjector writes a projector whose output width is textEmbd, or the
// embedding length read from the header of the model forModel.
func writeProjector(out string, seed uint64, textEmbd int, forModel string, imageSize, patchSize int) {
	if forModel != "" {
		f, err := gguf.Open(forModel)
		if err != nil {
			fmt.Fprintln(os.Stderr, "jetai-modelgen:", err)
			os.Exit(2)
		}
		arch, _ := f.String("general.architecture")
		n, ok := f.Uint(arch + ".embedding_length")
		if !ok {
			fmt.Fprintf(os.Stderr, "jetai-modelgen: %s has no %s.embedding_length\n", forModel, arch)
			os.Exit(2)
		}
		textEmbd = int(n)
	}
	if textEmbd <= 0 {
		fmt.Fprintln(os.Stderr, "jetai-modelgen: -projector needs -text-embd N or -for MODEL.gguf")
		os.Exit(2)
	}
	spec := modelgen.TinyProjector(textEmbd)
	spec.Seed, spec.ImageSize, spec.PatchSize = seed, imageSize, patchSize
	start := time.Now()
	if err := modelgen.GenerateProjector(out, spec); err != nil {
		fmt.Fprintln(os.Stderr, "jetai-modelgen:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s for embedding length %d, %d image tokens, %s\n", out, spec.Name, textEmbd, spec.ImageTokens(), time.Since(start).Round(time.Millisecond))
}
