package gguf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes a GGUF of kvs and F32 tensors of the given shapes.
func writeFile(t *testing.T, kvs [][2]any, tensors map[string][]uint64) string {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, kv := range kvs {
		if err := w.AddKV(kv[0].(string), kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	for name, shape := range tensors {
		if err := w.AddTensor(name, shape, GGMLTypeF32); err != nil {
			t.Fatal(err)
		}
	}
	for _, ti := range w.Tensors() {
		if err := w.WriteTensorBytes(ti.Name, make([]byte, ti.Size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadProjector(t *testing.T) {
	base := [][2]any{
		{"general.architecture", "clip"},
		{"clip.has_vision_encoder", true},
		{"clip.vision.image_size", uint32(336)},
		{"clip.vision.patch_size", uint32(14)},
	}
	for _, tc := range []struct {
		name    string
		kvs     [][2]any
		tensors map[string][]uint64
		width   int
		err     string
	}{
		{"mlp", base, map[string][]uint64{"mm.2.bias": {4096}}, 4096, ""},
		{"mlp promoted to mlp_norm", base, map[string][]uint64{"mm.3.weight": {8}, "mm.3.bias": {2048}}, 2048, ""},
		{"missing output", base, map[string][]uint64{"mm.0.bias": {16}}, 0, "mm.2.bias"},
		{"text model", [][2]any{{"general.architecture", "llama"}}, nil, 0, "not a CLIP"},
		{"unsupported type", append(append([][2]any{}, base...), [2]any{"clip.projector_type", "resampler"}), nil, 0, "not supported"},
		{"no patch size", base[:3], map[string][]uint64{"mm.2.bias": {16}}, 0, "patch_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ReadProjector(writeFile(t, tc.kvs, tc.tensors))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.TextEmbd != tc.width || p.ImageTokens() != 576 {
				t.Errorf("got %+v, want width %d, 576 tokens", p, tc.width)
			}
		})
	}
	if _, err := ReadProjector(filepath.Join(t.TempDir(), "absent.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}
