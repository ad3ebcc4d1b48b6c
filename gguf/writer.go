package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Writer writes a GGUF v3 file in one pass: declare the metadata and the
// tensors, then stream each tensor's data in declaration order. Only the
// header is buffered, so a multi-gigabyte model is written with a small,
// constant amount of memory.
//
//	w := gguf.NewWriter(out)
//	w.AddKV("general.architecture", "llama")
//	w.AddTensor("token_embd.weight", []uint64{embd, vocab}, gguf.GGMLTypeF16)
//	for each tensor: w.WriteTensor(name, func(dst io.Writer) error { … })
//	w.Close()
type Writer struct {
	w         *bufio.Writer
	pos       uint64
	kvs       []KV
	keys      map[string]bool
	tensors   []TensorInfo
	names     map[string]bool
	alignment uint64
	started   bool // header written
	next      int  // index of the next tensor to write
	err       error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{
		w:         bufio.NewWriterSize(w, 1<<20),
		keys:      map[string]bool{},
		names:     map[string]bool{},
		alignment: DefaultAlignment,
	}
}

// valueType maps a Go value to its GGUF type (and element type for slices).
func valueType(v any) (t, elem ValueType, err error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, 0, nil
	case int8:
		return TypeInt8, 0, nil
	case uint16:
		return TypeUint16, 0, nil
	case int16:
		return TypeInt16, 0, nil
	case uint32:
		return TypeUint32, 0, nil
	case int32:
		return TypeInt32, 0, nil
	case float32:
		return TypeFloat32, 0, nil
	case bool:
		return TypeBool, 0, nil
	case string:
		return TypeString, 0, nil
	case uint64:
		return TypeUint64, 0, nil
	case int64:
		return TypeInt64, 0, nil
	case float64:
		return TypeFloat64, 0, nil
	case []uint8:
		return TypeArray, TypeUint8, nil
	case []int8:
		return TypeArray, TypeInt8, nil
	case []uint16:
		return TypeArray, TypeUint16, nil
	case []int16:
		return TypeArray, TypeInt16, nil
	case []uint32:
		return TypeArray, TypeUint32, nil
	case []int32:
		return TypeArray, TypeInt32, nil
	case []float32:
		return TypeArray, TypeFloat32, nil
	case []bool:
		return TypeArray, TypeBool, nil
	case []string:
		return TypeArray, TypeString, nil
	case []uint64:
		return TypeArray, TypeUint64, nil
	case []int64:
		return TypeArray, TypeInt64, nil
	case []float64:
		return TypeArray, TypeFloat64, nil
	}
	return 0, 0, fmt.Errorf("gguf: unsupported metadata value type %T (use a sized Go type such as uint32 or []int32)", v)
}

// AddKV declares a metadata pair. The GGUF type follows the Go type of
// value: uint32 → u32, []string → array of string, and so on (int and uint
// are refused: say the width). general.alignment, if given, must be a
// uint32 power of two and sets the data alignment.
func (w *Writer) AddKV(key string, value any) error {
	if w.started {
		return errors.New("gguf: AddKV after tensor data started")
	}
	if w.keys[key] {
		return fmt.Errorf("gguf: duplicate key %q", key)
	}
	t, et, err := valueType(value)
	if err != nil {
		return fmt.Errorf("%w (key %q)", err, key)
	}
	if key == KeyAlignment {
		a, ok := value.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("gguf: %s must be a uint32 power of two, got %T %v", KeyAlignment, value, value)
		}
		w.alignment = uint64(a)
	}
	w.keys[key] = true
	w.kvs = append(w.kvs, KV{Key: key, Type: t, ElemType: et, Value: value})
	return nil
}

// AddTensor declares a tensor; shape lists ne[0] (the row length) first.
// Tensors are laid out, and must be written, in declaration order.
func (w *Writer) AddTensor(name string, shape []uint64, typ GGMLType) error {
	if w.started {
		return errors.New("gguf: AddTensor after tensor data started")
	}
	if w.names[name] {
		return fmt.Errorf("gguf: duplicate tensor %q", name)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("gguf: tensor name %q longer than %d bytes", name, MaxNameLen)
	}
	size, err := TensorBytes(typ, shape)
	if err != nil {
		return fmt.Errorf("%w (tensor %q)", err, name)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, TensorInfo{Name: name, Shape: append([]uint64(nil), shape...), Type: typ, Size: size})
	return nil
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.pos += uint64(n)
	w.err = err
}

func (w *Writer) u32(v uint32) { w.write(binary.LittleEndian.AppendUint32(nil, v)) }
func (w *Writer) u64(v uint64) { w.write(binary.LittleEndian.AppendUint64(nil, v)) }
func (w *Writer) str(s string) { w.u64(uint64(len(s))); w.write([]byte(s)) }

func (w *Writer) pad() {
	if r := w.pos % w.alignment; r != 0 {
		w.write(make([]byte, w.alignment-r))
	}
}

