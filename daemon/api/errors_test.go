package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/jetai/jetai/daemon/pool"
)

// TestErrorForCoded: an error that carries its own code and status (here
// a model failed by the crash limit) reaches the client with them and its
// message, wrapped or not.
func TestErrorForCoded(t *testing.T) {
	mf := &pool.ModelFailedError{Model: "m", Crashes: 3, Interval: 60e9, Cause: "ggml.c:1: GGML_ASSERT(x) failed"}
	for _, err := range []error{mf, fmt.Errorf("complete: %w", mf)} {
		e := errorFor(context.Background(), err, 0)
		if e.Status != http.StatusServiceUnavailable || e.Code != "model_failed" || e.Message != err.Error() {
			t.Errorf("%v: %+v", err, e)
		}
	}
}
