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
	var c Controller
	c.Reset(8)
	if c.Len() != 4 {
		t.Fatal("starts at half of max")
	}
	c.Observe(4, 3, 0)
	if c.Len() != 4 {
		t.Fatalf("after 3 of 8: %d, want 4", c.Len())
	}
	c.Observe(4, 4, 0)
	if c.Len() != 6 {
		t.Fatalf("after all accepted: %d, want 6", c.Len())
	}
	// Always wrong: drafting stops, then probes with one token ever more
	// rarely.
	c.Reset(8)
	drafted := 0
	for range 2000 {
		if k := c.Len(); k > 0 {
			drafted += k
			c.Observe(k, 0, 0)
		}
	}
	if drafted > 40 {
		t.Fatalf("always-wrong drafts over 2000 steps: %d", drafted)
	}
	// A probe that is accepted brings drafting back.
	for c.Len() == 0 {
	}
	c.Observe(1, 1, 0)
	if c.Len() < 1 {
		t.Fatal("accepted probe did not resume drafting")
	}
	c.SetMax(0)
	if c.Len() != 0 {
		t.Fatal("max 0 drafts")
	}
	// Accepted drafts that cost more than they yield: drafting stops.
	c.Reset(8)
	for range 3 {
		if k := c.Len(); k > 0 {
			c.Observe(k, k/2, 20)
		}
	}
	if c.Len() != 0 {
		t.Fatalf("drafting on although each step costs 20 steps for at most 5 tokens (gain %.2f)", c.Gain())
	}
	// A new sequence in the same place keeps the pause the cost caused.
	c.Start(8)
	if c.Len() != 0 {
		t.Fatal("a new sequence forgot that verification does not pay")
	}
	// Cheap verification keeps it on at the same acceptance.
	c.Reset(8)
	for range 20 {
		if k := c.Len(); k > 0 {
			c.Observe(k, k/2, 1.2)
		}
	}
	if c.Len() == 0 {
		t.Fatalf("drafting off although it pays (gain %.2f)", c.Gain())
	}
	f := Controller{Fixed: true}
	f.Reset(4)
	f.Observe(4, 0, 0)
	if f.Len() != 4 {
		t.Fatal("fixed controller adapted")
	}
}
