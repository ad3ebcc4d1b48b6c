// Package gguf reads and writes GGUF v3 files, llama.cpp's model format.
//
// It owns the file format only: the header (metadata key/value pairs and
// tensor infos), the ggml tensor type size table, layout checks, and a
// streaming writer. Open reads the header and never the tensor data, so it
// is cheap on multi-gigabyte files, and it treats every file as hostile:
// lengths and counts are bounded by the file size and a damaged file gives
// an error, never a panic or a huge allocation.
//
// It must not touch llama.cpp, cgo or model semantics beyond the metadata
// helpers the memory estimator needs (architecture, context length, layer
// and head counts, …); loading and running models belong to daemon/engine.
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// Version is the GGUF version this package writes. Open accepts 2 and 3
// (they share the layout read here); v1 used 32-bit counts and is refused.
const Version = 3

// DefaultAlignment is the data alignment used when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the data alignment (u32).
const KeyAlignment = "general.alignment"

// MaxStringLen bounds a single metadata string or tensor name (64 MiB): far
// above any real chat template or token, far below a damaging allocation.
const MaxStringLen = 64 << 20

// ErrNotGGUF is returned (wrapped) for a file that does not start with "GGUF".
var ErrNotGGUF = errors.New("not a GGUF file")

// ErrTruncated is returned (wrapped) when the file ends before its header or
// a tensor's data does.
var ErrTruncated = errors.New("file is truncated")

// KV is one metadata pair. Value holds the Go value: uint8, int8, uint16,
// int16, uint32, int32, float32, bool, string, uint64, int64 or float64 for
// scalars, and a slice of one of those for an array (Type is TypeArray and
// ElemType the element type).
type KV struct {
	Key      string
	Type     ValueType
	ElemType ValueType
	Value    any
}

// TensorInfo describes one tensor as the header declares it.
type TensorInfo struct {
	Name   string
	Shape  []uint64 // ne[0] (the row length) first
	Type   GGMLType
	Offset uint64 // relative to the start of the data section
	Size   uint64 // bytes, from Type and Shape
}

// Elements returns the number of elements in the tensor.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is the parsed header of a GGUF file.
type File struct {
	Version    uint32
	KVs        []KV // in file order
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset uint64 // absolute offset of the data section
	FileSize   int64

	kvIndex     map[string]int
	tensorIndex map[string]int
}

// Open reads the header of the GGUF file at path and checks that every
// tensor's data lies inside the file. It does not read tensor data.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("gguf: %s: not a regular file", path)
	}
	f, err := Read(fh, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return f, nil
}

// Read parses the header from r, whose total size is size, and checks that
// every tensor's data lies inside size bytes. It reads only the header.
func Read(r io.ReaderAt, size int64) (*File, error) {
	if size < 0 {
		return nil, errors.New("gguf: negative size")
	}
	d := &decoder{
		r:    bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(min(max(size, 4096), 1<<20))),
		size: uint64(size),
	}
	f, err := d.file()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f.FileSize = size
	if err := f.checkBounds(); err != nil {
		return nil, err
	}
	return f, nil
}

type decoder struct {
	r    *bufio.Reader
	pos  uint64
	size uint64
	buf  [8]byte
}

func (d *decoder) remaining() uint64 { return d.size - d.pos }

func (d *decoder) read(n int) ([]byte, error) {
	b := d.buf[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("at offset %d: %w", d.pos, ErrTruncated)
		}
		return nil, err
	}
	d.pos += uint64(n)
	return b, nil
}

