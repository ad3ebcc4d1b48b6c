package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/jetai/jetai/admin"
)

// The admin socket's experiment endpoints (admin.Experimenter).
var _ admin.Experimenter = adminBackend{}

// Experiments converts the API's experiment reports to the wire type.
// package experiment's Report and admin.ExperimentReport have the same
// JSON form (TestExperimentsWire checks it), so the conversion goes
// through JSON rather than by a copy of each field.
func (b adminBackend) Experiments(ctx context.Context, name string) ([]admin.ExperimentReport, error) {
	rs, ok := b.d.api.Experiments(name)
	if !ok {
		return nil, admin.Errorf(http.StatusNotFound, admin.CodeNotFound, "no experiment %q; jetai-ctl experiments lists them", name)
	}
	raw, err := json.Marshal(rs)
	if err != nil {
		return nil, fmt.Errorf("experiments: %w", err)
	}
	out := []admin.ExperimentReport{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("experiments: %w", err)
	}
	return out, nil
}
