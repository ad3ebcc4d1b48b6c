package engine

/*
#include <stdlib.h>
struct clip_ctx;
struct clip_ctx * jetai_clip_load(const char * path, char * err, size_t err_len, int * abort, int * abortable); // vision.cpp
void jetai_clip_offload(int on);                 // vision.cpp
void jetai_clip_set_abort(int * flag, int on);   // vision.cpp
void clip_free(struct clip_ctx * ctx);
int  clip_n_mmproj_embd(const struct clip_ctx * ctx);
int  clip_n_patches(const struct clip_ctx * ctx);
struct llava_image_embed { float * embed; int n_image_pos; };
struct llava_image_embed * llava_image_embed_make_with_bytes(struct clip_ctx * ctx, int n_threads, const unsigned char * bytes, int n);
void llava_image_embed_free(struct llava_image_embed * embed);
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ollama/ollama/llama"

	"github.com/jetai/jetai/gguf"
)

// ProjectorOptions say how to load a projector.
type ProjectorOptions struct {
	// Offload lets llama.cpp put the projector on a GPU backend when one
	// is registered; false keeps it on the CPU.
	Offload bool
}

// Projector is a loaded multimodal projector (a CLIP vision tower and the
// projection into a text model's embedding space): it turns an image into
// embeddings that a Context decodes like tokens.
type Projector struct {
	c      *C.struct_clip_ctx
	path   string
	embd   int
	tokens int

	// abort is the C flag the CPU backend's abort callback reads;
	// abortable says the backend has one (a GPU backend does not).
	abort     *C.int
	abortable bool
	mu        sync.Mutex // one encode at a time: clip's buffers and abort flag are shared
}

// loadMu serialises projector loads, since the offload switch read by the
// wrapped ggml_backend_init_best is process-wide.
var loadMu sync.Mutex

// ErrImage is wrapped by every error about the image itself (not an image
// the decoder reads, or one the projector cannot preprocess).
var ErrImage = errors.New("image could not be decoded")

// LoadProjector loads the projector at path for model m. Its header is
// checked first (package gguf), so a file clip.cpp would refuse, or one
// whose embedding width differs from the model's, fails with an error
// naming both files before llama.cpp reads it.
func LoadProjector(ctx context.Context, path string, m *Model, opts ProjectorOptions) (*Projector, error) {
	Init()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load projector %s: %w", path, err)
	}
	info, err := gguf.ReadProjector(path)
	if err != nil {
		return nil, fmt.Errorf("load projector %s: %w", path, err)
	}
	if info.TextEmbd != m.info.Embedding {
		return nil, fmt.Errorf("projector %s makes embeddings of %d values, model %s has an embedding length of %d", path, info.TextEmbd, m.info.Path, m.info.Embedding)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	errBuf := (*C.char)(C.calloc(512, 1))
	defer C.free(unsafe.Pointer(errBuf))

	loadMu.Lock()
	on := C.int(0)
	if opts.Offload {
		on = 1
	}
	C.jetai_clip_offload(on)
	engineLog.takeRecent()
	abort := (*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))
	var abortable C.int
	c := C.jetai_clip_load(cpath, errBuf, 512, abort, &abortable)
	C.jetai_clip_offload(0)
	recent := engineLog.takeRecent()
	loadMu.Unlock()
	if c == nil {
		C.free(unsafe.Pointer(abort))
		msg := C.GoString(errBuf)
		if msg == "" {
			msg = "llama.cpp could not load the projector"
		}
		return nil, &LogError{Op: "load projector " + path, Err: errors.New(msg), Lines: recent}
	}
	p := &Projector{c: c, path: path, embd: int(C.clip_n_mmproj_embd(c)), tokens: int(C.clip_n_patches(c)), abort: abort, abortable: abortable != 0}
	if p.embd != m.info.Embedding {
		p.Close()
		return nil, fmt.Errorf("projector %s makes embeddings of %d values, model %s has an embedding length of %d", path, p.embd, m.info.Path, m.info.Embedding)
	}
	return p, nil
}

// Close frees the projector.
func (p *Projector) Close() {
	if p.c != nil {
		C.clip_free(p.c)
		p.c = nil
		C.free(unsafe.Pointer(p.abort))
		p.abort = nil
	}
}

// Abortable reports whether a cancelled Encode stops mid-encode (a
// projector on the CPU backend) rather than running to its end.
func (p *Projector) Abortable() bool { return p.abortable }

// Path is the projector's file.
func (p *Projector) Path() string { return p.path }

// Embd is the width of one image embedding (the text model's n_embd).
func (p *Projector) Embd() int { return p.embd }

// ImageTokens is how many embeddings an image becomes.
func (p *Projector) ImageTokens() int { return p.tokens }

// ImageEmbedding is an encoded image: Tokens rows of Embd values.
type ImageEmbedding struct {
	Tokens int
	Embd   int
	Data   []float32 // Tokens×Embd, row-major
}

// Row returns the i-th embedding.
func (e *ImageEmbedding) Row(i int) []float32 { return e.Data[i*e.Embd : (i+1)*e.Embd] }

// Encode decodes an image (JPEG, PNG, BMP, GIF… whatever llama.cpp's
// stb_image reads), resizes it to the projector's input and runs the
// vision tower and projector with threads CPU threads (0 = all). Callers
// check the image's size before: stb_image allocates whatever the header
// says. When ctx ends during the encode, a projector on the CPU stops
// between two graph nodes and Encode returns ctx's error; on a GPU the
// encode runs to its end first (see Abortable). Encodes of one projector
// run one at a time.
func (p *Projector) Encode(ctx context.Context, image []byte, threads int) (*ImageEmbedding, error) {
	if len(image) == 0 {
		return nil, fmt.Errorf("encode image: %w: empty", ErrImage)
	}
	if len(image) > math.MaxInt32 {
		return nil, fmt.Errorf("encode image: %w: %d bytes is too large", ErrImage, len(image))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("encode image: %w", err)
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	// The bytes are copied to C memory: cgo forbids keeping Go memory, and
	// llava's loader takes a non-const view it may hold while decoding.
	cbuf := C.CBytes(image)
	defer C.free(cbuf)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("encode image: %w", err)
	}
	C.jetai_clip_set_abort(p.abort, 0)
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.jetai_clip_set_abort(p.abort, 1)
		close(aborted)
	})
	engineLog.takeRecent()
	e := C.llava_image_embed_make_with_bytes(p.c, C.int(threads), (*C.uchar)(cbuf), C.int(len(image)))
	recent := engineLog.takeRecent()
	if !stop() {
		// The abort ran (or is running): wait for it, so the flag it sets
		// is not left for the next encode, and drop what was computed,
		// which may stop part-way.
		<-aborted
		if e != nil {
			C.llava_image_embed_free(e)
		}
		return nil, fmt.Errorf("encode image: %w", ctx.Err())
	}
	if e == nil {
		return nil, &LogError{Op: "encode image", Err: ErrImage, Lines: recent}
	}
	defer C.llava_image_embed_free(e)
	n := int(e.n_image_pos)
	out := &ImageEmbedding{Tokens: n, Embd: p.embd, Data: make([]float32, n*p.embd)}
	copy(out.Data, unsafe.Slice((*float32)(unsafe.Pointer(e.embed)), n*p.embd))
	for _, v := range out.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("encode image: projector %s produced non-finite values", p.path)
		}
	}
	return out, nil
}

// EmbedBatch is a set of embeddings (not token ids) for one Decode.
// llama.cpp takes either tokens or embeddings in one batch, never both.
type EmbedBatch struct{ batch }

// NewEmbedBatch allocates a batch of up to n embeddings of embd values.
func NewEmbedBatch(n, embd int) (*EmbedBatch, error) {
	b, err := llama.NewBatch(n, 1, embd)
	if err != nil {
		return nil, err
	}
	return &EmbedBatch{batch{b: b, cap: n}}, nil
}

// Add appends an embedding at position pos of sequence seq and returns its
// index in the batch; logits asks for its output.
func (b *EmbedBatch) Add(embd []float32, pos, seq int, logits bool) int {
	i := b.b.NumTokens()
	b.b.Add(0, embd, pos, logits, seq)
	return i
}

// DecodeEmbeddings runs the model over a batch of embeddings.
func (c *Context) DecodeEmbeddings(b *EmbedBatch) error { return c.decode(&b.batch) }
