// Package modelgen generates llama-architecture GGUF models with realistic
// shapes and deterministic random weights, for memory, throughput and swap
// tests where no real model of that size can be downloaded.
//
// It owns the model shapes (presets), the SentencePiece-style vocabulary,
// the tensor layout llama.cpp's llama loader expects, the seeded weights
// (F16 matrices, F32 norm vectors) and the on-disk cache of generated files.
// Weights are streamed row chunk by row chunk, so a 0.8B-parameter model is
// written with a few megabytes of memory. It writes files through package
// gguf and must not touch llama.cpp or cgo; quantising a generated model is
// the engine's job. Random weights produce gibberish text, but exactly the
// memory traffic and compute of a real model of that shape.
package modelgen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/jetai/jetai/gguf"
)

// ChatML is a ChatML chat template. llama.cpp's built-in template detection
// recognises it by "<|im_start|>" and formats ChatML without a Jinja engine.
const ChatML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// Spec is the shape of a generated llama model.
type Spec struct {
	Name         string // general.name
	Vocab        int    // tokens (n_vocab)
	Embd         int    // embedding length (n_embd)
	Layers       int    // blocks (n_layer)
	FF           int    // feed-forward length (n_ff)
	Heads        int    // attention heads (n_head)
	HeadsKV      int    // key/value heads (n_head_kv), grouped-query attention when < Heads
	Context      int    // training context length (n_ctx_train)
	Seed         uint64 // weights are a pure function of Seed and the shape
	ChatTemplate string // tokenizer.chat_template; "" for none (see ChatML)
	// NaN makes every F16 weight NaN: a file with a valid header and
	// tensors that llama.cpp loads and then aborts on at the first
	// decode. For fault tests.
	NaN bool `json:",omitempty"`
}

// Tiny is a ~1.6M-parameter model (about 3 MB) for fast tests. Its row
// lengths are multiples of 256, so it can be quantised to k-quants too.
func Tiny() Spec {
	return Spec{Name: "jetai-tiny", Vocab: 768, Embd: 256, Layers: 2, FF: 512, Heads: 4, HeadsKV: 2, Context: 2048, Seed: 1}
}

// Small is a ~27M-parameter model (about 54 MB in F16).
func Small() Spec {
	return Spec{Name: "jetai-small", Vocab: 8000, Embd: 512, Layers: 6, FF: 1536, Heads: 8, HeadsKV: 4, Context: 4096, Seed: 1}
}

// Llama08B is a ~0.8B-parameter Llama-style model (about 1.6 GB in F16):
// the size class that fits a Jetson Orin Nano with room for other models.
// Every row length (2048, 5632) is a multiple of 256, as Q4_K requires.
func Llama08B() Spec {
	return Spec{Name: "jetai-llama-0.8b", Vocab: 32000, Embd: 2048, Layers: 15, FF: 5632, Heads: 32, HeadsKV: 8, Context: 4096, Seed: 1}
}

// Llama08BDraft is a ~46M-parameter model with Llama08B's vocabulary: a
// draft model for its speculative decoding (the vocabulary is a function
// of Vocab alone).
func Llama08BDraft() Spec {
	return Spec{Name: "jetai-llama-0.8b-draft", Vocab: 32000, Embd: 512, Layers: 4, FF: 1536, Heads: 8, HeadsKV: 4, Context: 4096, Seed: 2}
}

// Preset returns the preset named tiny, small, 0.8b or 0.8b-draft.
func Preset(name string) (Spec, error) {
	switch strings.ToLower(name) {
	case "tiny":
		return Tiny(), nil
	case "small":
		return Small(), nil
	case "0.8b", "llama08b", "llama-0.8b":
		return Llama08B(), nil
	case "0.8b-draft":
		return Llama08BDraft(), nil
	}
	return Spec{}, fmt.Errorf("modelgen: unknown preset %q (want tiny, small, 0.8b or 0.8b-draft)", name)
}

// Validate checks that the shape is one llama.cpp can load.
func (s Spec) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	pos("Vocab", s.Vocab)
	pos("Embd", s.Embd)
	pos("Layers", s.Layers)
	pos("FF", s.FF)
	pos("Heads", s.Heads)
	pos("HeadsKV", s.HeadsKV)
	pos("Context", s.Context)
	if s.Heads > 0 && s.Embd%s.Heads != 0 {
		errs = append(errs, fmt.Errorf("Embd %d is not a multiple of Heads %d", s.Embd, s.Heads))
	}
	if s.HeadsKV > 0 && s.Heads%s.HeadsKV != 0 {
		errs = append(errs, fmt.Errorf("Heads %d is not a multiple of HeadsKV %d", s.Heads, s.HeadsKV))
	}
	if s.Heads > 0 && (s.Embd/s.Heads)%2 != 0 {
		errs = append(errs, fmt.Errorf("head size %d must be even for RoPE", s.Embd/max(s.Heads, 1)))
	}
	if len(s.Name) > 256 {
		errs = append(errs, errors.New("Name is longer than 256 bytes"))
	}
	if s.Vocab > 0 {
		if _, _, _, err := Vocabulary(s); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("modelgen: invalid spec: %w", err)
	}
	return nil
}

