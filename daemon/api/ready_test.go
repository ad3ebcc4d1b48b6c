package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/pool"
)

// statesPool is a fakePool whose model "m" (alias "alias") is in a state
// the test sets.
type statesPool struct {
	*fakePool
	state atomic.Value // string
}

func (p *statesPool) Models() []pool.ModelStatus {
	return []pool.ModelStatus{{Name: "m", State: p.state.Load().(string)}}
}

func (p *statesPool) Model(name string) (pool.ModelStatus, bool) {
	if name != "m" {
		return pool.ModelStatus{}, false
	}
	return p.Models()[0], true
}

// TestReady walks /ready through every reason it gives: starting,
// draining, shedding, no model that can load, ?model not ready, unknown
// model; each answer is JSON with the code that says why, and it answers
// without an API key and to a Host that names no machine (probes).
func TestReady(t *testing.T) {
	fp := &statesPool{fakePool: &fakePool{ready: true}}
	fp.state.Store(pool.StateUnloaded)
	var shed atomic.Bool
	cfg := parseConfig(t, `
server {
  api_keys = ["sk-x"]
}`)
	s := api.New(api.Options{Pool: fp, Config: cfg, Shedding: func() (bool, string) {
		return shed.Load(), "tj-thermal 91.0 °C is at or above the hard limit 90 °C"
	}})
	h := s.Handler()
	get := func(target string) recorder {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://lb-probe.internal.example"+target, nil)
		return serve(h, req)
	}
	check := func(target string, status int, code string) {
		t.Helper()
		rec := get(target)
		if rec.Code != status {
			t.Fatalf("GET %s: %d %s, want %d", target, rec.Code, rec.Body, status)
		}
		if rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: Content-Type %q", target, rec.Header().Get("Content-Type"))
		}
		if status == 200 {
			if got := rec.json(t)["status"]; got != "ready" {
				t.Fatalf("GET %s: status %v in %s", target, got, rec.Body)
			}
			return
		}
		if got := errCode(rec.json(t)); got != code {
			t.Fatalf("GET %s: code %q in %s, want %q", target, got, rec.Body, code)
		}
		if status == 503 && rec.Header().Get("Retry-After") == "" {
			t.Fatalf("GET %s: 503 without Retry-After", target)
		}
	}

	check("/ready", 503, api.ReadyStarting)
	s.SetState(api.StateServing)
	check("/ready", 200, "")
	check("/ready?model=alias", 200, "")
	if b := get("/ready?model=alias").json(t); b["model"] != "m" || b["state"] != "unloaded" {
		t.Fatalf("?model=alias: %v", b)
	}
	check("/ready?model=nope", 404, "model_not_found")

	fp.ready = false // the pool not started (or closing)
	check("/ready", 503, api.ReadyStarting)
	fp.ready = true

	for _, st := range []string{pool.StateFailed, pool.StateUnavailable} {
		fp.state.Store(st)
		check("/ready", 503, api.ReadyNoModel)
		check("/ready?model=m", 503, api.ReadyModelNotReady)
	}
	for _, st := range []string{pool.StateLoading, pool.StateReady, pool.StateUnloading} {
		fp.state.Store(st)
		check("/ready?model=m", 200, "")
	}

	shed.Store(true)
	check("/ready", 503, api.ReadyShedding)
	check("/ready?model=m", 503, api.ReadyShedding)
	if msg := errMessage(get("/ready").json(t)); msg == "" || !strings.Contains(msg, "hard limit 90") {
		t.Fatalf("shedding message %q does not carry the policy's reason", msg)
	}
	shed.Store(false)
	check("/ready", 200, "")

	s.SetState(api.StateStopping)
	check("/ready", 503, api.ReadyDraining)
	// /health keeps its own answer: liveness is not readiness.
	if rec := get("/health"); rec.Code != 503 {
		t.Fatalf("/health while stopping: %d", rec.Code)
	}
}

type recorder struct{ *httptest.ResponseRecorder }

func serve(h http.Handler, req *http.Request) recorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return recorder{rec}
}

func (r recorder) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %q", r.Body)
	}
	return m
}

func errCode(m map[string]any) string    { return str(m, "error", "code") }
func errMessage(m map[string]any) string { return str(m, "error", "message") }