func (w *Writer) scalar(v any) {
	var b [8]byte
	switch x := v.(type) {
	case uint8:
		w.write([]byte{x})
	case int8:
		w.write([]byte{byte(x)})
	case bool:
		if x {
			w.write([]byte{1})
		} else {
			w.write([]byte{0})
		}
	case uint16:
		w.write(binary.LittleEndian.AppendUint16(b[:0], x))
	case int16:
		w.write(binary.LittleEndian.AppendUint16(b[:0], uint16(x)))
	case uint32:
		w.u32(x)
	case int32:
		w.u32(uint32(x))
	case float32:
		w.u32(math.Float32bits(x))
	case uint64:
		w.u64(x)
	case int64:
		w.u64(uint64(x))
	case float64:
		w.u64(math.Float64bits(x))
	case string:
		w.str(x)
	}
}

func writeSlice[T any](w *Writer, et ValueType, xs []T) {
	w.u32(uint32(et))
	w.u64(uint64(len(xs)))
	for _, x := range xs {
		w.scalar(x)
	}
}

func (w *Writer) value(kv KV) {
	w.u32(uint32(kv.Type))
	switch x := kv.Value.(type) {
	case []uint8:
		writeSlice(w, kv.ElemType, x)
	case []int8:
		writeSlice(w, kv.ElemType, x)
	case []uint16:
		writeSlice(w, kv.ElemType, x)
	case []int16:
		writeSlice(w, kv.ElemType, x)
	case []uint32:
		writeSlice(w, kv.ElemType, x)
	case []int32:
		writeSlice(w, kv.ElemType, x)
	case []float32:
		writeSlice(w, kv.ElemType, x)
	case []bool:
		writeSlice(w, kv.ElemType, x)
	case []string:
		writeSlice(w, kv.ElemType, x)
	case []uint64:
		writeSlice(w, kv.ElemType, x)
	case []int64:
		writeSlice(w, kv.ElemType, x)
	case []float64:
		writeSlice(w, kv.ElemType, x)
	default:
		w.scalar(x)
	}
}

// WriteHeader writes the header and the padding before the data section.
// WriteTensor calls it on first use; calling it directly is optional. No
// more metadata or tensors can be declared afterwards.
func (w *Writer) WriteHeader() error {
	if w.started {
		return w.err
	}
	w.started = true
	w.write([]byte(Magic))
	w.u32(Version)
	w.u64(uint64(len(w.tensors)))
	w.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		w.str(kv.Key)
		w.value(kv)
	}
	var off uint64
	for i := range w.tensors {
		t := &w.tensors[i]
		t.Offset = off
		off = alignUp(off+t.Size, w.alignment)
		w.str(t.Name)
		w.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			w.u64(d)
		}
		w.u32(uint32(t.Type))
		w.u64(t.Offset)
	}
	w.pad()
	return w.err
}

// countingWriter counts the bytes a tensor's fill function writes and
// refuses to write past the tensor's size.
type countingWriter struct {
	w     *Writer
	n     uint64
	limit uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n+uint64(len(p)) > c.limit {
		return 0, fmt.Errorf("gguf: tensor data overflows its declared %d bytes", c.limit)
	}
	c.w.write(p)
	if c.w.err != nil {
		return 0, c.w.err
	}
	c.n += uint64(len(p))
	return len(p), nil
}

// WriteTensor writes the data of the next declared tensor, which must be
// named name. fill must write exactly the tensor's size in bytes (its
// elements in ggml's row-major order, ne[0] fastest).
func (w *Writer) WriteTensor(name string, fill func(io.Writer) error) error {
	if err := w.WriteHeader(); err != nil {
		return err
	}
	if w.next >= len(w.tensors) {
		return fmt.Errorf("gguf: tensor %q written but all %d declared tensors are done", name, len(w.tensors))
	}
	t := w.tensors[w.next]
	if t.Name != name {
		return fmt.Errorf("gguf: tensor %q written out of order, expected %q", name, t.Name)
	}
	cw := &countingWriter{w: w, limit: t.Size}
	if err := fill(cw); err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	if cw.n != t.Size {
		return fmt.Errorf("gguf: tensor %q: wrote %d bytes, declared %d", name, cw.n, t.Size)
	}
	w.pad()
	w.next++
	return w.err
}

// WriteTensorBytes writes the next tensor's data from a byte slice.
func (w *Writer) WriteTensorBytes(name string, data []byte) error {
	return w.WriteTensor(name, func(dst io.Writer) error {
		_, err := dst.Write(data)
		return err
	})
}

// Tensors returns the declared tensors with their offsets (the offsets are
// set once the header is written).
func (w *Writer) Tensors() []TensorInfo { return append([]TensorInfo(nil), w.tensors...) }

// Close writes the header if nothing was written yet, checks that every
// declared tensor was written, and flushes. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if err := w.WriteHeader(); err != nil {
		return err
	}
	if w.next != len(w.tensors) {
		return fmt.Errorf("gguf: %d of %d declared tensors written", w.next, len(w.tensors))
	}
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}
