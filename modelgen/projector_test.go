package modelgen

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/gguf"
)

func TestProjectorHeader(t *testing.T) {
	for _, tc := range []struct {
		name              string
		embd, size, patch int
		tokens            int
	}{
		{"tiny for stories260K", 64, 224, 28, 64},
		{"tiny for Tiny", 256, 224, 28, 64},
		{"llava-1.5 geometry", 64, 336, 14, 576},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := TinyProjector(tc.embd)
			spec.ImageSize, spec.PatchSize = tc.size, tc.patch
			path := filepath.Join(t.TempDir(), "p.gguf")
			if err := GenerateProjector(path, spec); err != nil {
				t.Fatal(err)
			}
			p, err := gguf.ReadProjector(path)
			if err != nil {
				t.Fatal(err)
			}
			if p.TextEmbd != tc.embd || p.ImageTokens() != tc.tokens || p.Type != "mlp" {
				t.Errorf("header: %+v, want width %d and %d tokens", p, tc.embd, tc.tokens)
			}
			if p.TensorBytes == 0 {
				t.Error("no tensor bytes")
			}
		})
	}
}

func TestProjectorDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteProjector(&a, TinyProjector(64)); err != nil {
		t.Fatal(err)
	}
	if err := WriteProjector(&b, TinyProjector(64)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same spec gave different bytes")
	}
	s := TinyProjector(64)
	s.Seed = 2
	var c bytes.Buffer
	if err := WriteProjector(&c, s); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("another seed gave the same bytes")
	}
}

func TestProjectorValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ProjectorSpec)
		want string
	}{
		{"no width", func(s *ProjectorSpec) { s.TextEmbd = 0 }, "TextEmbd"},
		{"one layer", func(s *ProjectorSpec) { s.Layers = 1 }, "Layers"},
		{"ragged patches", func(s *ProjectorSpec) { s.PatchSize = 30 }, "multiple of PatchSize"},
		{"ragged heads", func(s *ProjectorSpec) { s.Heads = 3 }, "multiple of Heads"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := TinyProjector(64)
			tc.edit(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
