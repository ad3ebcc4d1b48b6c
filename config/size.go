package config

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Size is a number of bytes. In the config file it is a string such as
// "6GiB", "512MiB", "1.5GB" or "1048576" (see ParseSize).
type Size int64

// Byte multiples. IEC units are powers of 1024, SI units powers of 1000.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40

	KB Size = 1e3
	MB Size = 1e6
	GB Size = 1e9
	TB Size = 1e12
)

var sizeUnits = []struct {
	name string
	mult Size
}{
	// Ordered for String: IEC first, largest first, then SI.
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
	{"B", 1},
}

// ParseSize parses a byte size: a non-negative number, optionally with a
// fraction, followed by an optional unit. Units are B, KiB, MiB, GiB, TiB
// (1024-based) and KB, MB, GB, TB (1000-based), matched without regard to
// case, with optional space before them ("kB" and "1.5 gib" are fine).
// Single-letter units (K, M, G, T) are refused as ambiguous. Fractional
// results are rounded down to whole bytes; a fraction of a byte without a unit
// is an error.
func ParseSize(s string) (Size, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("empty size; write a number of bytes or a number with a unit, such as \"512MiB\" or \"6GiB\"")
	}
	i := 0
	for i < len(in) && (in[i] >= '0' && in[i] <= '9' || in[i] == '.' || in[i] == '-' || in[i] == '+') {
		i++
	}
	num, unit := in[:i], strings.TrimSpace(in[i:])
	if num == "" {
		return 0, fmt.Errorf("size %q does not start with a number; write it like \"512MiB\" or \"6GiB\"", s)
	}
	if strings.HasPrefix(num, "-") {
		return 0, fmt.Errorf("size %q is negative; sizes are zero or more bytes", s)
	}
	if strings.HasPrefix(num, "+") || strings.Count(num, ".") > 1 || strings.HasSuffix(num, ".") || strings.HasPrefix(num, ".") {
		return 0, fmt.Errorf("size %q has a malformed number; write it like \"1.5GiB\"", s)
	}
	mult := Size(1)
	if unit != "" {
		found := false
		for _, u := range sizeUnits {
			if strings.EqualFold(unit, u.name) {
				mult, found = u.mult, true
				break
			}
		}
		if !found {
			switch strings.ToUpper(unit) {
			case "K", "M", "G", "T":
				u := strings.ToUpper(unit)
				return 0, fmt.Errorf("size %q has the ambiguous unit %q; write %siB (powers of 1024) or %sB (powers of 1000)", s, unit, u, u)
			}
			return 0, fmt.Errorf("size %q has the unknown unit %q; use B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000)", s, unit)
		}
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("size %q has a malformed number; write it like \"1.5GiB\"", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if mult == 1 && !r.IsInt() {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	n := new(big.Int).Quo(r.Num(), r.Denom()) // rounds toward zero; r >= 0
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(n.Int64()), nil
}

// String renders the size exactly, in the largest unit that divides it evenly
// ("6GiB", "1500MB", "1000001B").
func (s Size) String() string {
	if s == 0 {
		return "0B"
	}
	for _, u := range sizeUnits {
		if s%u.mult == 0 {
			return strconv.FormatInt(int64(s/u.mult), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText renders the size as String does, so JSON shows "6GiB".
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the size with ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Forever is the KeepAlive of a model that is never unloaded for idleness.
const Forever time.Duration = -1

// ParseDuration parses a non-negative Go duration ("10m", "1h30m", "500ms");
// "0" is zero. A number without a unit is refused with a hint.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("empty duration; write it like \"30s\", \"10m\" or \"1h\"")
	}
	if _, err := strconv.ParseFloat(in, 64); err == nil && in != "0" {
		return 0, fmt.Errorf("duration %q has no unit; write it like \"%ss\" (seconds) or \"%sm\" (minutes)", s, in, in)
	}
	d, err := time.ParseDuration(in)
	if err != nil {
		return 0, fmt.Errorf("duration %q is not valid; write it like \"30s\", \"10m\" or \"1h30m\" (units ns, us, ms, s, m, h)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// ParseKeepAlive parses a model's keep_alive: a duration as ParseDuration
// accepts ("0" unloads as soon as the model is idle), or "forever", "-1" or
// any negative duration, which all give Forever (never unload for idleness).
func ParseKeepAlive(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if strings.EqualFold(in, "forever") || in == "-1" {
		return Forever, nil
	}
	if strings.HasPrefix(in, "-") {
		if d, err := time.ParseDuration(in); err == nil && d < 0 {
			return Forever, nil
		}
	}
	d, err := ParseDuration(in)
	if err != nil {
		return 0, fmt.Errorf("%v; keep_alive also accepts \"forever\" (or \"-1\") to never unload", err)
	}
	return d, nil
}

// FormatKeepAlive renders a keep-alive as the config file would write it.
func FormatKeepAlive(d time.Duration) string {
	if d < 0 {
		return "forever"
	}
	return formatDuration(d)
}

func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	// time.Duration renders 10m as "10m0s"; drop the zero tails.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
