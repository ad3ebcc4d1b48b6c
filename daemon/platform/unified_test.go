package platform

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnifiedMemory(t *testing.T) {
	dt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dt, "proc/device-tree"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A device tree's compatible list is NUL-separated.
	if err := os.WriteFile(filepath.Join(dt, "proc/device-tree/compatible"), []byte("nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		root string
		want bool
	}{
		{"../../testdata/platform/orin-nano", true},
		{"../../testdata/platform/xavier-nx", true},
		{"../../testdata/platform/x86", false},
		{dt, true},
		{t.TempDir(), false},
	} {
		if got := UnifiedMemory(c.root); got != c.want {
			t.Errorf("UnifiedMemory(%s) = %v, want %v", c.root, got, c.want)
		}
	}
}
