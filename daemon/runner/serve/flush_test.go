package serve

import (
	"testing"
	"time"
)

// TestFlushPacing checks when the decode loop wakes handlers: a job's
// first text at once, later text only once per frame interval and then
// for every stream with text together, never a stream without text.
func TestFlushPacing(t *testing.T) {
	t0 := time.Unix(1000, 0)
	iv := frameInterval(3)
	type state struct {
		unsent, framed bool
	}
	tests := []struct {
		name      string
		lastFlush time.Time
		now       time.Time
		slots     []state // three active slots
		woken     []bool
		advanced  bool // lastFlush moves to now
	}{
		{"first text leaves at once", t0, t0.Add(time.Microsecond),
			[]state{{true, false}, {false, false}, {true, true}}, []bool{true, false, false}, false},
		{"within the interval nothing else leaves", t0, t0.Add(iv - time.Microsecond),
			[]state{{true, true}, {true, true}, {false, true}}, []bool{false, false, false}, false},
		{"due: every stream with text leaves together", t0, t0.Add(iv),
			[]state{{true, true}, {false, true}, {true, false}}, []bool{true, false, true}, true},
		{"due but no text: the interval does not restart", t0, t0.Add(2 * iv),
			[]state{{false, true}, {false, true}, {false, false}}, []bool{false, false, false}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &scheduler{lastFlush: tc.lastFlush}
			for i, st := range tc.slots {
				s.slots = append(s.slots, &slot{seq: i, job: &job{out: newOutbox()}, unsent: st.unsent, framed: st.framed})
			}
			s.flush(tc.now)
			for i, sl := range s.slots {
				woken := len(sl.job.out.notify) == 1
				if woken != tc.woken[i] {
					t.Errorf("slot %d woken %v, want %v", i, woken, tc.woken[i])
				}
				if woken && (sl.unsent || !sl.framed) {
					t.Errorf("slot %d after its wake: unsent %v framed %v", i, sl.unsent, sl.framed)
				}
			}
			if got := s.lastFlush.Equal(tc.now); got != tc.advanced {
				t.Errorf("lastFlush %v, now %v: advanced %v, want %v", s.lastFlush, tc.now, got, tc.advanced)
			}
		})
	}
}

func TestFrameInterval(t *testing.T) {
	for _, tc := range []struct {
		active int
		want   time.Duration
	}{{0, minFrameInterval}, {1, minFrameInterval}, {5, minFrameInterval}, {8, 8 * perStreamFrameBudget}, {16, 16 * perStreamFrameBudget}} {
		if got := frameInterval(tc.active); got != tc.want {
			t.Errorf("frameInterval(%d) = %v, want %v", tc.active, got, tc.want)
		}
	}
}
