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

// MaxK is the longest draft the adaptation prices.
const MaxK = 64

// Costs is what a runner learns about the price of verification: the
// decode time of a step with k drafted tokens over that of a step without,
// for each k, and the acceptance its sequences saw. Prices are the
// model's and the machine's, not the text's, so one Costs serves every
// sequence of a runner and outlives requests; the acceptance is where a
// new sequence starts. A k not measured yet is priced between the
// measured ones around it, or above the largest measured below it at the
// average price of a token so far (costPriorSlope before any), so that
// drafts grow a token or two at a time while they pay and are measured as
// they go.
type Costs struct {
	mean [MaxK + 1]float64
	seen [MaxK + 1]int
	// acceptance evidence of every sequence, decaying by runnerDecay
	accepted, trials float64
}

// costPriorSlope is the price of a drafted token before any is measured:
// a guess between a bandwidth-bound device (a few percent a token) and a
// compute-bound CPU (a whole step a token).
const costPriorSlope = 0.25

// runnerDecay is how much of the runner-wide acceptance evidence each
// verification keeps.
const runnerDecay = 0.98

// costWeight is the weight of the latest step in a measured price, once a
// few steps have been seen (the first ones are averaged plainly).
const costWeight = 0.2

// Observe records a step with k drafted tokens whose decode took cost
// times a step without.
func (c *Costs) Observe(k int, cost float64) {
	if k <= 0 || k > MaxK || cost <= 0 {
		return
	}
	c.seen[k]++
	w := max(costWeight, 1/float64(c.seen[k]))
	c.mean[k] = (1-w)*c.mean[k] + w*cost
}

// At is the price of a step with k drafted tokens.
func (c *Costs) At(k int) float64 {
	if k <= 0 {
		return 1
	}
	k = min(k, MaxK)
	if c.seen[k] > 0 {
		return c.mean[k]
	}
	lo, loK := 1.0, 0
	for j := k - 1; j >= 1; j-- {
		if c.seen[j] > 0 {
			lo, loK = c.mean[j], j
			break
		}
	}
	for j := k + 1; j <= MaxK; j++ {
		if c.seen[j] > 0 {
			return lo + (max(c.mean[j], lo)-lo)*float64(k-loK)/float64(j-loK)
		}
	}
	slope := costPriorSlope
	if loK > 0 {
		slope = max(0, lo-1) / float64(loK)
	}
	return lo + slope*float64(k-loK)
}

// observeAcceptance adds a verification to the runner-wide acceptance.
func (c *Costs) observeAcceptance(accepted, trials int) {
	c.accepted = runnerDecay*c.accepted + float64(accepted)
	c.trials = runnerDecay*c.trials + float64(trials)
}

// prior is the acceptance a new sequence starts from: the runner's, or
// priorAccepted/priorTrials before any verification.
func (c *Costs) prior() float64 {
	if c.trials < 1 {
		return priorAccepted / priorTrials
	}
	return c.accepted / c.trials
}

// Adaptation bounds.
const (
	// firstBackoff and maxBackoff bound the steps a sequence waits before
	// it probes with one drafted token again; each probe that does not
	// bring drafting back doubles the wait, so text that never repeats
	// costs one verified token per maxBackoff steps.
	firstBackoff = 8
	maxBackoff   = 256
	// decay is how much of the acceptance evidence is kept at each
	// verification.
	decay = 0.8
	// priorAccepted of priorTrials is the acceptance a runner's first
	// sequence starts with: drafting is tried before the text is known.
	// Later sequences start from the runner's acceptance, weighed as
	// priorTrials trials.
	priorAccepted, priorTrials = 1.2, 2.0
	// margin is how much more a draft length must yield per unit of time
	// than no drafting to be used: timings are noisy, and a draft that
	// only breaks even costs the other slots in its batch.
	margin = 1.05
)

