package runner_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
	"github.com/jetai/jetai/modelgen"
)

// noiseImage is a w×w PNG of seeded noise: each seed a different image,
// so the runner's cache of recent encodes does not answer it.
func noiseImage(seed uint64, w int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, w))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func benchVisionRunner(b *testing.B, size, patch, slots, ctx, threads int) (*runner.Process, string) {
	b.Helper()
	model := testmodel.Path(b)
	f, err := gguf.Open(model)
	if err != nil {
		b.Fatal(err)
	}
	embd, _ := f.Uint("llama.embedding_length")
	spec := modelgen.TinyProjector(int(embd))
	spec.ImageSize, spec.PatchSize = size, patch
	proj := filepath.Join(b.TempDir(), "mmproj.gguf")
	if err := modelgen.GenerateProjector(proj, spec); err != nil {
		b.Fatal(err)
	}
	p, err := runner.Start(runner.Options{
		Name: "vision", Model: model, Mmproj: proj, Slots: slots, SlotContext: ctx, Threads: threads, Queue: 16,
		Command: testrunner.Command(), Env: testrunner.Env(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Stop(c)
	})
	rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := p.WaitReady(rctx); err != nil {
		b.Fatal(err)
	}
	return p, proj
}

// BenchmarkVisionTextPace: a slot generating text while another slot takes
// image after image (LLaVA-1.5 geometry: 336 pixels, 576 tokens each),
// against the same generation alone. pace is the ratio of the two
// generation speeds; it counts the images' prompt work (576 embeddings
// each, which cost what a 576-token prompt costs) as well as their
// encoding.
//
//	go test -run '^$' -bench VisionTextPace -benchtime 3x ./daemon/runner/
func BenchmarkVisionTextPace(b *testing.B) {
	p, _ := benchVisionRunner(b, 336, 14, 2, 2048, 2)
	ctx := context.Background()
	text := runner.Request{Prompt: "Once upon a time", Sampling: greedy, MaxTokens: 400, IgnoreEOS: true}
	speed := func(r runner.Result) float64 {
		return float64(r.Timings.GeneratedTokens) * 1000 / r.Timings.GenerationMS
	}
	var alone, beside float64
	var images atomic.Int64
	for i := range b.N {
		r, err := p.Complete(ctx, text, nil)
		if err != nil {
			b.Fatal(err)
		}
		alone += speed(r)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := uint64(0); ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				img := runner.Request{Prompt: "A picture", Images: [][]byte{noiseImage(uint64(i)<<20|k, 256)}, Sampling: greedy, MaxTokens: 1}
				if _, err := p.Complete(ctx, img, nil); err != nil {
					b.Error(err)
					return
				}
				images.Add(1)
			}
		}()
		time.Sleep(20 * time.Millisecond) // the image loop is running
		r, err = p.Complete(ctx, text, nil)
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		beside += speed(r)
	}
	b.ReportMetric(alone/float64(b.N), "tok/s-alone")
	b.ReportMetric(beside/float64(b.N), "tok/s-beside-images")
	b.ReportMetric(beside/alone, "pace")
	b.ReportMetric(float64(images.Load())/float64(b.N), "images/run")
}

// BenchmarkVisionMemory: the runner's RSS with a projector after an
// image, against without one, and what the pool charges for the
// projector (its estimate).
//
//	go test -run '^$' -bench VisionMemory -benchtime 1x ./daemon/runner/
func BenchmarkVisionMemory(b *testing.B) {
	for _, g := range []struct {
		name        string
		size, patch int
	}{{"224px-patch28", 224, 28}, {"336px-patch14", 336, 14}} {
		b.Run(g.name, func(b *testing.B) {
			for range b.N {
				p, proj := benchVisionRunner(b, g.size, g.patch, 1, 1024, 1)
				if _, err := p.Complete(context.Background(), runner.Request{Prompt: "A picture", Images: [][]byte{noiseImage(7, 512)}, MaxTokens: 1}, nil); err != nil {
					b.Fatal(err)
				}
				with, err := p.RSS()
				if err != nil {
					b.Fatal(err)
				}
				plain := start(b, testmodel.Path(b), 1, 1024)
				rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				if _, err := plain.WaitReady(rctx); err != nil {
					b.Fatal(err)
				}
				cancel()
				// As long a prompt as the image's, so the text model's
				// buffers are touched as far in both runners.
				long := strings.Repeat("Once upon a time ", g.size*g.size/(g.patch*g.patch)/4)
				if _, err := plain.Complete(context.Background(), runner.Request{Prompt: long, MaxTokens: 1}, nil); err != nil {
					b.Fatal(err)
				}
				without, err := plain.RSS()
				if err != nil {
					b.Fatal(err)
				}
				est := pool.EstimateParams(gguf.Params{}, config.Model{Mmproj: proj, MmprojFileSize: 1}, 0)
				b.ReportMetric(float64(with-without)/(1<<20), "MiB-rss-delta")
				b.ReportMetric(float64(est.Projector)/(1<<20), "MiB-charged")
			}
		})
	}
}
