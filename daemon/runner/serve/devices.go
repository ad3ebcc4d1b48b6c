package serve

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
)

// listDevices loads the backends in dir and writes the devices as a
// runner.DeviceList (`jetaid runner -list-devices`).
func listDevices(dir string, w io.Writer) error {
	engine.SetLogOutput(io.Discard, false)
	var l runner.DeviceList
	for _, b := range engine.LoadBackends(dir) {
		if b.Err != nil {
			l.BackendWarnings = append(l.BackendWarnings, fmt.Sprintf("backend %s not loaded: %v", b.Path, b.Err))
		}
	}
	l.Devices = runnerDevices(engine.Devices())
	return json.NewEncoder(w).Encode(l)
}
