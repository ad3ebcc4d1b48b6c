package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon/pool"
)

// callJSON sends url and decodes its JSON body.
func callJSON(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, body not JSON: %v", method, url, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// TestMissingModelFile: a model whose file is not there yet does not stop
// jetaid. It starts (health 200, the config warning logged with
// file:line:col), the other model serves, the missing one is listed as
// unavailable in /models and /status and answers 503 with a JSON error that
// names the file; a reload while the file is still missing is applied; once
// the file is copied into place the next request loads it.
func TestMissingModelFile(t *testing.T) {
	models := t.TempDir()
	late := filepath.Join(models, "late.gguf")
	lateBlock := func(extra string) string {
		return fmt.Sprintf("model \"late\" {\n  path = %q\n  context = 256\n  parallel = 1\n  threads = 1\n  preload = true\n%s\n}\n", late, extra)
	}
	e := startReload(t, func() string { return model("ok", "preload = true") + lateBlock("") }, false)
	e.waitFor("ok to load", func() bool { return e.model("ok").State == pool.StateReady })

	// Line 10 column 10 is late's path value (ok's block has 9 lines).
	if l := e.log.String(); !strings.Contains(l, e.conf+`:10:10: warning: model file `+late+` of model \"late\" does not exist`) {
		t.Errorf("no config warning with file:line:col in the log:\n%s", l)
	}
	if m := e.model("late"); m.State != pool.StateUnavailable || !strings.Contains(m.LastError, late) {
		t.Fatalf("late: %+v", m)
	}
	code, st := callJSON(t, "GET", e.base+"/status", "")
	ms := st["models"].(map[string]any)
	if code != 200 || st["status"] != "ok" || ms["by_state"].(map[string]any)["unavailable"] != 1.0 ||
		!strings.Contains(fmt.Sprint(ms["unavailable"].(map[string]any)["late"]), late+" does not exist") {
		t.Fatalf("/status: %d %v", code, st)
	}
	code, list := callJSON(t, "GET", e.base+"/models", "")
	if !strings.Contains(fmt.Sprint(list), "state:unavailable") || code != 200 {
		t.Errorf("/models: %d %v", code, list)
	}

	for _, c := range []struct{ path, body string }{
		{"/inference", `{"prompt": "Once upon a time", "model": "late", "max_length": 8}`},
		{"/v1/chat/completions", `{"model": "late", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}`},
		{"/load_model", `{"model_name": "late"}`},
	} {
		code, body := callJSON(t, "POST", e.base+c.path, c.body)
		ej, _ := body["error"].(map[string]any)
		if code != 503 || ej["code"] != "model_unavailable" || !strings.Contains(fmt.Sprint(ej["message"]), late+" does not exist") {
			t.Errorf("%s for the missing model: %d %v", c.path, code, body)
		}
	}
	if code := e.infer("ok"); code != 200 {
		t.Fatalf("the other model: %d", code)
	}

	// A reload while the file is still missing is applied, not rejected,
	// and so is one that adds another model without a file.
	e.write(model("ok", "preload = true\npriority = 60") + lateBlock("") +
		"model \"later\" {\n  path = \"later.gguf\"\n}\n")
	res := e.d.Reload(context.Background(), "test")
	if !res.OK || res.Generation != 2 || strings.Join(res.Plan.Added, ",") != "later" ||
		!strings.Contains(strings.Join(res.Diagnostics, "\n"), `model "later" does not exist`) {
		t.Fatalf("reload with missing files: %+v", res)
	}
	if m := e.model("later"); m.State != pool.StateUnavailable {
		t.Errorf("later after the reload: %+v", m)
	}
	if m := e.model("ok"); m.Priority != 60 || m.State != pool.StateReady {
		t.Errorf("ok after the reload: %+v", m)
	}

	// The file arrives: the next request loads it.
	b, err := os.ReadFile(tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(late, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := e.infer("late"); code != 200 {
		t.Fatalf("request once the file is there: %d", code)
	}
	lateNow := e.model("late")
	if lateNow.State != pool.StateReady || lateNow.LastError != "" {
		t.Errorf("late once loaded: %+v", lateNow)
	}

	// The next reload records the file that appeared ("file" is a restart
	// change in the plan), but the runner already runs that very file: it
	// is not restarted.
	e.write(model("ok", "preload = true\npriority = 70") + lateBlock("") +
		"model \"later\" {\n  path = \"later.gguf\"\n}\n")
	res = e.d.Reload(context.Background(), "test")
	if !res.OK || len(res.Plan.Restarted) != 1 || res.Plan.Restarted[0].Name != "late" ||
		!strings.Contains(strings.Join(res.Notes, "\n"), `model "late" already runs the file now recorded`) {
		t.Fatalf("reload after the file appeared: %+v", res)
	}
	if m := e.model("late"); m.Pid != lateNow.Pid || m.State != pool.StateReady || m.Reload != "" {
		t.Errorf("late was restarted: pid %d (was %d), %s, reload %q", m.Pid, lateNow.Pid, m.State, m.Reload)
	}
	if code := e.infer("late"); code != 200 {
		t.Errorf("late after the reload: %d", code)
	}
}
