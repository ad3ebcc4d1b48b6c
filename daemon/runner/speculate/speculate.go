// Package speculate holds the parts of speculative decoding that need no
// model: the n-gram (prompt lookup) proposer and the controller that adapts
// each sequence's draft length to its acceptance. The verifier, which puts
// the drafts into the runner's continuous batch and accepts them with the
// target's own sampler, lives in the runner's scheduler (daemon/runner/serve);
// this package must not import the engine.
package speculate

// Proposer guesses the tokens that follow hist (a sequence's prompt and
// output so far). It appends at most k tokens to dst and returns it; none
// when it has no guess.
type Proposer interface {
	Propose(hist []int, k int, dst []int) []int
}

// NGram proposes the continuation of the most recent earlier occurrence of
// the longest suffix of the history, from MaxN tokens down to MinN. Text
// that repeats its input (extraction, summaries, code edits, a robot's
// command grammar) makes such matches; it costs no memory and microseconds
// per step.
type NGram struct {
	MinN, MaxN int
}

// DefaultNGram is the proposer the runner uses: suffixes of 4 down to 2
// tokens. A single token matches almost everywhere in a long text, and its
// continuations are mostly wrong.
var DefaultNGram = NGram{MinN: 2, MaxN: 4}

// Propose implements Proposer. The continuation of a match that overlaps
// the end of the history continues periodically (a repeated phrase keeps
// repeating), so a loop is proposed k tokens at a time.
func (g NGram) Propose(hist []int, k int, dst []int) []int {
	if k <= 0 {
		return dst
	}
	for n := min(g.MaxN, len(hist)-1); n >= max(g.MinN, 1); n-- {
		suffix := hist[len(hist)-n:]
		for i := len(hist) - n - 1; i >= 0; i-- {
			if !equal(hist[i:i+n], suffix) {
				continue
			}
			start := len(dst)
			for j := range k {
				p := i + n + j
				if p < len(hist) {
					dst = append(dst, hist[p])
				} else {
					dst = append(dst, dst[start+p-len(hist)])
				}
			}
			return dst
		}
	}
	return dst
}

func equal(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Adaptation bounds.
const (
	// MinRate is the acceptance rate (accepted per drafted token, moving
	// average) under which a sequence stops drafting for a while: below
	// it, verifying the drafts costs more than the accepted tokens save.
	MinRate = 0.25
	// firstBackoff and maxBackoff bound the steps a sequence waits before
	// it probes with one drafted token again; each failed probe doubles
	// the wait, so text that never repeats costs one verified token per
	// maxBackoff steps.
	firstBackoff = 8
	maxBackoff   = 256
	// weight of the latest verification in the moving average.
	weight = 0.3
)

// Controller adapts one sequence's draft length: it grows while drafts
// are accepted whole, shrinks to just past the accepted prefix when one is
// rejected, and falls to zero (with rare one-token probes) when the
// acceptance rate says speculation does not pay. The zero value is ready
// after Reset.
type Controller struct {
	// Fixed drafts Max tokens every step, whatever the acceptance
	// (benchmarks of the mechanism's bounds).
	Fixed bool

	max     int
	k       int
	rate    float64
	gain    float64 // moving average of tokens per step over the step's cost
	off     int     // steps left without drafting
	backoff int
}

// Reset starts a new sequence with at most max drafted tokens per step.
func (c *Controller) Reset(max int) {
	c.max = max
	c.k = (max + 1) / 2
	c.rate = 0.5
	c.gain = initialGain
	c.off = 0
	c.backoff = firstBackoff
}

// Start starts a new sequence in the same place (a runner's slot): the
// draft length and acceptance start afresh, but what was learnt about the
// cost of verification (the gain, and a pause it caused) carries over,
// since it is the model's and the machine's, not the text's.
func (c *Controller) Start(max int) {
	if c.gain == 0 {
		c.Reset(max)
		return
	}
	c.max, c.k, c.rate = max, (max+1)/2, 0.5
	if c.gain < 1 {
		c.k = 1
	}
}

// SetMax changes the most tokens drafted per step, keeping what was
// learnt.
func (c *Controller) SetMax(max int) {
	c.max = max
	c.k = min(c.k, max)
	if c.k == 0 && max > 0 {
		c.k = 1
	}
}

// Len is how many tokens to draft this step. Each call is one step.
func (c *Controller) Len() int {
	if c.Fixed || c.max <= 0 {
		return max(c.max, 0)
	}
	if c.off > 0 {
		c.off--
		return 0
	}
	return c.k
}

// Rate is the moving average of accepted per drafted token.
func (c *Controller) Rate() float64 { return c.rate }

// Gain is the moving average of tokens per step over the step's cost
// relative to a step without drafts: above 1, speculation pays.
func (c *Controller) Gain() float64 { return c.gain }

// initialGain is the gain a sequence starts with: speculation is tried
// before its cost is known.
const initialGain = 1.5

// Observe records one verification: drafted tokens proposed, accepted of
// them kept, and cost, the step's decode time over that of a step without
// drafts (0: unknown). A step yields accepted+1 tokens; when that does not
// pay for its cost on average, drafting stops for a while, whatever the
// acceptance rate: on a model whose batches of several tokens cost much
// more than one (a tiny model on a CPU), even most drafts accepted lose.
func (c *Controller) Observe(drafted, accepted int, cost float64) {
	if c.Fixed || drafted <= 0 {
		return
	}
	c.rate = (1-weight)*c.rate + weight*float64(accepted)/float64(drafted)
	if cost > 0 {
		c.gain = (1-weight)*c.gain + weight*float64(accepted+1)/cost
	}
	if accepted == drafted {
		c.k = min(c.max, c.k+2)
	} else {
		c.k = max(1, accepted+1)
	}
	if c.rate < MinRate || c.gain < 1 {
		c.off = c.backoff
		c.backoff = min(2*c.backoff, maxBackoff)
		c.k = 1
	} else if accepted > 0 {
		c.backoff = firstBackoff
	}
}