// HeadDim returns the size of one attention head, Embd/Heads.
func (s Spec) HeadDim() int { return s.Embd / s.Heads }

// EmbdKV returns the width of the K and V projections, HeadDim×HeadsKV.
func (s Spec) EmbdKV() int { return s.HeadDim() * s.HeadsKV }

// Tensor is one tensor of the generated model.
type Tensor struct {
	Name  string
	Shape []uint64 // ne[0] first, as in GGUF
	Type  gguf.GGMLType
}

// Tensors lists the model's tensors in file order, with llama.cpp's names
// and shapes: 1-D norm weights in F32, every matrix in F16.
func (s Spec) Tensors() []Tensor {
	e, v, kv, ff := uint64(s.Embd), uint64(s.Vocab), uint64(s.EmbdKV()), uint64(s.FF)
	ts := []Tensor{
		{"token_embd.weight", []uint64{e, v}, gguf.GGMLTypeF16},
		{"output_norm.weight", []uint64{e}, gguf.GGMLTypeF32},
		{"output.weight", []uint64{e, v}, gguf.GGMLTypeF16},
	}
	for i := 0; i < s.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			Tensor{p + "attn_norm.weight", []uint64{e}, gguf.GGMLTypeF32},
			Tensor{p + "attn_q.weight", []uint64{e, e}, gguf.GGMLTypeF16},
			Tensor{p + "attn_k.weight", []uint64{e, kv}, gguf.GGMLTypeF16},
			Tensor{p + "attn_v.weight", []uint64{e, kv}, gguf.GGMLTypeF16},
			Tensor{p + "attn_output.weight", []uint64{e, e}, gguf.GGMLTypeF16},
			Tensor{p + "ffn_norm.weight", []uint64{e}, gguf.GGMLTypeF32},
			Tensor{p + "ffn_gate.weight", []uint64{e, ff}, gguf.GGMLTypeF16},
			Tensor{p + "ffn_down.weight", []uint64{ff, e}, gguf.GGMLTypeF16},
			Tensor{p + "ffn_up.weight", []uint64{e, ff}, gguf.GGMLTypeF16},
		)
	}
	return ts
}

// ParamCount returns the number of weights in the model.
func (s Spec) ParamCount() uint64 {
	var n uint64
	for _, t := range s.Tensors() {
		m := uint64(1)
		for _, d := range t.Shape {
			m *= d
		}
		n += m
	}
	return n
}

