package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jetai/jetai/internal/testmodel"
)

// TestExperimentInModels: an experiment's name is listed by /v1/models and
// found by /v1/models/{name}, as clients that check a model name expect.
func TestExperimentInModels(t *testing.T) {
	story := testmodel.Path(t)
	e := start(t, fmt.Sprintf(`
model "story" {
  path    = %q
  context = 256
}
experiment "ab" {
  variant "a" { model = "story" }
  variant "b" { model = "story" }
}
`, story))
	a := do(t, "GET", e.url+"/v1/models/ab", "")
	if a.Status != 200 || a.JSON["id"] != "ab" || a.JSON["state"] != "experiment" {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	if l := do(t, "GET", e.url+"/v1/models", ""); !strings.Contains(string(l.Body), `"id":"ab"`) {
		t.Fatalf("list: %s", l.Body)
	}
}
