package platform

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MemInfo is the part of /proc/meminfo the daemon uses, in bytes.
type MemInfo struct {
	Total     uint64 `json:"total"`
	Available uint64 `json:"available"`
	SwapTotal uint64 `json:"swap_total"`
	SwapFree  uint64 `json:"swap_free"`
}

// ReadMemInfo reads root/proc/meminfo. MemAvailable must be there (kernels
// since 3.14 have it); the swap lines may be missing.
func ReadMemInfo(root string) (MemInfo, error) {
	path := filepath.Join(root, "proc/meminfo")
	b, err := os.ReadFile(path)
	if err != nil {
		return MemInfo{}, fmt.Errorf("meminfo: %w", err)
	}
	var m MemInfo
	found := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch key {
		case "MemTotal":
			dst = &m.Total
		case "MemAvailable":
			dst = &m.Available
		case "SwapTotal":
			dst = &m.SwapTotal
		case "SwapFree":
			dst = &m.SwapFree
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return MemInfo{}, fmt.Errorf("meminfo: %s has no value", key)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return MemInfo{}, fmt.Errorf("meminfo: %s: %q is not a number", key, truncate(f[0], 32))
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		*dst = v
		found[key] = true
	}
	if !found["MemAvailable"] {
		return MemInfo{}, fmt.Errorf("meminfo: %s has no MemAvailable line", path)
	}
	return m, nil
}

// PSI is one resource's pressure stall information: the share of time in
// which some (or all, "full") non-idle tasks were stalled, averaged over
// 10, 60 and 300 seconds, as fractions 0..1, and the total stall time in
// microseconds.
type PSI struct {
	Some PSILine `json:"some"`
	Full PSILine `json:"full"`
}

// PSILine is one line of a pressure file.
type PSILine struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total_us"`
}

// ReadPSI reads root/proc/pressure/memory. ok is false when the kernel has
// no PSI (the file is missing, or reading it fails with EOPNOTSUPP when
// the kernel was built with it but booted with psi=0).
func ReadPSI(root string) (p PSI, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(root, "proc/pressure/memory"))
	if err != nil {
		if os.IsNotExist(err) || strings.Contains(err.Error(), "not supported") {
			return PSI{}, false, nil
		}
		return PSI{}, false, fmt.Errorf("memory pressure: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var dst *PSILine
		switch f[0] {
		case "some":
			dst = &p.Some
		case "full":
			dst = &p.Full
		default:
			return PSI{}, false, fmt.Errorf("memory pressure: unexpected line %q", truncate(line, 60))
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			var perr error
			switch k {
			case "avg10", "avg60", "avg300":
				var x float64
				x, perr = strconv.ParseFloat(v, 64)
				x /= 100 // the kernel writes percent
				switch k {
				case "avg10":
					dst.Avg10 = x
				case "avg60":
					dst.Avg60 = x
				default:
					dst.Avg300 = x
				}
			case "total":
				dst.Total, perr = strconv.ParseUint(v, 10, 64)
			}
			if perr != nil {
				return PSI{}, false, fmt.Errorf("memory pressure: %s %s: %q is not a number", f[0], k, truncate(v, 32))
			}
		}
	}
	return p, true, nil
}
