package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/promtool"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testgpu"
	"github.com/jetai/jetai/internal/testmodel"
)

func greedyInfer(t *testing.T, base, model string) string {
	t.Helper()
	resp, err := http.Post(base+"/inference", "application/json",
		strings.NewReader(fmt.Sprintf(`{"prompt": "Once upon a time", "model": %q, "max_length": 24, "temperature": 0}`, model)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", model, resp.StatusCode, b)
	}
	var r struct{ Response string }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Response
}

// TestGPUFakeBackend runs a daemon whose backends_dir holds a fake GPU
// backend (a device that supports no op) and a library that cannot load:
// runners load the fake, warn about the other and go on; gpu_layers left
// out offloads every layer to the GPU device found, 0 none; the output is
// the CPU's; /status, the admin status and /metrics list the devices.
func TestGPUFakeBackend(t *testing.T) {
	dir := testgpu.Dir(t)
	testgpu.AddBroken(t, dir)
	sock := filepath.Join(t.TempDir(), "admin.sock")
	conf := testdaemon.WriteConfig(t, t.TempDir(), ownCache(fmt.Sprintf(`
server {
  admin_socket = %[3]q
}
gpu {
  backends_dir = %[2]q
}
model "gpu" {
  path = %[1]q
}
model "cpu" {
  path       = %[1]q
  gpu_layers = 0
}
`, testmodel.Path(t), dir, sock)))
	t.Setenv("FAKEGPU_TOTAL_MIB", "3072") // runners inherit it
	d := testdaemon.Start(t, daemon.Options{ConfigPath: conf})

	// Before any model loads, the devices come from a runner listing them
	// at start.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var st struct {
			Platform struct {
				Devices []struct{ Name string } `json:"devices"`
			} `json:"platform"`
		}
		getJSON(t, d.URL+"/status", &st)
		if len(st.Platform.Devices) > 0 && st.Platform.Devices[0].Name == "FakeGPU0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no FakeGPU0 in /status before any load: %+v", st.Platform.Devices)
		}
	}

	cpu := greedyInfer(t, d.URL, "cpu")
	auto := greedyInfer(t, d.URL, "gpu")
	if cpu == "" || auto != cpu {
		t.Errorf("greedy output with the fake GPU = %q, want the CPU's %q", auto, cpu)
	}

	var st struct {
		Platform struct {
			Devices []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				FreeBytes  uint64 `json:"free_bytes"`
				TotalBytes uint64 `json:"total_bytes"`
			} `json:"devices"`
		} `json:"platform"`
	}
	var ms struct {
		Models []struct {
			Name string `json:"name"`
			Info *struct {
				GPULayers       int      `json:"gpu_layers"`
				LayersTotal     int      `json:"layers_offloadable"`
				GPUBytes        uint64   `json:"gpu_bytes"`
				BackendWarnings []string `json:"backend_warnings"`
			} `json:"info"`
		} `json:"models"`
	}
	getJSON(t, d.URL+"/status", &st)
	getJSON(t, d.URL+"/models", &ms)
	var found bool
	for _, dv := range st.Platform.Devices {
		if dv.Name == "FakeGPU0" {
			found = dv.Type == "gpu" && dv.TotalBytes == 3072<<20 && dv.FreeBytes < dv.TotalBytes
		}
	}
	if !found {
		t.Errorf("/status devices = %+v, want FakeGPU0 (gpu, 3072 MiB, part used by the KV cache)", st.Platform.Devices)
	}
	for _, m := range ms.Models {
		if m.Info == nil {
			t.Fatalf("model %s has no info in /status", m.Name)
		}
		switch m.Name {
		case "gpu":
			if m.Info.GPULayers == 0 || m.Info.GPULayers != m.Info.LayersTotal || m.Info.GPUBytes == 0 {
				t.Errorf("gpu: gpu_layers %d of %d, gpu_bytes %d; want every layer and the KV cache on the device", m.Info.GPULayers, m.Info.LayersTotal, m.Info.GPUBytes)
			}
		case "cpu":
			if m.Info.GPULayers != 0 || m.Info.GPUBytes != 0 {
				t.Errorf("cpu: gpu_layers %d, gpu_bytes %d; want none", m.Info.GPULayers, m.Info.GPUBytes)
			}
		}
		if len(m.Info.BackendWarnings) != 1 || !strings.Contains(m.Info.BackendWarnings[0], testgpu.BrokenLib) || !strings.Contains(m.Info.BackendWarnings[0], testgpu.MissingDep) {
			t.Errorf("%s: backend warnings = %q, want the broken library and its missing dependency", m.Name, m.Info.BackendWarnings)
		}
	}

	// jetai-ctl status reads the same list over the admin socket.
	c := admin.NewClient(sock)
	defer c.Close()
	as, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found = false
	if as.Platform != nil {
		for _, dv := range as.Platform.Devices {
			found = found || (dv.Name == "FakeGPU0" && dv.Type == "gpu" && dv.TotalBytes == 3072<<20)
		}
	}
	if !found {
		t.Errorf("admin status platform = %+v, want the FakeGPU0 device", as.Platform)
	}

	resp, err := http.Get(d.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	promtool.Check(t, body)
	for _, want := range []string{
		`jetai_device_memory_total_bytes{device="FakeGPU0",type="gpu"} 3221225472`,
		`jetai_model_gpu_layers{model="cpu"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
