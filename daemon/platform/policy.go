package platform

import (
	"fmt"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/internal/bytesize"
)

// Level is the thermal state.
type Level int

// Levels, in rising order.
const (
	// Normal: below the soft limit; nothing is held back.
	Normal Level = iota
	// Throttle: at or above the soft limit. Runners get fewer threads,
	// fewer generations run at once, low-priority requests wait.
	Throttle
	// Shed: at or above the hard limit. New low-priority requests are
	// refused (503, Retry-After), idle low-priority models are unloaded,
	// nothing new is loaded.
	Shed
)

var levelNames = [...]string{"normal", "throttle", "shed"}

// Levels lists every level, lowest first.
var Levels = []Level{Normal, Throttle, Shed}

func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return levelNames[l]
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Limits are the thermal thresholds in °C.
type Limits struct {
	Soft       float64 `json:"soft_limit"`
	Hard       float64 `json:"hard_limit"`
	Hysteresis float64 `json:"hysteresis"`
}

// LimitsOf takes the limits from the thermal block.
func LimitsOf(t config.Thermal) Limits {
	return Limits{Soft: t.SoftLimit, Hard: t.HardLimit, Hysteresis: t.Hysteresis}
}

// Next is the level after a reading of c °C at level cur, and why it
// changed (empty when it did not). A level is entered at its limit and
// left only below its limit minus the hysteresis, so a temperature that
// wavers around a limit does not flap between levels.
func (lim Limits) Next(cur Level, c float64) (Level, string) {
	next := cur
	switch {
	case c >= lim.Hard:
		next = Shed
	case c >= lim.Soft:
		// Rising into throttle, or falling out of shed once below the
		// hard limit's band.
		if cur == Normal || (cur == Shed && c < lim.Hard-lim.Hysteresis) {
			next = Throttle
		}
	default:
		switch cur {
		case Shed:
			if c < lim.Hard-lim.Hysteresis {
				next = Throttle
				if c < lim.Soft-lim.Hysteresis {
					next = Normal
				}
			}
		case Throttle:
			if c < lim.Soft-lim.Hysteresis {
				next = Normal
			}
		}
	}
	if next == cur {
		return cur, ""
	}
	switch {
	case next == Shed:
		return next, fmt.Sprintf("%.1f °C reached the hard limit %g °C", c, lim.Hard)
	case next == Throttle && cur == Normal:
		return next, fmt.Sprintf("%.1f °C reached the soft limit %g °C", c, lim.Soft)
	case next == Throttle:
		return next, fmt.Sprintf("%.1f °C is below the hard limit %g °C less the hysteresis %g °C", c, lim.Hard, lim.Hysteresis)
	default:
		return next, fmt.Sprintf("%.1f °C is below the soft limit %g °C less the hysteresis %g °C", c, lim.Soft, lim.Hysteresis)
	}
}

// DefaultPSILimit is the memory pressure (the share of the last 10 s in
// which some task stalled on memory: PSI "some avg10") at which the daemon
// starts evicting. At 10% the machine is already reclaiming hard: on an
// 8 GB Jetson without swap, OOM kills follow within seconds.
const DefaultPSILimit = 0.10

// MemoryPressure says whether the readings call for freeing memory: when
// MemAvailable is below reserve, or the PSI some avg10 is at or above
// psiLimit (0: PSI is not used). The reason says which.
func MemoryPressure(mem *MemInfo, psi *PSI, reserve uint64, psiLimit float64) (bool, string) {
	if mem != nil && reserve > 0 && mem.Available < reserve {
		return true, fmt.Sprintf("MemAvailable %s is below memory.reserve %s", bytesize.IEC(mem.Available), bytesize.IEC(reserve))
	}
	if psi != nil && psiLimit > 0 && psi.Some.Avg10 >= psiLimit {
		return true, fmt.Sprintf("memory pressure (PSI some avg10) is %.1f%%, at or above %.0f%%", psi.Some.Avg10*100, psiLimit*100)
	}
	return false, ""
}
