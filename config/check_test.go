package config

import (
	"strings"
	"testing"
)

// TestCheck: the report of a usable file, an invalid one and a missing one
// (what jetaid --check-config prints and the admin validate answers).
func TestCheck(t *testing.T) {
	tests := []struct {
		path  string
		ok    bool
		frags []string
	}{
		{fixture("valid_minimal.hcl"), true, []string{": ok (", "models"}},
		{fixture("invalid_duplicates.hcl"), false, []string{"invalid_duplicates.hcl:3:22: ", "invalid_duplicates.hcl: not usable"}},
		{fixture("nope.hcl"), false, []string{"nope.hcl: the config file does not exist", "nope.hcl: not usable"}},
	}
	for _, tc := range tests {
		r := Check(tc.path)
		if r.OK != tc.ok || (r.Config != nil) != tc.ok || (r.Hash != "") != tc.ok {
			t.Fatalf("%s: ok %v, config %v, hash %q", tc.path, r.OK, r.Config != nil, r.Hash)
		}
		out := r.String()
		for _, f := range tc.frags {
			if !strings.Contains(out, f) {
				t.Fatalf("%s: report lacks %q:\n%s", tc.path, f, out)
			}
		}
		if !tc.ok && len(r.Diagnostics) == 0 {
			t.Fatalf("%s: no diagnostics", tc.path)
		}
	}
	src := "server {\n  listen = 8000\n}\n"
	if r := CheckSource([]byte(src), "x.hcl"); r.OK || !strings.HasPrefix(r.Diagnostics[0], "x.hcl:2:") {
		t.Fatalf("CheckSource: %+v", r)
	}
}