// metadata returns the GGUF key/value pairs in file order.
func (s Spec) metadata() ([][2]any, error) {
	tokens, scores, types, err := Vocabulary(s)
	if err != nil {
		return nil, err
	}
	kvs := [][2]any{
		{"general.architecture", "llama"},
		{"general.name", s.Name},
		{"general.file_type", uint32(1)}, // LLAMA_FTYPE_MOSTLY_F16
		{"general.alignment", uint32(gguf.DefaultAlignment)},
		{"llama.vocab_size", uint32(s.Vocab)},
		{"llama.context_length", uint32(s.Context)},
		{"llama.embedding_length", uint32(s.Embd)},
		{"llama.block_count", uint32(s.Layers)},
		{"llama.feed_forward_length", uint32(s.FF)},
		{"llama.attention.head_count", uint32(s.Heads)},
		{"llama.attention.head_count_kv", uint32(s.HeadsKV)},
		{"llama.rope.dimension_count", uint32(s.HeadDim())},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"llama.rope.freq_base", float32(10000)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.bos_token_id", uint32(BOSID)},
		{"tokenizer.ggml.eos_token_id", uint32(EOSID)},
		{"tokenizer.ggml.unknown_token_id", uint32(UnkID)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	}
	if s.ChatTemplate != "" {
		kvs = append(kvs, [2]any{"tokenizer.chat_template", s.ChatTemplate})
	}
	return kvs, nil
}

// WeightStdDev is the standard deviation of the generated matrix weights.
const WeightStdDev = 0.02

// chunkElems is how many weights one generation job produces (512 KiB of F16).
const chunkElems = 1 << 18

// Write writes the model described by spec to w as a GGUF file. Weights are
// generated in parallel chunks, each seeded from (Seed, tensor name, chunk
// index), so the output is identical whatever the number of CPUs.
func Write(w io.Writer, spec Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	kvs, err := spec.metadata()
	if err != nil {
		return err
	}
	gw := gguf.NewWriter(w)
	for _, kv := range kvs {
		if err := gw.AddKV(kv[0].(string), kv[1]); err != nil {
			return err
		}
	}
	tensors := spec.Tensors()
	for _, t := range tensors {
		if err := gw.AddTensor(t.Name, t.Shape, t.Type); err != nil {
			return err
		}
	}
	workers := max(runtime.GOMAXPROCS(0), 1)
	for _, t := range tensors {
		n := uint64(1)
		for _, d := range t.Shape {
			n *= d
		}
		var fill func(io.Writer) error
		if t.Type == gguf.GGMLTypeF32 {
			fill = func(dst io.Writer) error { return writeOnes(dst, n) }
		} else if spec.NaN {
			fill = func(dst io.Writer) error { return writeNaNF16(dst, n) }
		} else {
			seed := spec.Seed
			fill = func(dst io.Writer) error { return writeNormalF16(dst, seed, t.Name, n, workers) }
		}
		if err := gw.WriteTensor(t.Name, fill); err != nil {
			return err
		}
	}
	return gw.Close()
}

// writeOnes writes n float32 ones (RMS norm weights of an untrained model).
func writeOnes(dst io.Writer, n uint64) error {
	buf := make([]byte, 4*min(n, chunkElems))
	for i := 0; i < len(buf); i += 4 {
		binary.LittleEndian.PutUint32(buf[i:], 0x3f800000)
	}
	for n > 0 {
		k := min(n, uint64(len(buf)/4))
		if _, err := dst.Write(buf[:4*k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// writeNaNF16 writes n F16 quiet NaNs.
func writeNaNF16(dst io.Writer, n uint64) error {
	buf := make([]byte, 2*min(n, chunkElems))
	for i := 0; i < len(buf); i += 2 {
		binary.LittleEndian.PutUint16(buf[i:], 0x7e00)
	}
	for n > 0 {
		k := min(n, uint64(len(buf)/2))
		if _, err := dst.Write(buf[:2*k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 2*chunkElems); return &b }}

// genChunk fills buf with F16 samples of N(0, WeightStdDev²) from the PCG
// stream for (seed, name, chunk).
func genChunk(buf []byte, seed, nameHash uint64, chunk uint64) {
	rng := rand.New(rand.NewPCG(seed, nameHash^(chunk+1)*0x9e3779b97f4a7c15))
	for i := 0; i < len(buf); i += 2 {
		h := Float32ToFloat16(float32(rng.NormFloat64() * WeightStdDev))
		binary.LittleEndian.PutUint16(buf[i:], h)
	}
}

// writeNormalF16 writes n F16 weights, generating chunks on workers
// goroutines and writing them in order; at most workers+1 chunks are alive.
func writeNormalF16(dst io.Writer, seed uint64, name string, n uint64, workers int) error {
	hf := fnv.New64a()
	hf.Write([]byte(name))
	nameHash := hf.Sum64()
	nChunks := (n + chunkElems - 1) / chunkElems

	type result struct {
		buf *[]byte
		n   int
	}
	pending := make(chan chan result, workers)
	stop := make(chan struct{})
	go func() {
		defer close(pending)
		for c := uint64(0); c < nChunks; c++ {
			done := make(chan result, 1)
			select {
			case pending <- done:
			case <-stop:
				return
			}
			go func(c uint64) {
				elems := min(chunkElems, n-c*chunkElems)
				bp := chunkPool.Get().(*[]byte)
				buf := (*bp)[:2*elems]
				genChunk(buf, seed, nameHash, c)
				done <- result{bp, len(buf)}
			}(c)
		}
	}()
	var werr error
	for done := range pending {
		r := <-done
		if werr == nil {
			_, werr = dst.Write((*r.buf)[:r.n])
			if werr != nil {
				close(stop)
			}
		}
		chunkPool.Put(r.buf)
	}
	return werr
}

// Generate writes the model to path atomically: into a temporary file in
// the same directory, synced, then renamed over path.
func Generate(path string, spec Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	return writeFileAtomic(path, func(w io.Writer) error { return Write(w, spec) })
}

// writeFileAtomic writes path through write: into a temporary file in the
// same directory, synced, then renamed over path, so that no reader ever
// sees half a file.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("modelgen: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return fmt.Errorf("modelgen: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("modelgen: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("modelgen: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("modelgen: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("modelgen: %w", err)
	}
	return nil
}

// generatorVersion is part of every cache key: bump it whenever the bytes
// Write produces for a given Spec change, so stale cached files are not reused.
const generatorVersion = 1

// Key returns a short hex hash identifying the file Write produces for s.
func (s Spec) Key() string {
	b, _ := json.Marshal(struct {
		V int
		S Spec
	}{generatorVersion, s})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// FileName returns the cache file name for s: its name and Key.
func (s Spec) FileName() string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, s.Name)
	if name == "" {
		name = "model"
	}
	return name + "-" + s.Key() + ".gguf"
}

// Cached returns the path of the model for spec under dir, generating it
// only if no file of that name exists yet. Concurrent callers may both
// generate; the atomic rename leaves one complete file either way.
func Cached(dir string, spec Spec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("modelgen: %w", err)
	}
	path := filepath.Join(dir, spec.FileName())
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		return path, nil
	}
	if err := Generate(path, spec); err != nil {
		return "", err
	}
	return path, nil
}
