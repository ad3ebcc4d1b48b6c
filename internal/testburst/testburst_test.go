package testburst

import (
	"testing"
	"time"
)

// TestWriteCountsStalls: a write that stalls well past the debounce is
// counted as a split at least and at most; gaps well under it are not.
func TestWriteCountsStalls(t *testing.T) {
	calls := 0
	minSplits, maxSplits := Write(t, 4, 10*time.Millisecond, 300*time.Millisecond, func(i int) {
		calls++
		if i == 1 {
			time.Sleep(600 * time.Millisecond) // write 1 ends ~600 ms after write 0
		}
	})
	if calls != 4 || minSplits != 1 || maxSplits != 1 {
		t.Fatalf("calls %d, splits %d to %d; want 4 calls, 1 to 1", calls, minSplits, maxSplits)
	}
}
