package serve

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
)

// Images in a prompt. An image becomes ImageTokens embeddings that take
// one KV cell each. In a slot's token list (its cache and a job's prompt)
// each of them is an image row: a negative number that holds the image's
// hash (40 bits of its bytes' sha256) and the row's index. Token ids are
// never negative, so the two cannot be confused, and prefix reuse
// compares image rows as it compares tokens: the same image at the same
// place matches, whatever request it came in, and a different image does
// not. A row also says which embedding it is, so a prompt whose cached
// prefix ends inside an image decodes the rest of that image.

const (
	rowBits  = 16 // rows per image: at most 65,535
	hashBits = 40
)

// imageRow is the token-list entry of row row of the image with hash h.
func imageRow(h uint64, row int) int {
	return -(1 + int(h<<rowBits|uint64(row)))
}

// isImageRow reports whether a token-list entry is an image row.
func isImageRow(t int) bool { return t < 0 }

// splitRow returns an image row's hash and index.
func splitRow(t int) (uint64, int) {
	v := uint64(-t - 1)
	return v >> rowBits, int(v & (1<<rowBits - 1))
}

// imageHash is the key of an image's bytes.
func imageHash(b []byte) uint64 {
	s := sha256.Sum256(b)
	return binary.BigEndian.Uint64(s[:8]) >> (64 - hashBits)
}

// vision encodes a request's images with the model's projector. Encoding
// runs in the request's handler, before the request has a slot or a place
// in the queue, beside the decode loop (clip has its own backend and
// buffers), one image at a time; recent embeddings are kept, so the same
// image sent again is not encoded again. A request cancelled while it
// waits for another's encode leaves at once; one cancelled during its own
// encode stops it (engine.Projector.Encode) and holds nothing.
type vision struct {
	proj    *engine.Projector
	threads func() int

	turn chan struct{} // one encode at a time, waited for under the request's context
	// encoding is the threads of the encode running now (0: none); the
	// decode loop leaves them their cores (scheduler.shareThreads).
	encoding atomic.Int32

	mu     sync.Mutex // guards recent and order
	recent map[uint64]*engine.ImageEmbedding
	order  []uint64
}

func newVision(proj *engine.Projector, threads func() int) *vision {
	return &vision{proj: proj, threads: threads, turn: make(chan struct{}, 1)}
}

// recentImages is how many encoded images the runner keeps.
const recentImages = 8

func (v *vision) cached(h uint64) *engine.ImageEmbedding {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.recent[h]
}

