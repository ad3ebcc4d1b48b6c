package engine

/*
#include "engine.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/ollama/ollama/llama"

	"github.com/jetai/jetai/gguf"
)

// ContextOptions size a context.
type ContextOptions struct {
	SlotContext    int    // tokens each sequence slot may hold
	Slots          int    // sequence slots (parallel requests)
	BatchSize      int    // most tokens in one decode; 0 = 512
	Threads        int    // 0 = all CPUs
	FlashAttention bool   // flash attention kernels
	KVType         string // "f16" (default), "q8_0" or "q4_0"
	// MaxThreads sizes the thread pool, the most SetThreads can give;
	// 0 = max(Threads, all CPUs).
	MaxThreads int
	// Poll is ggml's polling level for idle workers (0 = sleep at once,
	// 100 = spin long). 0 suits a box whose cores are all in use.
	Poll int
}

// Context is a llama context: KV cache for Slots sequences of SlotContext
// tokens each, and the compute buffers.
type Context struct {
	c       *llama.Context
	model   *Model
	opts    ContextOptions
	threads int
	embd    *Batch // lazily made for Embed
	pool    *C.struct_ggml_threadpool
	// abort is C memory read by the abort callback (engine.h): armed,
	// requested, fired.
	abort *C.int32_t
}

// ErrKVFull is returned by Decode when the KV cache has no room for the batch.
var ErrKVFull = errors.New("KV cache full")

// NewContext creates a context for the model.
func (m *Model) NewContext(opts ContextOptions) (*Context, error) {
	if opts.Slots <= 0 {
		opts.Slots = 1
	}
	if opts.SlotContext <= 0 {
		return nil, fmt.Errorf("context: slot context must be positive, got %d", opts.SlotContext)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	if opts.Threads <= 0 {
		opts.Threads = runtime.NumCPU()
	}
	// llama.cpp refuses some combinations with a log line and aborts the
	// process on others (GGML_ASSERT on a head narrower than a block).
	if err := gguf.KVCacheCheck(m.headParams(), opts.KVType, opts.FlashAttention); err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	params := llama.NewContextParams(opts.SlotContext*opts.Slots, opts.BatchSize, opts.Slots, opts.Threads, opts.FlashAttention, opts.KVType)
	engineLog.takeRecent()
	c, err := llama.NewContextWithModel(m.m, params)
	if err != nil {
		return nil, fmt.Errorf("context: %w%s", err, formatRecent(engineLog.takeRecent()))
	}
	ctx := &Context{c: c, model: m, opts: opts, threads: opts.Threads}
	if opts.MaxThreads < opts.Threads {
		opts.MaxThreads = max(opts.Threads, runtime.NumCPU())
		ctx.opts.MaxThreads = opts.MaxThreads
	}
	var tpp C.struct_jetai_threadpool_params
	C.ggml_threadpool_params_init(&tpp, C.int(opts.MaxThreads))
	tpp.poll = C.uint32_t(min(max(opts.Poll, 0), 100))
	ctx.pool = C.ggml_threadpool_new(&tpp)
	if ctx.pool == nil {
		C.llama_free(ctx.raw())
		return nil, fmt.Errorf("context: could not create a thread pool of %d threads", opts.MaxThreads)
	}
	C.llama_attach_threadpool(ctx.raw(), ctx.pool, ctx.pool)
	ctx.abort = (*C.int32_t)(C.calloc(3, C.size_t(unsafe.Sizeof(C.int32_t(0)))))
	C.jetai_set_abort(ctx.raw(), ctx.abort)
	C.llama_set_n_threads(ctx.raw(), C.int32_t(opts.Threads), C.int32_t(opts.Threads))
	// The wrapper turns embeddings on for every context; generation does not
	// need them, Embed turns them on for its own decodes.
	C.llama_set_embeddings(ctx.raw(), false)
	return ctx, nil
}

// headParams returns the model's key and value head sizes as llama.cpp
// reads them: {arch}.attention.key_length and value_length, each defaulting
// to n_embd / n_head.
func (m *Model) headParams() gguf.Params {
	var p gguf.Params
	if m.info.Heads > 0 {
		p.KeyLength = uint64(m.info.Embedding / m.info.Heads)
		p.ValueLength = p.KeyLength
	}
	arch := m.info.Architecture
	if n, err := strconv.ParseUint(m.Meta(arch+".attention.key_length"), 10, 64); err == nil {
		p.KeyLength = n
	}
	if n, err := strconv.ParseUint(m.Meta(arch+".attention.value_length"), 10, 64); err == nil {
		p.ValueLength = n
	}
	return p
}

func (c *Context) raw() *C.struct_llama_context { return rawContext(c.c) }

// Close frees the context.
func (c *Context) Close() {
	if c.embd != nil {
		c.embd.Free()
		c.embd = nil
	}
	if c.c != nil {
		C.llama_detach_threadpool(c.raw())
		C.llama_free(c.raw())
		c.c = nil
	}
	if c.pool != nil {
		C.ggml_threadpool_free(c.pool)
		c.pool = nil
	}
	if c.abort != nil {
		C.free(unsafe.Pointer(c.abort))
		c.abort = nil
	}
}

// Model returns the model the context was made from.
func (c *Context) Model() *Model { return c.model }

// Options returns the options the context was made with.
func (c *Context) Options() ContextOptions { return c.opts }

// Size returns the total KV cache size in tokens (llama.cpp may pad it).
func (c *Context) Size() int { return int(C.llama_n_ctx(c.raw())) }

// SetThreads changes the number of CPU threads used by the next decodes,
// up to the pool's size (MaxThreads).
func (c *Context) SetThreads(n int) {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	n = min(n, c.opts.MaxThreads)
	C.llama_set_n_threads(c.raw(), C.int32_t(n), C.int32_t(n))
	c.threads = n
}

// Threads returns the current thread count.
func (c *Context) Threads() int { return c.threads }

// batch is what token and embedding batches share: llama.cpp's batch and
// its capacity.
type batch struct {
	b   *llama.Batch
	cap int
}

// Len is the number of entries in the batch; Cap the most it holds.
func (b *batch) Len() int { return b.b.NumTokens() }
func (b *batch) Cap() int { return b.cap }

// Clear empties the batch.
func (b *batch) Clear() { b.b.Clear() }

// Free releases the batch.
func (b *batch) Free() {
	if b.b != nil {
		b.b.Free()
		b.b = nil
	}
}

// Batch is a set of tokens for one Decode.
type Batch struct{ batch }

// NewBatch allocates a batch of up to n tokens, one sequence per token.
func NewBatch(n int) (*Batch, error) {
	b, err := llama.NewBatch(n, 1, 0)
	if err != nil {
		return nil, err
	}
	return &Batch{batch{b: b, cap: n}}, nil
}

// Add appends a token at position pos of sequence seq and returns its
// index in the batch; logits asks for its output (needed to sample after it).
func (b *Batch) Add(token, pos, seq int, logits bool) int {
	i := b.b.NumTokens()
	b.b.Add(token, nil, pos, logits, seq)
	return i
}

// Decode runs the model over the batch.
func (c *Context) Decode(b *Batch) error { return c.decode(&b.batch) }

// decode runs the model over a batch of tokens or of embeddings.
func (c *Context) decode(b *batch) error {
	if b.Len() == 0 {
		return nil
	}
	if err := c.c.Decode(b.b); err != nil {
		if errors.Is(err, llama.ErrKvCacheFull) {
			return ErrKVFull
		}
		return err
	}
	return nil
}

// ErrInterrupted is returned by DecodeInterruptible when Interrupt stopped
// it. llama.cpp puts the KV cache back as it was: the batch had no effect.
var ErrInterrupted = errors.New("decode interrupted")

func (c *Context) abortFlags() []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(c.abort)), 3)
}

// Interrupt stops the DecodeInterruptible running now, at its next graph
// node, or the next one to start when none runs. Safe from any goroutine.
func (c *Context) Interrupt() {
	atomic.StoreInt32(&c.abortFlags()[1], 1)
}

// DecodeInterruptible is Decode that Interrupt can stop (on the CPU
// backend, between two graph nodes). Each call consumes the interrupt
// asked for before it or during it.
func (c *Context) DecodeInterruptible(b *Batch) error {
	f := c.abortFlags()
	atomic.StoreInt32(&f[2], 0)
	atomic.StoreInt32(&f[0], 1)
	interruptibleDecodes.Add(1)
	err := c.Decode(b)
	interruptibleDecodes.Add(-1)
	atomic.StoreInt32(&f[0], 0)
	atomic.StoreInt32(&f[1], 0)
	if atomic.LoadInt32(&f[2]) != 0 {
		atomic.StoreInt32(&f[2], 0)
		if err != nil {
			return ErrInterrupted
		}
	}
	return err
}

// RemoveFrom drops sequence seq's KV cache from position pos on (pos < 0
// drops all of it).
func (c *Context) RemoveFrom(seq, pos int) bool {
	if pos < 0 {
		pos = 0
	}
	return c.c.KvCacheSeqRm(seq, pos, -1)
}

// Logits returns the logits at batch index i (a view valid until the next
// Decode).
func (c *Context) Logits(i int) []float32 {
	p := C.llama_get_logits_ith(c.raw(), C.int32_t(i))
	if p == nil {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), c.model.info.VocabSize)
}

// Ban makes the tokens impossible to sample from the logits at batch index
// i (for example EOGTokens, to generate past the end of a text).
func (c *Context) Ban(i int, tokens []int) {
	l := c.Logits(i)
	if l == nil {
		return
	}
	for _, t := range tokens {
		l[t] = float32(math.Inf(-1))
	}
}

// Embed returns the L2-normalised embedding of tokens, computed in sequence
// seq (whose KV cache is cleared before and after). Models without a pooling
// layer are mean-pooled over the tokens.
func (c *Context) Embed(tokens []int, seq int) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, errors.New("embed: no tokens")
	}
	if len(tokens) > c.opts.SlotContext {
		return nil, fmt.Errorf("embed: %d tokens exceed the slot context of %d", len(tokens), c.opts.SlotContext)
	}
	pooled := C.llama_pooling_type(c.raw()) > 0
	if pooled && len(tokens) > c.opts.BatchSize {
		return nil, fmt.Errorf("embed: %d tokens exceed the batch size of %d for a pooled model", len(tokens), c.opts.BatchSize)
	}
	if c.embd == nil {
		b, err := NewBatch(c.opts.BatchSize)
		if err != nil {
			return nil, err
		}
		c.embd = b
	}
	C.llama_set_embeddings(c.raw(), true)
	defer C.llama_set_embeddings(c.raw(), false)
	c.RemoveFrom(seq, 0)
	defer c.RemoveFrom(seq, 0)

	n := c.model.info.Embedding
	sum := make([]float64, n)
	for start := 0; start < len(tokens); start += c.opts.BatchSize {
		end := min(start+c.opts.BatchSize, len(tokens))
		c.embd.Clear()
		for i := start; i < end; i++ {
			c.embd.Add(tokens[i], i, seq, true)
		}
		if err := c.Decode(c.embd); err != nil {
			return nil, fmt.Errorf("embed: %w", err)
		}
		if pooled {
			e := c.c.GetEmbeddingsSeq(seq)
			if e == nil {
				return nil, errors.New("embed: model produced no embedding")
			}
			for j, v := range e {
				sum[j] = float64(v)
			}
			break
		}
		for i := 0; i < end-start; i++ {
			e := c.c.GetEmbeddingsIth(i)
			if e == nil {
				return nil, errors.New("embed: model produced no embedding")
			}
			for j, v := range e {
				sum[j] += float64(v)
			}
		}
	}
	var norm float64
	for _, v := range sum {
		norm += v * v
	}
	norm = math.Sqrt(norm)
	out := make([]float32, n)
	for j, v := range sum {
		if norm > 0 {
			out[j] = float32(v / norm)
		}
	}
	return out, nil
}

// defaultThreadpoolParams is exposed for the layout test.
func defaultThreadpoolParams(n int) (threads, prio int, poll uint32, strict, paused bool) {
	var p C.struct_jetai_threadpool_params
	C.ggml_threadpool_params_init(&p, C.int(n))
	return int(p.n_threads), int(p.prio), uint32(p.poll), bool(p.strict_cpu), bool(p.paused)
}

// ApplyAdapter loads the LoRA adapter at path (a GGUF adapter made for
// this model's base) and applies it to the context at scale. An adapter
// for another architecture or shape fails with llama.cpp's reason.
func (c *Context) ApplyAdapter(path string, scale float32) error {
	if err := CheckFile(path); err != nil {
		return fmt.Errorf("adapter %s: %w", path, err)
	}
	engineLog.takeRecent()
	if err := c.model.m.ApplyLoraFromFile(c.c, path, scale, c.threads); err != nil {
		return fmt.Errorf("adapter %s: %w%s", path, err, formatRecent(engineLog.takeRecent()))
	}
	return nil
}
