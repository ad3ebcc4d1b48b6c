package pool

import (
	"context"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
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
