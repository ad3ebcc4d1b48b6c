package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/modelgen"
)

// TestCrashLimitOverHTTP: a model whose runner llama.cpp aborts (NaN
// weights) answers each request with the assertion, not the runner's log;
// after three crashes it is failed: 503 model_failed at once, /models
// shows failed with the cause, and jetai-ctl load (without --wait) starts
// a retry instead of reporting the old failure.
func TestCrashLimitOverHTTP(t *testing.T) {
	dir := t.TempDir()
	spec := modelgen.Tiny()
	spec.NaN = true
	model := filepath.Join(dir, "nan.gguf")
	if err := modelgen.Generate(model, spec); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	conf := filepath.Join(dir, "jetai.hcl")
	os.WriteFile(conf, []byte(fmt.Sprintf("server {\n  admin_socket = %q\n}\nmodel \"nan\" {\n  path = %q\n  context = 256\n  parallel = 1\n  threads = 1\n}\n", sock, model)), 0o644)
	url := testdaemon.Start(t, daemon.Options{ConfigPath: conf, SocketDir: dir}).URL

	type answer struct {
		status int
		Error  struct {
			Message, Type, Code string
		} `json:"error"`
	}
	infer := func() answer {
		t.Helper()
		resp, err := http.Post(url+"/inference", "application/json", strings.NewReader(`{"model":"nan","prompt":"Once upon a time","max_tokens":4}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		a := answer{status: resp.StatusCode}
		json.NewDecoder(resp.Body).Decode(&a)
		return a
	}
	state := func() (string, string) {
		t.Helper()
		resp, err := http.Get(url + "/models")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Models []struct {
				Name, State string
				LastError   string `json:"last_error"`
			} `json:"models"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		for _, m := range body.Models {
			if m.Name == "nan" {
				return m.State, m.LastError
			}
		}
		t.Fatalf("no model nan in /models")
		return "", ""
	}
	for i := range 3 {
		a := infer()
		if a.status != http.StatusBadGateway || a.Error.Code != "runner_exited" || !strings.Contains(a.Error.Message, "failed") || strings.Contains(a.Error.Message, "CPU.0.") {
			t.Fatalf("request %d: %d %+v", i, a.status, a.Error)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if s, _ := state(); s != "ready" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the crash was not noticed")
			}
		}
	}
	a := infer()
	if a.status != http.StatusServiceUnavailable || a.Error.Code != "model_failed" || a.Error.Type == "" || !strings.Contains(a.Error.Message, "Assertion") {
		t.Fatalf("after 3 crashes: %d %+v", a.status, a.Error)
	}
	if s, why := state(); s != "failed" || !strings.Contains(why, "Assertion") {
		t.Fatalf("/models: %s %q", s, why)
	}
	code, out, errs := ctlRun(sock, "load", "nan")
	if code != 0 || strings.Contains(out, "failed") {
		t.Fatalf("jetai-ctl load: exit %d\n%s%s", code, out, errs)
	}
}
