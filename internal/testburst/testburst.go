// Package testburst drives the burst tests of the config watcher and of
// the daemon's reload: writes on a fixed schedule, and how many times a
// debounce may rightly split them given the gaps that really happened.
// It is imported by tests only.
package testburst

import (
	"testing"
	"time"
)

// Margin is the slack either way, for timer and event delivery, when a gap
// between two writes is compared with the debounce.
const Margin = 100 * time.Millisecond

// Write calls write(i) for i from 0 to n-1, the i-th at i*every after the
// first, on a fixed schedule so that one late write does not push the
// others back. On a loaded machine the writer itself can stall longer than
// the debounce, which rightly splits the burst: Write returns how many
// such splits there were at least (gaps over debounce+Margin) and at most
// (gaps over debounce-Margin), so a test expects 1+min to 1+max changes.
func Write(t testing.TB, n int, every, debounce time.Duration, write func(i int)) (minSplits, maxSplits int) {
	t.Helper()
	start := time.Now()
	at := make([]time.Time, 0, n)
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		write(i)
		at = append(at, time.Now())
	}
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		if gap > debounce+Margin {
			minSplits++
		}
		if gap > debounce-Margin {
			maxSplits++
		}
	}
	t.Logf("%d writes in %v; gaps over the debounce %v: %d to %d", n, at[len(at)-1].Sub(start), debounce, minSplits, maxSplits)
	return minSplits, maxSplits
}
