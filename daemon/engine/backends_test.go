package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/internal/testgpu"
	"github.com/jetai/jetai/internal/testmodel"
)

// The fake backend is loaded into this test process for good (ggml cannot
// unload one), which the other tests tolerate: they load with GPULayers 0.
// fakeBackendLoaded: ggml keeps a registered backend for the life of the
// process, so a second run of the test (go test -count=2) would see the
// fake device twice.
var fakeBackendLoaded bool

func TestLoadBackendsFakeAndBroken(t *testing.T) {
	if fakeBackendLoaded {
		t.Skip("the fake GPU backend is registered already in this process (ggml cannot unload it)")
	}
	fakeBackendLoaded = true
	path := testmodel.Path(t)
	// Greedy text on the CPU alone, before any backend is loaded.
	cpu := loadTiny(t)
	want := greedy(t, cpu, newContext(t, cpu, ContextOptions{SlotContext: 256, Slots: 1}), "Once upon a time", 24)

	dir := testgpu.Dir(t)
	testgpu.AddBroken(t, dir)
	t.Setenv("FAKEGPU_TOTAL_MIB", "2048")
	loads := LoadBackends(dir)
	if len(loads) != 2 {
		t.Fatalf("loads = %+v, want the fake and the broken library", loads)
	}
	for _, l := range loads {
		switch filepath.Base(l.Path) {
		case testgpu.FakeLib:
			if l.Err != nil {
				t.Errorf("fake backend: %v", l.Err)
			}
		case testgpu.BrokenLib:
			if l.Err == nil || !strings.Contains(l.Err.Error(), testgpu.MissingDep) {
				t.Errorf("broken library: err = %v, want the missing %s named", l.Err, testgpu.MissingDep)
			}
		default:
			t.Errorf("unexpected load %+v", l)
		}
	}
	if again := LoadBackends(dir); len(again) != 0 {
		t.Errorf("second LoadBackends loaded %+v again", again)
	}
	gpus := GPUs(Devices())
	if len(gpus) != 1 || gpus[0].Name != "FakeGPU0" || gpus[0].TotalBytes != 2048<<20 || gpus[0].FreeBytes != 2048<<20 {
		t.Fatalf("GPU devices = %+v, want FakeGPU0 with 2048 MiB free of 2048", gpus)
	}

	// Auto: everything fits 2 GiB. The fake supports no op, so weights stay
	// on the CPU, the KV cache goes to the device's buffers, every op runs
	// on the CPU, and greedy output is the CPU's.
	m, err := Load(context.Background(), path, LoadOptions{GPULayers: GPULayersAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := newContext(t, m, ContextOptions{SlotContext: 256, Slots: 1})
	off := TakeOffload()
	if off.Layers == 0 || off.Layers != off.LayersTotal {
		t.Errorf("offload = %+v, want every layer offloaded", off)
	}
	if off.Buffers["FakeGPU"] == 0 || off.DeviceBytes() != off.Buffers["FakeGPU"] {
		t.Errorf("buffers = %+v, want the KV cache in FakeGPU buffers", off.Buffers)
	}
	if g := GPUs(Devices()); g[0].FreeBytes >= g[0].TotalBytes {
		t.Errorf("device free %d of %d: the KV cache was not charged to it", g[0].FreeBytes, g[0].TotalBytes)
	}
	if got := greedy(t, m, c, "Once upon a time", 24); got != want {
		t.Errorf("greedy with the fake GPU = %q, want the CPU's %q", got, want)
	}

	// An explicit -1 (all layers) offloads every layer: llama.cpp itself
	// reads a negative count as none.
	mAll, err := Load(context.Background(), path, LoadOptions{GPULayers: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer mAll.Close()
	if off := TakeOffload(); off.Layers == 0 || off.Layers != off.LayersTotal {
		t.Errorf("gpu_layers -1: offload = %+v, want every layer", off)
	}
	// An explicit count is honoured.
	m1, err := Load(context.Background(), path, LoadOptions{GPULayers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	if off := TakeOffload(); off.Layers != 1 {
		t.Errorf("gpu_layers 1: offloaded %d layers", off.Layers)
	}

	// An explicit 0 is honoured with a GPU present.
	m0, err := Load(context.Background(), path, LoadOptions{GPULayers: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer m0.Close()
	if off := TakeOffload(); off.Layers != 0 {
		t.Errorf("gpu_layers 0: offloaded %d layers", off.Layers)
	}
}

func TestFitLayers(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name               string
		free, file, layers uint64
		want               int
	}{
		{"no device memory", 0, 100 * mib, 10, 0},
		{"below the reserve", 200 * mib, 10 * mib, 10, 0},
		{"all fit", 4096 * mib, 1000 * mib, 20, -1},
		{"part fits", 1280 * mib, 2100 * mib, 20, 10}, // room 1024 MiB, 100 MiB a layer
		{"unknown layers, too big", 1024 * mib, 4096 * mib, 0, 0},
	} {
		if got := fitLayers(c.free, c.file, c.layers); got != c.want {
			t.Errorf("%s: fitLayers = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestAutoGPULayersWithoutGPU(t *testing.T) {
	cpuOnly := []Device{{Name: "CPU", Type: DeviceCPU, FreeBytes: 8 << 30, TotalBytes: 8 << 30}}
	if n := AutoGPULayers(testmodel.Path(t), 1<<20, cpuOnly); n != 0 {
		t.Errorf("AutoGPULayers without a GPU = %d, want 0", n)
	}
}
