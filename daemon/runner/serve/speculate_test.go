package serve

import "testing"

// TestSpeculationStepsBack: drafting stops when more than half of the
// slots generate (the box is compute-bound) and while the runner's
// threads are cut below its start count (the thermal throttle).
func TestSpeculationStepsBack(t *testing.T) {
	for _, tc := range []struct {
		slots, generating, threads, start int
		want                              bool
	}{
		{8, 1, 4, 4, true},
		{8, 4, 4, 4, true},
		{8, 5, 4, 4, false},
		{8, 8, 4, 4, false},
		{1, 1, 4, 4, true},
		{2, 1, 4, 4, true},
		{2, 2, 4, 4, false},
		{8, 1, 2, 4, false}, // throttled
		{8, 1, 6, 4, true},
	} {
		s := &scheduler{slots: make([]*slot, tc.slots), startThreads: tc.start}
		s.threads.Store(int32(tc.threads))
		if got := s.speculating(tc.generating); got != tc.want {
			t.Errorf("%d of %d slots generating, threads %d of %d: speculating %v, want %v", tc.generating, tc.slots, tc.threads, tc.start, got, tc.want)
		}
	}
}
