package pool

import (
	"context"
	"sync"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// specOptions are a model's speculative settings as runner options.
func specOptions(s config.Speculative) (ngram bool, draft string, maxDraft int) {
	if !s.On() {
		// A draft model is still loaded: max_draft may be raised by a
		// reload without a restart.
		return false, s.Draft, 0
	}
	return s.NGram, s.Draft, s.MaxDraft
}

// speculativeSetter is a runner whose speculation changes while it runs.
type speculativeSetter interface {
	SetSpeculative(ctx context.Context, ngram bool, maxDraft int) error
}

// speculativeLiveLocked sends a reload's new speculative.ngram and
// max_draft to m's running runner (a new draft restarts it instead). A
// runner that cannot take them keeps the old ones until its next start.
func (p *Pool) speculativeLiveLocked(m *model, want config.Model) {
	old := m.cfg.Speculative
	if m.proc == nil || (old.NGram == want.Speculative.NGram && old.MaxDraft == want.Speculative.MaxDraft) {
		return
	}
	s, ok := m.proc.(speculativeSetter)
	if !ok {
		return
	}
	ngram, _, maxDraft := specOptions(want.Speculative)
	name := m.cfg.Name
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		if err := s.SetSpeculative(ctx, ngram, maxDraft); err != nil {
			p.log.Warn("speculative settings not applied to the running runner; they apply at its next start", "model", name, "err", err)
		}
	}()
}

// SpeculativeFigures count speculative decoding: tokens drafted for
// verification, those the target's sampler accepted, and their ratio.
type SpeculativeFigures struct {
	DraftedTokens  uint64  `json:"drafted_tokens"`
	AcceptedTokens uint64  `json:"accepted_tokens"`
	AcceptanceRate float64 `json:"acceptance_rate"` // accepted / drafted; 0 before any draft
}

func (f *SpeculativeFigures) rate() {
	f.AcceptanceRate = 0
	if f.DraftedTokens > 0 {
		f.AcceptanceRate = float64(f.AcceptedTokens) / float64(f.DraftedTokens)
	}
}

// specCounts are a model's speculative tokens; guarded by Pool.mu.
type specCounts struct{ drafted, accepted uint64 }

func (c *specCounts) add(t runner.Timings) {
	c.drafted += uint64(max(t.DraftedTokens, 0))
	c.accepted += uint64(max(t.AcceptedTokens, 0))
}

// fill sets f's figures from c and adds them to the overall figures o.
func (c *specCounts) fill(f, o *PerfFigures) {
	f.DraftedTokens, f.AcceptedTokens = c.drafted, c.accepted
	f.rate()
	o.DraftedTokens += c.drafted
	o.AcceptedTokens += c.accepted
	o.rate()
}

// SpeculativeStatus is a model's speculative decoding in /models.
type SpeculativeStatus struct {
	NGram      bool   `json:"ngram"`
	Draft      string `json:"draft,omitempty"`
	DraftModel string `json:"draft_model,omitempty"`
	MaxDraft   int    `json:"max_draft"`
	SpeculativeFigures
}

func (m *model) speculativeStatus() *SpeculativeStatus {
	s := m.cfg.Speculative
	if !s.On() && m.counts.spec.drafted == 0 {
		return nil
	}
	st := &SpeculativeStatus{NGram: s.NGram, Draft: s.Draft, DraftModel: s.DraftModel, MaxDraft: s.MaxDraft,
		SpeculativeFigures: SpeculativeFigures{DraftedTokens: m.counts.spec.drafted, AcceptedTokens: m.counts.spec.accepted}}
	st.rate()
	return st
}

// draftParams memoizes draft models' headers by file identity: estimates
// are made often (every status), headers change only with the file.
var draftParams sync.Map // fileKey -> gguf.Params

// fileKey identifies a version of a file (a draft model, a projector) whose
// header is memoized: a change of size or modification time reads it again.
type fileKey struct {
	path string
	size config.Size
	mod  time.Time
}

// draftEstimate is the memory of m's draft model in its runner: its
// weights, an f16 KV cache of the model's shape (a sequence per slot, as
// long as the model's) and compute buffers for the draft's batch. 0
// without a draft, or when its header cannot be read (the runner reports
// that at load).
func draftEstimate(m config.Model) uint64 {
	s := m.Speculative
	if s.Draft == "" {
		return 0
	}
	k := fileKey{s.Draft, s.DraftFileSize, s.DraftFileModTime}
	v, ok := draftParams.Load(k)
	if !ok {
		f, err := gguf.Open(s.Draft)
		if err != nil {
			return uint64(max(s.DraftFileSize, 0))
		}
		p, err := f.Params()
		if err != nil {
			return max(f.TensorBytes(), uint64(max(s.DraftFileSize, 0)))
		}
		draftParams.Store(k, p)
		v = p
	}
	p := v.(gguf.Params)
	dm := m
	dm.KVCache, dm.FlashAttention, dm.Speculative = gguf.KVCacheF16, false, config.Speculative{}
	e := EstimateParams(p, dm, 0)
	// The draft's batch is 256 tokens, not the model's 512.
	return bytesize.AddSat(bytesize.AddSat(e.Weights, e.KV), e.Compute/2)
}
