package platform

import (
	"path/filepath"
	"regexp"
	"strings"
)

// Board says what the machine is.
type Board struct {
	Model  string `json:"model"`         // device-tree model, or DMI product name
	L4T    string `json:"l4t,omitempty"` // L4T release, such as "R36.3.0"; empty off Jetson
	Jetson bool   `json:"jetson"`        // nv_tegra_release is there
	Raw    string `json:"l4t_raw,omitempty"`
}

var l4tRe = regexp.MustCompile(`^#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)`)

// ReadBoard reads root/proc/device-tree/model (falling back to the DMI
// product name of PCs) and root/etc/nv_tegra_release. Nothing there is an
// error: an unknown board has an empty Model.
func ReadBoard(root string) Board {
	var b Board
	for _, p := range []string{"proc/device-tree/model", "sys/firmware/devicetree/base/model", "sys/class/dmi/id/product_name"} {
		if s, err := readString(filepath.Join(root, p)); err == nil && s != "" {
			b.Model = s
			break
		}
	}
	if s, err := readString(filepath.Join(root, "etc/nv_tegra_release")); err == nil {
		b.Jetson = true
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line = s[:i]
		}
		b.Raw = line
		if m := l4tRe.FindStringSubmatch(line); m != nil {
			b.L4T = "R" + m[1] + "." + m[2]
		}
	}
	return b
}
