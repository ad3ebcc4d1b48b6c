package bench

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/jetai/jetai/internal/testmodel"
)

// TestSpecBounds runs the bounds on stories260K: the oracle's drafts are
// all accepted, the always-wrong proposer's none, and the output is the
// one without drafts either way.
func TestSpecBounds(t *testing.T) {
	var out bytes.Buffer
	cfg := SpecConfig{Large: testmodel.Path(t), Threads: 1, Repeats: 1, LargeGen: 48}
	rows, err := specBounds(context.Background(), cfg, 0.6)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		want := 0.0
		if strings.HasPrefix(r.Case, "oracle") {
			want = 1
		}
		if strings.HasPrefix(r.Case, "each draft right at 0.60") {
			// Right at 0.6 a token, counted up to each first rejection
			// and past it: between none and 0.6.
			if !r.Same || r.Drafted == 0 || r.Acceptance <= 0.1 || r.Acceptance >= 0.6 {
				t.Errorf("%+v", r)
			}
			continue
		}
		if !r.Same || r.Off <= 0 || r.On <= 0 || (r.Drafted > 0 && r.Acceptance != want) {
			t.Errorf("%+v", r)
		}
		if strings.Contains(r.Case, "adaptation off") && r.Drafted == 0 {
			t.Errorf("always wrong drafted nothing: %+v", r)
		}
	}
	PrintSpec(&out, rows, cfg)
	if !strings.Contains(out.String(), "oracle, max_draft 8") {
		t.Fatalf("table:\n%s", out.String())
	}
	if r := (SpecRow{}); !math.IsNaN(func() float64 { r.accept(); return r.Acceptance }()) {
		t.Fatal("acceptance without drafts is a number")
	}
}
