package config

import (
	"os"
	"path/filepath"
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

// TestRefusedAlike: a file that a reload refuses (empty, white space only,
// unreadable, missing) is refused by Load, Check and CheckSource with the
// same diagnostic, so jetaid's start, --check-config, the admin validate
// command and a reload agree.
func TestRefusedAlike(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path string
		want       string // the one diagnostic, after "PATH: "
	}{
		{"empty", write("empty.hcl", "", 0o644), "the config file is empty"},
		{"white space", write("blank.hcl", " \n\t\n\n", 0o644), "the config file is empty"},
		{"missing", filepath.Join(dir, "nope.hcl"), "the config file does not exist"},
		{"a directory", dir, "cannot read the config file: read " + dir + ": is a directory"},
	}
	if os.Geteuid() != 0 { // root reads a mode 000 file
		tests = append(tests, struct{ name, path, want string }{"unreadable", write("secret.hcl", "server {}\n", 0), "the config file cannot be read: permission denied"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.path + ": " + tc.want
			if _, err := Load(tc.path); err == nil || err.Error() != want {
				t.Errorf("Load: %v, want %q", err, want)
			}
			r := Check(tc.path)
			if r.OK || len(r.Diagnostics) != 1 || r.Diagnostics[0] != want {
				t.Errorf("Check: ok %v, diagnostics %q, want [%q]", r.OK, r.Diagnostics, want)
			}
			if src, err := os.ReadFile(tc.path); err == nil {
				if r := CheckSource(src, tc.path); r.OK || len(r.Diagnostics) != 1 || r.Diagnostics[0] != want {
					t.Errorf("CheckSource: ok %v, diagnostics %q, want [%q]", r.OK, r.Diagnostics, want)
				}
			}
		})
	}
}
