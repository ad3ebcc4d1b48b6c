package gguf

import (
	"fmt"
	"math"
)

// Get returns the metadata pair with the given key.
func (f *File) Get(key string) (KV, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return KV{}, false
	}
	return f.KVs[i], true
}

// Has reports whether key is present.
func (f *File) Has(key string) bool {
	_, ok := f.kvIndex[key]
	return ok
}

// String returns a string value. ok is false if key is absent or not a string.
func (f *File) String(key string) (string, bool) {
	kv, ok := f.Get(key)
	if !ok {
		return "", false
	}
	s, ok := kv.Value.(string)
	return s, ok
}

// Bool returns a bool value. ok is false if key is absent or not a bool.
func (f *File) Bool(key string) (bool, bool) {
	kv, ok := f.Get(key)
	if !ok {
		return false, false
	}
	b, ok := kv.Value.(bool)
	return b, ok
}

func toUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// Uint returns an integer value of any integer type as uint64. ok is false
// if key is absent, not an integer, or negative.
func (f *File) Uint(key string) (uint64, bool) {
	kv, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	return toUint(kv.Value)
}

// Int returns an integer value of any integer type as int64. ok is false if
// key is absent, not an integer, or a u64 above MaxInt64.
func (f *File) Int(key string) (int64, bool) {
	kv, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	return toInt(kv.Value)
}

// Float returns an f32 or f64 value as float64. ok is false if key is
// absent or not a float.
func (f *File) Float(key string) (float64, bool) {
	kv, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	switch x := kv.Value.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Strings returns a string array. ok is false if key is absent or not an
// array of strings.
func (f *File) Strings(key string) ([]string, bool) {
	kv, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	s, ok := kv.Value.([]string)
	return s, ok
}

// Ints returns an array of any integer type as int64s. ok is false if key
// is absent, not an integer array, or holds a u64 above MaxInt64.
func (f *File) Ints(key string) ([]int64, bool) {
	kv, ok := f.Get(key)
	if !ok || kv.Type != TypeArray {
		return nil, false
	}
	var out []int64
	switch x := kv.Value.(type) {
	case []uint8:
		out = convert(x, func(v uint8) int64 { return int64(v) })
	case []int8:
		out = convert(x, func(v int8) int64 { return int64(v) })
	case []uint16:
		out = convert(x, func(v uint16) int64 { return int64(v) })
	case []int16:
		out = convert(x, func(v int16) int64 { return int64(v) })
	case []uint32:
		out = convert(x, func(v uint32) int64 { return int64(v) })
	case []int32:
		out = convert(x, func(v int32) int64 { return int64(v) })
	case []int64:
		out = convert(x, func(v int64) int64 { return v })
	case []uint64:
		for _, v := range x {
			if v > math.MaxInt64 {
				return nil, false
			}
		}
		out = convert(x, func(v uint64) int64 { return int64(v) })
	default:
		return nil, false
	}
	return out, true
}

// Floats returns an f32 or f64 array as float64s.
func (f *File) Floats(key string) ([]float64, bool) {
	kv, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	switch x := kv.Value.(type) {
	case []float32:
		return convert(x, func(v float32) float64 { return float64(v) }), true
	case []float64:
		return convert(x, func(v float64) float64 { return v }), true
	}
	return nil, false
}

func convert[S, T any](in []S, fn func(S) T) []T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = fn(v)
	}
	return out
}

// ArrayLen returns the number of elements of an array value. ok is false if
// key is absent or not an array.
func (f *File) ArrayLen(key string) (int, bool) {
	kv, ok := f.Get(key)
	if !ok || kv.Type != TypeArray {
		return 0, false
	}
	switch x := kv.Value.(type) {
	case []uint8:
		return len(x), true
	case []int8:
		return len(x), true
	case []uint16:
		return len(x), true
	case []int16:
		return len(x), true
	case []uint32:
		return len(x), true
	case []int32:
		return len(x), true
	case []float32:
		return len(x), true
	case []bool:
		return len(x), true
	case []string:
		return len(x), true
	case []uint64:
		return len(x), true
	case []int64:
		return len(x), true
	case []float64:
		return len(x), true
	}
	return 0, false
}

// Well-known metadata keys.
const (
	KeyArchitecture = "general.architecture"
	KeyName         = "general.name"
	KeyFileType     = "general.file_type"
	KeyChatTemplate = "tokenizer.chat_template"
	KeyTokens       = "tokenizer.ggml.tokens"
)

// Architecture returns general.architecture (for example "llama"), or ""
// when it is missing.
func (f *File) Architecture() string {
	s, _ := f.String(KeyArchitecture)
	return s
}

// archUint reads the required "{arch}.suffix" integer.
func (f *File) archUint(suffix string) (uint64, error) {
	arch := f.Architecture()
	if arch == "" {
		return 0, fmt.Errorf("gguf: %s is missing", KeyArchitecture)
	}
	key := arch + "." + suffix
	kv, ok := f.Get(key)
	if !ok {
		return 0, fmt.Errorf("gguf: %s is missing", key)
	}
	if v, ok := toUint(kv.Value); ok {
		return v, nil
	}
	return 0, fmt.Errorf("gguf: %s has type %s, want a non-negative integer", key, kv.Type)
}

