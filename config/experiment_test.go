package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const experimentBase = `
model "q4" {
  path    = "a.gguf"
  aliases = ["small"]
}
model "q8" { path = "b.gguf" }
`

func writeStandIns(t *testing.T, dir string) {
	t.Helper()
	for _, n := range []string{"a.gguf", "b.gguf"} {
		if err := os.WriteFile(filepath.Join(dir, n), ggufStandIn(64), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExperimentValid(t *testing.T) {
	dir := t.TempDir()
	writeStandIns(t, dir)
	c := parseIn(t, dir, experimentBase+`
experiment "assistant" {
  sticky = "header:X-Jetai-Session"
  variant "a" {
    model  = "small"
    weight = 90
  }
  variant "b" {
    model  = "q8"
    weight = 10
  }
}
experiment "shadowed" {
  mode = "shadow"
  variant "live" { model = "q4" }
  variant "candidate" { model = "q8" }
}
`)
	e, ok := c.Experiment("assistant")
	if !ok || e.Mode != ModeSplit || e.StickyHeader() != "X-Jetai-Session" || len(e.Variants) != 2 ||
		e.Variants[0] != (Variant{"a", "q4", 90}) || e.Variants[1] != (Variant{"b", "q8", 10}) {
		t.Fatalf("assistant = %+v", e)
	}
	s, _ := c.Experiment("shadowed")
	if s.Mode != ModeShadow || s.Sticky != StickyUser || s.Variants[0].Weight != DefaultVariantWeight {
		t.Fatalf("shadowed = %+v", s)
	}
}

func TestExperimentErrors(t *testing.T) {
	dir := t.TempDir()
	writeStandIns(t, dir)
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown model", `experiment "x" {
  variant "a" { model = "q4" }
  variant "b" { model = "nope" }
}`, `jetai.hcl:9:25: experiment "x", variant "b": model "nope" is not defined`},
		{"clash with model", `experiment "q8" {
  variant "a" { model = "q4" }
  variant "b" { model = "q8" }
}`, `jetai.hcl:7:12: experiment "q8" is the name of a model`},
		{"clash with alias", `experiment "small" {
  variant "a" { model = "q4" }
  variant "b" { model = "q8" }
}`, `jetai.hcl:7:12: experiment "small" is an alias of model "q4"`},
		{"zero weight", `experiment "x" {
  variant "a" {
    model = "q4"
    weight = 0
  }
  variant "b" { model = "q8" }
}`, `jetai.hcl:10:14: experiment "x", variant "a": weight is 0`},
		{"negative weight", `experiment "x" {
  variant "a" { model = "q4" }
  variant "b" {
    model = "q8"
    weight = -5
  }
}`, `jetai.hcl:11:14: experiment "x", variant "b": weight is -5`},
		{"one variant", `experiment "x" {
  variant "a" { model = "q4" }
}`, `jetai.hcl:7:1: experiment "x" has 1 variant(s)`},
		{"bad mode", `experiment "x" {
  mode = "race"
  variant "a" { model = "q4" }
  variant "b" { model = "q8" }
}`, `jetai.hcl:8:10: experiment "x": mode "race"`},
		{"bad sticky", `experiment "x" {
  sticky = "cookie"
  variant "a" { model = "q4" }
  variant "b" { model = "q8" }
}`, `jetai.hcl:8:12: experiment "x": sticky "cookie"`},
		{"bad header", `experiment "x" {
  sticky = "header:"
  variant "a" { model = "q4" }
  variant "b" { model = "q8" }
}`, `jetai.hcl:8:12: experiment "x": sticky "header:" must name a header`},
		{"twice", `experiment "x" {
  variant "a" { model = "q4" }
  variant "b" { model = "q8" }
}
experiment "x" {
  variant "a" { model = "q4" }
  variant "b" { model = "q8" }
}`, `jetai.hcl:11:12: experiment "x" is defined twice`},
		{"variant twice", `experiment "x" {
  variant "a" { model = "q4" }
  variant "a" { model = "q8" }
}`, `jetai.hcl:9:11: experiment "x": variant "a" is defined twice`},
		{"reserved", `experiment "auto" {
  variant "a" { model = "q4" }
  variant "b" { model = "q8" }
}`, `jetai.hcl:7:12: experiment name "auto" is reserved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(experimentBase+tc.src), filepath.Join(dir, "jetai.hcl"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestResponsesConfig(t *testing.T) {
	dir := t.TempDir()
	writeStandIns(t, dir)
	c := parseIn(t, dir, experimentBase)
	if c.Cache.Responses != DefaultResponses || c.Models[0].CacheResponses != DefaultCacheResponses {
		t.Fatalf("defaults: %+v %v", c.Cache, c.Models[0].CacheResponses)
	}
	c = parseIn(t, dir, `cache {
  responses    = "64MiB"
  response_ttl = "10m"
}
model "q4" {
  path            = "a.gguf"
  cache_responses = false
}`)
	if c.Cache.Responses != 64*MiB || c.Cache.ResponseTTL.Minutes() != 10 || c.Models[0].CacheResponses {
		t.Fatalf("got %+v %v", c.Cache, c.Models[0].CacheResponses)
	}
	_, err := Parse([]byte(`cache { responses = "lots" }
model "q4" { path = "a.gguf" }`), filepath.Join(dir, "jetai.hcl"))
	if err == nil || !strings.Contains(err.Error(), "jetai.hcl:1:21: responses") {
		t.Fatalf("bad size: %v", err)
	}
}

// TestExperimentDiff: a weight change is a live change of the experiments.
func TestExperimentDiff(t *testing.T) {
	dir := t.TempDir()
	writeStandIns(t, dir)
	exp := func(w int) string {
		return experimentBase + `experiment "x" {
  variant "a" { model = "q4" }
  variant "b" {
    model  = "q8"
    weight = ` + strings.Repeat("1", w) + `
  }
}
cache { responses = "1MiB" }`
	}
	p := Diff(parseIn(t, dir, exp(1)), parseIn(t, dir, exp(2)))
	if len(p.Live) != 1 || p.Live[0].Field != "experiments" || !strings.Contains(p.Live[0].New, "b=q8:11") || len(p.Restarted) != 0 {
		t.Fatalf("plan %+v", p)
	}
}
