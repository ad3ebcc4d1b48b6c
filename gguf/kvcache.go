package gguf

import (
	"fmt"

	"github.com/jetai/jetai/internal/bytesize"
)

// KV cache element types, as configs and the runner's -kv-type flag name
// them. llama.cpp stores K and V in the same type here (ollama's binding
// sets type_k and type_v together).
const (
	KVCacheF16  = "f16"
	KVCacheQ8_0 = "q8_0"
	KVCacheQ4_0 = "q4_0"
)

// KVCacheTypes lists the KV cache types, full precision first.
var KVCacheTypes = []string{KVCacheF16, KVCacheQ8_0, KVCacheQ4_0}

var kvCacheGGML = map[string]GGMLType{
	KVCacheF16:  GGMLTypeF16,
	KVCacheQ8_0: GGMLTypeQ8_0,
	KVCacheQ4_0: GGMLTypeQ4_0,
}

// KVCacheGGMLType returns the ggml type of a KV cache type ("" is f16).
func KVCacheGGMLType(name string) (GGMLType, bool) {
	if name == "" {
		name = KVCacheF16
	}
	t, ok := kvCacheGGML[name]
	return t, ok
}

// KVCacheQuantized reports whether name is a quantized KV cache type.
func KVCacheQuantized(name string) bool {
	t, ok := KVCacheGGMLType(name)
	return ok && t != GGMLTypeF16
}

// KVCachePadding is the multiple llama.cpp rounds a context's cells up to:
// the flash-attention kernels read the cache in blocks of 256 cells
// (llama_kv_cache_get_padding).
func KVCachePadding(flashAttention bool) uint64 {
	if flashAttention {
		return 256
	}
	return 32
}

// KVCacheRowBytes returns the bytes one token takes in one layer's K or V
// cache: width elements of the type, in whole quantization blocks (ggml's
// ggml_row_size). f16 is 2 bytes an element; q8_0 is 34 bytes per 32
// elements; q4_0 is 18 bytes per 32.
func KVCacheRowBytes(name string, width uint64) uint64 {
	t, ok := KVCacheGGMLType(name)
	if !ok {
		t = GGMLTypeF16
	}
	elems, size, _ := t.BlockSize()
	return bytesize.MulSat(bytesize.AddSat(width, elems-1)/elems, size)
}

// KVCacheTokenBytes returns the KV cache bytes of one token across all
// layers of a model with parameters p (K and V).
func KVCacheTokenBytes(p Params, name string) uint64 {
	k := KVCacheRowBytes(name, bytesize.MulSat(p.HeadCountKV, p.KeyLength))
	v := KVCacheRowBytes(name, bytesize.MulSat(p.HeadCountKV, p.ValueLength))
	return bytesize.MulSat(p.BlockCount, bytesize.AddSat(k, v))
}

// KVCacheCheck says whether llama.cpp (ollama v0.6.5) can create a context
// with this KV cache type for a model with parameters p:
//
//   - a quantized V cache is read only by the flash-attention kernels
//     (llama_init_from_model refuses it otherwise), and flash attention is
//     forced off when the key and value head sizes differ;
//   - each head must be a whole number of quantization blocks (32 elements
//     for q8_0 and q4_0), or ggml aborts the process (GGML_ASSERT).
//
// p may be zero where the model file is not readable; then only the
// flash-attention rule is checked.
func KVCacheCheck(p Params, name string, flashAttention bool) error {
	t, ok := KVCacheGGMLType(name)
	if !ok {
		return fmt.Errorf("KV cache type %q is not one of f16, q8_0, q4_0", name)
	}
	if t == GGMLTypeF16 {
		return nil
	}
	if !flashAttention {
		return fmt.Errorf("KV cache type %s needs flash attention: llama.cpp reads a quantized V cache only in its flash-attention kernels", name)
	}
	if p.KeyLength == 0 && p.ValueLength == 0 {
		return nil
	}
	if p.KeyLength != p.ValueLength {
		return fmt.Errorf("KV cache type %s needs flash attention, which llama.cpp turns off for this model (key head size %d differs from value head size %d)", name, p.KeyLength, p.ValueLength)
	}
	elems, _, _ := t.BlockSize()
	if p.KeyLength%elems != 0 {
		return fmt.Errorf("KV cache type %s stores blocks of %d elements and this model's attention heads have %d; only f16 fits", name, elems, p.KeyLength)
	}
	return nil
}
