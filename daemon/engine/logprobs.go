package engine

import (
	"math"
	"sort"
)

// TokenProb is a token and its log probability.
type TokenProb struct {
	Token   int
	Logprob float32
}

// Logprobs returns the log probability of token under the model's
// distribution at batch index idx (log-softmax over the whole vocabulary
// of the raw logits, before temperature, top-k/p, penalties or grammar:
// the model's own view, as OpenAI reports it) and the top most likely
// tokens, most likely first. It must be called before the next decode.
func (c *Context) Logprobs(idx, token, top int) (float32, []TokenProb) {
	l := c.Logits(idx)
	if len(l) == 0 || token < 0 || token >= len(l) {
		return float32(math.Inf(-1)), nil
	}
	maxL := float32(math.Inf(-1))
	for _, v := range l {
		if v > maxL {
			maxL = v
		}
	}
	var sum float64
	for _, v := range l {
		if !math.IsInf(float64(v), -1) {
			sum += math.Exp(float64(v - maxL))
		}
	}
	lse := float64(maxL) + math.Log(sum)
	lp := func(v float32) float32 { return float32(float64(v) - lse) }
	if top <= 0 {
		return lp(l[token]), nil
	}
	// A small heap of the top ids: vocabularies reach 150k tokens.
	best := make([]TokenProb, 0, top+1)
	for id, v := range l {
		if len(best) == top && v <= best[len(best)-1].Logprob {
			continue
		}
		i := sort.Search(len(best), func(i int) bool { return best[i].Logprob < v })
		best = append(best, TokenProb{})
		copy(best[i+1:], best[i:])
		best[i] = TokenProb{Token: id, Logprob: v}
		if len(best) > top {
			best = best[:top]
		}
	}
	for i := range best {
		best[i].Logprob = lp(best[i].Logprob)
	}
	return lp(l[token]), best
}
