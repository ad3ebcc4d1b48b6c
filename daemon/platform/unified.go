package platform

import (
	"bytes"
	"os"
	"path/filepath"
)

// UnifiedMemory says whether the GPU shares the system's RAM, as on every
// Jetson (an integrated NVIDIA GPU: a Tegra device tree, the L4T release
// file, or a Tegra GPU under devfreq). There, GPU buffers come out of
// MemAvailable without showing in a process's RSS, and the CUDA driver's
// free-memory figure is MemFree, which misleads; the pool charges them to
// the memory budget. Elsewhere a GPU has its own memory (memory.gpu_budget).
func UnifiedMemory(root string) bool {
	for _, p := range []string{"proc/device-tree/compatible", "sys/firmware/devicetree/base/compatible"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err == nil && bytes.Contains(b, []byte("nvidia,tegra")) {
			return true
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc/nv_tegra_release")); err == nil {
		return true
	}
	gpus, _ := ReadGPUs(root)
	return len(gpus) > 0
}
