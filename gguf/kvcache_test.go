package gguf

import (
	"strings"
	"testing"
)

func TestKVCacheSizes(t *testing.T) {
	p := Params{BlockCount: 15, HeadCountKV: 8, KeyLength: 64, ValueLength: 64} // the 0.8B shape
	for _, c := range []struct {
		typ           string
		row, perToken uint64
	}{
		{"f16", 512 * 2, 15 * 2 * 1024},
		{"", 512 * 2, 15 * 2 * 1024},
		{"q8_0", 16 * 34, 15 * 2 * 544},
		{"q4_0", 16 * 18, 15 * 2 * 288},
	} {
		if r := KVCacheRowBytes(c.typ, 512); r != c.row {
			t.Errorf("%q row of 512: %d, want %d", c.typ, r, c.row)
		}
		if n := KVCacheTokenBytes(p, c.typ); n != c.perToken {
			t.Errorf("%q a token: %d, want %d", c.typ, n, c.perToken)
		}
	}
}

func TestKVCacheCheck(t *testing.T) {
	for _, c := range []struct {
		name     string
		p        Params
		typ      string
		flash    bool
		err      string
		quantize bool
	}{
		{"f16", Params{KeyLength: 8, ValueLength: 8}, "f16", false, "", false},
		{"q8_0", Params{KeyLength: 64, ValueLength: 64}, "q8_0", true, "", true},
		{"q4_0 head 128", Params{KeyLength: 128, ValueLength: 128}, "q4_0", true, "", true},
		{"no flash", Params{KeyLength: 64, ValueLength: 64}, "q8_0", false, "needs flash attention", true},
		{"unknown header", Params{}, "q4_0", true, "", true},
		{"narrow", Params{KeyLength: 8, ValueLength: 8}, "q4_0", true, "heads have 8", true},
		{"48 wide", Params{KeyLength: 48, ValueLength: 48}, "q8_0", true, "heads have 48", true},
		{"k != v", Params{KeyLength: 64, ValueLength: 32}, "q8_0", true, "differs from value head size 32", true},
		{"bad name", Params{}, "Q8_0", true, "not one of", false},
	} {
		err := KVCacheCheck(c.p, c.typ, c.flash)
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
		if KVCacheQuantized(c.typ) != c.quantize {
			t.Errorf("%s: quantized = %v", c.name, !c.quantize)
		}
	}
}
