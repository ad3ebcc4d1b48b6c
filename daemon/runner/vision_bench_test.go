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
	p := startOpts(b, runner.Options{
		Name: "vision", Model: model, Mmproj: proj, Slots: slots, SlotContext: ctx, Threads: threads, Queue: 16,
	})
	rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := p.WaitReady(rctx); err != nil {
		b.Fatal(err)
	}
	return p, proj
}

// BenchmarkVisionTextPace: two slots generating text while a third takes
// image after image (LLaVA-1.5 geometry: 336 pixels, 576 tokens each),
// against the same two generations without the images, in one run. The
// text slots' tokens are timed as their frames arrive (logprobs give one
// entry per token), and counted in three windows: whole runs alone; the
// images' encodes (from sending each image request to the end of its
// encode_ms); and the rest of each image request (its embeddings' prompt
// decode, prompt work like any long prompt's). pace-encode is the encode
// windows' rate over the rate alone; pace-decode the same for the rest.
//
//	go test -run '^$' -bench VisionTextPace -benchtime 3x ./daemon/runner/
func BenchmarkVisionTextPace(b *testing.B) {
	p, _ := benchVisionRunner(b, 336, 14, 3, 1024, 2)
	ctx := context.Background()
	var alone, encode, decode paceWindow
	var encodeMS float64
	var images int
	for i := range b.N {
		// Alone: the rate between the two streams' first and last frames.
		ts := startTextStreams(b, p, 2)
		ts.wait(b)
		from, to := ts.span()
		alone.add(ts, from, to)

		ts = startTextStreams(b, p, 2)
		ts.started()
		for k := uint64(0); !ts.isDone(); k++ {
			img := runner.Request{Prompt: "A picture", Images: [][]byte{noiseImage(uint64(i)<<20|k, 256)}, Sampling: greedy, MaxTokens: 1}
			sent := time.Now()
			r, err := p.Complete(ctx, img, nil)
			if err != nil {
				b.Fatal(err)
			}
			end := time.Now()
			encoded := sent.Add(time.Duration(r.Timings.EncodeMS * float64(time.Millisecond)))
			ts.whenDone(func(_, last time.Time) {
				if end.Before(last) { // both text streams ran through it
					encode.add(ts, sent, encoded)
					decode.add(ts, encoded, end)
					encodeMS += r.Timings.EncodeMS
					images++
				}
			})
		}
		ts.wait(b)
		ts.flushDone()
	}
	b.ReportMetric(alone.rate(), "tok/s-alone")
	b.ReportMetric(encode.rate(), "tok/s-during-encode")
	b.ReportMetric(decode.rate(), "tok/s-during-image-decode")
	b.ReportMetric(encode.rate()/alone.rate(), "pace-encode")
	b.ReportMetric(decode.rate()/alone.rate(), "pace-decode")
	if images > 0 {
		b.ReportMetric(encodeMS/float64(images), "encode-ms")
	}
	b.ReportMetric(float64(images)/float64(b.N), "images/run")
}

// paceWindow sums text tokens over time windows.
type paceWindow struct {
	tokens int
	dur    time.Duration
}

func (w *paceWindow) add(ts *textStreams, from, to time.Time) {
	if !to.After(from) {
		return
	}
	w.tokens += ts.tokensIn(from, to)
	w.dur += to.Sub(from)
}

func (w *paceWindow) rate() float64 {
	if w.dur == 0 {
		return 0
	}
	return float64(w.tokens) / w.dur.Seconds()
}

// textStreams are n concurrent text generations whose tokens are timed
// as their frames arrive.
type textStreams struct {
	mu     sync.Mutex
	events []tokenEvent
	first  []time.Time // each stream's first frame
	last   []time.Time // each stream's last frame
	errs   []error
	wg     sync.WaitGroup
	done   atomic.Bool
	ready  chan struct{}
	onDone []func(first, last time.Time)
}

type tokenEvent struct {
	at time.Time
	n  int
}

func startTextStreams(b *testing.B, p *runner.Process, n int) *textStreams {
	ts := &textStreams{first: make([]time.Time, n), last: make([]time.Time, n), ready: make(chan struct{})}
	var started atomic.Int32
	for i := range n {
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			req := runner.Request{Prompt: "Once upon a time", Sampling: greedy, MaxTokens: 600, IgnoreEOS: true, Logprobs: true}
			req.Observe = func(f runner.Frame) {
				now := time.Now()
				ts.mu.Lock()
				if ts.first[i].IsZero() {
					ts.first[i] = now
					if started.Add(1) == int32(n) {
						close(ts.ready)
					}
				} else {
					// The first frame's tokens came before the window opens.
					ts.events = append(ts.events, tokenEvent{now, len(f.Logprobs)})
				}
				ts.last[i] = now
				ts.mu.Unlock()
			}
			if _, err := p.Complete(context.Background(), req, nil); err != nil {
				ts.mu.Lock()
				ts.errs = append(ts.errs, err)
				ts.mu.Unlock()
			}
		}()
	}
	go func() { ts.wg.Wait(); ts.done.Store(true) }()
	return ts
}

// started waits until every stream has its first frame.
func (ts *textStreams) started() {
	select {
	case <-ts.ready:
	case <-time.After(30 * time.Second):
	}
}

func (ts *textStreams) isDone() bool { return ts.done.Load() }

func (ts *textStreams) wait(b *testing.B) {
	ts.wg.Wait()
	ts.done.Store(true)
	if len(ts.errs) > 0 {
		b.Fatal(ts.errs[0])
	}
}

// span is the time every stream generates: from the last first frame to
// the first last frame (the end is a guess until they are done).
func (ts *textStreams) span() (time.Time, time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var from, to time.Time
	for i := range ts.first {
		if ts.first[i].After(from) {
			from = ts.first[i]
		}
		if to.IsZero() || ts.last[i].Before(to) {
			to = ts.last[i]
		}
	}
	if !ts.isDone() {
		to = time.Now().Add(time.Hour)
	}
	return from, to
}

// whenDone defers f until the streams are over (flushDone).
func (ts *textStreams) whenDone(f func(first, last time.Time)) { ts.onDone = append(ts.onDone, f) }

func (ts *textStreams) flushDone() {
	from, to := ts.span()
	for _, f := range ts.onDone {
		f(from, to)
	}
	ts.onDone = nil
}

func (ts *textStreams) tokensIn(from, to time.Time) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for _, e := range ts.events {
		if !e.at.Before(from) && e.at.Before(to) {
			n += e.n
		}
	}
	return n
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
