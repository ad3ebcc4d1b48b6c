package platform

import (
	"path/filepath"
	"sort"
	"strings"
)

// gpuNames are devfreq device names (the part after the unit address, as
// in "17000000.ga10b") of NVIDIA integrated GPUs: Orin (ga10b), Xavier
// (gv11b), TX2 (gp10b), Nano/TX1 (gm20b); JetPack 6 names Orin's "gpu".
var gpuNames = []string{"ga10b", "gv11b", "gp10b", "gm20b", "gpu"}

// GPU is one devfreq GPU.
type GPU struct {
	Name       string  `json:"name"` // the devfreq directory name
	FreqHz     uint64  `json:"freq_hz"`
	MinFreqHz  uint64  `json:"min_freq_hz"`
	MaxFreqHz  uint64  `json:"max_freq_hz"`
	Load       float64 `json:"load"` // 0..1, from the device's load file (per mille)
	LoadKnown  bool    `json:"load_known"`
	Err        string  `json:"error,omitempty"`
	devicePath string
}

// IsGPUDevfreq says whether a devfreq directory name is a known GPU.
func IsGPUDevfreq(name string) bool {
	base := strings.ToLower(name)
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		base = base[i+1:]
	}
	for _, g := range gpuNames {
		if base == g {
			return true
		}
	}
	return false
}

// ReadGPUs finds the GPUs among root/sys/class/devfreq by name and reads
// their current, minimum and maximum frequency and their load. A machine
// without devfreq has none.
func ReadGPUs(root string) ([]GPU, error) {
	dir, ents, err := readClass(root, "devfreq")
	if err != nil {
		return nil, err
	}
	var out []GPU
	for _, e := range ents {
		if !IsGPUDevfreq(e.Name()) {
			continue
		}
		d := filepath.Join(dir, e.Name())
		g := GPU{Name: e.Name()}
		var err error
		if g.FreqHz, err = readUint(filepath.Join(d, "cur_freq")); err != nil {
			g.Err = "cur_freq: " + errText(err)
		}
		g.MinFreqHz, _ = readUint(filepath.Join(d, "min_freq"))
		g.MaxFreqHz, _ = readUint(filepath.Join(d, "max_freq"))
		// The load lives with the device, not the devfreq class entry.
		if l, err := readUint(filepath.Join(d, "device", "load")); err == nil {
			g.Load, g.LoadKnown = min(float64(l)/1000, 1), true
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
