package runner

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
