package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testmodel"
)

// fakePool answers without runners, for the HTTP concerns and the mapping
// of the pool's errors onto statuses.
type fakePool struct {
	complete func(ctx context.Context, model string, onText func(string)) (runner.Result, error)
	models   func() []pool.ModelStatus
	ready    bool
}

func (f *fakePool) Resolve(n string) (string, bool) {
	if n == "m" || n == "alias" {
		return "m", true
	}
	return "", false
}
func (f *fakePool) Complete(ctx context.Context, model string, req runner.Request, onText func(string)) (runner.Result, error) {
	if f.complete != nil {
		return f.complete(ctx, model, onText)
	}
	if onText != nil {
		onText("hi")
	}
	return runner.Result{Text: "hi", FinishReason: "stop"}, nil
}
func (f *fakePool) Embed(ctx context.Context, model, input string) (runner.EmbedResult, error) {
	return runner.EmbedResult{Embedding: []float32{1}, Tokens: 1}, nil
}
func (f *fakePool) Load(ctx context.Context, model string) error   { return nil }
func (f *fakePool) Unload(ctx context.Context, model string) error { return nil }
func (f *fakePool) Models() []pool.ModelStatus {
	if f.models != nil {
		return f.models()
	}
	return []pool.ModelStatus{{Name: "m", State: "unloaded"}}
}
func (f *fakePool) Model(name string) (pool.ModelStatus, bool) {
	return pool.ModelStatus{Name: name}, name == "m"
}
func (f *fakePool) Status() pool.Status { return pool.Status{} }
func (f *fakePool) Optimize(ctx context.Context) pool.OptimizeReport {
	return pool.OptimizeReport{}
}
func (f *fakePool) Ready() bool                   { return f.ready }
func (f *fakePool) Performance() pool.Performance { return pool.Performance{} }
func (f *fakePool) Events() []pool.Event          { return nil }

// fakeServerWithFile serves the API over fp with a config of hcl plus one
// model "m" (the real tiny model's file, which validation wants to exist).
func fakeServerWithFile(t *testing.T, hcl string, fp *fakePool) (*api.Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(hcl+`
model "m" {
  path    = "`+testmodel.Path(t)+`"
  aliases = ["alias"]
}`), filepath.Join(dir, "jetai.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Options{Pool: fp, Config: cfg})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs.URL
}

func TestHealthStates(t *testing.T) {
	fp := &fakePool{ready: true}
	s, url := fakeServerWithFile(t, ``, fp)
	check := func(status int, word string) {
		t.Helper()
		a := do(t, "GET", url+"/health", "")
		if a.Status != status || str(a.JSON, "status") != word {
			t.Fatalf("health %d %s, want %d %s", a.Status, a.Body, status, word)
		}
	}
	check(503, "starting")
	s.SetState(api.StateServing)
	check(200, "ok")
	fp.ready = false
	check(503, "starting")
	fp.ready = true
	s.SetState(api.StateStopping)
	check(503, "stopping")
}

func TestAPIKeysAndCORS(t *testing.T) {
	_, url := fakeServerWithFile(t, `
server {
  api_keys     = ["sk-one", "sk-two"]
  cors_origins = ["http://app.example"]
}`, &fakePool{ready: true})
	// /health is open.
	if a := do(t, "GET", url+"/health", ""); a.Status == 401 {
		t.Fatal("health needs a key")
	}
	a := do(t, "GET", url+"/models", "")
	wantError(t, a, 401, "invalid_api_key")
	if a.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("no WWW-Authenticate")
	}
	wantError(t, do(t, "GET", url+"/models", "", "Authorization", "Bearer sk-three"), 401, "invalid_api_key")
	wantError(t, do(t, "GET", url+"/models", "", "Authorization", "sk-one"), 401, "invalid_api_key")
	for _, k := range []string{"sk-one", "sk-two"} {
		if a := do(t, "GET", url+"/models", "", "Authorization", "Bearer "+k); a.Status != 200 {
			t.Fatalf("key %s: %d %s", k, a.Status, a.Body)
		}
	}
	// Preflight from an allowed origin, without a key.
	a = do(t, "OPTIONS", url+"/v1/chat/completions", "", "Origin", "http://app.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if a.Status != 204 || a.Header.Get("Access-Control-Allow-Origin") != "http://app.example" ||
		!strings.Contains(a.Header.Get("Access-Control-Allow-Methods"), "POST") || a.Header.Get("Access-Control-Allow-Headers") == "" {
		t.Fatalf("preflight: %d %v", a.Status, a.Header)
	}
	// The actual request carries the header too.
	a = do(t, "POST", url+"/inference", `{"prompt": "x", "model": "m"}`, "Origin", "http://app.example", "Authorization", "Bearer sk-one")
	if a.Status != 200 || a.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Fatalf("cors request: %d %v %s", a.Status, a.Header, a.Body)
	}
	// Another origin gets no CORS headers, and its preflight is refused.
	a = do(t, "OPTIONS", url+"/inference", "", "Origin", "http://evil.example", "Access-Control-Request-Method", "POST")
	if a.Status != 403 || a.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign preflight: %d %v", a.Status, a.Header)
	}
}

