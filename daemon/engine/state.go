package engine

/*
#include "engine.h"
*/
import "C"

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"
)

// State files hold one sequence's KV state and the token list it stands
// for. llama.cpp's own file (llama_state_seq_save_file) stores tokens as
// int32, but a runner's token list also holds image rows: negative
// numbers wider than 32 bits. So the file is jetai's own container around
// llama.cpp's sequence state:
//
//	"JTSQ" | uint32 version (2) | uint32 n | n × int64 tokens | uint64 m | m bytes of llama_state_seq_get_data
//
// all little-endian. Version 1 is llama.cpp's file (magic "ggsq"), which
// earlier runners wrote for text-only slots; it is still read. Any other
// version is refused by number, its bytes unread.
const (
	stateMagic   = "JTSQ"
	stateVersion = 2
	// llamaSeqMagic is LLAMA_FILE_MAGIC_GGSQ as its file's first four bytes.
	llamaSeqMagic = 0x67677371
)

// ErrStateVersion is wrapped by LoadSequence for a state file of a format
// version this build does not read.
var ErrStateVersion = errors.New("unknown state file version")

// SaveSequence writes sequence seq's KV state and its tokens to path.
func (c *Context) SaveSequence(path string, seq int, tokens []int) (err error) {
	size := C.llama_state_seq_get_size(c.raw(), C.int32_t(seq))
	if size == 0 {
		return fmt.Errorf("save sequence %d to %s: llama.cpp has no state for it", seq, path)
	}
	buf := make([]byte, int(size))
	if n := C.llama_state_seq_get_data(c.raw(), (*C.uint8_t)(unsafe.Pointer(&buf[0])), size, C.int32_t(seq)); n != size {
		return fmt.Errorf("save sequence %d to %s: llama.cpp copied %d of %d state bytes", seq, path, n, size)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("save sequence %d: %w", seq, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("save sequence %d: %w", seq, cerr)
		}
	}()
	w := bufio.NewWriter(f)
	w.WriteString(stateMagic)
	binary.Write(w, binary.LittleEndian, uint32(stateVersion))
	binary.Write(w, binary.LittleEndian, uint32(len(tokens)))
	var b [8]byte
	for _, t := range tokens {
		binary.LittleEndian.PutUint64(b[:], uint64(int64(t)))
		w.Write(b[:])
	}
	binary.Write(w, binary.LittleEndian, uint64(len(buf)))
	w.Write(buf)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("save sequence %d: %w", seq, err)
	}
	return nil
}

// LoadSequence restores a state file written by SaveSequence into sequence
// seq (whose cache should be empty) and returns the tokens it holds. A file
// from another model or context shape, of another format version, or cut
// short fails cleanly and leaves the sequence empty.
func (c *Context) LoadSequence(path string, seq int) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load sequence: %w", err)
	}
	defer f.Close()
	var head [8]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return nil, fmt.Errorf("load sequence from %s: not a state file (%d bytes)", path, fileSize(f))
	}
	switch {
	case binary.LittleEndian.Uint32(head[:4]) == llamaSeqMagic:
		return c.loadLlamaSequence(path, seq)
	case string(head[:4]) != stateMagic:
		return nil, fmt.Errorf("load sequence from %s: not a state file", path)
	}
	if v := binary.LittleEndian.Uint32(head[4:]); v != stateVersion {
		return nil, fmt.Errorf("load sequence from %s: %w %d (this runner reads 1 and %d)", path, ErrStateVersion, v, stateVersion)
	}
	r := bufio.NewReader(f)
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("load sequence from %s: token count: %w", path, err)
	}
	if int(n) > c.opts.SlotContext {
		return nil, fmt.Errorf("load sequence from %s: %d tokens do not fit the slot context %d", path, n, c.opts.SlotContext)
	}
	toks := make([]int, n)
	var b [8]byte
	for i := range toks {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("load sequence from %s: tokens cut short: %w", path, err)
		}
		toks[i] = int(int64(binary.LittleEndian.Uint64(b[:])))
	}
	var m uint64
	if err := binary.Read(r, binary.LittleEndian, &m); err != nil {
		return nil, fmt.Errorf("load sequence from %s: state size: %w", path, err)
	}
	// The state's size is checked against the file before it is allocated.
	if rest := fileSize(f) - int64(8+4+8*int(n)+8); m == 0 || int64(m) != rest {
		return nil, fmt.Errorf("load sequence from %s: state of %d bytes, file holds %d", path, m, rest)
	}
	state := make([]byte, m)
	if _, err := io.ReadFull(r, state); err != nil {
		return nil, fmt.Errorf("load sequence from %s: state cut short: %w", path, err)
	}
	engineLog.takeRecent()
	if C.llama_state_seq_set_data(c.raw(), (*C.uint8_t)(unsafe.Pointer(&state[0])), C.size_t(m), C.int32_t(seq)) == 0 {
		c.RemoveFrom(seq, 0)
		return nil, fmt.Errorf("load sequence from %s: state does not fit this model or context%s", path, formatRecent(engineLog.takeRecent()))
	}
	return toks, nil
}

// loadLlamaSequence reads a version 1 file: llama.cpp's own, int32 tokens.
func (c *Context) loadLlamaSequence(path string, seq int) ([]int, error) {
	capTokens := c.opts.SlotContext
	ct := make([]C.int32_t, capTokens+1)
	var n C.size_t
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	engineLog.takeRecent()
	read := C.llama_state_seq_load_file(c.raw(), cpath, C.int32_t(seq), &ct[0], C.size_t(capTokens), &n)
	if read == 0 {
		c.RemoveFrom(seq, 0)
		return nil, fmt.Errorf("load sequence from %s: state does not fit this model or context%s", path, formatRecent(engineLog.takeRecent()))
	}
	out := make([]int, int(n))
	for i := range out {
		out[i] = int(ct[i])
	}
	return out, nil
}

// saveLlamaSequence writes a version 1 file, as earlier runners did; the
// tests use it to check that such files still load.
func (c *Context) saveLlamaSequence(path string, seq int, tokens []int) error {
	ct := make([]C.int32_t, len(tokens)+1)
	for i, t := range tokens {
		if t < math.MinInt32 || t > math.MaxInt32 {
			return fmt.Errorf("save sequence %d: token %d does not fit a version 1 file", seq, t)
		}
		ct[i] = C.int32_t(t)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if C.llama_state_seq_save_file(c.raw(), cpath, C.int32_t(seq), &ct[0], C.size_t(len(tokens))) == 0 {
		return fmt.Errorf("save sequence %d to %s: llama.cpp wrote nothing", seq, path)
	}
	return nil
}

// seqPosMax is the last position of sequence seq in the KV cache; 0 when
// it holds none (llama.cpp answers 0 for an empty sequence too).
func (c *Context) seqPosMax(seq int) int {
	return int(C.llama_kv_cache_seq_pos_max(c.raw(), C.int32_t(seq)))
}

func fileSize(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return -1
	}
	return st.Size()
}