func (d *decoder) u8() (uint8, error) {
	b, err := d.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.read(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (d *decoder) str() (string, error) {
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > d.remaining() {
		return "", fmt.Errorf("at offset %d: string of %d bytes runs past the end of the file: %w", d.pos-8, n, ErrTruncated)
	}
	if n > MaxStringLen {
		return "", fmt.Errorf("at offset %d: string of %d bytes exceeds the %d-byte limit", d.pos-8, n, MaxStringLen)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		return "", fmt.Errorf("at offset %d: %w", d.pos, ErrTruncated)
	}
	d.pos += n
	return string(b), nil
}

func (d *decoder) file() (*File, error) {
	magic := make([]byte, 4)
	if _, err := io.ReadFull(d.r, magic); err != nil {
		return nil, fmt.Errorf("%w: shorter than the 4-byte magic", ErrNotGGUF)
	}
	d.pos = 4
	if string(magic) != Magic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrNotGGUF, magic, Magic)
	}
	f := &File{}
	var err error
	if f.Version, err = d.u32(); err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	if f.Version < 2 || f.Version > Version {
		return nil, fmt.Errorf("unsupported GGUF version %d (supported: 2, 3)", f.Version)
	}
	nTensors, err := d.u64()
	if err != nil {
		return nil, fmt.Errorf("tensor count: %w", err)
	}
	nKV, err := d.u64()
	if err != nil {
		return nil, fmt.Errorf("metadata count: %w", err)
	}
	// Smallest encodings: a KV is key length (8) + key type (4) + a 1-byte
	// value; a tensor info is name length (8) + n_dims (4) + type (4) + offset (8).
	if nKV > d.remaining()/13 {
		return nil, fmt.Errorf("metadata count %d is impossible in a %d-byte file: %w", nKV, d.size, ErrTruncated)
	}
	if nTensors > d.remaining()/24 {
		return nil, fmt.Errorf("tensor count %d is impossible in a %d-byte file: %w", nTensors, d.size, ErrTruncated)
	}

	f.kvIndex = make(map[string]int, nKV)
	f.KVs = make([]KV, 0, nKV)
	for i := uint64(0); i < nKV; i++ {
		kv, err := d.kv()
		if err != nil {
			return nil, fmt.Errorf("metadata pair %d: %w", i, err)
		}
		if _, dup := f.kvIndex[kv.Key]; dup {
			return nil, fmt.Errorf("metadata pair %d: duplicate key %q", i, kv.Key)
		}
		f.kvIndex[kv.Key] = len(f.KVs)
		f.KVs = append(f.KVs, kv)
	}

	f.Alignment = DefaultAlignment
	if kv, ok := f.Get(KeyAlignment); ok {
		a, isU32 := kv.Value.(uint32)
		if !isU32 {
			// llama.cpp aborts on a non-u32 alignment; refuse it here.
			return nil, fmt.Errorf("%s has type %s, want u32", KeyAlignment, kv.Type)
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("%s = %d is not a power of two", KeyAlignment, a)
		}
		f.Alignment = uint64(a)
	}

	f.tensorIndex = make(map[string]int, nTensors)
	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := d.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, err)
		}
		if _, dup := f.tensorIndex[t.Name]; dup {
			return nil, fmt.Errorf("tensor info %d: duplicate tensor name %q", i, t.Name)
		}
		f.tensorIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(d.pos, f.Alignment)
	return f, nil
}

func (d *decoder) kv() (KV, error) {
	key, err := d.str()
	if err != nil {
		return KV{}, fmt.Errorf("key: %w", err)
	}
	t, err := d.u32()
	if err != nil {
		return KV{}, fmt.Errorf("key %q: type: %w", key, err)
	}
	kv := KV{Key: key, Type: ValueType(t)}
	if kv.Type == TypeArray {
		et, err := d.u32()
		if err != nil {
			return KV{}, fmt.Errorf("key %q: array type: %w", key, err)
		}
		kv.ElemType = ValueType(et)
		n, err := d.u64()
		if err != nil {
			return KV{}, fmt.Errorf("key %q: array length: %w", key, err)
		}
		kv.Value, err = d.array(kv.ElemType, n)
		if err != nil {
			return KV{}, fmt.Errorf("key %q: %w", key, err)
		}
		return kv, nil
	}
	kv.Value, err = d.scalar(kv.Type)
	if err != nil {
		return KV{}, fmt.Errorf("key %q: %w", key, err)
	}
	return kv, nil
}

func (d *decoder) scalar(t ValueType) (any, error) {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		v, err := d.u8()
		return int8(v), err
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		v, err := d.u16()
		return int16(v), err
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		v, err := d.u32()
		return int32(v), err
	case TypeFloat32:
		v, err := d.u32()
		return math.Float32frombits(v), err
	case TypeBool:
		v, err := d.u8()
		return v != 0, err
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		v, err := d.u64()
		return int64(v), err
	case TypeFloat64:
		v, err := d.u64()
		return math.Float64frombits(v), err
	}
	return nil, fmt.Errorf("invalid value type %d", uint32(t))
}

