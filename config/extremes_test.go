package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestExtremeValues: values at and past the ends of every numeric range
// give a diagnostic at the value's file:line:col (or, where they are
// meaningful, are accepted), never a panic or an allocation sized by them.
func TestExtremeValues(t *testing.T) {
	model := func(extra string) string {
		return fmt.Sprintf("model \"a\" {\n  path = %q\n%s\n}\n", "/nonexistent/a.gguf", extra)
	}
	cases := []struct {
		name, hcl, want string // want "": accepted
	}{
		{"context max int32", model("  context = 2147483647"), "x.hcl:3:13: context is 2147483647"},
		{"context past int64", model("  context = 99999999999999999999"), "x.hcl:3:13:"},
		{"parallel", model("  parallel = 100000"), "x.hcl:3:14: parallel is 100000"},
		{"threads negative", model("  threads = -1"), "x.hcl:3:13: threads is -1"},
		{"budget 1B", "memory {\n  budget = \"1B\"\n}\n" + model(""), "x.hcl:2:12: memory reserve (512MiB) must be smaller than the memory budget (1B)"},
		{"budget 1000TiB", "memory {\n  budget = \"1000TiB\"\n}\n" + model(""), ""},
		{"budget past int64", "memory {\n  budget = \"8388608TiB\"\n}\n" + model(""), `x.hcl:2:12: budget: size "8388608TiB" is too large`},
		{"keep_alive negative means forever", model("  keep_alive = \"-5m\""), ""},
		{"keep_alive past int64", model("  keep_alive = \"9999999999h\""), "x.hcl:3:16:"},
		{"self alias", model("  aliases = [\"a\"]"), ""},
		{"max_connections 0", "server {\n  max_connections = 0\n}\n" + model(""), "x.hcl:2:21: max_connections is 0"},
		{"queue negative", "server {\n  queue_total = -1\n}\n" + model(""), "x.hcl:2:17: queue_total is -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.hcl), "x.hcl")
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want a diagnostic containing %q", err, c.want)
			}
		})
	}
}

// TestManyModels: 10,000 model blocks parse (jetaid started on such a file
// in about 5 s on the shared 2-core box, /models answering 5 MB in 0.2 s).
func TestManyModels(t *testing.T) {
	var b strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&b, "model \"m%d\" {\n  path = \"/nonexistent/m.gguf\"\n}\n", i)
	}
	c, err := Parse([]byte(b.String()), "x.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Models) != 10000 {
		t.Fatalf("%d models", len(c.Models))
	}
}

// TestNotAConfig: a file that cannot be a config (a GGUF model given as
// the config, a binary, a runaway file) gets one diagnostic at 1:1 before
// HCL parses it (HCL alone takes 3.5 GB of memory and 14 s over a 52 MiB
// GGUF, and gives 39,000 diagnostics for a 1.2 MB one). Past 100 errors
// the rest are counted, not listed.
func TestNotAConfig(t *testing.T) {
	dups := strings.Repeat("model \"a\" {}\n", 300)
	cases := []struct {
		name, src, want string
	}{
		{"gguf", "GGUF\x03\x00\x00\x00" + strings.Repeat("\x00", 64), "x.hcl:1:1: this is a GGUF model file, not a config"},
		{"binary", "\x7fELF\x02\x01\x01\x00" + strings.Repeat("\x00", 64), "x.hcl:1:1: the file is not UTF-8 text"},
		{"latin-1", "# caf\xe9\n", "x.hcl:1:1: the file is not UTF-8 text"},
		{"too large", "# " + strings.Repeat("x", MaxFileSize) + "\n", "x.hcl:1:1: the file is over 1.0 MiB"},
		{"many errors", dups, "x.hcl: and 499 more errors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src), "x.hcl")
			ds, ok := err.(Diagnostics)
			if !ok || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a diagnostic containing %q", err, c.want)
			}
			if len(ds) > maxShown+1 {
				t.Fatalf("%d diagnostics, want at most %d", len(ds), maxShown+1)
			}
		})
	}
}

// TestTooManyModels: past MaxModels model blocks the file is refused at
// the first block over the limit, before HCL decodes them (75,000 empty
// blocks peaked at 290 MB of RSS in the daemon).
func TestTooManyModels(t *testing.T) {
	src := strings.Repeat("model \"a\" {}\n", MaxModels+5)
	_, err := Parse([]byte(src), "x.hcl")
	want := fmt.Sprintf("x.hcl:%d:1: more than %d model blocks", MaxModels+1, MaxModels)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %.300v, want %q", err, want)
	}
	if ds := err.(Diagnostics); len(ds) != 1 {
		t.Fatalf("%d diagnostics, want 1", len(ds))
	}
}