func (v *vision) encode(ctx context.Context, b []byte) (uint64, *engine.ImageEmbedding, error) {
	h := imageHash(b)
	if e := v.cached(h); e != nil {
		return h, e, nil
	}
	select {
	case v.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	defer func() { <-v.turn }()
	// The image may have been encoded by the request this one waited for.
	if e := v.cached(h); e != nil {
		return h, e, nil
	}
	threads := v.threads()
	v.encoding.Store(int32(threads))
	e, err := v.proj.Encode(ctx, b, threads)
	v.encoding.Store(0)
	if err != nil {
		return 0, nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.recent == nil {
		v.recent = make(map[uint64]*engine.ImageEmbedding)
	}
	if len(v.order) >= recentImages {
		delete(v.recent, v.order[0])
		v.order = v.order[1:]
	}
	v.recent[h] = e
	v.order = append(v.order, h)
	return h, e, nil
}

// messageImages counts the images the request's messages say they carry.
func messageImages(req *runner.Request) int {
	n := 0
	for _, m := range req.Messages {
		n += max(m.Images, 0)
	}
	return n
}

// imageInput is what a request's images became: their embeddings by hash,
// the prompt rows they take, and the time their encoding took.
type imageInput struct {
	embeds   map[uint64]*engine.ImageEmbedding
	tokens   int
	encodeMS float64
}

// withImages puts the request's images into the prompt tokens. Images
// that belong to chat messages (Message.Images, with starts from
// chatTokens) go at the start of their message's content, as a LLaVA
// prompt has them in the user's turn; the others (a plain prompt's) go
// after the BOS token when there is one, else first, so the text that
// follows reads them. It answers the client's mistakes itself and reports
// whether the prompt can go on.
func (h *handler) withImages(ctx context.Context, w http.ResponseWriter, req *runner.Request, toks []int, starts []int) ([]int, imageInput, bool) {
	var in imageInput
	if len(req.Images) == 0 {
		return toks, in, true
	}
	if h.vision == nil {
		writeError(w, http.StatusBadRequest, runner.CodeNoVision,
			"this model takes no images: it has no projector (set mmproj in its model block)")
		return nil, in, false
	}
	limit := h.sched.slotCtx - 1
	perImage := h.vision.proj.ImageTokens()
	if n := len(toks) + len(req.Images)*perImage; n > limit {
		writeError(w, http.StatusBadRequest, runner.CodeContextOverflow,
			fmt.Sprintf("the prompt is %d tokens with its %d image(s) of %d tokens each, but this model takes at most %d per request; send fewer images or raise the model's context", n, len(req.Images), perImage, limit))
		return nil, in, false
	}
	embeds := make(map[uint64]*engine.ImageEmbedding, len(req.Images))
	var rows []int
	t0 := time.Now()
	imageRows := make([][]int, len(req.Images)) // each image's rows
	for i, b := range req.Images {
		hash, e, err := h.vision.encode(ctx, b)
		switch {
		case ctx.Err() != nil:
			return nil, in, false
		case errors.Is(err, engine.ErrImage):
			writeError(w, http.StatusBadRequest, runner.CodeInvalidImage, fmt.Sprintf("image %d: %v", i+1, err))
			return nil, in, false
		case err != nil:
			writeError(w, http.StatusInternalServerError, runner.CodeInvalid, fmt.Sprintf("image %d: %v", i+1, err))
			return nil, in, false
		case e.Tokens >= 1<<rowBits:
			writeError(w, http.StatusBadRequest, runner.CodeInvalidImage, fmt.Sprintf("image %d: %d embeddings is more than the runner takes", i+1, e.Tokens))
			return nil, in, false
		}
		embeds[hash] = e
		for r := range e.Tokens {
			rows = append(rows, imageRow(hash, r))
			imageRows[i] = append(imageRows[i], imageRow(hash, r))
		}
	}
	in.encodeMS = runner.Ms(time.Since(t0))
	if len(toks)+len(rows) > limit {
		writeError(w, http.StatusBadRequest, runner.CodeContextOverflow,
			fmt.Sprintf("the prompt is %d tokens with its images, but this model takes at most %d per request", len(toks)+len(rows), limit))
		return nil, in, false
	}
	at := 0
	if len(toks) > 0 && h.model.Info().AddBOS && toks[0] == h.model.Info().BOS {
		at = 1
	}
	// Where each image goes: its message's content start, else at.
	where := make([]int, len(req.Images))
	for i := range where {
		where[i] = at
	}
	if len(starts) == len(req.Messages) && messageImages(req) == len(req.Images) {
		k := 0
		for m, msg := range req.Messages {
			for range max(msg.Images, 0) {
				if starts[m] >= 0 {
					where[k] = starts[m]
				}
				k++
			}
		}
	}
	out := make([]int, 0, len(toks)+len(rows))
	next := 0
	for i, rs := range imageRows {
		w := max(where[i], next) // a template that reorders messages keeps the images in order
		out = append(out, toks[next:w]...)
		next = w
		out = append(out, rs...)
	}
	out = append(out, toks[next:]...)
	if isImageRow(out[len(out)-1]) {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "the prompt has images but no text after them")
		return nil, in, false
	}
	in.embeds, in.tokens = embeds, len(rows)
	return out, in, true
}

// stepImages decodes the image rows at the head of the slots' pending
// prompts, in a batch of their own (llama.cpp takes tokens or embeddings
// in one batch, not both), at most one prompt chunk's worth while other
// slots generate. It runs before the token step, which then finds those
// slots' pending prompts starting with text or with more rows.
func (s *scheduler) stepImages() {
	if s.vision == nil {
		return
	}
	var any bool
	for _, sl := range s.slots {
		if sl.job != nil && len(sl.pending) > 0 && isImageRow(sl.pending[0]) {
			any = true
			break
		}
	}
	if !any {
		return
	}
	if s.ebatch == nil {
		b, err := engine.NewEmbedBatch(s.batch.Cap(), s.model.Info().Embedding)
		if err != nil {
			for _, sl := range s.slots {
				if sl.job != nil && len(sl.pending) > 0 && isImageRow(sl.pending[0]) {
					s.finish(sl, runner.FinishError, "image batch: "+err.Error())
				}
			}
			return
		}
		s.ebatch = b
	}
	b := s.ebatch
	b.Clear()
	budget := b.Cap()
	generating := 0
	for _, sl := range s.slots {
		if sl.job != nil && sl.next >= 0 {
			generating++
		}
	}
	if generating > 0 {
		budget = min(budget, s.imageChunk)
	}
	var fed []*slot
	for _, sl := range s.slots {
		if sl.job == nil || budget <= 0 {
			continue
		}
		take := 0
		for take < len(sl.pending) && take < budget && isImageRow(sl.pending[take]) {
			take++
		}
		if take == 0 {
			continue
		}
		pos := len(sl.cache)
		for i := range take {
			hash, row := splitRow(sl.pending[i])
			e := sl.job.images[hash]
			if e == nil || row >= e.Tokens {
				// Cannot happen: a job's rows come from its own images.
				s.finish(sl, runner.FinishError, "image row without its embedding")
				take = -1
				break
			}
			b.Add(e.Row(row), pos+i, sl.seq, false)
		}
		if take < 0 {
			continue
		}
		sl.cache = append(sl.cache, sl.pending[:take]...)
		sl.pending = sl.pending[take:]
		budget -= take
		fed = append(fed, sl)
	}
	if b.Len() == 0 {
		return
	}
	t0 := time.Now()
	err := s.lctx.DecodeEmbeddings(b)
	if err == nil && generating > 0 {
		s.sizeImageChunk(time.Since(t0), b.Len(), generating)
	}
	if err != nil {
		for _, sl := range fed {
			s.lctx.RemoveFrom(sl.seq, 0)
			sl.cache = sl.cache[:0]
			if sl.job != nil {
				s.finish(sl, runner.FinishError, "decode image: "+err.Error())
			}
		}
	}
}

// Image rows decode in a batch of their own before each token step, so a
// step with them costs their decode on top of the text step. While other
// slots generate, the chunk is sized to cost about one text step (their
// measured decode time, baseStep): each embeddings decode moves the chunk
// by the ratio of that target to what the decode took, between
// minImageChunk and promptChunkWhileGenerating rows. Alone, a slot's rows
// go a batch at a time.
const (
	minImageChunk   = 4
	firstImageChunk = 16 // before a text step has been measured
)

func (s *scheduler) sizeImageChunk(took time.Duration, rows, generating int) {
	s.initBase()
	target := s.baseStep[min(generating, len(s.baseStep)-1)]
	if target <= 0 || took <= 0 || rows < s.imageChunk {
		return
	}
	next := int(float64(rows) * float64(target) / float64(took))
	// Halfway to the estimate: one slow step (a preempted thread) must
	// not collapse the chunk.
	s.imageChunk = min(max((s.imageChunk+next)/2, minImageChunk), promptChunkWhileGenerating)
}

// shareThreads runs the decode loop with the threads an image encode
// leaves free: the encode runs beside the loop with its own threads, and
// on a box whose cores all run the loop's, a thread more than cores makes
// ggml's spinning barriers wait for whichever thread was preempted.
func (s *scheduler) shareThreads() {
	n := int(s.threads.Load())
	if s.vision != nil {
		if e := int(s.vision.encoding.Load()); e > 0 {
			n = max(1, n-e)
		}
	}
	if n != s.lctx.Threads() {
		s.lctx.SetThreads(n)
	}
}
