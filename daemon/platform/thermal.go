package platform

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Plausible temperatures in °C. Readings outside are sensor errors, not
// heat: Orin's CV zones read −256 °C when the CV cluster is powered off,
// and some drivers report 0 or huge values for absent sensors.
const (
	MinCelsius = -40.0
	MaxCelsius = 150.0
)

// Zone is one /sys/class/thermal/thermal_zoneN.
type Zone struct {
	Name    string  `json:"name"` // thermal_zoneN
	Type    string  `json:"type"` // contents of type, such as "cpu-thermal"
	Celsius float64 `json:"celsius"`
	Valid   bool    `json:"valid"`
	Err     string  `json:"error,omitempty"`
}

// ReadZones reads every thermal zone under root, sorted by zone number.
// A zone whose type or temperature cannot be read, does not parse, or is
// implausible comes back with Valid false and Err saying why. The error is
// for the thermal class directory itself; a machine without one (most
// containers) has no zones and no error.
func ReadZones(root string) ([]Zone, error) {
	dir, ents, err := readClass(root, "thermal")
	if err != nil {
		return nil, fmt.Errorf("thermal zones: %w", err)
	}
	var zones []Zone
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "thermal_zone")
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(n); err != nil {
			continue
		}
		zones = append(zones, readZone(filepath.Join(dir, e.Name()), e.Name()))
	}
	sort.Slice(zones, func(i, j int) bool { return zoneNum(zones[i].Name) < zoneNum(zones[j].Name) })
	return zones, nil
}

func zoneNum(name string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "thermal_zone"))
	return n
}

func readZone(dir, name string) Zone {
	z := Zone{Name: name}
	t, err := readString(filepath.Join(dir, "type"))
	if err != nil {
		z.Type = name
		z.Err = "type: " + errText(err)
		return z
	}
	z.Type = t
	s, err := readString(filepath.Join(dir, "temp"))
	if err != nil {
		z.Err = "temp: " + errText(err)
		return z
	}
	milli, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		z.Err = fmt.Sprintf("temp: %q is not a number of millidegrees", truncate(s, 32))
		return z
	}
	c := float64(milli) / 1000
	if c < MinCelsius || c > MaxCelsius {
		z.Err = fmt.Sprintf("temp: %.1f °C is outside %.0f..%.0f °C; discarded", c, MinCelsius, MaxCelsius)
		return z
	}
	z.Celsius, z.Valid = c, true
	return z
}

// ZoneKey is how a zone type is matched against thermal.zones: lower
// case, without the "-thermal", "-therm" or "_therm" suffix. So the
// config's "cpu-thermal" (Orin) also finds "CPU-therm" (Nano, TX2, Xavier).
func ZoneKey(typ string) string {
	k := strings.ToLower(strings.TrimSpace(typ))
	for _, suf := range []string{"-thermal", "_thermal", "-therm", "_therm"} {
		if s, ok := strings.CutSuffix(k, suf); ok {
			return s
		}
	}
	return k
}

// Hottest returns the hottest valid zone among those whose type matches
// one of want (by ZoneKey), and whether there was one.
func Hottest(zones []Zone, want []string) (Zone, bool) {
	keys := map[string]bool{}
	for _, w := range want {
		keys[ZoneKey(w)] = true
	}
	var best Zone
	found := false
	for _, z := range zones {
		if !z.Valid || !keys[ZoneKey(z.Type)] {
			continue
		}
		if !found || z.Celsius > best.Celsius {
			best, found = z, true
		}
	}
	return best, found
}

// readClass lists root/sys/class/NAME and returns its path. A machine
// without that class (most containers lack some) has no entries and no
// error.
func readClass(root, name string) (string, []os.DirEntry, error) {
	dir := filepath.Join(root, "sys/class", name)
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return dir, nil, nil
	}
	return dir, ents, err
}

// readString reads a small sysfs or procfs file, trimmed of white space
// and of the NUL that device-tree strings end with.
func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(strings.TrimSpace(string(b)), "\x00"), nil
}

func readUint(path string) (uint64, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", path, truncate(s, 32))
	}
	return v, nil
}

// errText shortens "open /x/y: no such file or directory" to the cause.
func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
