package config

import (
	"strings"
	"testing"
)

func TestAllowedHosts(t *testing.T) {
	for _, c := range []struct {
		entry string
		ok    bool
	}{
		{"*", true},
		{"jetson.lan", true},
		{"Jetson.LAN.", true},
		{"*.lan", true},
		{"192.168.1.20", true},
		{"fe80::1", true},
		{"[fe80::1]", true},
		{"jetson", true},
		{"", false},
		{"http://jetson.lan", false},
		{"jetson.lan:8000", false},
		{"*", true},
		{"*.", false},
		{"jet son", false},
		{"-jetson.lan", false},
		{"jetson..lan", false},
		{"a.*.lan", false},
	} {
		src := "server {\n  allowed_hosts = [\"ok.lan\", \"" + c.entry + "\"]\n}\n"
		cfg, err := Parse([]byte(src), "/etc/jetai/jetai.hcl")
		if c.ok {
			if err != nil {
				t.Errorf("%q: %v", c.entry, err)
			} else if got := cfg.Server.AllowedHosts; len(got) != 2 || got[1] != c.entry {
				t.Errorf("%q: allowed_hosts %q", c.entry, got)
			}
			continue
		}
		// The diagnostic points at the entry itself: line 2, column 30.
		if err == nil || !strings.Contains(err.Error(), "/etc/jetai/jetai.hcl:2:30: allowed host "+quoteHCL(c.entry)) {
			t.Errorf("%q: error %v, want one at 2:30 naming it", c.entry, err)
		}
	}
}

func quoteHCL(s string) string { return `"` + s + `"` }