// readArray reads n fixed-size elements with get, growing the slice as data
// actually arrives so a lying count cannot force a large allocation.
func readArray[T any](d *decoder, n uint64, get func() (T, error)) ([]T, error) {
	out := make([]T, 0, min(n, 1<<16))
	for i := uint64(0); i < n; i++ {
		v, err := get()
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *decoder) array(et ValueType, n uint64) (any, error) {
	minSize := uint64(et.size())
	switch et {
	case TypeString:
		minSize = 8
	case TypeArray:
		return nil, errors.New("nested arrays are not supported")
	}
	if minSize == 0 {
		return nil, fmt.Errorf("invalid array element type %d", uint32(et))
	}
	if n > d.remaining()/minSize {
		return nil, fmt.Errorf("array of %d %s elements runs past the end of the file: %w", n, et, ErrTruncated)
	}
	switch et {
	case TypeUint8:
		return readArray(d, n, d.u8)
	case TypeInt8:
		return readArray(d, n, func() (int8, error) { v, err := d.u8(); return int8(v), err })
	case TypeUint16:
		return readArray(d, n, d.u16)
	case TypeInt16:
		return readArray(d, n, func() (int16, error) { v, err := d.u16(); return int16(v), err })
	case TypeUint32:
		return readArray(d, n, d.u32)
	case TypeInt32:
		return readArray(d, n, func() (int32, error) { v, err := d.u32(); return int32(v), err })
	case TypeFloat32:
		return readArray(d, n, func() (float32, error) { v, err := d.u32(); return math.Float32frombits(v), err })
	case TypeBool:
		return readArray(d, n, func() (bool, error) { v, err := d.u8(); return v != 0, err })
	case TypeString:
		return readArray(d, n, d.str)
	case TypeUint64:
		return readArray(d, n, d.u64)
	case TypeInt64:
		return readArray(d, n, func() (int64, error) { v, err := d.u64(); return int64(v), err })
	default: // TypeFloat64
		return readArray(d, n, func() (float64, error) { v, err := d.u64(); return math.Float64frombits(v), err })
	}
}

func (d *decoder) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = d.str(); err != nil {
		return t, fmt.Errorf("name: %w", err)
	}
	if len(t.Name) > MaxNameLen {
		return t, fmt.Errorf("tensor name %.80q… is %d bytes, llama.cpp allows at most %d", t.Name, len(t.Name), MaxNameLen)
	}
	nDims, err := d.u32()
	if err != nil {
		return t, fmt.Errorf("tensor %q: n_dims: %w", t.Name, err)
	}
	if nDims > MaxDims {
		return t, fmt.Errorf("tensor %q has %d dimensions, at most %d allowed", t.Name, nDims, MaxDims)
	}
	t.Shape = make([]uint64, nDims)
	for i := range t.Shape {
		if t.Shape[i], err = d.u64(); err != nil {
			return t, fmt.Errorf("tensor %q: dimension %d: %w", t.Name, i, err)
		}
		if t.Shape[i] > math.MaxInt64 {
			return t, fmt.Errorf("tensor %q: dimension %d is negative", t.Name, i)
		}
	}
	typ, err := d.u32()
	if err != nil {
		return t, fmt.Errorf("tensor %q: type: %w", t.Name, err)
	}
	t.Type = GGMLType(typ)
	if !t.Type.Known() {
		return t, fmt.Errorf("tensor %q has unknown ggml type %d", t.Name, typ)
	}
	if t.Size, err = TensorBytes(t.Type, t.Shape); err != nil {
		return t, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if t.Offset, err = d.u64(); err != nil {
		return t, fmt.Errorf("tensor %q: offset: %w", t.Name, err)
	}
	return t, nil
}

func alignUp(n, a uint64) uint64 {
	if r := n % a; r != 0 {
		return n + a - r
	}
	return n
}

// checkBounds reports the first tensor whose data does not lie inside the file.
func (f *File) checkBounds() error {
	size := uint64(f.FileSize)
	for _, t := range f.Tensors {
		start := f.DataOffset + t.Offset
		if t.Offset > size || start > size || t.Size > size-start {
			return fmt.Errorf("gguf: tensor %q (bytes %d..%d) ends past the end of the %d-byte file: %w",
				t.Name, start, start+t.Size, size, ErrTruncated)
		}
	}
	return nil
}

// Validate checks the layout the way llama.cpp's loader will: every
// tensor's data inside the file, each offset a multiple of the alignment,
// and tensors packed in header order (llama.cpp's gguf reader requires each
// offset to equal the padded end of the previous tensor). Open already
// guarantees the first check; Validate adds the rest.
func (f *File) Validate() error {
	if err := f.checkBounds(); err != nil {
		return err
	}
	var want uint64
	for _, t := range f.Tensors {
		if t.Offset%f.Alignment != 0 {
			return fmt.Errorf("gguf: tensor %q offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset != want {
			return fmt.Errorf("gguf: tensor %q has offset %d, llama.cpp expects %d (tensors packed in header order)", t.Name, t.Offset, want)
		}
		want = alignUp(t.Offset+t.Size, f.Alignment)
	}
	return nil
}

// TensorBytes returns the sum of all tensors' data sizes (without padding):
// the memory the weights take once loaded.
func (f *File) TensorBytes() uint64 {
	var n uint64
	for _, t := range f.Tensors {
		n += t.Size
	}
	return n
}

// DataSize returns the size of the data section as laid out: from
// DataOffset to the padded end of the last tensor.
func (f *File) DataSize() uint64 {
	var end uint64
	for _, t := range f.Tensors {
		end = max(end, alignUp(t.Offset+t.Size, f.Alignment))
	}
	return end
}

// Tensor returns the tensor info named name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}
