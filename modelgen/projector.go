package modelgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"runtime"

	"github.com/jetai/jetai/gguf"
)

// ProjectorSpec is the shape of a generated LLaVA-1.5-style multimodal
// projector ("mmproj"): a CLIP vision tower (patch convolution, class and
// position embeddings, pre-norm transformer blocks) followed by a two-layer
// MLP (mm.0, GELU, mm.2) into the text model's embedding space. llama.cpp's
// clip loader (examples/llava/clip.cpp) reads it as a projector of type
// "mlp". Random weights give noise embeddings of the right shape and scale.
type ProjectorSpec struct {
	Name      string // general.name
	TextEmbd  int    // the text model's n_embd: mm.2's output width
	ImageSize int    // square input side in pixels (clip.vision.image_size)
	PatchSize int    // patch side in pixels; (ImageSize/PatchSize)² image tokens
	Hidden    int    // vision tower width (clip.vision.embedding_length)
	Layers    int    // vision blocks; clip runs Layers-1 of them (LLaVA takes the penultimate layer)
	Heads     int    // vision attention heads
	FF        int    // vision feed-forward width
	ProjDim   int    // mm.0's output width (clip.vision.projection_dim)
	Seed      uint64 // weights are a pure function of Seed and the shape
}

// TinyProjector is a ~0.2M-parameter projector for a text model of width
// textEmbd: 224-pixel images in 28-pixel patches, so an image is 64 tokens.
func TinyProjector(textEmbd int) ProjectorSpec {
	return ProjectorSpec{Name: "jetai-tiny-mmproj", TextEmbd: textEmbd, ImageSize: 224, PatchSize: 28, Hidden: 64, Layers: 3, Heads: 4, FF: 256, ProjDim: 128, Seed: 1}
}

// ImageTokens is how many embeddings one image becomes.
func (p ProjectorSpec) ImageTokens() int {
	n := p.ImageSize / max(p.PatchSize, 1)
	return n * n
}

