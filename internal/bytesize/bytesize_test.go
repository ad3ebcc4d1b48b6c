package bytesize

import (
	"math"
	"testing"
)

func TestIEC(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1024.0 KiB"},
		{3435973837, "3.2 GiB"},
		{5 << 40, "5.0 TiB"},
		{3 << 50, "3.0 PiB"},
		{math.MaxUint64, "16384.0 PiB"},
	} {
		if got := IEC(c.in); got != c.want {
			t.Errorf("IEC(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}
