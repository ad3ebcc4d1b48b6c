package speculate

import (
	"slices"
	"testing"
)

func TestNGram(t *testing.T) {
	for _, tc := range []struct {
		name string
		hist []int
		k    int
		want []int
	}{
		{"longest suffix wins", []int{1, 2, 3, 9, 2, 3, 7, 1, 2, 3}, 2, []int{9, 2}},
		{"most recent match", []int{5, 6, 1, 5, 6, 2, 5, 6}, 1, []int{2}},
		{"loop continues periodically", []int{4, 1, 2, 1, 2}, 5, []int{1, 2, 1, 2, 1}},
		{"no match", []int{1, 2, 3, 4}, 3, nil},
		{"single tokens do not match", []int{1, 2, 3, 1}, 3, nil},
		{"k zero", []int{1, 2, 1, 2}, 0, nil},
		{"short history", []int{1}, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DefaultNGram.Propose(tc.hist, tc.k, nil)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestControllerAdapts(t *testing.T) {
	cheap := func(k int) float64 { return 1 + 0.1*float64(k) }
	dear := func(k int) float64 { return 1 + 1.2*float64(k) }
	convex := func(k int) float64 { return 1 + 0.05*float64(k*k) }
	// run drives a controller for steps with a proposer whose drafts are
	// accepted up to a run of accept tokens, at a price of cost(k).
	run := func(c *Controller, steps, accept int, cost func(int) float64) (drafted, accepted, lastK int) {
		for range steps {
			k := c.Len()
			if k == 0 {
				continue
			}
			a := min(k, accept)
			c.Observe(k, a, cost(k))
			drafted += k
			accepted += a
			lastK = k
		}
		return drafted, accepted, lastK
	}
	for _, tc := range []struct {
		name      string
		accept    int // tokens of each draft accepted
		cost      func(int) float64
		minDraft  int // drafted over 400 steps, at least
		maxDraft  int // and at most
		minLastK  int // the last draft length, at least
		maxLastK  int
		wantDraft bool
	}{
		{"always right, cheap: the longest drafts", 100, cheap, 400 * 6, 400 * 8, 8, 8, true},
		{"always right, each token dearer than a step: probes only", 100, dear, 1, 200, 1, 8, false},
		{"always right, a price that grows faster than the yield: the middle", 100, convex, 400 * 2, 400 * 6, 3, 5, true},
		{"always wrong: probes only", 0, cheap, 1, 80, 1, 1, false},
		{"two of each draft, cheap", 2, cheap, 400, 400 * 8, 3, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Controller
			c.Reset(8)
			d, _, last := run(&c, 400, tc.accept, tc.cost)
			if d < tc.minDraft || d > tc.maxDraft {
				t.Fatalf("drafted %d over 400 steps, want %d..%d (rate %.2f, best %d)", d, tc.minDraft, tc.maxDraft, c.Rate(), c.Best())
			}
			if last < tc.minLastK || last > tc.maxLastK {
				t.Fatalf("last draft length %d, want %d..%d", last, tc.minLastK, tc.maxLastK)
			}
			if got := c.Best() > 0; got != tc.wantDraft {
				t.Fatalf("drafting on: %v, want %v (rate %.2f)", got, tc.wantDraft, c.Rate())
			}
		})
	}
	// A probe that is accepted brings drafting back.
	var c Controller
	c.Reset(8)
	run(&c, 300, 0, cheap)
	for c.Len() == 0 {
	}
	for range 3 {
		c.Observe(1, 1, 1.1)
	}
	if c.Best() < 1 {
		t.Fatalf("accepted probes did not resume drafting (rate %.2f)", c.Rate())
	}
	c.SetMax(0)
	if c.Len() != 0 {
		t.Fatal("max 0 drafts")
	}
	// Prices are shared and outlive a sequence; a new sequence starts
	// from the runner's acceptance.
	var costs Costs
	a := Controller{Costs: &costs}
	a.Start(8)
	run(&a, 50, 100, dear)
	b := Controller{Costs: &costs}
	b.Start(8)
	if k := b.Len(); k > 2 {
		t.Fatalf("a new sequence drafts %d where verification was measured dear", k)
	}
	if b.Rate() < 0.9 {
		t.Fatalf("after drafts accepted whole, a new sequence starts at acceptance %.2f", b.Rate())
	}
	var fresh Controller
	fresh.Start(8)
	if fresh.Rate() != priorAccepted/priorTrials {
		t.Fatalf("a runner's first sequence starts at acceptance %.2f", fresh.Rate())
	}
	f := Controller{Fixed: true}
	f.Reset(4)
	f.Observe(4, 0, 9)
	if f.Len() != 4 {
		t.Fatal("fixed controller adapted")
	}
}

// Expected counts the fed token's successor and each draft up to the
// first rejection.
func TestExpected(t *testing.T) {
	for _, tc := range []struct {
		k    int
		a    float64
		want float64
	}{
		{0, 0.5, 1}, {3, 0, 1}, {3, 1, 4}, {2, 0.5, 1.75},
	} {
		if got := Expected(tc.k, tc.a); got != tc.want {
			t.Errorf("Expected(%d, %g) = %g, want %g", tc.k, tc.a, got, tc.want)
		}
	}
}
