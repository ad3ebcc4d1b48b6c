package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
)

// Device is a ggml backend device as the runner saw it: the CPU and each
// device of a backend loaded from the backends directory.
type Device struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Type        string `json:"type"` // "cpu", "gpu" or "accel"
	FreeBytes   uint64 `json:"free_bytes"`
	TotalBytes  uint64 `json:"total_bytes"`
}

// GPULayersAuto asks the runner to offload as many layers as fit the GPU
// devices, and none without one.
const GPULayersAuto = -2

// DeviceList is what `jetaid runner -list-devices` prints: the devices a
// runner would see, without loading a model.
type DeviceList struct {
	Devices         []Device `json:"devices"`
	BackendWarnings []string `json:"backend_warnings,omitempty"`
}

// ListDevices runs a runner process with -list-devices for the backends in
// dir and returns what it saw. command and env are as in Options; the
// daemon calls it at start, so that the devices are known before any model
// loads. ggml is initialised in the child, never in the daemon.
func ListDevices(ctx context.Context, command, env []string, dir string) (DeviceList, error) {
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return DeviceList{}, fmt.Errorf("list devices: %w", err)
		}
		command = []string{exe, "runner"}
	}
	args := append(append([]string{}, command[1:]...), "-list-devices", "-backends-dir", dir)
	cmd := exec.CommandContext(ctx, command[0], args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return DeviceList{}, fmt.Errorf("list devices: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var l DeviceList
	if err := json.Unmarshal(out, &l); err != nil {
		return DeviceList{}, fmt.Errorf("list devices: %w", err)
	}
	return l, nil
}
