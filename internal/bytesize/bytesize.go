// Package bytesize renders byte counts for people in binary (IEC) units,
// one decimal ("3.2 GiB", "512 B"): the format of the daemon's messages,
// logs and status lines. Parsing sizes from the config is config.Size's.
package bytesize

import "fmt"

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
