package serve

import (
	"context"
	"fmt"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
)

// drafter is a draft model: a smaller model with the target's vocabulary,
// loaded in the runner with its own context (one sequence per slot), that
// proposes its greedy continuation of each slot's tokens. Its KV cache
// follows each slot's: what the target accepted stays, the rest is
// removed at the next proposal.
type drafter struct {
	model *engine.Model
	lctx  *engine.Context
	batch *engine.Batch
	vocab int     // the target's vocabulary size: no proposal past it
	cache [][]int // per slot: tokens in the draft's KV cache
}

// draftBatch bounds the draft's decodes (a prompt catches up in chunks).
const draftBatch = 256

// draftVocabSlack is how many more tokens one of the two vocabularies may
// hold (padding), as the config's check allows.
const draftVocabSlack = 128

// loadDrafter loads the draft model of opts with a context shaped like
// the target's: as many sequences of the same length.
func loadDrafter(ctx context.Context, opts runner.Options, target *engine.Model) (*drafter, error) {
	m, err := engine.Load(ctx, opts.Draft, engine.LoadOptions{GPULayers: opts.GPULayers, NoMmap: opts.NoMmap})
	if err != nil {
		return nil, fmt.Errorf("draft model: %w", err)
	}
	tv, dv := target.Info().VocabSize, m.Info().VocabSize
	if d := tv - dv; d > draftVocabSlack || d < -draftVocabSlack {
		m.Close()
		return nil, fmt.Errorf("draft model %s: its vocabulary has %d tokens, the model's %d: it cannot draft for it", opts.Draft, dv, tv)
	}
	lctx, err := m.NewContext(engine.ContextOptions{
		SlotContext: opts.SlotContext, Slots: opts.Slots, BatchSize: draftBatch, Threads: opts.Threads,
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("draft model: %w", err)
	}
	b, err := engine.NewBatch(draftBatch)
	if err != nil {
		lctx.Close()
		m.Close()
		return nil, err
	}
	return &drafter{model: m, lctx: lctx, batch: b, vocab: tv, cache: make([][]int, opts.Slots)}, nil
}

func (d *drafter) close() {
	d.batch.Free()
	d.lctx.Close()
	d.model.Close()
}

// propose appends up to k tokens that the draft model predicts after hist
// in sequence seq.
func (d *drafter) propose(seq int, hist []int, k int, dst []int) []int {
	if k <= 0 || len(hist) == 0 {
		return dst
	}
	c := d.cache[seq]
	// The last token is decoded again when the cache holds it already:
	// its logits are needed.
	p := min(commonPrefix(c, hist), len(hist)-1)
	if p < len(c) {
		if !d.lctx.RemoveFrom(seq, p) {
			d.lctx.RemoveFrom(seq, 0)
			p = 0
		}
		c = c[:p]
	}
	b := d.batch
	for p < len(hist) {
		b.Clear()
		n := min(len(hist)-p, b.Cap())
		for i := range n {
			b.Add(hist[p+i], p+i, seq, p+i == len(hist)-1)
		}
		if err := d.lctx.Decode(b); err != nil {
			d.reset(seq)
			return dst
		}
		c = append(c, hist[p:p+n]...)
		p += n
	}
	idx := b.Len() - 1
	for j := range k {
		t := argmax(d.lctx.Logits(idx))
		if t < 0 || t >= d.vocab {
			break
		}
		dst = append(dst, t)
		if j == k-1 || d.model.IsEOG(t) || len(c)+1 >= d.lctx.Options().SlotContext {
			break
		}
		b.Clear()
		b.Add(t, len(c), seq, true)
		if err := d.lctx.Decode(b); err != nil {
			d.cache[seq] = c
			return dst
		}
		c = append(c, t)
		idx = 0
	}
	d.cache[seq] = c
	return dst
}

// reset forgets sequence seq's cache (after a failed decode, whose KV
// state is unknown).
func (d *drafter) reset(seq int) {
	d.lctx.RemoveFrom(seq, 0)
	d.cache[seq] = d.cache[seq][:0]
}

func argmax(l []float32) int {
	best := -1
	var bv float32
	for i, v := range l {
		if best < 0 || v > bv {
			best, bv = i, v
		}
	}
	return best
}
