package pool

import (
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// Devices are the ggml devices (CPU, and GPUs of backends loaded from the
// gpu block's backends_dir) with their memory, as the most recently loaded
// runner reported them when it became ready, and when; nil before any
// runner is ready (the daemon then shows what a runner listed at start).
func Devices(ms []ModelStatus) ([]runner.Device, time.Time) {
	var out []runner.Device
	var at time.Time
	for _, m := range ms {
		if m.Info == nil || m.LoadedAt == nil || len(m.Info.Devices) == 0 {
			continue
		}
		if out == nil || m.LoadedAt.After(at) {
			out, at = m.Info.Devices, *m.LoadedAt
		}
	}
	return out, at
}