func TestPanicIsA500AndServingGoesOn(t *testing.T) {
	n := 0
	fp := &fakePool{ready: true, models: func() []pool.ModelStatus {
		n++
		if n == 1 {
			panic("boom")
		}
		return nil
	}}
	_, url := fakeServerWithFile(t, ``, fp)
	wantError(t, do(t, "GET", url+"/models", ""), 500, "internal")
	if a := do(t, "GET", url+"/models", ""); a.Status != 200 {
		t.Fatalf("after panic: %d %s", a.Status, a.Body)
	}
}

func TestPoolErrorsMapToStatuses(t *testing.T) {
	var err error
	fp := &fakePool{ready: true, complete: func(ctx context.Context, model string, _ func(string)) (runner.Result, error) {
		return runner.Result{}, err
	}}
	_, url := fakeServerWithFile(t, ``, fp)
	cases := []struct {
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{&pool.QueueFullError{Model: "m", Retry: 3 * time.Second}, 429, "queue_full", "3"},
		{&pool.QueueFullError{Model: "m", Total: true, Retry: 1500 * time.Millisecond}, 503, "queue_full", "2"},
		{&pool.NoRoomError{Model: "m"}, 507, "no_room", ""},
		{&pool.LoadFailedError{Model: "m", Err: errors.New("bad file")}, 502, "load_failed", ""},
		{&pool.UnavailableError{Model: "m", File: &config.FileError{Path: "/x.gguf", Problem: config.FileMissing}}, 503, "model_unavailable", ""},
		{pool.ErrUnknownModel, 404, "model_not_found", ""},
		{pool.ErrClosed, 503, "stopping", "5"},
		{&runner.RequestError{Status: 400, Reason: runner.CodeContextOverflow, Msg: "too long"}, 400, "context_overflow", ""},
		{&runner.RequestError{Status: 429, Reason: runner.CodeBusy, Msg: "busy"}, 429, "busy", "1"},
		{runner.ErrExited, 502, "runner_exited", ""},
		{&pool.ThrottledError{Model: "m", Level: "shed", Retry: 30 * time.Second}, 503, "thermal_shed", "30"},
		{&runner.RequestError{Status: 200, Reason: "odd", Msg: "odd"}, 502, "odd", ""},
	}
	for _, c := range cases {
		err = c.err
		for _, path := range []string{"/inference", "/v1/completions"} {
			a := post(t, url+path, `{"prompt": "x", "model": "m"}`)
			wantError(t, a, c.status, c.code)
			if a.Header.Get("Retry-After") != c.retryAfter {
				t.Fatalf("%v: Retry-After %q, want %q", c.err, a.Header.Get("Retry-After"), c.retryAfter)
			}
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	fp := &fakePool{ready: true, complete: func(ctx context.Context, model string, _ func(string)) (runner.Result, error) {
		<-ctx.Done()
		return runner.Result{}, ctx.Err()
	}}
	_, url := fakeServerWithFile(t, `
server {
  request_timeout = "200ms"
}`, fp)
	start := time.Now()
	a := post(t, url+"/inference", `{"prompt": "x", "model": "m"}`)
	wantError(t, a, 504, "timeout")
	if time.Since(start) > 5*time.Second || !strings.Contains(str(a.JSON, "error", "message"), "request_timeout") {
		t.Fatalf("%v %s", time.Since(start), a.Body)
	}
}

// A stream that fails after its first token ends with an error event.
func TestStreamErrorAfterFirstToken(t *testing.T) {
	fp := &fakePool{ready: true}
	streamed := true
	fp.complete = func(ctx context.Context, model string, onText func(string)) (runner.Result, error) {
		if streamed && onText != nil {
			onText("Once \"upon\"\n\u2028")
		}
		return runner.Result{}, runner.ErrExited
	}
	_, url := fakeServerWithFile(t, ``, fp)
	a := post(t, url+"/inference", `{"prompt": "x", "model": "m", "stream": true}`)
	evs := sseEvents(t, a.Body)
	if a.Status != 200 || len(evs) != 2 || evs[0] != `{"text":"Once \"upon\"\n\u2028"}` || !strings.Contains(evs[1], `"runner_exited"`) {
		t.Fatalf("%d %q", a.Status, evs)
	}
	a = post(t, url+"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "model": "m", "stream": true}`)
	evs = sseEvents(t, a.Body)
	if a.Status != 200 || len(evs) != 3 || !strings.Contains(evs[0], `"role":"assistant"`) || !strings.Contains(evs[1], `"error"`) || evs[2] != "[DONE]" {
		t.Fatalf("%d %q", a.Status, evs)
	}
	// Nothing streamed yet: a plain HTTP error.
	streamed = false
	wantError(t, post(t, url+"/inference", `{"prompt": "x", "model": "m", "stream": true}`), 502, "runner_exited")
}
