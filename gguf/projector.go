package gguf

import (
	"errors"
	"fmt"
)

// Projector is what a multimodal projector's ("mmproj") header says about
// it: enough to check it against a text model and estimate its memory
// before llama.cpp's clip loader reads it.
type Projector struct {
	// TextEmbd is the width of the embeddings the projector produces; it
	// must equal the text model's embedding length.
	TextEmbd int
	// ImageSize and PatchSize are the vision tower's input side and patch
	// side in pixels; an image becomes (ImageSize/PatchSize)² embeddings
	// for a flat LLaVA projector.
	ImageSize, PatchSize int
	// Type is clip.projector_type ("mlp" when absent).
	Type string
	// TensorBytes is the size of the weights.
	TensorBytes uint64
	// Hidden, FF and Heads are the vision tower's width, feed-forward
	// width and attention heads (0 when the header lacks them).
	Hidden, FF, Heads int
}

// ComputeBytes estimates clip's compute buffer for one image: the input
// pixels and their patches, and the largest activations of a block (its
// attention scores, hidden states, feed-forward and projector outputs) as
// f32, each counted twice because ggml's allocator keeps a tensor and the
// next alive together.
func (p Projector) ComputeBytes() uint64 {
	pos := uint64(p.ImageTokens() + 1)
	side := uint64(max(p.ImageSize, 0))
	n := 2*side*side*3 +
		2*uint64(max(p.Heads, 1))*pos*pos +
		pos*(8*uint64(max(p.Hidden, 0))+2*uint64(max(p.FF, 0))+2*uint64(max(p.TextEmbd, 0)))
	return 4 * n
}

// ImageTokens is how many embeddings one image becomes.
func (p Projector) ImageTokens() int {
	if p.PatchSize <= 0 {
		return 0
	}
	n := p.ImageSize / p.PatchSize
	return n * n
}

// ErrNotProjector is returned by ReadProjector for a GGUF that is not a
// CLIP vision projector.
var ErrNotProjector = errors.New("not a CLIP vision projector (general.architecture is not \"clip\" or clip.has_vision_encoder is not true)")

// ReadProjector reads a projector GGUF's header. It accepts the LLaVA-style
// projectors llama.cpp's clip loader runs with a vision encoder and a
// llava projector (types mlp and mlp_norm, ldp, ldpv2); the output width is
// read from the projector's last tensor as clip.cpp does.
func ReadProjector(path string) (Projector, error) {
	f, err := Open(path)
	if err != nil {
		return Projector{}, err
	}
	return projectorOf(f)
}

func projectorOf(f *File) (Projector, error) {
	var p Projector
	if arch, _ := f.String("general.architecture"); arch != "clip" {
		return p, ErrNotProjector
	}
	if v, ok := f.Bool("clip.has_vision_encoder"); !ok || !v {
		return p, ErrNotProjector
	}
	p.Type = "mlp"
	if t, ok := f.String("clip.projector_type"); ok {
		p.Type = t
	}
	img, ok1 := f.Uint("clip.vision.image_size")
	patch, ok2 := f.Uint("clip.vision.patch_size")
	if !ok1 || !ok2 || patch == 0 {
		return p, errors.New("projector header lacks clip.vision.image_size or clip.vision.patch_size")
	}
	p.ImageSize, p.PatchSize = int(img), int(patch)
	// clip_n_mmproj_embd: the bias of the projector's last layer.
	var out string
	switch p.Type {
	case "mlp":
		out = "mm.2.bias"
		if _, ok := f.Tensor("mm.3.weight"); ok {
			out = "mm.3.bias" // mlp_norm, as clip.cpp promotes it
		}
	case "mlp_norm":
		out = "mm.3.bias"
	case "ldp":
		out = "mm.model.mb_block.1.block.2.1.bias"
	case "ldpv2":
		out = "mm.model.peg.0.bias"
	default:
		return p, fmt.Errorf("projector type %q is not supported (want mlp, mlp_norm, ldp or ldpv2)", p.Type)
	}
	t, ok := f.Tensor(out)
	if !ok || len(t.Shape) == 0 {
		return p, fmt.Errorf("projector has no tensor %s, which gives its output width", out)
	}
	p.TextEmbd = int(t.Shape[0])
	p.TensorBytes = f.TensorBytes()
	if v, ok := f.Uint("clip.vision.embedding_length"); ok {
		p.Hidden = int(v)
	}
	if v, ok := f.Uint("clip.vision.feed_forward_length"); ok {
		p.FF = int(v)
	}
	if v, ok := f.Uint("clip.vision.attention.head_count"); ok {
		p.Heads = int(v)
	}
	return p, nil
}