// ContextLength returns {arch}.context_length (n_ctx_train).
func (f *File) ContextLength() (uint64, error) { return f.archUint("context_length") }

// BlockCount returns {arch}.block_count (the number of layers).
func (f *File) BlockCount() (uint64, error) { return f.archUint("block_count") }

// EmbeddingLength returns {arch}.embedding_length (n_embd).
func (f *File) EmbeddingLength() (uint64, error) { return f.archUint("embedding_length") }

// FeedForwardLength returns {arch}.feed_forward_length (n_ff).
func (f *File) FeedForwardLength() (uint64, error) { return f.archUint("feed_forward_length") }

// HeadCount returns {arch}.attention.head_count (n_head).
func (f *File) HeadCount() (uint64, error) { return f.archUint("attention.head_count") }

// HeadCountKV returns {arch}.attention.head_count_kv, defaulting to the head
// count as llama.cpp does. Where the value is a per-layer array, the largest
// entry is returned (the KV cache is sized for it).
func (f *File) HeadCountKV() (uint64, error) {
	key := f.Architecture() + ".attention.head_count_kv"
	kv, ok := f.Get(key)
	if !ok {
		return f.HeadCount()
	}
	if v, ok := toUint(kv.Value); ok {
		return v, nil
	}
	if vs, ok := f.Ints(key); ok && len(vs) > 0 {
		var m int64
		for _, v := range vs {
			if v < 0 {
				return 0, fmt.Errorf("gguf: %s has a negative entry", key)
			}
			m = max(m, v)
		}
		return uint64(m), nil
	}
	return 0, fmt.Errorf("gguf: %s has type %s, want an integer", key, kv.Type)
}

// headDim returns n_embd / n_head, llama.cpp's default head size.
func (f *File) headDim() (uint64, error) {
	embd, err := f.EmbeddingLength()
	if err != nil {
		return 0, err
	}
	heads, err := f.HeadCount()
	if err != nil {
		return 0, err
	}
	if heads == 0 {
		return 0, fmt.Errorf("gguf: %s.attention.head_count is 0", f.Architecture())
	}
	return embd / heads, nil
}

// KeyLength returns {arch}.attention.key_length (the size of one key head),
// defaulting to n_embd / n_head.
func (f *File) KeyLength() (uint64, error) {
	if f.Has(f.Architecture() + ".attention.key_length") {
		return f.archUint("attention.key_length")
	}
	return f.headDim()
}

// ValueLength returns {arch}.attention.value_length (the size of one value
// head), defaulting to n_embd / n_head.
func (f *File) ValueLength() (uint64, error) {
	if f.Has(f.Architecture() + ".attention.value_length") {
		return f.archUint("attention.value_length")
	}
	return f.headDim()
}

// VocabSize returns the number of tokens in tokenizer.ggml.tokens, or
// {arch}.vocab_size when the token list is absent.
func (f *File) VocabSize() (uint64, error) {
	if n, ok := f.ArrayLen(KeyTokens); ok {
		return uint64(n), nil
	}
	return f.archUint("vocab_size")
}

// FileType returns general.file_type (llama.cpp's LLAMA_FTYPE_*; see
// FileTypeName). ok is false when it is absent.
func (f *File) FileType() (uint64, bool) { return f.Uint(KeyFileType) }

// ChatTemplate returns tokenizer.chat_template. ok is false when absent.
func (f *File) ChatTemplate() (string, bool) { return f.String(KeyChatTemplate) }

// Params are the hyperparameters a memory estimate needs.
type Params struct {
	Architecture      string
	ContextLength     uint64 // n_ctx_train
	BlockCount        uint64 // n_layer
	EmbeddingLength   uint64 // n_embd
	FeedForwardLength uint64 // n_ff (0 if absent)
	HeadCount         uint64 // n_head
	HeadCountKV       uint64 // n_head_kv
	KeyLength         uint64 // n_embd_head_k
	ValueLength       uint64 // n_embd_head_v
	VocabSize         uint64 // 0 if unknown
	TensorBytes       uint64 // sum of tensor data sizes
}

// KVWidth returns how many elements one token adds to one layer's KV cache
// (keys and values together): n_head_kv × (key_length + value_length).
// Multiply by context, layers, element size and sequences for bytes.
func (p Params) KVWidth() uint64 { return p.HeadCountKV * (p.KeyLength + p.ValueLength) }

// Params gathers the hyperparameters; it fails if a required one is missing.
func (f *File) Params() (Params, error) {
	p := Params{Architecture: f.Architecture(), TensorBytes: f.TensorBytes()}
	var err error
	if p.ContextLength, err = f.ContextLength(); err != nil {
		return p, err
	}
	if p.BlockCount, err = f.BlockCount(); err != nil {
		return p, err
	}
	if p.EmbeddingLength, err = f.EmbeddingLength(); err != nil {
		return p, err
	}
	if p.HeadCount, err = f.HeadCount(); err != nil {
		return p, err
	}
	if p.HeadCountKV, err = f.HeadCountKV(); err != nil {
		return p, err
	}
	if p.KeyLength, err = f.KeyLength(); err != nil {
		return p, err
	}
	if p.ValueLength, err = f.ValueLength(); err != nil {
		return p, err
	}
	p.FeedForwardLength, _ = f.FeedForwardLength()
	p.VocabSize, _ = f.VocabSize()
	return p, nil
}