// Validate checks that the shape is one llama.cpp's clip code can run.
func (p ProjectorSpec) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	pos("TextEmbd", p.TextEmbd)
	pos("ImageSize", p.ImageSize)
	pos("PatchSize", p.PatchSize)
	pos("Hidden", p.Hidden)
	pos("Heads", p.Heads)
	pos("FF", p.FF)
	pos("ProjDim", p.ProjDim)
	if p.Layers < 2 {
		// clip runs n_layer-1 blocks for a LLaVA projector.
		errs = append(errs, fmt.Errorf("Layers must be at least 2, got %d", p.Layers))
	}
	if p.PatchSize > 0 && p.ImageSize%p.PatchSize != 0 {
		errs = append(errs, fmt.Errorf("ImageSize %d is not a multiple of PatchSize %d", p.ImageSize, p.PatchSize))
	}
	if p.Heads > 0 && p.Hidden%p.Heads != 0 {
		errs = append(errs, fmt.Errorf("Hidden %d is not a multiple of Heads %d", p.Hidden, p.Heads))
	}
	if len(p.Name) > 256 {
		errs = append(errs, errors.New("Name is longer than 256 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("modelgen: invalid projector spec: %w", err)
	}
	return nil
}

// fill kinds of projector tensors.
const (
	fillNormal = iota // N(0, WeightStdDev²)
	fillOnes          // layer-norm weights
	fillZeros         // biases, layer-norm biases
)

type projTensor struct {
	Tensor
	fill int
}

// tensors lists the projector's tensors with clip.cpp's names and shapes.
func (p ProjectorSpec) tensors() []projTensor {
	h, ff, pd, te := uint64(p.Hidden), uint64(p.FF), uint64(p.ProjDim), uint64(p.TextEmbd)
	ps := uint64(p.PatchSize)
	positions := uint64(p.ImageTokens()) + 1 // + the class embedding
	f16, f32 := gguf.GGMLTypeF16, gguf.GGMLTypeF32
	ts := []projTensor{
		{Tensor{"v.class_embd", []uint64{h}, f32}, fillNormal},
		{Tensor{"v.patch_embd.weight", []uint64{ps, ps, 3, h}, f16}, fillNormal},
		{Tensor{"v.position_embd.weight", []uint64{h, positions}, f16}, fillNormal},
		{Tensor{"v.pre_ln.weight", []uint64{h}, f32}, fillOnes},
		{Tensor{"v.pre_ln.bias", []uint64{h}, f32}, fillZeros},
	}
	for i := 0; i < p.Layers; i++ {
		b := fmt.Sprintf("v.blk.%d.", i)
		ts = append(ts,
			projTensor{Tensor{b + "attn_k.weight", []uint64{h, h}, f16}, fillNormal},
			projTensor{Tensor{b + "attn_k.bias", []uint64{h}, f32}, fillZeros},
			projTensor{Tensor{b + "attn_q.weight", []uint64{h, h}, f16}, fillNormal},
			projTensor{Tensor{b + "attn_q.bias", []uint64{h}, f32}, fillZeros},
			projTensor{Tensor{b + "attn_v.weight", []uint64{h, h}, f16}, fillNormal},
			projTensor{Tensor{b + "attn_v.bias", []uint64{h}, f32}, fillZeros},
			projTensor{Tensor{b + "attn_out.weight", []uint64{h, h}, f16}, fillNormal},
			projTensor{Tensor{b + "attn_out.bias", []uint64{h}, f32}, fillZeros},
			projTensor{Tensor{b + "ln1.weight", []uint64{h}, f32}, fillOnes},
			projTensor{Tensor{b + "ln1.bias", []uint64{h}, f32}, fillZeros},
			// clip.cpp's "ffn_down" is the first feed-forward matrix
			// (hidden → FF) and "ffn_up" the second, whatever the names say.
			projTensor{Tensor{b + "ffn_down.weight", []uint64{h, ff}, f16}, fillNormal},
			projTensor{Tensor{b + "ffn_down.bias", []uint64{ff}, f32}, fillZeros},
			projTensor{Tensor{b + "ffn_up.weight", []uint64{ff, h}, f16}, fillNormal},
			projTensor{Tensor{b + "ffn_up.bias", []uint64{h}, f32}, fillZeros},
			projTensor{Tensor{b + "ln2.weight", []uint64{h}, f32}, fillOnes},
			projTensor{Tensor{b + "ln2.bias", []uint64{h}, f32}, fillZeros},
		)
	}
	ts = append(ts,
		projTensor{Tensor{"mm.0.weight", []uint64{h, pd}, f16}, fillNormal},
		projTensor{Tensor{"mm.0.bias", []uint64{pd}, f32}, fillZeros},
		projTensor{Tensor{"mm.2.weight", []uint64{pd, te}, f16}, fillNormal},
		projTensor{Tensor{"mm.2.bias", []uint64{te}, f32}, fillZeros},
	)
	return ts
}

// Tensors lists the projector's tensors in file order.
func (p ProjectorSpec) Tensors() []Tensor {
	var ts []Tensor
	for _, t := range p.tensors() {
		ts = append(ts, t.Tensor)
	}
	return ts
}

// metadata returns the GGUF key/value pairs clip.cpp reads, in file order.
func (p ProjectorSpec) metadata() [][2]any {
	return [][2]any{
		{"general.architecture", "clip"},
		{"general.name", p.Name},
		{"general.description", "jetai-modelgen LLaVA-style projector with random weights"},
		{"general.file_type", uint32(1)}, // F16
		{"general.alignment", uint32(gguf.DefaultAlignment)},
		{"clip.has_text_encoder", false},
		{"clip.has_vision_encoder", true},
		{"clip.has_llava_projector", true},
		{"clip.projector_type", "mlp"},
		{"clip.use_gelu", true},
		{"clip.vision.image_size", uint32(p.ImageSize)},
		{"clip.vision.patch_size", uint32(p.PatchSize)},
		{"clip.vision.embedding_length", uint32(p.Hidden)},
		{"clip.vision.feed_forward_length", uint32(p.FF)},
		{"clip.vision.projection_dim", uint32(p.ProjDim)},
		{"clip.vision.attention.head_count", uint32(p.Heads)},
		{"clip.vision.attention.layer_norm_epsilon", float32(1e-5)},
		{"clip.vision.block_count", uint32(p.Layers)},
		{"clip.vision.image_mean", []float32{0.48145466, 0.4578275, 0.40821073}},
		{"clip.vision.image_std", []float32{0.26862954, 0.26130258, 0.27577711}},
		{"clip.vision.mm_patch_merge_type", "flat"},
	}
}

// WriteProjector writes the projector described by spec to w as a GGUF file.
func WriteProjector(w io.Writer, spec ProjectorSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	gw := gguf.NewWriter(w)
	for _, kv := range spec.metadata() {
		if err := gw.AddKV(kv[0].(string), kv[1]); err != nil {
			return err
		}
	}
	tensors := spec.tensors()
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
		switch {
		case t.fill == fillOnes:
			fill = func(dst io.Writer) error { return writeOnes(dst, n) }
		case t.fill == fillZeros:
			fill = func(dst io.Writer) error { return writeZeros(dst, 4*n) }
		case t.Type == gguf.GGMLTypeF32:
			fill = func(dst io.Writer) error { return writeNormalF32(dst, spec.Seed, t.Name, n) }
		default:
			fill = func(dst io.Writer) error { return writeNormalF16(dst, spec.Seed, t.Name, n, workers) }
		}
		if err := gw.WriteTensor(t.Name, fill); err != nil {
			return err
		}
	}
	return gw.Close()
}

// writeZeros writes n zero bytes.
func writeZeros(dst io.Writer, n uint64) error {
	buf := make([]byte, min(n, 1<<16))
	for n > 0 {
		k := min(n, uint64(len(buf)))
		if _, err := dst.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// writeNormalF32 writes n float32 samples of N(0, WeightStdDev²) from the
// PCG stream for (seed, name); for the few small F32 weight vectors.
func writeNormalF32(dst io.Writer, seed uint64, name string, n uint64) error {
	hf := fnv.New64a()
	hf.Write([]byte(name))
	rng := rand.New(rand.NewPCG(seed, hf.Sum64()))
	buf := make([]byte, 4*n)
	for i := uint64(0); i < n; i++ {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(rng.NormFloat64()*WeightStdDev)))
	}
	_, err := dst.Write(buf)
	return err
}

// GenerateProjector writes the projector to path atomically (a temporary
// file in the same directory, synced, renamed over path).
func GenerateProjector(path string, spec ProjectorSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	return writeFileAtomic(path, func(w io.Writer) error { return WriteProjector(w, spec) })
}
