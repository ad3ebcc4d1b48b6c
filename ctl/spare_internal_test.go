package ctl

import (
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
)

// TestSpareLine: the status line of the warm spare says its state, pid
// and charge while it runs, and when the next one starts and why while
// it backs off.
func TestSpareLine(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   admin.Spare
		want string
	}{
		{admin.Spare{State: "waiting", Pid: 42, ChargedBytes: 11 << 20, MeasuredBytes: 11 << 20, Starts: 3, Used: 2},
			"waiting (pid 42), 11.0 MiB charged; 3 started, 2 used, 0 died"},
		{admin.Spare{State: "backoff", Starts: 2, Deaths: 2, RetryAt: &at, LastError: "runner exited: exit status 1"},
			"backoff; 2 started, 0 used, 2 died, next at 15:04:05; last error: runner exited: exit status 1"},
		{admin.Spare{State: "none", Starts: 1, Used: 1}, "none; 1 started, 1 used, 0 died"},
	} {
		if got := spareLine(&tc.in); got != tc.want {
			t.Errorf("%+v:\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
