package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testhub"
	"github.com/jetai/jetai/internal/testmodel"
)

// ollamaCall sends an /api request and returns the status and the body's
// JSON lines (one for a plain answer, one per line of a stream).
func ollamaCall(t *testing.T, method, url, body string) (int, []map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: a line is not JSON: %v\n%s", method, url, err, sc.Text())
		}
		lines = append(lines, m)
	}
	return resp.StatusCode, lines
}

// TestOllamaPullAndDelete: Ollama's /api/pull and /api/delete against a
// real daemon and a local registry. Off without server.allow_pull (403);
// on, a pull streams Ollama's progress objects and adds the model as a
// drop-in named as the client calls it, which answers; a second pull
// refreshes it; delete removes it like jetai-ctl rm and refuses a model of
// the main config.
func TestOllamaPullAndDelete(t *testing.T) {
	dir := t.TempDir()
	hub := testhub.New(t)
	hub.AddOllama(t, "smol", chatTiny(t, 61), "")
	hub.AddOllama(t, "tinyllama:1b", chatTiny(t, 62), "")
	t.Setenv("HF_TOKEN", "")
	sock := filepath.Join(dir, "admin.sock")
	conf := filepath.Join(dir, "jetai.hcl")
	write := func(allow bool) {
		testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
server {
  admin_socket = %q
  allow_pull   = %v
}
memory {
  budget = "2GiB"
}
cache {
  dir = "cache"
}
pull {
  ollama_registry = %q
}
model "tiny" {
  path    = %q
  context = 256
  threads = 1
}
`, sock, allow, hub.URL, testmodel.Path(t)))
	}
	write(false)
	d := testdaemon.Start(t, daemon.Options{ConfigPath: conf})
	waitAdmin(t, sock)

	if code, ls := ollamaCall(t, "POST", d.URL+"/api/pull", `{"model": "smol"}`); code != 403 || len(ls) != 1 || ls[0]["code"] != "pull_disabled" ||
		!strings.Contains(fmt.Sprint(ls[0]["error"]), "server.allow_pull = true") {
		t.Fatalf("pull with allow_pull off: %d %v", code, ls)
	}
	if code, ls := ollamaCall(t, "DELETE", d.URL+"/api/delete", `{"model": "tiny"}`); code != 403 || len(ls) != 1 || ls[0]["code"] != "pull_disabled" {
		t.Fatalf("delete with allow_pull off: %d %v", code, ls)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "cache", "downloads")); len(ents) != 0 {
		t.Errorf("a refused pull downloaded: %v", ents)
	}

	write(true)
	if code, out, errs := ctlRun(sock, "reload"); code != 0 {
		t.Fatalf("reload: %d\n%s%s", code, out, errs)
	}

	// A streamed pull: the manifest, bytes, the digest, success.
	code, ls := ollamaCall(t, "POST", d.URL+"/api/pull", `{"model": "smol", "stream": true}`)
	if code != 200 || len(ls) < 3 || ls[0]["status"] != "pulling manifest" || ls[len(ls)-1]["status"] != "success" {
		t.Fatalf("pull: %d %v", code, ls)
	}
	var sawBytes, sawDigest bool
	for _, l := range ls {
		st := fmt.Sprint(l["status"])
		if st == "downloading sha256:"+hub.SHA256("smol/model") && l["total"] == l["completed"] && l["total"] != nil {
			sawBytes = true
		}
		if st == "verifying sha256 digest" && l["digest"] == "sha256:"+hub.SHA256("smol/model") {
			sawDigest = true
		}
	}
	if !sawBytes || !sawDigest {
		t.Errorf("pull stream lacks byte counts (%v) or the layer's digest (%v): %v", sawBytes, sawDigest, ls)
	}
	dropIn := filepath.Join(dir, "jetai.d", "smol.hcl")
	b, err := os.ReadFile(dropIn)
	if err != nil || !strings.Contains(string(b), "ollama:smol") {
		t.Fatalf("drop-in %s: %v\n%s", dropIn, err, b)
	}

	// The model answers under the name Ollama's clients use.
	code, ls = ollamaCall(t, "POST", d.URL+"/api/chat", `{"model": "smol:latest", "stream": false, "messages": [{"role": "user", "content": "Hi"}], "options": {"num_predict": 4}}`)
	if code != 200 || len(ls) != 1 || ls[0]["done"] != true {
		t.Fatalf("chat with the pulled model: %d %v", code, ls)
	}
	if code, out, errs := ctlRun(sock, "ls"); code != 0 || !strings.Contains(out, "ollama:smol:latest@sha256:") {
		t.Errorf("ls does not name the pull: %d\n%s%s", code, out, errs)
	}

	// A tag other than latest is part of the name. The download held at
	// half: the stream shows the bytes so far while it runs.
	hub.SetFault("tinyllama:1b/model", &testhub.Fault{StallAt: 1 << 20})
	resp, err := http.Post(d.URL+"/api/pull", "application/json", strings.NewReader(`{"model": "tinyllama:1b"}`))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	var partial, success bool
	for sc.Scan() {
		var l struct {
			Status           string
			Total, Completed int64
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		if strings.HasPrefix(l.Status, "downloading sha256:") && l.Completed > 0 && l.Completed < l.Total && !partial {
			partial = true
			hub.Release()
		}
		success = l.Status == "success"
	}
	resp.Body.Close()
	if !partial || !success {
		t.Fatalf("a held pull's stream: progress %v, success %v", partial, success)
	}
	if _, err := os.Stat(filepath.Join(dir, "jetai.d", "tinyllama:1b.hcl")); err != nil {
		t.Fatalf("tinyllama:1b: %v", err)
	}

	// Pulled again: refreshed, not refused as a taken name.
	if code, ls := ollamaCall(t, "POST", d.URL+"/api/pull", `{"model": "smol", "stream": false}`); code != 200 || ls[0]["status"] != "success" {
		t.Fatalf("second pull: %d %v", code, ls)
	}
	// A name the main config has already: refused before any byte.
	if code, ls := ollamaCall(t, "POST", d.URL+"/api/pull", `{"model": "tiny", "stream": false}`); code != 409 || len(ls) != 1 || ls[0]["code"] != "name_taken" ||
		!strings.Contains(fmt.Sprint(ls[0]["error"]), conf) {
		t.Fatalf("pull of a configured name: %d %v", code, ls)
	}
	// A name the registry does not have: Ollama's error shape.
	if code, ls := ollamaCall(t, "POST", d.URL+"/api/pull", `{"model": "nosuch", "stream": false}`); code != 404 || len(ls) != 1 || ls[0]["error"] == nil || ls[0]["code"] == "" {
		t.Fatalf("unknown name: %d %v", code, ls)
	}
	// Streamed, the error is the stream's last line.
	if code, ls := ollamaCall(t, "POST", d.URL+"/api/pull", `{"model": "nosuch"}`); code != 200 || ls[len(ls)-1]["error"] == nil {
		t.Fatalf("unknown name, streamed: %d %v", code, ls)
	}

	// Delete: the main config's model is refused, saying where.
	if code, ls := ollamaCall(t, "DELETE", d.URL+"/api/delete", `{"model": "tiny"}`); code != 409 || len(ls) != 1 || ls[0]["code"] != "file_referenced" ||
		!strings.Contains(fmt.Sprint(ls[0]["error"]), conf) {
		t.Fatalf("delete of the main config's model: %d %v", code, ls)
	}
	if code, ls := ollamaCall(t, "DELETE", d.URL+"/api/delete", `{"model": "nosuch"}`); code != 404 || len(ls) != 1 || ls[0]["error"] == nil {
		t.Fatalf("delete of an unknown model: %d %v", code, ls)
	}
	if code, ls := ollamaCall(t, "DELETE", d.URL+"/api/delete", `{"model": "smol:latest"}`); code != 200 || len(ls) != 0 {
		t.Fatalf("delete: %d %v", code, ls)
	}
	if _, err := os.Stat(dropIn); !os.IsNotExist(err) {
		t.Errorf("the drop-in stays after delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cache", "models", "ollama--library--smol--latest.gguf")); !os.IsNotExist(err) {
		t.Errorf("delete left the model file: %v", err)
	}
	resp, err = http.Post(d.URL+"/api/chat", "application/json", strings.NewReader(`{"model": "smol", "stream": false, "messages": [{"role": "user", "content": "Hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("the deleted model still answers: %d %s", resp.StatusCode, body)
	}
}
