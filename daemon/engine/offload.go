package engine

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jetai/jetai/gguf"
)

// GPULayersAuto asks Load to offload as many layers as fit the GPU devices'
// free memory, and none when there is no GPU device.
const GPULayersAuto = -2

// maxGPULayers stands for "every layer" in llama.cpp's n_gpu_layers.
const maxGPULayers = 1 << 30

// Offload is what llama.cpp reported about placing a model: layers it
// offloaded to GPU devices and the bytes of the buffers it allocated, per
// buffer name (model weights, KV cache, compute), as the backend sized
// them. It is read from llama.cpp's own load log, the only place this
// llama.cpp version reports per-backend buffer sizes.
type Offload struct {
	Layers      int               `json:"layers"`       // layers offloaded to a GPU
	LayersTotal int               `json:"layers_total"` // layers the model has that could be offloaded
	Buffers     map[string]uint64 `json:"buffers,omitempty"`
}

// DeviceBytes sums the buffers that are not the CPU's.
func (o Offload) DeviceBytes() uint64 {
	var n uint64
	for name, b := range o.Buffers {
		if !strings.HasPrefix(name, "CPU") {
			n += b
		}
	}
	return n
}

var (
	offloadRe = regexp.MustCompile(`offloaded (\d+)/(\d+) layers to GPU`)
	bufferRe  = regexp.MustCompile(`^\S+:\s+(\S+) (?:model|KV|compute|output|LoRA)\s+buffer size =\s+([0-9.]+) MiB`)

	offloadMu  sync.Mutex
	offloadCur Offload
)

// observeLoadLog records the offload and buffer lines of llama.cpp's log.
func observeLoadLog(text string) {
	if m := offloadRe.FindStringSubmatch(text); m != nil {
		n, _ := strconv.Atoi(m[1])
		t, _ := strconv.Atoi(m[2])
		offloadMu.Lock()
		offloadCur.Layers, offloadCur.LayersTotal = n, t
		offloadMu.Unlock()
		return
	}
	if m := bufferRe.FindStringSubmatch(strings.TrimSpace(text)); m != nil {
		mib, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return
		}
		offloadMu.Lock()
		if offloadCur.Buffers == nil {
			offloadCur.Buffers = map[string]uint64{}
		}
		offloadCur.Buffers[m[1]] += uint64(mib * (1 << 20))
		offloadMu.Unlock()
	}
}

// TakeOffload returns what llama.cpp reported since the last call and
// starts over. A runner holds one model, so this is that model's (and its
// context's) placement.
func TakeOffload() Offload {
	offloadMu.Lock()
	defer offloadMu.Unlock()
	o := offloadCur
	offloadCur = Offload{}
	return o
}

// AutoGPULayers is how many layers of the model at path fit the GPU
// devices' free memory: all of them (-1) when the file fits with room to
// spare for the KV cache and compute buffers, else as many repeating layers
// as fit, and 0 with no GPU device. The file size split evenly over the
// layers (plus one for the output) stands in for a layer's weights.
func AutoGPULayers(path string, fileBytes uint64, devices []Device) int {
	var free uint64
	for _, d := range GPUs(devices) {
		free += d.FreeBytes
	}
	if free == 0 {
		return 0
	}
	layers := uint64(0)
	if f, err := gguf.Open(path); err == nil {
		if arch, ok := f.String("general.architecture"); ok {
			layers, _ = f.Uint(arch + ".block_count")
		}
	}
	return fitLayers(free, fileBytes, layers)
}

// gpuReserve is kept free on the device for the KV cache, compute buffers
// and the backend's own allocations: a tenth of the free memory, at least
// 256 MiB.
func gpuReserve(free uint64) uint64 { return max(free/10, 256<<20) }

func fitLayers(free, fileBytes, layers uint64) int {
	reserve := gpuReserve(free)
	if free <= reserve {
		return 0
	}
	room := free - reserve
	if fileBytes <= room || layers == 0 {
		if fileBytes <= room {
			return -1
		}
		return 0
	}
	per := fileBytes / (layers + 1)
	if per == 0 {
		return -1
	}
	return int(min(room/per, layers))
}
