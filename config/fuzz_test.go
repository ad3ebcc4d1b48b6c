package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no input may panic, and the result is either a Config or a
// non-empty Diagnostics whose every line has a "file:" prefix. Seeds are the
// fixtures under testdata/config and the packaged sample.
//
//	go test ./config -run '^$' -fuzz FuzzParse -fuzztime 5m
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(fixtures, "*.hcl"))
	seeds = append(seeds, samplePath)
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
		_ = Diff(c, c).String()
		_ = Diff(nil, c)
	})
}
