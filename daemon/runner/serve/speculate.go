package serve

import (
	"time"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner/speculate"
)

// Speculative decoding in the decode loop. A generating slot's next token
// goes into the batch followed by up to max_draft proposed tokens, all
// with logits. After the decode, sample walks the positions in order with
// the job's own sampler, exactly as it would without drafts: the token
// drawn at position i is kept and, when it equals draft i, the draft's KV
// entry is already the right one and the draw at position i+1 follows at
// once. The first mismatch ends the run: the drawn token becomes the next
// one fed, and the KV of the rejected drafts is removed. Rejected drafts
// never reach the sampler, so its RNG, repetition history and grammar see
// the same sequence as without speculation, and so do stop strings and
// limits: the output is the same, token for token.

// specOptions are the runner's speculation settings.
type specOptions struct {
	ngram    bool
	maxDraft int
	// proposer replaces the n-gram proposer (benchmarks and tests).
	proposer speculate.Proposer
	// fixed turns adaptation off.
	fixed bool
}

// specSlot is one slot's speculation state.
type specSlot struct {
	ctl   speculate.Controller
	on    bool  // this job speculates
	draft []int // tokens drafted in this step's batch, after the fed token
	idx   []int // their batch indices
}

func (s *scheduler) proposer() speculate.Proposer {
	if s.spec.proposer != nil {
		return s.spec.proposer
	}
	if s.spec.ngram {
		return speculate.DefaultNGram
	}
	return nil
}

// canPropose says whether any proposer is on.
func (s *scheduler) canPropose() bool { return s.proposer() != nil || s.drafter != nil }

// startSpec sets a new job's speculation up.
func (s *scheduler) startSpec(sl *slot, j *job) {
	sl.spec.on = !j.noSpec && s.canPropose() && s.spec.maxDraft > 0
	// The price of verification is the model's and the machine's: every
	// slot prices its drafts with the runner's Costs.
	sl.spec.ctl.Costs = &s.costs
	sl.spec.ctl.Fixed = s.spec.fixed
	sl.spec.ctl.Start(s.spec.maxDraft)
	sl.spec.draft, sl.spec.idx = sl.spec.draft[:0], sl.spec.idx[:0]
}

// setSpec changes n-gram drafting and max_draft for the running jobs and
// the next ones. A runner with a proposer keeps the engine's matrix
// products batch-invariant for the process, whatever max_draft says: a
// token's logits do not depend on the drafts or the other slots' tokens
// decoded beside it, so output with drafts is the output without them
// (max_draft 0 or "speculative": false), token for token.
func (s *scheduler) setSpec(ngram bool, n int) {
	s.spec.ngram, s.spec.maxDraft = ngram, n
	if s.canPropose() {
		engine.SetBatchInvariant(true)
	}
	s.ngram.Store(ngram)
	s.maxDraft.Store(int32(n))
	for _, sl := range s.slots {
		if sl.job != nil {
			sl.spec.ctl.SetMax(n)
			sl.spec.on = sl.spec.on && n > 0 && s.canPropose()
		}
	}
}

// speculating says whether drafting pays now. Under a batch that is more
// than half full the box is compute-bound: verifying drafts would slow
// every slot. With its threads cut below the count it started with (the
// thermal throttle), the runner has less compute than it was sized for,
// and speculation steps back too.
func (s *scheduler) speculating(generating int) bool {
	if generating > max(1, len(s.slots)/2) {
		return false
	}
	return int(s.threads.Load()) >= s.startThreads
}

// addDrafts puts each generating slot's drafts into the batch, after the
// slots' next tokens and before prompt chunks, so a slot that does not
// speculate waits for no one: the drafts of a step are bounded by
// max_draft per slot and by what the batch holds.
func (s *scheduler) addDrafts(generating int) {
	for _, sl := range s.slots {
		sl.spec.draft, sl.spec.idx = sl.spec.draft[:0], sl.spec.idx[:0]
	}
	p := s.proposer()
	if !s.canPropose() || !s.speculating(generating) || s.measureBase(generating) {
		return
	}
	b := s.batch
	for _, sl := range s.slots {
		if sl.job == nil || !sl.spec.on || !sl.fed {
			continue
		}
		k := sl.spec.ctl.Len()
		// No draft past what can be kept: the token limit and the slot's
		// context.
		if m := sl.job.maxTokens; m > 0 {
			k = min(k, m-sl.generated-1)
		}
		k = min(k, s.slotCtx-len(sl.cache)-1, b.Cap()-b.Len())
		if k <= 0 {
			continue
		}
		// N-grams first: they cost nothing; the draft model where
		// there is no match.
		if p != nil {
			sl.spec.draft = p.Propose(sl.cache, k, sl.spec.draft)
		}
		if len(sl.spec.draft) == 0 && s.drafter != nil {
			sl.spec.draft = s.drafter.propose(sl.seq, sl.cache, k, sl.spec.draft)
		}
		pos := len(sl.cache)
		for i, t := range sl.spec.draft {
			sl.spec.idx = append(sl.spec.idx, b.Add(t, pos+i, sl.seq, true))
		}
	}
}

// stepTook records a decode's duration. A step of only the slots' next
// tokens sets the baseline for that many; a step of next tokens and drafts
// is priced over that baseline into the runner's Costs, by the number of
// drafts, where every slot's controller weighs it against its acceptance.
// Steps with prompt chunks tell nothing about drafts and are left out.
func (s *scheduler) stepTook(d time.Duration, generating, tokens int) {
	drafts := 0
	for _, sl := range s.slots {
		drafts += len(sl.spec.draft)
	}
	if generating == 0 || tokens != generating+drafts {
		return
	}
	s.initBase()
	base := &s.baseStep[generating]
	switch {
	case drafts == 0 && *base == 0:
		*base = d
		s.baseAge[generating] = 0
	case drafts == 0:
		*base = (*base*7 + d) / 8
		s.baseAge[generating] = 0
	case *base > 0:
		s.baseAge[generating]++
		s.costs.Observe(drafts, float64(d)/float64(*base))
	}
}

// baseRefresh is how many steps with drafts may pass before one step of
// the same number of slots goes without, to measure the baseline again:
// text that repeats itself would otherwise draft at every step, and the
// cost of its drafts would never be known.
const baseRefresh = 64

func (s *scheduler) initBase() {
	if s.baseStep == nil {
		s.baseStep = make([]time.Duration, len(s.slots)+1)
		s.baseAge = make([]int, len(s.slots)+1)
	}
}

// measureBase says whether this step goes without drafts to measure the
// baseline of generating slots.
func (s *scheduler) measureBase(generating int) bool {
	s.initBase()
	return s.baseStep[generating] == 0 || s.baseAge[generating] >= baseRefresh
}

// verified records a slot's verification: accepted of its drafts were
// kept. The KV of the rest is removed, so the cache holds exactly the
// slot's tokens again.
func (s *scheduler) verified(sl *slot, accepted int) {
	d := len(sl.spec.draft)
	if d == 0 {
		return
	}
	if accepted < d {
		s.lctx.RemoveFrom(sl.seq, len(sl.cache))
	}
	sl.spec.ctl.Observe(d, accepted, 0)
	s.drafted.Add(int64(d))
	s.accepted.Add(int64(accepted))
	sl.spec.draft, sl.spec.idx = sl.spec.draft[:0], sl.spec.idx[:0]
}
