package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTypeSizes(t *testing.T) {
	// Block sizes and bytes per block from ggml-common.h / ggml.c.
	tests := []struct {
		typ          GGMLType
		name         string
		elems, bytes uint64
	}{
		{GGMLTypeF32, "F32", 1, 4},
		{GGMLTypeF16, "F16", 1, 2},
		{GGMLTypeBF16, "BF16", 1, 2},
		{GGMLTypeQ4_0, "Q4_0", 32, 18},
		{GGMLTypeQ4_1, "Q4_1", 32, 20},
		{GGMLTypeQ5_0, "Q5_0", 32, 22},
		{GGMLTypeQ5_1, "Q5_1", 32, 24},
		{GGMLTypeQ8_0, "Q8_0", 32, 34},
		{GGMLTypeQ8_1, "Q8_1", 32, 36},
		{GGMLTypeQ2_K, "Q2_K", 256, 84},
		{GGMLTypeQ3_K, "Q3_K", 256, 110},
		{GGMLTypeQ4_K, "Q4_K", 256, 144},
		{GGMLTypeQ5_K, "Q5_K", 256, 176},
		{GGMLTypeQ6_K, "Q6_K", 256, 210},
		{GGMLTypeQ8_K, "Q8_K", 256, 292},
		{GGMLTypeIQ2_XXS, "IQ2_XXS", 256, 66},
		{GGMLTypeIQ2_XS, "IQ2_XS", 256, 74},
		{GGMLTypeIQ2_S, "IQ2_S", 256, 82},
		{GGMLTypeIQ3_XXS, "IQ3_XXS", 256, 98},
		{GGMLTypeIQ3_S, "IQ3_S", 256, 110},
		{GGMLTypeIQ1_S, "IQ1_S", 256, 50},
		{GGMLTypeIQ1_M, "IQ1_M", 256, 56},
		{GGMLTypeIQ4_NL, "IQ4_NL", 32, 18},
		{GGMLTypeIQ4_XS, "IQ4_XS", 256, 136},
		{GGMLTypeTQ1_0, "TQ1_0", 256, 54},
		{GGMLTypeTQ2_0, "TQ2_0", 256, 66},
		{GGMLTypeI8, "I8", 1, 1},
		{GGMLTypeI32, "I32", 1, 4},
		{GGMLTypeF64, "F64", 1, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, b, ok := tt.typ.BlockSize()
			if !ok || e != tt.elems || b != tt.bytes {
				t.Errorf("BlockSize = %d, %d, %v; want %d, %d", e, b, ok, tt.elems, tt.bytes)
			}
			if got := tt.typ.String(); got != tt.name {
				t.Errorf("String = %q", got)
			}
			if p, err := ParseGGMLType(tt.name); err != nil || p != tt.typ {
				t.Errorf("ParseGGMLType = %v, %v", p, err)
			}
		})
	}
	for _, unknown := range []GGMLType{4, 5, 31, 33, 36, 39, 1000} {
		if unknown.Known() {
			t.Errorf("type %d should be unknown", unknown)
		}
		if _, err := TensorBytes(unknown, []uint64{32}); err == nil {
			t.Errorf("TensorBytes(type %d) should fail", unknown)
		}
	}
}

