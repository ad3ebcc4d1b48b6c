package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse (decode, defaults and validation): no input may panic, and the
// result is either a Config or a non-empty Diagnostics whose every line has
// a "file:" prefix; a Config diffs against itself as empty and against
// nothing as all added. Seeds are the fixtures under testdata/config and
// testdata/jetaid and the packaged sample.
//
//	go test ./config -run '^$' -fuzz FuzzParse -fuzztime 5m
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(fixtures, "*.hcl"))
	daemonSeeds, _ := filepath.Glob(filepath.Join(fixtures, "..", "jetaid", "*.hcl*"))
	seeds = append(append(seeds, daemonSeeds...), samplePath)
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Relative model paths resolve against the fixtures, so inputs reach the
	// file and budget checks.
	name := filepath.Join(fixtures, "fuzz.hcl")
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, name)
		if err != nil {
			ds, ok := err.(Diagnostics)
			if !ok || len(ds) == 0 || c != nil {
				t.Fatalf("error %T %v with config %v", err, err, c != nil)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, name+":") {
					t.Fatalf("diagnostic without file prefix: %q", line)
				}
			}
			return
		}
		if p := Diff(c, c); !p.Empty() {
			t.Fatalf("a config differs from itself: %s", p)
		}
		if p := Diff(nil, c); len(p.Added) != len(c.Models) {
			t.Fatalf("from nothing: %s", p)
		}
		_ = CheckSource(src, name).String()
	})
}
