package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/modelgen"
)

// The exploit of a default install: a web page's text/plain POST (no CORS
// preflight) unloaded a model. It is refused, and the model stays loaded.
func TestCrossOriginUnloadRefused(t *testing.T) {
	e := mainServer(t)
	if a := post(t, e.url+"/load_model", `{"model_name": "story"}`); a.Status != 200 {
		t.Fatalf("load: %d %s", a.Status, a.Body)
	}
	for _, c := range []struct {
		name string
		hdr  [][2]string
		code string
	}{
		{"foreign origin", [][2]string{{"Origin", "http://evil.example"}, {"Content-Type", "text/plain"}}, "forbidden_origin"},
		{"no origin, text/plain", [][2]string{{"Content-Type", "text/plain"}}, "unsupported_media_type"},
		{"rebound host", [][2]string{{"Host", "evil.example:8000"}, {"Content-Type", "text/plain"}}, "forbidden_host"},
	} {
		status := 403
		if c.code == "unsupported_media_type" {
			status = 415
		}
		wantError(t, send(t, "POST", e.url+"/unload_model", `{"model_name":"stories"}`, c.hdr), status, c.code)
		wantError(t, send(t, "POST", e.url+"/unload_model", `{"model_name":"story"}`, c.hdr), status, c.code)
		if m, _ := e.pool.Model("story"); m.State != pool.StateReady {
			t.Fatalf("%s: story is %s after the refused unload", c.name, m.State)
		}
	}
	// A rebound page cannot read /status either (it shows file paths).
	a := send(t, "GET", e.url+"/status", "", [][2]string{{"Host", "evil.example:8000"}})
	wantError(t, a, 403, "forbidden_host")
	if strings.Contains(string(a.Body), string(filepath.Separator)+"tmp") || strings.Contains(string(a.Body), ".gguf") {
		t.Fatalf("the refusal shows paths: %s", a.Body)
	}
}

// An error in the middle of a stream (the runner killed with SIGKILL after
// the first token) ends the stream with an error event whose type and
// code are set, on every streaming surface.
func TestStreamErrorAfterRunnerKilled(t *testing.T) {
	_, slow := genModels(t)
	spec := modelgen.Small()
	spec.ChatTemplate = modelgen.ChatML
	slowChat, err := modelgen.Cached(filepath.Join(os.TempDir(), "jetai-modelgen-cache"), spec)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, fmt.Sprintf(`
model "slow" {
  path     = %q
  context  = 4096
  parallel = 1
  threads  = 1
}
model "slowchat" {
  path     = %q
  context  = 4096
  parallel = 1
  threads  = 1
}`, slow, slowChat))
	killed := map[string]int{} // model -> the pid killed
	for _, c := range []struct{ path, model, body string }{
		{"/inference", "slow", `"prompt": "Once upon a time"`},
		{"/v1/completions", "slow", `"prompt": "Once upon a time"`},
		{"/v1/chat/completions", "slowchat", `"messages": [{"role": "user", "content": "Once upon a time"}]`},
	} {
		// The pool notices the last kill before the next request.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if m, _ := e.pool.Model(c.model); killed[c.model] == 0 || m.Pid != killed[c.model] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the pool did not notice the killed runner")
			}
		}
		t.Run(c.path, func(t *testing.T) {
			body := `{"model": "` + c.model + `", ` + c.body + `, "max_tokens": 4000, "ignore_eos": true, "stream": true}`
			resp, err := http.Post(e.url+c.path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			r := bufio.NewReader(resp.Body)
			if _, err := r.ReadString('\n'); err != nil { // the first chunk
				t.Fatal(err)
			}
			m, _ := e.pool.Model(c.model)
			if m.Pid == 0 {
				t.Fatalf("no runner pid: %+v", m)
			}
			if err := syscall.Kill(m.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed[c.model] = m.Pid
			var last map[string]any
			for {
				line, err := r.ReadString('\n')
				if d, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok && d != "[DONE]" {
					var ev map[string]any
					if json.Unmarshal([]byte(d), &ev) == nil {
						last = ev
					}
				}
				if err != nil {
					break
				}
			}
			ef, ok := last["error"].(map[string]any)
			if !ok {
				t.Fatalf("the stream did not end with an error event: %v", last)
			}
			if ef["type"] != "server_error" || ef["code"] != "runner_exited" || ef["message"] == "" {
				t.Fatalf("error event %v, want type server_error, code runner_exited", ef)
			}
		})
	}
}

// A client error that the runner finds (no chat template, a prompt longer
// than the context) is not a failure of the model.
func TestClientErrorsAreNotModelFailures(t *testing.T) {
	e := mainServer(t)
	before, _ := e.pool.Model("story")
	long := strings.Repeat("the cat sat on the mat. ", 60)
	for i := 0; i < 3; i++ {
		wantError(t, post(t, e.url+"/v1/chat/completions", `{"model": "story", "messages": [{"role": "user", "content": "Hello"}]}`), 400, "no_chat_template")
		wantError(t, post(t, e.url+"/inference", `{"model": "story", "prompt": "`+long+`"}`), 400, "context_overflow")
	}
	after, _ := e.pool.Model("story")
	if after.Failures != before.Failures {
		t.Fatalf("failures %d → %d after client errors", before.Failures, after.Failures)
	}
	perf := do(t, "GET", e.url+"/performance", "")
	if perf.Status != 200 {
		t.Fatalf("performance: %d %s", perf.Status, perf.Body)
	}
	if after.Requests <= before.Requests {
		t.Fatalf("the requests were not counted at all: %d → %d", before.Requests, after.Requests)
	}
}

// Hybrid selection names the alias the request used and the model it
// stands for.
func TestHybridReasonNamesAlias(t *testing.T) {
	e := mainServer(t)
	a := post(t, e.url+"/inference", `{"prompt": "Once upon a time", "preferred_model": "gpt2", "fallback": "auto", "max_tokens": 4}`)
	if a.Status != 200 || str(a.JSON, "model") != "story" {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	if r := str(a.JSON, "selection", "reason"); !strings.Contains(r, `"gpt2" (alias of "story")`) {
		t.Fatalf("reason %q does not name the alias", r)
	}
	long := strings.Repeat("the cat sat on the mat. ", 40)
	a = post(t, e.url+"/inference", `{"prompt": "`+long+`", "preferred_model": "gpt2", "fallback": "chat", "max_tokens": 4}`)
	if r := str(a.JSON, "selection", "reason"); a.Status != 200 || !strings.Contains(r, `preferred model "gpt2" (alias of "story") could not serve`) || !strings.Contains(r, `fallback "chat"`) {
		t.Fatalf("%d reason %q", a.Status, r)
	}
}
