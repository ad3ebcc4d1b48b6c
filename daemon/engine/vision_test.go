package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/modelgen"
)

// projectorFor writes a generated projector for a model embd wide into a
// temporary folder.
func projectorFor(t *testing.T, embd int) (string, modelgen.ProjectorSpec) {
	t.Helper()
	spec := modelgen.TinyProjector(embd)
	return writeProjector(t, spec), spec
}

func writeProjector(t testing.TB, spec modelgen.ProjectorSpec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mmproj.gguf")
	if err := modelgen.GenerateProjector(path, spec); err != nil {
		t.Fatal(err)
	}
	return path
}

func readImage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadProjector(t *testing.T, m *Model) (*Projector, modelgen.ProjectorSpec) {
	t.Helper()
	spec := modelgen.TinyProjector(m.Info().Embedding)
	return loadProjectorSpec(t, m, spec), spec
}

// loadProjectorSpec generates spec's projector for m and loads it, closed
// when the test ends.
func loadProjectorSpec(t testing.TB, m *Model, spec modelgen.ProjectorSpec) *Projector {
	t.Helper()
	p, err := LoadProjector(context.Background(), writeProjector(t, spec), m, ProjectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestProjectorEncode(t *testing.T) {
	m := loadTiny(t)
	p, spec := loadProjector(t, m)
	if p.Embd() != m.Info().Embedding || p.ImageTokens() != spec.ImageTokens() {
		t.Fatalf("projector: embd %d tokens %d, want %d and %d", p.Embd(), p.ImageTokens(), m.Info().Embedding, spec.ImageTokens())
	}
	ctx := context.Background()
	encode := func(name string) *ImageEmbedding {
		e, err := p.Encode(ctx, readImage(t, name), 2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.Tokens != spec.ImageTokens() || e.Embd != m.Info().Embedding || len(e.Data) != e.Tokens*e.Embd {
			t.Fatalf("%s: %d×%d (%d values), want %d×%d", name, e.Tokens, e.Embd, len(e.Data), spec.ImageTokens(), m.Info().Embedding)
		}
		return e
	}
	a1, a2, b := encode("gradient.png"), encode("gradient.png"), encode("checker.jpg")
	if !slices.Equal(a1.Data, a2.Data) {
		t.Error("the same image gave different embeddings")
	}
	if slices.Equal(a1.Data, b.Data) {
		t.Error("two different images gave the same embeddings")
	}
	var zero int
	for _, v := range a1.Data {
		if v == 0 {
			zero++
		}
	}
	if zero == len(a1.Data) {
		t.Error("embeddings are all zero")
	}
}

func TestProjectorEncodeErrors(t *testing.T) {
	m := loadTiny(t)
	p, _ := loadProjector(t, m)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated png", readImage(t, "truncated.png")},
		{"text", []byte("this is not an image at all")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Encode(context.Background(), tc.data, 1)
			if !errors.Is(err, ErrImage) {
				t.Fatalf("got %v, want ErrImage", err)
			}
		})
	}
}

func TestLoadProjectorMismatch(t *testing.T) {
	m := loadTiny(t)
	path, _ := projectorFor(t, m.Info().Embedding+32)
	_, err := LoadProjector(context.Background(), path, m, ProjectorOptions{})
	if err == nil {
		t.Fatal("a projector of the wrong width loaded")
	}
	for _, want := range []string{path, m.Info().Path, "embedding"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// A text model is not a projector.
	if _, err := LoadProjector(context.Background(), m.Info().Path, m, ProjectorOptions{}); err == nil || !strings.Contains(err.Error(), "projector") {
		t.Errorf("loading a text model as projector: %v", err)
	}
}

// TestDecodeImageEmbeddings decodes an image's embeddings into a sequence,
// then text after it, and checks that the image changes the next token's
// logits and that the same image gives the same logits.
func TestDecodeImageEmbeddings(t *testing.T) {
	m := loadTiny(t)
	p, _ := loadProjector(t, m)
	toks, err := m.Tokenize("Once upon a time", true)
	if err != nil {
		t.Fatal(err)
	}
	logitsAfter := func(image string) []float32 {
		c := newContext(t, m, ContextOptions{SlotContext: 256, Slots: 1, Threads: 2})
		pos := 0
		if image != "" {
			e, err := p.Encode(context.Background(), readImage(t, image), 2)
			if err != nil {
				t.Fatal(err)
			}
			eb, err := NewEmbedBatch(e.Tokens, e.Embd)
			if err != nil {
				t.Fatal(err)
			}
			defer eb.Free()
			for i := 0; i < e.Tokens; i++ {
				eb.Add(e.Row(i), pos, 0, false)
				pos++
			}
			if err := c.DecodeEmbeddings(eb); err != nil {
				t.Fatal(err)
			}
		}
		b, err := NewBatch(len(toks))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Free()
		for i, tok := range toks {
			b.Add(tok, pos+i, 0, i == len(toks)-1)
		}
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		return slices.Clone(c.Logits(len(toks) - 1))
	}
	text, img1, img2, other := logitsAfter(""), logitsAfter("gradient.png"), logitsAfter("gradient.png"), logitsAfter("checker.jpg")
	if slices.Equal(text, img1) {
		t.Error("the image did not change the logits")
	}
	if !slices.Equal(img1, img2) {
		t.Error("the same image gave different logits")
	}
	if slices.Equal(img1, other) {
		t.Error("two images gave the same logits")
	}
}

// TestProjectorEncodeCancel cancels an encode part-way: on the CPU it
// stops long before a whole encode's time, returns the context's error,
// and the next encode of the same image gives the embedding an
// uncancelled one gave (the abort flag does not linger).
func TestProjectorEncodeCancel(t *testing.T) {
	m := loadTiny(t)
	// A projector slow enough to cancel in the middle: 448 pixels in
	// 14-pixel patches (1,024 tokens), 10 blocks, so that the image's
	// decode and resize and one graph node are small parts of an encode.
	spec := modelgen.TinyProjector(m.Info().Embedding)
	spec.ImageSize, spec.PatchSize, spec.Layers = 448, 14, 10
	p := loadProjectorSpec(t, m, spec)
	if !p.Abortable() {
		t.Fatal("a projector on the CPU backend is not abortable")
	}
	img := readImage(t, "checker.jpg")
	// The first encode also allocates clip's compute buffers; the fastest
	// of the next three is a whole encode's time on this (shared) box.
	var want *ImageEmbedding
	var err error
	full := time.Hour
	for i := range 4 {
		t0 := time.Now()
		if want, err = p.Encode(context.Background(), img, 2); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			full = min(full, time.Since(t0))
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(full/5, cancel)
	t0 := time.Now()
	_, err = p.Encode(ctx, img, 2)
	took := time.Since(t0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled encode: %v, want context.Canceled", err)
	}
	if took > full*3/4 {
		t.Errorf("cancelled after %v, the encode returned after %v; a whole one takes %v", full/5, took, full)
	}
	got, err := p.Encode(context.Background(), img, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Data, want.Data) {
		t.Error("the encode after a cancelled one differs from the first")
	}
	t.Logf("whole encode %v; cancelled at %v, returned after %v", full, full/5, took)
}
