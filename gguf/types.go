package gguf

import (
	"fmt"
	"strings"
)

// ValueType is the type tag of a metadata value in a GGUF file.
type ValueType uint32

// Metadata value types, as numbered by the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	TypeUint8: "u8", TypeInt8: "i8", TypeUint16: "u16", TypeInt16: "i16",
	TypeUint32: "u32", TypeInt32: "i32", TypeFloat32: "f32", TypeBool: "bool",
	TypeString: "string", TypeArray: "array", TypeUint64: "u64", TypeInt64: "i64",
	TypeFloat64: "f64",
}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// size returns the encoded size of a fixed-size scalar, or 0 for string,
// array and unknown types.
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// GGMLType is the element type of a tensor (ggml's enum ggml_type).
type GGMLType uint32

// Tensor element types, numbered as in ggml.h (ollama v0.6.5's ggml).
const (
	GGMLTypeF32     GGMLType = 0
	GGMLTypeF16     GGMLType = 1
	GGMLTypeQ4_0    GGMLType = 2
	GGMLTypeQ4_1    GGMLType = 3
	GGMLTypeQ5_0    GGMLType = 6
	GGMLTypeQ5_1    GGMLType = 7
	GGMLTypeQ8_0    GGMLType = 8
	GGMLTypeQ8_1    GGMLType = 9
	GGMLTypeQ2_K    GGMLType = 10
	GGMLTypeQ3_K    GGMLType = 11
	GGMLTypeQ4_K    GGMLType = 12
	GGMLTypeQ5_K    GGMLType = 13
	GGMLTypeQ6_K    GGMLType = 14
	GGMLTypeQ8_K    GGMLType = 15
	GGMLTypeIQ2_XXS GGMLType = 16
	GGMLTypeIQ2_XS  GGMLType = 17
	GGMLTypeIQ3_XXS GGMLType = 18
	GGMLTypeIQ1_S   GGMLType = 19
	GGMLTypeIQ4_NL  GGMLType = 20
	GGMLTypeIQ3_S   GGMLType = 21
	GGMLTypeIQ2_S   GGMLType = 22
	GGMLTypeIQ4_XS  GGMLType = 23
	GGMLTypeI8      GGMLType = 24
	GGMLTypeI16     GGMLType = 25
	GGMLTypeI32     GGMLType = 26
	GGMLTypeI64     GGMLType = 27
	GGMLTypeF64     GGMLType = 28
	GGMLTypeIQ1_M   GGMLType = 29
	GGMLTypeBF16    GGMLType = 30
	GGMLTypeTQ1_0   GGMLType = 34
	GGMLTypeTQ2_0   GGMLType = 35
)

// qkK is ggml's QK_K, the super-block size of the k-quants and IQ types.
const qkK = 256

type typeTraits struct {
	name       string
	blockElems uint64 // elements per block (ggml blck_size)
	blockBytes uint64 // bytes per block (ggml type_size)
}

// ggmlTypes mirrors ggml's type_traits table (blck_size, type_size); the
// sizes are those of the block structs asserted in ggml-common.h.
var ggmlTypes = map[GGMLType]typeTraits{
	GGMLTypeF32:     {"F32", 1, 4},
	GGMLTypeF16:     {"F16", 1, 2},
	GGMLTypeQ4_0:    {"Q4_0", 32, 2 + 16},
	GGMLTypeQ4_1:    {"Q4_1", 32, 2*2 + 16},
	GGMLTypeQ5_0:    {"Q5_0", 32, 2 + 4 + 16},
	GGMLTypeQ5_1:    {"Q5_1", 32, 2*2 + 4 + 16},
	GGMLTypeQ8_0:    {"Q8_0", 32, 2 + 32},
	GGMLTypeQ8_1:    {"Q8_1", 32, 2*2 + 32},
	GGMLTypeQ2_K:    {"Q2_K", qkK, 2*2 + qkK/16 + qkK/4},
	GGMLTypeQ3_K:    {"Q3_K", qkK, 2 + qkK/4 + qkK/8 + 12},
	GGMLTypeQ4_K:    {"Q4_K", qkK, 2*2 + 12 + qkK/2},
	GGMLTypeQ5_K:    {"Q5_K", qkK, 2*2 + 12 + qkK/2 + qkK/8},
	GGMLTypeQ6_K:    {"Q6_K", qkK, 2 + qkK/16 + 3*qkK/4},
	GGMLTypeQ8_K:    {"Q8_K", qkK, 4 + qkK + qkK/16*2},
	GGMLTypeIQ2_XXS: {"IQ2_XXS", qkK, 2 + qkK/8*2},
	GGMLTypeIQ2_XS:  {"IQ2_XS", qkK, 2 + qkK/8*2 + qkK/32},
	GGMLTypeIQ3_XXS: {"IQ3_XXS", qkK, 2 + 3*(qkK/8)},
	GGMLTypeIQ1_S:   {"IQ1_S", qkK, 2 + qkK/8 + qkK/16},
	GGMLTypeIQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	GGMLTypeIQ3_S:   {"IQ3_S", qkK, 2 + 13*(qkK/32) + qkK/64},
	GGMLTypeIQ2_S:   {"IQ2_S", qkK, 2 + qkK/4 + qkK/16},
	GGMLTypeIQ4_XS:  {"IQ4_XS", qkK, 2 + 2 + qkK/64 + qkK/2},
	GGMLTypeI8:      {"I8", 1, 1},
	GGMLTypeI16:     {"I16", 1, 2},
	GGMLTypeI32:     {"I32", 1, 4},
	GGMLTypeI64:     {"I64", 1, 8},
	GGMLTypeF64:     {"F64", 1, 8},
	GGMLTypeIQ1_M:   {"IQ1_M", qkK, qkK/8 + qkK/16 + qkK/32},
	GGMLTypeBF16:    {"BF16", 1, 2},
	GGMLTypeTQ1_0:   {"TQ1_0", qkK, 2 + qkK/64 + (qkK-4*qkK/64)/5},
	GGMLTypeTQ2_0:   {"TQ2_0", qkK, 2 + qkK/4},
}

