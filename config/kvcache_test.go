package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/gguf"
)

// writeHeader writes a tensorless GGUF whose attention heads are head
// elements wide (key and value), as llama.cpp reads the shape.
func writeHeader(t *testing.T, dir, name string, head, valueHead uint32) {
	t.Helper()
	var b bytes.Buffer
	w := gguf.NewWriter(&b)
	for _, kv := range []struct {
		k string
		v any
	}{
		{"general.architecture", "llama"},
		{"llama.context_length", uint32(2048)},
		{"llama.block_count", uint32(2)},
		{"llama.embedding_length", head * 4},
		{"llama.attention.head_count", uint32(4)},
		{"llama.attention.value_length", valueHead},
	} {
		if err := w.AddKV(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteHeader(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKVCacheValidation: the KV cache types llama.cpp accepts load; the
// others are refused at the setting to change.
func TestKVCacheValidation(t *testing.T) {
	dir := t.TempDir()
	writeHeader(t, dir, "h64.gguf", 64, 64) // head size 64: whole q8_0/q4_0 blocks
	writeHeader(t, dir, "h128.gguf", 128, 128)
	writeHeader(t, dir, "h8.gguf", 8, 8)   // stories260K's shape: less than one block
	writeHeader(t, dir, "kv.gguf", 64, 32) // key and value heads differ: flash attention off
	writeModel(t, dir, "opaque.gguf", 100) // no readable metadata
	cfg := filepath.Join(dir, "jetai.hcl")
	tests := []struct {
		name, src string
		kv        []string // each model's resulting KVCache, in order
		err       string   // "" = valid; else "line:col: fragment"
		warn      string
	}{
		{"default f16", `model "m" { path = "h8.gguf" }`, []string{"f16"}, "", ""},
		{"f16 without flash attention", `model "m" {
  path = "h8.gguf"
  kv_cache = "f16"
}`, []string{"f16"}, "", ""},
		{"q8_0 with flash attention", `model "m" {
  path = "h64.gguf"
  kv_cache = "q8_0"
  flash_attention = true
}`, []string{"q8_0"}, "", ""},
		{"q4_0 with flash attention", `model "m" {
  path = "h64.gguf"
  kv_cache = "q4_0"
  flash_attention = true
}`, []string{"q4_0"}, "", ""},
		{"unreadable metadata is checked at load", `model "m" {
  path = "opaque.gguf"
  kv_cache = "q4_0"
  flash_attention = true
}`, []string{"q4_0"}, "", ""},
		{"q4_0 without flash attention", `model "m" {
  path = "h64.gguf"
  kv_cache = "q4_0"
}`, nil, `3:14: model "m" has kv_cache = "q4_0" without flash_attention = true`, ""},
		{"q8_0 with flash attention false", `model "m" {
  path = "h64.gguf"
  kv_cache = "q8_0"
  flash_attention = false
}`, nil, `4:21: model "m" has kv_cache = "q8_0" without flash_attention = true`, ""},
		{"unknown type", `model "m" {
  path = "h64.gguf"
  kv_cache = "q5_1"
}`, nil, `3:14: kv_cache "q5_1" of model "m" is not one of f16, q8_0, q4_0`, ""},
		{"head smaller than a block", `model "m" {
  path = "h8.gguf"
  kv_cache = "q8_0"
  flash_attention = true
}`, nil, `3:14: stores blocks of 32 elements and this model's attention heads have 8`, ""},
		{"key and value heads differ", `model "m" {
  path = "kv.gguf"
  kv_cache = "q8_0"
  flash_attention = true
}`, nil, `3:14: key head size 64 differs from value head size 32`, ""},
		{"memory default applies", `memory { kv_cache = "q8_0" }
model "a" {
  path = "h64.gguf"
  flash_attention = true
}
model "b" {
  path = "h8.gguf"
  kv_cache = "f16"
}`, []string{"q8_0", "f16"}, "", ""},
		{"memory default needs flash attention", `memory { kv_cache = "q4_0" }
model "a" { path = "h64.gguf" }`, nil, `1:21: model "a" has kv_cache = "q4_0" (from memory.kv_cache) without flash_attention`, ""},
		{"memory default unknown", `memory { kv_cache = "f32" }`, nil, `1:21: memory kv_cache "f32" is not one of f16, q8_0, q4_0`, ""},
		{"gpu with head 64 warns", `model "m" {
  path = "h64.gguf"
  kv_cache = "q8_0"
  flash_attention = true
  gpu_layers = -1
}`, []string{"q8_0"}, "", "only for head size 128"},
		{"gpu with head 128", `model "m" {
  path = "h128.gguf"
  kv_cache = "q4_0"
  flash_attention = true
  gpu_layers = -1
}`, []string{"q4_0"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), cfg)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.err)
				}
				pos, frag, _ := strings.Cut(tt.err, ": ")
				line := strings.Split(err.Error(), "\n")[0]
				if !strings.HasPrefix(line, cfg+":"+pos+": ") || !strings.Contains(line, frag) {
					t.Errorf("error\n %s\nwant %s:%s: ...%s...", err, cfg, pos, frag)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			ws := c.Warnings.Error()
			if tt.warn == "" && len(c.Warnings) > 0 {
				t.Errorf("unexpected warnings: %s", ws)
			}
			if tt.warn != "" && !strings.Contains(ws, tt.warn) {
				t.Errorf("warnings %q, want %q", ws, tt.warn)
			}
			var got []string
			for _, m := range c.Models {
				got = append(got, m.KVCache)
			}
			if strings.Join(got, ",") != strings.Join(tt.kv, ",") {
				t.Errorf("kv_cache = %v, want %v", got, tt.kv)
			}
		})
	}
}
