package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/daemon/systemd"
	"github.com/jetai/jetai/internal/testmodel"
)

// TestRequestIDInAnswerAndJournal: every answer carries X-Request-Id (the
// client's when it sent a usable one), and a failed request's log entry
// has it as the journal field REQUEST_ID, next to MODEL (the name the
// client asked for when no model has it).
func TestRequestIDInAnswerAndJournal(t *testing.T) {
	var mu sync.Mutex
	var entries []map[string]string
	h := systemd.NewJournalHandler(slog.LevelInfo, "jetaid", func(msg string, p journal.Priority, vars map[string]string) error {
		mu.Lock()
		entries = append(entries, vars)
		mu.Unlock()
		return nil
	})
	cfg, err := config.Parse([]byte(`model "m" {
  path = "`+testmodel.Path(t)+`"
}`), filepath.Join(t.TempDir(), "jetai.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	fp := &fakePool{ready: true, complete: func(context.Context, string, func(string)) (runner.Result, error) {
		return runner.Result{}, runner.ErrExited
	}}
	hs := httptest.NewServer(api.New(api.Options{Pool: fp, Config: cfg, Log: slog.New(h)}).Handler())
	defer hs.Close()

	post := func(id string, body ...string) *http.Response {
		b := `{"prompt": "x", "model": "m"}`
		if len(body) > 0 {
			b = body[0]
		}
		req, _ := http.NewRequest("POST", hs.URL+"/inference", strings.NewReader(b))
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := post("client-42")
	if resp.StatusCode != 502 || resp.Header.Get("X-Request-Id") != "client-42" {
		t.Fatalf("status %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	resp = post("bad id with spaces")
	gen := resp.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(gen) {
		t.Fatalf("generated X-Request-Id %q", gen)
	}
	// An unknown model is logged under the name the client asked for, as
	// the preferred or the fallback model too.
	for _, body := range []string{
		`{"prompt": "x", "model": "gpt-9"}`,
		`{"prompt": "x", "preferred_model": "gpt-9"}`,
		`{"prompt": "x", "preferred_model": "m", "fallback": "gpt-9"}`,
	} {
		if resp := post("", body); resp.StatusCode != 404 {
			t.Fatalf("%s: status %d, want 404", body, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(entries) != 5 || entries[0]["REQUEST_ID"] != "client-42" || entries[0]["MODEL"] != "m" || entries[1]["REQUEST_ID"] != gen {
		t.Fatalf("journal entries: %v", entries)
	}
	for i, e := range entries[2:] {
		if e["MODEL"] != "gpt-9" || e["CODE"] != "model_not_found" {
			t.Errorf("unknown model entry %d: MODEL %q CODE %q, want gpt-9 and model_not_found (%v)", i, e["MODEL"], e["CODE"], e)
		}
	}
}