func (t GGMLType) String() string {
	if tr, ok := ggmlTypes[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("GGMLType(%d)", uint32(t))
}

// Known reports whether t is a tensor type this package can size.
func (t GGMLType) Known() bool {
	_, ok := ggmlTypes[t]
	return ok
}

// BlockSize returns the number of elements per quantization block and the
// number of bytes one block takes (1 and the element size for plain types).
// ok is false for an unknown type.
func (t GGMLType) BlockSize() (elems, bytes uint64, ok bool) {
	tr, ok := ggmlTypes[t]
	return tr.blockElems, tr.blockBytes, ok
}

// ParseGGMLType returns the type whose name (as printed by String, for
// example "Q4_K" or "F16") is name.
func ParseGGMLType(name string) (GGMLType, error) {
	for t, tr := range ggmlTypes {
		if tr.name == name {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown ggml type %q", name)
}

// MaxDims is ggml's GGML_MAX_DIMS: a tensor has at most this many dimensions.
const MaxDims = 4

// MaxNameLen is the longest tensor name llama.cpp accepts (GGML_MAX_NAME-1).
const MaxNameLen = 63

// TensorBytes returns the number of bytes a tensor of type t and shape
// (ne[0] first) occupies. It fails for an unknown type, a row length that
// is not a multiple of the type's block size, or a size that overflows.
func TensorBytes(t GGMLType, shape []uint64) (uint64, error) {
	tr, ok := ggmlTypes[t]
	if !ok {
		return 0, fmt.Errorf("gguf: unknown ggml type %d", uint32(t))
	}
	if len(shape) > MaxDims {
		return 0, fmt.Errorf("gguf: %d dimensions, at most %d allowed", len(shape), MaxDims)
	}
	if len(shape) == 0 {
		// A zero-dimensional tensor is a scalar: ne = {1,1,1,1}.
		if tr.blockElems != 1 {
			return 0, fmt.Errorf("gguf: scalar of type %s, which has %d-element blocks", tr.name, tr.blockElems)
		}
		return tr.blockBytes, nil
	}
	if shape[0]%tr.blockElems != 0 {
		return 0, fmt.Errorf("gguf: row length %d of type %s is not a multiple of its block size %d", shape[0], tr.name, tr.blockElems)
	}
	const limit = uint64(1) << 62 // well inside int64, as ggml requires
	n := shape[0] / tr.blockElems
	if n != 0 && tr.blockBytes > limit/n {
		return 0, fmt.Errorf("gguf: tensor size overflows")
	}
	size := n * tr.blockBytes
	for _, d := range shape[1:] {
		if d != 0 && size > limit/d {
			return 0, fmt.Errorf("gguf: tensor size overflows")
		}
		size *= d
	}
	// ggml also requires the element count to fit in int64.
	elems := uint64(1)
	for _, d := range shape {
		if d != 0 && elems > limit/d {
			return 0, fmt.Errorf("gguf: tensor element count overflows")
		}
		elems *= d
	}
	return size, nil
}

// FileTypeName names a general.file_type value (llama.cpp's LLAMA_FTYPE_*),
// for example 1 → "F16", 15 → "Q4_K_M". Unknown values give "".
func FileTypeName(ft uint64) string {
	names := map[uint64]string{
		0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
		10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
		16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
		22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
		28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
	}
	return names[ft]
}

// quantTypes maps the quantisation names jetai accepts (`jetai-ctl
// quantize --type`) to their general.file_type (llama.cpp's LLAMA_FTYPE_*),
// in the order they are listed to users.
var quantTypes = []struct {
	name string
	ft   uint64
}{
	{"f16", 1}, {"q4_0", 2}, {"q4_1", 3}, {"q5_0", 8}, {"q5_1", 9}, {"q8_0", 7},
	{"q2_k", 10}, {"q3_k_s", 11}, {"q3_k_m", 12}, {"q3_k_l", 13}, {"q4_k_s", 14}, {"q4_k_m", 15},
	{"q5_k_s", 16}, {"q5_k_m", 17}, {"q6_k", 18},
}

// QuantTypes lists the quantisation names jetai accepts, lower case.
func QuantTypes() []string {
	out := make([]string, len(quantTypes))
	for i, q := range quantTypes {
		out[i] = q.name
	}
	return out
}

// QuantFileType is the general.file_type a quantisation name (any case)
// produces; ok is false for a name jetai does not accept.
func QuantFileType(name string) (ft uint64, ok bool) {
	name = strings.ToLower(name)
	for _, q := range quantTypes {
		if q.name == name {
			return q.ft, true
		}
	}
	return 0, false
}