// Controller adapts one sequence's draft length. It keeps the sequence's
// acceptance (the share of drafted tokens the sampler drew, counted as
// trials up to the first rejection in each verification, decaying) and
// takes the draft length k that maximises the expected tokens a step
// yields, (1 - a^(k+1)) / (1 - a) at acceptance a, over the step's price
// (Costs). Acceptance comes in runs (a copied passage is accepted whole
// until the text leaves it), so it is kept apart for steps after a draft
// accepted whole and steps after a rejection. Where no k pays, drafting pauses and a one-token probe comes
// after the pause, which doubles each time it does not bring drafting
// back. The zero value is ready after Reset.
type Controller struct {
	// Fixed drafts Max tokens every step, whatever the acceptance
	// (benchmarks of the mechanism's bounds).
	Fixed bool
	// Costs is shared by the sequences of a runner; nil uses the
	// controller's own.
	Costs *Costs

	own              Costs
	max              int
	accepted, trials [2]float64 // by run: after a rejection, after a draft accepted whole
	run              int
	off              int // steps left without drafting
	backoff          int
}

func (c *Controller) costs() *Costs {
	if c.Costs != nil {
		return c.Costs
	}
	return &c.own
}

// Reset starts a new sequence with at most max drafted tokens per step,
// forgetting what was learnt about prices too.
func (c *Controller) Reset(max int) {
	c.own = Costs{}
	c.Start(max)
}

// Start starts a new sequence with at most max drafted tokens per step:
// its acceptance starts from the runner's; the prices (Costs) are kept.
func (c *Controller) Start(max int) {
	c.max = max
	a := c.costs().prior() * priorTrials
	c.accepted = [2]float64{a, a}
	c.trials = [2]float64{priorTrials, priorTrials}
	c.run = 0
	c.off = 0
	c.backoff = firstBackoff
	// Where drafts have not been paying in this runner, a sequence starts
	// with the pause rather than with a probe.
	if c.max > 0 && c.Best() == 0 {
		c.off = firstBackoff
	}
}

// SetMax changes the most tokens drafted per step, keeping what was
// learnt.
func (c *Controller) SetMax(max int) { c.max = max }

// Rate is the sequence's acceptance where it stands (after a rejection,
// or after a draft accepted whole): of the drafted tokens verified up to
// each first rejection, the share accepted.
func (c *Controller) Rate() float64 {
	if c.trials[c.run] <= 0 {
		return 0
	}
	return c.accepted[c.run] / c.trials[c.run]
}

// Expected is the expected tokens a step yields with k drafted tokens at
// acceptance a: the fed token's successor and each draft up to the first
// rejection.
func Expected(k int, a float64) float64 {
	if a >= 1 {
		return float64(k + 1)
	}
	e, p := 1.0, 1.0
	for range k {
		p *= a
		e += p
	}
	return e
}

// Best is the draft length up to max that yields most per unit of time at
// the sequence's acceptance, 0 when none beats not drafting by margin.
func (c *Controller) Best() int {
	a := c.Rate()
	costs := c.costs()
	best, bestV := 0, margin
	for k := 1; k <= min(c.max, MaxK); k++ {
		if v := Expected(k, a) / costs.At(k); v > bestV {
			best, bestV = k, v
		}
	}
	return best
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
	if k := c.Best(); k > 0 {
		c.backoff = firstBackoff
		return k
	}
	c.off = c.backoff
	c.backoff = min(2*c.backoff, maxBackoff)
	return 1
}

// Observe records one verification: drafted tokens proposed, accepted of
// them kept, and cost, the step's decode time over that of a step without
// drafts (0: unknown, or recorded in Costs by the caller).
func (c *Controller) Observe(drafted, accepted int, cost float64) {
	if c.Fixed || drafted <= 0 {
		return
	}
	trials := accepted
	if accepted < drafted {
		trials++
	}
	c.accepted[c.run] = decay*c.accepted[c.run] + float64(accepted)
	c.trials[c.run] = decay*c.trials[c.run] + float64(trials)
	c.run = 0
	if accepted == drafted {
		c.run = 1
	}
	c.costs().observeAcceptance(accepted, trials)
	c.costs().Observe(drafted, cost)
}
