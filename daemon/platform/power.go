package platform

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Rail is one INA3221 channel: a named supply with its bus voltage and
// current, and their product.
type Rail struct {
	Name  string  `json:"name"` // in*_label, such as "VDD_IN"
	Chip  string  `json:"chip"` // hwmonN
	Volts float64 `json:"volts"`
	Amps  float64 `json:"amps"`
	Watts float64 `json:"watts"`
	Err   string  `json:"error,omitempty"`
}

// ReadRails reads the channels of every INA3221 under root/sys/class/hwmon
// (name "ina3221"): in<N>_label, in<N>_input (mV) and curr<N>_input (mA).
// Channels without a label or a current (the summing channel) are left
// out; a labelled channel whose values do not read comes back with Err.
func ReadRails(root string) ([]Rail, error) {
	dir, ents, err := readClass(root, "hwmon")
	if err != nil {
		return nil, err
	}
	var out []Rail
	for _, e := range ents {
		d := filepath.Join(dir, e.Name())
		if name, err := readString(filepath.Join(d, "name")); err != nil || name != "ina3221" {
			continue
		}
		files, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		var chans []int
		for _, f := range files {
			n, ok := strings.CutPrefix(f.Name(), "in")
			if !ok {
				continue
			}
			n, ok = strings.CutSuffix(n, "_label")
			if !ok {
				continue
			}
			if i, err := strconv.Atoi(n); err == nil {
				chans = append(chans, i)
			}
		}
		sort.Ints(chans)
		for _, ch := range chans {
			label, err := readString(filepath.Join(d, fmt.Sprintf("in%d_label", ch)))
			if err != nil || label == "" || strings.HasPrefix(strings.ToLower(label), "sum of") {
				continue
			}
			curr := filepath.Join(d, fmt.Sprintf("curr%d_input", ch))
			if _, err := os.Stat(curr); err != nil {
				continue
			}
			r := Rail{Name: label, Chip: e.Name()}
			mv, err1 := readUint(filepath.Join(d, fmt.Sprintf("in%d_input", ch)))
			ma, err2 := readUint(curr)
			switch {
			case err1 != nil:
				r.Err = errText(err1)
			case err2 != nil:
				r.Err = errText(err2)
			default:
				r.Volts, r.Amps = float64(mv)/1000, float64(ma)/1000
				r.Watts = r.Volts * r.Amps
			}
			out = append(out, r)
		}
	}
	return out, nil
}
