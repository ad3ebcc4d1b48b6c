package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLogFormat(t *testing.T) {
	for _, c := range []struct {
		hcl, want, err string
	}{
		{"server {\n}\n", "text", ""},
		{"server {\n  log_format = \"json\"\n}\n", "json", ""},
		{"server {\n  log_format = \"text\"\n}\n", "text", ""},
		{"server {\n  log_format = \"JSONL\"\n}\n", "", `jetai.hcl:2:16: log_format "JSONL" is not one of text, json`},
	} {
		cfg, err := Parse([]byte(c.hcl), filepath.Join(t.TempDir(), "jetai.hcl"))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.hcl, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.hcl, err)
		}
		if cfg.Server.LogFormat != c.want {
			t.Errorf("%q: log_format %q, want %q", c.hcl, cfg.Server.LogFormat, c.want)
		}
	}
}

// A changed log_format takes effect at a restart: the reload says so.
func TestLogFormatNeedsRestart(t *testing.T) {
	dir := t.TempDir()
	a, err := Parse([]byte("server {\n}\n"), filepath.Join(dir, "jetai.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte("server {\n  log_format = \"json\"\n}\n"), filepath.Join(dir, "jetai.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range Diff(a, b).NeedsProcessRestart {
		found = found || f.Field == "server.log_format"
	}
	if !found {
		t.Fatalf("diff %+v does not ask a restart for server.log_format", Diff(a, b))
	}
}