func TestTensorBytes(t *testing.T) {
	tests := []struct {
		name    string
		typ     GGMLType
		shape   []uint64
		want    uint64
		wantErr string
	}{
		{"f16 matrix", GGMLTypeF16, []uint64{2048, 32000}, 2048 * 32000 * 2, ""},
		{"f32 vector", GGMLTypeF32, []uint64{2048}, 8192, ""},
		{"q4_k", GGMLTypeQ4_K, []uint64{5632, 2048}, 5632 / 256 * 144 * 2048, ""},
		{"q8_0", GGMLTypeQ8_0, []uint64{64, 3}, 2 * 34 * 3, ""},
		{"scalar", GGMLTypeF32, nil, 4, ""},
		{"zero dim", GGMLTypeF16, []uint64{64, 0}, 0, ""},
		{"4d", GGMLTypeF32, []uint64{2, 3, 4, 5}, 480, ""},
		{"row not multiple of block", GGMLTypeQ4_K, []uint64{64, 2}, 0, "not a multiple"},
		{"5 dims", GGMLTypeF32, []uint64{1, 1, 1, 1, 1}, 0, "dimensions"},
		{"overflow", GGMLTypeF32, []uint64{1 << 40, 1 << 40}, 0, "overflow"},
		{"unknown type", GGMLType(99), []uint64{1}, 0, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TensorBytes(tt.typ, tt.shape)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// sampleKVs covers every value type, scalar and array.
var sampleKVs = []struct {
	key   string
	value any
}{
	{"general.architecture", "llama"},
	{"general.alignment", uint32(64)},
	{"t.u8", uint8(200)},
	{"t.i8", int8(-100)},
	{"t.u16", uint16(60000)},
	{"t.i16", int16(-30000)},
	{"t.u32", uint32(4000000000)},
	{"t.i32", int32(-2000000000)},
	{"t.f32", float32(1e-5)},
	{"t.bool", true},
	{"t.string", "héllo ▁world"},
	{"t.u64", uint64(1) << 60},
	{"t.i64", int64(-1) << 60},
	{"t.f64", math.Pi},
	{"a.u8", []uint8{1, 2, 3}},
	{"a.i8", []int8{-1, 2}},
	{"a.u16", []uint16{1, 65535}},
	{"a.i16", []int16{-5}},
	{"a.u32", []uint32{7, 8}},
	{"a.i32", []int32{1, 2, 3, 6}},
	{"a.f32", []float32{-1.5, 0}},
	{"a.bool", []bool{true, false}},
	{"a.string", []string{"<unk>", "<s>", ""}},
	{"a.u64", []uint64{1 << 63}},
	{"a.i64", []int64{-7}},
	{"a.f64", []float64{2.5}},
	{"a.empty", []int32{}},
	{"llama.context_length", uint32(2048)},
	{"llama.block_count", uint32(2)},
	{"llama.embedding_length", uint32(64)},
	{"llama.attention.head_count", uint32(8)},
	{"llama.attention.head_count_kv", uint32(4)},
	{"tokenizer.ggml.tokens", []string{"a", "b", "c"}},
	{"tokenizer.chat_template", "{{ x }}"},
}

type sampleTensor struct {
	name  string
	shape []uint64
	typ   GGMLType
}

var sampleTensors = []sampleTensor{
	{"token_embd.weight", []uint64{64, 3}, GGMLTypeF16},
	{"norm.weight", []uint64{64}, GGMLTypeF32},
	{"odd.weight", []uint64{3}, GGMLTypeF16}, // 6 bytes: forces padding
	{"q.weight", []uint64{64, 2}, GGMLTypeQ8_0},
	{"k.weight", []uint64{256, 1}, GGMLTypeQ4_K},
}

// writeSample builds a GGUF file in memory with sampleKVs and
// sampleTensors; tensor i's bytes are all byte(i+1).
func writeSample(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, kv := range sampleKVs {
		if err := w.AddKV(kv.key, kv.value); err != nil {
			t.Fatal(err)
		}
	}
	for _, ts := range sampleTensors {
		if err := w.AddTensor(ts.name, ts.shape, ts.typ); err != nil {
			t.Fatal(err)
		}
	}
	for i, ts := range sampleTensors {
		size, _ := TensorBytes(ts.typ, ts.shape)
		if err := w.WriteTensorBytes(ts.name, bytes.Repeat([]byte{byte(i + 1)}, int(size))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readBytes(b []byte) (*File, error) { return Read(bytes.NewReader(b), int64(len(b))) }

func TestRoundTrip(t *testing.T) {
	data := writeSample(t)
	f, err := readBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	if len(f.KVs) != len(sampleKVs) {
		t.Fatalf("%d KVs, want %d", len(f.KVs), len(sampleKVs))
	}
	for i, want := range sampleKVs {
		kv := f.KVs[i]
		if kv.Key != want.key || !reflect.DeepEqual(kv.Value, want.value) {
			t.Errorf("KV %d = %q %#v, want %q %#v", i, kv.Key, kv.Value, want.key, want.value)
		}
	}
	if len(f.Tensors) != len(sampleTensors) {
		t.Fatalf("%d tensors", len(f.Tensors))
	}
	for i, want := range sampleTensors {
		ti := f.Tensors[i]
		size, _ := TensorBytes(want.typ, want.shape)
		if ti.Name != want.name || !reflect.DeepEqual(ti.Shape, want.shape) || ti.Type != want.typ || ti.Size != size {
			t.Errorf("tensor %d = %+v, want %+v", i, ti, want)
		}
		start := f.DataOffset + ti.Offset
		for _, b := range data[start : start+ti.Size] {
			if b != byte(i+1) {
				t.Fatalf("tensor %q data corrupt", ti.Name)
			}
		}
	}
	if got, _ := f.Tensor("odd.weight"); got.Size != 6 {
		t.Errorf("Tensor(odd.weight) = %+v", got)
	}
	if uint64(len(data)) != f.DataOffset+f.DataSize() {
		t.Errorf("file is %d bytes, layout says %d", len(data), f.DataOffset+f.DataSize())
	}
}

func TestGetters(t *testing.T) {
	f, err := readBytes(writeSample(t))
	if err != nil {
		t.Fatal(err)
	}
	str := func(key string) any { v, ok := f.String(key); return pair(v, ok) }
	uns := func(key string) any { v, ok := f.Uint(key); return pair(v, ok) }
	ints := func(key string) any { v, ok := f.Int(key); return pair(v, ok) }
	flt := func(key string) any { v, ok := f.Float(key); return pair(v, ok) }
	alen := func(key string) any { v, ok := f.ArrayLen(key); return pair(v, ok) }
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"String", str("t.string"), pair("héllo ▁world", true)},
		{"String wrong type", str("t.u32"), pair("", false)},
		{"String missing", str("nope"), pair("", false)},
		{"Uint u8", uns("t.u8"), pair(uint64(200), true)},
		{"Uint u64", uns("t.u64"), pair(uint64(1)<<60, true)},
		{"Uint negative", uns("t.i8"), pair(uint64(math.MaxUint64-99), false)},
		{"Uint from float", uns("t.f32"), pair(uint64(0), false)},
		{"Int i16", ints("t.i16"), pair(int64(-30000), true)},
		{"Int u32", ints("t.u32"), pair(int64(4000000000), true)},
		{"Float f32", flt("t.f32"), pair(float64(float32(1e-5)), true)},
		{"Float f64", flt("t.f64"), pair(math.Pi, true)},
		{"Float from int", flt("t.u8"), pair(0.0, false)},
		{"ArrayLen strings", alen("a.string"), pair(3, true)},
		{"ArrayLen empty", alen("a.empty"), pair(0, true)},
		{"ArrayLen scalar", alen("t.u8"), pair(0, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if s, ok := f.Strings("a.string"); !ok || !reflect.DeepEqual(s, []string{"<unk>", "<s>", ""}) {
		t.Errorf("Strings = %q, %v", s, ok)
	}
	if v, ok := f.Ints("a.i32"); !ok || !reflect.DeepEqual(v, []int64{1, 2, 3, 6}) {
		t.Errorf("Ints = %v, %v", v, ok)
	}
	if v, ok := f.Floats("a.f32"); !ok || !reflect.DeepEqual(v, []float64{-1.5, 0}) {
		t.Errorf("Floats = %v, %v", v, ok)
	}
	if b, ok := f.Bool("t.bool"); !ok || !b {
		t.Errorf("Bool = %v, %v", b, ok)
	}

	p, err := f.Params()
	if err != nil {
		t.Fatal(err)
	}
	want := Params{Architecture: "llama", ContextLength: 2048, BlockCount: 2, EmbeddingLength: 64,
		HeadCount: 8, HeadCountKV: 4, KeyLength: 8, ValueLength: 8, VocabSize: 3, TensorBytes: f.TensorBytes()}
	if p != want {
		t.Errorf("Params = %+v\nwant     %+v", p, want)
	}
	if p.KVWidth() != 64 {
		t.Errorf("KVWidth = %d", p.KVWidth())
	}
	if ct, ok := f.ChatTemplate(); !ok || ct != "{{ x }}" {
		t.Errorf("ChatTemplate = %q %v", ct, ok)
	}
	if _, ok := f.FileType(); ok {
		t.Error("FileType present")
	}
}

func pair(a, b any) [2]any { return [2]any{a, b} }

func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func(w *Writer) error
		want string
	}{
		{"int is refused", func(w *Writer) error { return w.AddKV("k", 1) }, "unsupported"},
		{"duplicate key", func(w *Writer) error { w.AddKV("k", "a"); return w.AddKV("k", "b") }, "duplicate key"},
		{"alignment not u32", func(w *Writer) error { return w.AddKV(KeyAlignment, uint64(32)) }, "power of two"},
		{"alignment not power of 2", func(w *Writer) error { return w.AddKV(KeyAlignment, uint32(48)) }, "power of two"},
		{"duplicate tensor", func(w *Writer) error {
			w.AddTensor("a", []uint64{1}, GGMLTypeF32)
			return w.AddTensor("a", []uint64{1}, GGMLTypeF32)
		}, "duplicate tensor"},
		{"long name", func(w *Writer) error { return w.AddTensor(strings.Repeat("x", 64), []uint64{1}, GGMLTypeF32) }, "longer"},
		{"bad row", func(w *Writer) error { return w.AddTensor("a", []uint64{33}, GGMLTypeQ8_0) }, "multiple"},
		{"out of order", func(w *Writer) error {
			w.AddTensor("a", []uint64{1}, GGMLTypeF32)
			w.AddTensor("b", []uint64{1}, GGMLTypeF32)
			return w.WriteTensorBytes("b", make([]byte, 4))
		}, "out of order"},
		{"short data", func(w *Writer) error {
			w.AddTensor("a", []uint64{2}, GGMLTypeF32)
			return w.WriteTensorBytes("a", make([]byte, 4))
		}, "wrote 4 bytes, declared 8"},
		{"long data", func(w *Writer) error {
			w.AddTensor("a", []uint64{1}, GGMLTypeF32)
			return w.WriteTensorBytes("a", make([]byte, 8))
		}, "overflows"},
		{"missing tensor at close", func(w *Writer) error {
			w.AddTensor("a", []uint64{1}, GGMLTypeF32)
			return w.Close()
		}, "0 of 1"},
		{"AddKV after data", func(w *Writer) error { w.WriteHeader(); return w.AddKV("k", "v") }, "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(NewWriter(io.Discard))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

// raw builds hand-made (possibly corrupt) GGUF bytes.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw { binary.Write(r, binary.LittleEndian, v); return r }
func (r *raw) u64(v uint64) *raw { binary.Write(r, binary.LittleEndian, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }
func hdr(nTensors, nKV uint64) *raw {
	r := &raw{}
	r.WriteString("GGUF")
	return r.u32(3).u64(nTensors).u64(nKV)
}

// dupKey returns a header with two pairs with the same key.
func dupKey() []byte {
	r := hdr(0, 2)
	r.str("k").u32(uint32(TypeUint8)).WriteByte(1)
	r.str("k").u32(uint32(TypeUint8)).WriteByte(2)
	return r.Bytes()
}

func TestCorrupt(t *testing.T) {
	pad := func(r *raw, n int) []byte { r.Write(make([]byte, n)); return r.Bytes() }
	tests := []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"empty", nil, "magic", ErrNotGGUF},
		{"not gguf", []byte("PK\x03\x04 this is a zip file"), "magic", ErrNotGGUF},
		{"magic only", []byte("GGUF"), "version", ErrTruncated},
		{"version 1", (&raw{}).u32(0x46554747).u32(1).u64(0).u64(0).Bytes(), "unsupported GGUF version 1", nil},
		{"version 4", (&raw{}).u32(0x46554747).u32(4).u64(0).u64(0).Bytes(), "unsupported GGUF version 4", nil},
		{"huge kv count", hdr(0, 1<<62).Bytes(), "metadata count", ErrTruncated},
		{"huge tensor count", hdr(1<<40, 0).Bytes(), "tensor count", ErrTruncated},
		{"huge string", pad(hdr(0, 1).u64(1<<62), 64), "runs past the end", ErrTruncated},
		{"huge array", pad(hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint64)).u64(1<<60), 64), "runs past the end", ErrTruncated},
		{"huge string array", pad(hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1<<20), 64), "runs past the end", ErrTruncated},
		{"array element truncated", hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1).u64(3).Bytes(), "runs past", ErrTruncated},
		{"bad value type", pad(hdr(0, 1).str("k").u32(13), 16), "invalid value type 13", nil},
		{"nested array", pad(hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeArray)).u64(1), 16), "nested", nil},
		{"bad array type", pad(hdr(0, 1).str("k").u32(uint32(TypeArray)).u32(77).u64(1), 16), "invalid array element type", nil},
		{"duplicate key", dupKey(), "duplicate key", nil},
		{"alignment u64", pad(hdr(0, 1).str(KeyAlignment).u32(uint32(TypeUint64)).u64(32), 16), "want u32", nil},
		{"alignment 48", pad(hdr(0, 1).str(KeyAlignment).u32(uint32(TypeUint32)).u32(48), 16), "power of two", nil},
		{"alignment 0", pad(hdr(0, 1).str(KeyAlignment).u32(uint32(TypeUint32)).u32(0), 16), "power of two", nil},
		{"5 dims", pad(hdr(1, 0).str("t").u32(5), 64), "5 dimensions", nil},
		{"negative dim", pad(hdr(1, 0).str("t").u32(1).u64(1<<63), 64), "negative", nil},
		{"unknown type", pad(hdr(1, 0).str("t").u32(1).u64(4).u32(4).u64(0), 64), "unknown ggml type 4", nil},
		{"bad row length", pad(hdr(1, 0).str("t").u32(1).u64(33).u32(uint32(GGMLTypeQ4_0)).u64(0), 64), "not a multiple", nil},
		{"overflowing shape", pad(hdr(1, 0).str("t").u32(2).u64(1<<40).u64(1<<40).u32(0).u64(0), 64), "overflow", nil},
		{"long name", pad(hdr(1, 0).str(strings.Repeat("n", 64)).u32(0), 64), "at most 63", nil},
		{"duplicate tensor", pad(hdr(2, 0).str("t").u32(1).u64(1).u32(0).u64(0).str("t").u32(1).u64(1).u32(0).u64(32), 64), "duplicate tensor", nil},
		{"data past end", pad(hdr(1, 0).str("t").u32(1).u64(1024).u32(0).u64(0), 8), "ends past the end", ErrTruncated},
		{"offset past end", pad(hdr(1, 0).str("t").u32(1).u64(1).u32(0).u64(1<<63), 8), "ends past the end", ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := readBytes(tt.data)
			if err == nil {
				t.Fatalf("no error; file %+v", f)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want containing %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

// TestTruncatedEverywhere cuts a valid file at every length: each prefix
// must be refused by Read (header or tensor data cut) without panicking.
func TestTruncatedEverywhere(t *testing.T) {
	data := writeSample(t)
	f, err := readBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	end := int(f.DataOffset + last.Offset + last.Size) // trailing padding is optional
	for n := 0; n < end; n++ {
		if _, err := readBytes(data[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes accepted", n, len(data))
		}
	}
	if _, err := readBytes(data[:end]); err != nil {
		t.Errorf("file without trailing padding refused: %v", err)
	}
}

func TestValidate(t *testing.T) {
	base := func() *File {
		f, err := readBytes(writeSample(t))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name   string
		mutate func(f *File)
		want   string
	}{
		{"valid", func(f *File) {}, ""},
		{"unaligned", func(f *File) { f.Tensors[1].Offset++ }, "not a multiple"},
		{"gap", func(f *File) { f.Tensors[1].Offset += f.Alignment }, "llama.cpp expects"},
		{"swapped", func(f *File) { f.Tensors[0].Offset, f.Tensors[1].Offset = f.Tensors[1].Offset, f.Tensors[0].Offset }, "llama.cpp expects"},
		{"file shrank", func(f *File) { f.FileSize -= 100 }, "ends past the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base()
			tt.mutate(f)
			err := f.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	data := writeSample(t)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)-200], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated file: err = %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := Open(dir); err == nil {
		t.Error("directory accepted")
	}
}

func FuzzOpen(f *testing.F) {
	f.Add(writeSample(f))
	f.Add([]byte("GGUF"))
	f.Add(hdr(1, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(2).str("a").str("b").
		str("t").u32(2).u64(32).u64(2).u32(uint32(GGMLTypeQ8_0)).u64(0).Bytes())
	if path := os.Getenv("JETAI_TEST_MODEL"); path != "" {
		if b, err := os.ReadFile(path); err == nil && len(b) < 4<<20 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := readBytes(data)
		if err != nil {
			return
		}
		// Everything a caller might do with an accepted file must not panic.
		_ = file.Validate()
		_, _ = file.Params()
		_ = file.TensorBytes()
		_ = file.DataSize()
		for _, kv := range file.KVs {
			file.ArrayLen(kv.Key)
			file.Ints(kv.Key)
			file.Floats(kv.Key)
		}
		for _, ti := range file.Tensors {
			if file.DataOffset+ti.Offset+ti.Size > uint64(len(data)) {
				t.Fatalf("accepted tensor %q outside the data", ti.Name)
			}
		}
	})
}

// TestQuantTypes: every accepted quantisation name maps to the file type
// of the same name, whatever its case, and nothing else is accepted.
func TestQuantTypes(t *testing.T) {
	names := QuantTypes()
	if len(names) != 15 {
		t.Fatalf("QuantTypes = %v", names)
	}
	for _, n := range names {
		for _, in := range []string{n, strings.ToUpper(n)} {
			ft, ok := QuantFileType(in)
			if !ok || strings.ToLower(FileTypeName(ft)) != n {
				t.Errorf("QuantFileType(%q) = %d (%s), %v", in, ft, FileTypeName(ft), ok)
			}
		}
	}
	for _, bad := range []string{"", "f32", "iq2_xs", "q4"} {
		if _, ok := QuantFileType(bad); ok {
			t.Errorf("QuantFileType(%q) accepted", bad)
		}
	}
}
