package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  string
	}{
		{"0", 0, ""},
		{"1048576", MiB, ""},
		{"512MiB", 512 * MiB, ""},
		{"6GiB", 6 * GiB, ""},
		{"6gib", 6 * GiB, ""},
		{"1 TiB", TiB, ""},
		{"  20GiB ", 20 * GiB, ""},
		{"1.5GB", 1500 * MB, ""},
		{"1.5GiB", 1536 * MiB, ""},
		{"1kB", 1000, ""},
		{"2KiB", 2048, ""},
		{"10B", 10, ""},
		{"0.5KiB", 512, ""},
		{"1.0001KiB", 1024, ""}, // rounded down to whole bytes
		{"8191PiB", 0, `unknown unit "PiB"`},
		{"9000000TiB", 0, "too large"},
		{"", 0, "empty size"},
		{"GiB", 0, "does not start with a number"},
		{"-1GiB", 0, "negative"},
		{"1.5", 0, "not a whole number of bytes"},
		{"1..5GiB", 0, "malformed number"},
		{".5GiB", 0, "malformed number"},
		{"5.GiB", 0, "malformed number"},
		{"+5GiB", 0, "malformed number"},
		{"1G", 0, `ambiguous unit "G"; write GiB (powers of 1024) or GB (powers of 1000)`},
		{"1k", 0, `ambiguous unit "k"; write KiB`},
		{"6 gigs", 0, `unknown unit "gigs"`},
		{"1e3", 0, `unknown unit "e3"`},
		{"12-3", 0, "malformed number"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseSize(%q) error = %v; want %q", tt.in, err, tt.err)
		}
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0B"}, {1, "1B"}, {1024, "1KiB"}, {6 * GiB, "6GiB"}, {1536 * MiB, "1536MiB"},
		{1500 * MB, "1500MB"}, {1000, "1KB"}, {1000001, "1000001B"}, {2 * TiB, "2TiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := ParseSize(tt.in.String())
		if err != nil || back != tt.in {
			t.Errorf("round trip of %d: %d, %v", int64(tt.in), back, err)
		}
	}
	var s Size
	if err := s.UnmarshalText([]byte("2GiB")); err != nil || s != 2*GiB {
		t.Errorf("UnmarshalText = %v, %v", s, err)
	}
	if b, _ := s.MarshalText(); string(b) != "2GiB" {
		t.Errorf("MarshalText = %s", b)
	}
	if humanSize(1185376) != "1.13MiB" || humanSize(4000) != "3.91KiB" || humanSize(GiB) != "1GiB" || humanSize(10) != "10B" {
		t.Errorf("humanSize: %s %s %s %s", humanSize(1185376), humanSize(4000), humanSize(GiB), humanSize(10))
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"0", 0, ""},
		{"10m", 10 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{" 2s ", 2 * time.Second, ""},
		{"", 0, "empty duration"},
		{"300", 0, `duration "300" has no unit; write it like "300s"`},
		{"1.5", 0, "has no unit"},
		{"-5s", 0, "negative"},
		{"soon", 0, "is not valid"},
		{"10 minutes", 0, "is not valid"},
		{"forever", 0, "is not valid"}, // only keep_alive knows forever
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseDuration(%q) error = %v; want %q", tt.in, err, tt.err)
		}
	}
}

func TestParseKeepAlive(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"10m", 10 * time.Minute, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{"forever", Forever, ""},
		{"Forever", Forever, ""},
		{"-1", Forever, ""},
		{"-1s", Forever, ""},
		{"-3h", Forever, ""},
		{"-2", 0, "has no unit"},
		{"never", 0, `keep_alive also accepts "forever"`},
		{"600", 0, "has no unit"},
	}
	for _, tt := range tests {
		got, err := ParseKeepAlive(tt.in)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseKeepAlive(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseKeepAlive(%q) error = %v; want %q", tt.in, err, tt.err)
		}
	}
	for d, want := range map[time.Duration]string{Forever: "forever", 0: "0", 10 * time.Minute: "10m", 90 * time.Minute: "1h30m", 2 * time.Hour: "2h", 1500 * time.Millisecond: "1.5s"} {
		if got := FormatKeepAlive(d); got != want {
			t.Errorf("FormatKeepAlive(%v) = %q, want %q", d, got, want)
		}
	}
}
