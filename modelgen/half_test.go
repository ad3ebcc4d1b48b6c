package modelgen

import (
	"math"
	"testing"
)

func TestFloat32ToFloat16(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"one third", 1.0 / 3, 0x3555},
		{"0.1", 0.1, 0x2e66},
		{"0.02", 0.02, 0x251f},
		{"max half", 65504, 0x7bff},
		{"just below overflow tie", 65519, 0x7bff},
		{"overflow tie rounds to inf", 65520, 0x7c00},
		{"large", 1e10, 0x7c00},
		{"-large", -1e10, 0xfc00},
		{"smallest normal", 6.103515625e-05, 0x0400},
		{"largest subnormal", 6.097555160522461e-05, 0x03ff},
		{"smallest subnormal", 5.960464477539063e-08, 0x0001},
		{"half smallest subnormal ties to zero", 2.9802322387695312e-08, 0x0000},
		{"above half smallest subnormal", 2.9802326e-08, 0x0001},
		{"1.5 smallest subnormal ties to even", 8.940696716308594e-08, 0x0002},
		{"tiny", 1e-10, 0x0000},
		{"-tiny", -1e-10, 0x8000},
		{"tie to even down", 1 + 1.0/2048, 0x3c00},
		{"tie to even up", 1 + 3.0/2048, 0x3c02},
		{"above tie", 1 + 1.0/2048 + 1.0/65536, 0x3c01},
		{"inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"nan", float32(math.NaN()), 0x7e00},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Float32ToFloat16(tt.in); got != tt.want {
				t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", tt.in, got, tt.want)
			}
		})
	}
}

// TestFloat16Exhaustive checks every half value: it converts to float32
// and back unchanged, and the float32 midpoint between it and the next
// half rounds to the even one of the two while anything just off the
// midpoint rounds to the nearer one.
func TestFloat16Exhaustive(t *testing.T) {
	for h := uint32(0); h <= 0xffff; h++ {
		x := uint16(h)
		f := Float16ToFloat32(x)
		if x&0x7c00 == 0x7c00 && x&0x3ff != 0 {
			if !math.IsNaN(float64(f)) || Float32ToFloat16(f)&0x7c00 != 0x7c00 || Float32ToFloat16(f)&0x3ff == 0 {
				t.Fatalf("NaN %#04x not preserved", x)
			}
			continue
		}
		if got := Float32ToFloat16(f); got != x {
			t.Fatalf("round trip of %#04x (%g) gave %#04x", x, f, got)
		}
		next := x + 1
		if x&0x7fff >= 0x7bff { // max finite or inf: no finite successor
			continue
		}
		g := Float16ToFloat32(next)
		mid := (float64(f) + float64(g)) / 2
		m := float32(mid)
		if float64(m) != mid {
			t.Fatalf("midpoint of %#04x not exact in float32", x)
		}
		even := x
		if x&1 == 1 {
			even = next
		}
		if got := Float32ToFloat16(m); got != even {
			t.Fatalf("midpoint %g between %#04x and %#04x gave %#04x, want %#04x", m, x, next, got, even)
		}
		below := math.Nextafter32(m, float32(f))
		above := math.Nextafter32(m, float32(g))
		if got := Float32ToFloat16(below); got != x {
			t.Fatalf("just below midpoint of %#04x gave %#04x", x, got)
		}
		if got := Float32ToFloat16(above); got != next {
			t.Fatalf("just above midpoint of %#04x gave %#04x", x, got)
		}
	}
}
