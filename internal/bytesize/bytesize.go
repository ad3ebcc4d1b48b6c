// Package bytesize renders byte counts for people in binary (IEC) units,
// one decimal ("3.2 GiB", "512 B"): the format of the daemon's messages,
// logs and status lines; and it does the saturating arithmetic of memory
// estimates. Parsing sizes from the config is config.Size's.
package bytesize

import (
	"fmt"
	"math"
	"math/bits"
)

// MulSat and AddSat saturate at math.MaxUint64 instead of wrapping: a GGUF
// header may claim absurd sizes (2^40 layers), and a product that wrapped
// around would make such a model look small.
func MulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// AddSat is a + b, saturating at math.MaxUint64 (see MulSat).
func AddSat(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

// IEC renders b as "N B" below 1 KiB, else with one decimal in the largest
// unit that keeps the number at or above 1, up to PiB.
func IEC(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}
