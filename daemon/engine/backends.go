package engine

/*
#include <dlfcn.h>
#include <stdlib.h>

// From ggml-backend.h in the pinned module; the symbols are linked in by
// github.com/ollama/ollama/llama. Handles are opaque here.
void * ggml_backend_load(const char * path);
size_t ggml_backend_dev_count(void);
void * ggml_backend_dev_get(size_t index);
const char * ggml_backend_dev_name(void * device);
const char * ggml_backend_dev_description(void * device);
void ggml_backend_dev_memory(void * device, size_t * free, size_t * total);
int ggml_backend_dev_type(void * device);

// jetai_dlprobe opens path the way ggml does (RTLD_NOW | RTLD_LOCAL) and
// returns NULL when it loads, or dlerror's text (a static buffer) when not.
// ggml's own loader is silent in release builds, so the cause comes from here.
static const char * jetai_dlprobe(const char * path, void ** handle) {
	dlerror();
	*handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (*handle == NULL) {
		const char * e = dlerror();
		return e ? e : "dlopen failed";
	}
	return NULL;
}
static void jetai_dlclose(void * h) { if (h) dlclose(h); }
*/
import "C"

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Device types, as ggml names them.
const (
	DeviceCPU   = "cpu"
	DeviceGPU   = "gpu"
	DeviceAccel = "accel"
)

// Device is one ggml backend device: the compiled-in CPU and each device of
// a backend loaded from the backends directory.
type Device struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Type        string `json:"type"` // DeviceCPU, DeviceGPU or DeviceAccel
	FreeBytes   uint64 `json:"free_bytes"`
	TotalBytes  uint64 `json:"total_bytes"`
}

// BackendLoad is the outcome of loading one library from the backends
// directory. Err is set when it did not load; the runner goes on without it.
type BackendLoad struct {
	Path string
	Err  error
}

var (
	backendsMu   sync.Mutex
	backendsSeen = map[string]bool{}
)

// LoadBackends initialises ggml and loads every backend library (lib*.so)
// in dir through ggml's registry, once per path for the process. A missing
// dir is no backend, not an error. The ggml-base library that a
// GGML_BACKEND_DL build ships beside its backends, and CPU backends (the CPU
// is compiled in), are skipped. A library that does not load is reported in
// its BackendLoad with the loader's cause; the others still load.
func LoadBackends(dir string) []BackendLoad {
	Init()
	if dir == "" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return []BackendLoad{{Path: dir, Err: fmt.Errorf("read backends directory: %w", err)}}
	}
	backendsMu.Lock()
	defer backendsMu.Unlock()
	var out []BackendLoad
	for _, e := range ents {
		name := e.Name()
		if !backendFile(name) || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, name)
		if backendsSeen[path] {
			continue
		}
		backendsSeen[path] = true
		out = append(out, BackendLoad{Path: path, Err: loadBackend(path)})
	}
	return out
}

// backendFile says whether a file name in the backends directory is a
// backend to load.
func backendFile(name string) bool {
	if !strings.HasPrefix(name, "lib") || !strings.HasSuffix(name, ".so") {
		return false
	}
	return !strings.HasPrefix(name, "libggml-base") && !strings.HasPrefix(name, "libggml-cpu")
}

func loadBackend(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var h unsafe.Pointer
	if msg := C.jetai_dlprobe(cpath, &h); msg != nil {
		return errors.New(C.GoString(msg))
	}
	// Held open across ggml's own dlopen so the library initialises once.
	defer C.jetai_dlclose(h)
	if C.ggml_backend_load(cpath) == nil {
		return errors.New("ggml did not register it (no ggml_backend_init, its score is 0 on this system, or another ggml backend API version)")
	}
	return nil
}

// Devices lists ggml's registered devices with their memory now.
func Devices() []Device {
	Init()
	n := int(C.ggml_backend_dev_count())
	out := make([]Device, 0, n)
	for i := 0; i < n; i++ {
		d := C.ggml_backend_dev_get(C.size_t(i))
		var free, total C.size_t
		C.ggml_backend_dev_memory(d, &free, &total)
		out = append(out, Device{
			Name:        C.GoString(C.ggml_backend_dev_name(d)),
			Description: C.GoString(C.ggml_backend_dev_description(d)),
			Type:        deviceType(int(C.ggml_backend_dev_type(d))),
			FreeBytes:   uint64(free),
			TotalBytes:  uint64(total),
		})
	}
	return out
}

func deviceType(t int) string {
	// enum ggml_backend_dev_type: CPU, GPU, ACCEL.
	switch t {
	case 0:
		return DeviceCPU
	case 1:
		return DeviceGPU
	default:
		return DeviceAccel
	}
}

// GPUs are the devices of type GPU among ds.
func GPUs(ds []Device) []Device {
	return slices.DeleteFunc(slices.Clone(ds), func(d Device) bool { return d.Type != DeviceGPU })
}
