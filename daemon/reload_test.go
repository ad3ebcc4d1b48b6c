package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/internal/testburst"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
)

// reloadEnv is a running daemon over a config file the test rewrites.
type reloadEnv struct {
	t    *testing.T
	dir  string
	conf string
	base string
	d    *daemon.Daemon
	log  *logBuffer
}

// tinyModel is the real tiny model's path, set by startReload.
var tinyModel string

// model is a model block for the real tiny model.
func model(name, extra string) string {
	return fmt.Sprintf("model %q {\n  path = %q\n  context = 256\n  parallel = 2\n  threads = 1\n  keep_alive = \"forever\"\n%s\n}\n", name, tinyModel, extra)
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startReload writes hcl as the config and runs a daemon over it.
func startReload(t *testing.T, hcl func() string, watch bool) *reloadEnv {
	t.Helper()
	wo := config.WatchOptions{Debounce: 50 * time.Millisecond, Poll: -1}
	if !watch {
		wo.Poll = 0 // unused: NoWatch
	}
	return start(t, hcl, watch, wo)
}

// startReloadWatch runs a daemon that watches its config with wo.
func startReloadWatch(t *testing.T, hcl func() string, wo config.WatchOptions) *reloadEnv {
	t.Helper()
	return start(t, hcl, true, wo)
}

func start(t *testing.T, hcl func() string, watch bool, wo config.WatchOptions) *reloadEnv {
	t.Helper()
	tinyModel = testmodel.Path(t)
	e := &reloadEnv{t: t, dir: t.TempDir(), log: &logBuffer{}}
	e.conf = filepath.Join(e.dir, "jetai.hcl")
	e.write(hcl())
	// Registered first, so it runs after testdaemon's cleanup has stopped
	// the daemon: the log then ends with the shutdown.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", e.log.String())
		}
	})
	td := testdaemon.Start(t, daemon.Options{ConfigPath: e.conf, Log: slogTo(e.log), Watch: wo, NoWatch: !watch})
	e.base, e.d = td.URL, td.Daemon
	td.WaitHealthy(t)
	return e
}

// ownCache puts the model cache in the test's directory, at the end of hcl
// (so diagnostics keep their lines): the default, /var/cache/jetai, is
// shared by every test run as root, and a daemon parks its conversations
// there when it stops.
func ownCache(hcl string) string {
	if strings.Contains(hcl, "cache {") {
		return hcl
	}
	return hcl + "\ncache {\n  dir = \"cache\"\n}\n"
}

// write replaces the config the way most editors save: a temporary file
// renamed over it.
func (e *reloadEnv) write(hcl string) {
	e.t.Helper()
	hcl = ownCache(hcl)
	tmp := e.conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(hcl), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.conf); err != nil {
		e.t.Fatal(err)
	}
}

func (e *reloadEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *reloadEnv) model(name string) pool.ModelStatus {
	e.t.Helper()
	for _, m := range e.d.Pool().Models() {
		if m.Name == name {
			return m
		}
	}
	e.t.Fatalf("no model %q", name)
	return pool.ModelStatus{}
}

func (e *reloadEnv) ready(name string) pool.ModelStatus {
	e.t.Helper()
	if err := e.d.Pool().Load(context.Background(), name); err != nil {
		e.t.Fatal(err)
	}
	return e.model(name)
}

// status reads /status.
func (e *reloadEnv) status() map[string]any {
	e.t.Helper()
	resp, err := http.Get(e.base + "/status")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatal(err)
	}
	return out["config"].(map[string]any)
}

// infer runs a short completion over HTTP and returns its status code.
func (e *reloadEnv) infer(model string) int {
	e.t.Helper()
	resp, err := http.Post(e.base+"/inference", "application/json",
		strings.NewReader(fmt.Sprintf(`{"prompt": "Once upon a time", "model": %q, "max_length": 8}`, model)))
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// hold starts a stream on model in the pool that pauses at its first token
// until release is closed.
func (e *reloadEnv) hold(model string) (started <-chan struct{}, release chan struct{}, done <-chan error) {
	st, rel, d := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		_, err := e.d.Pool().Complete(context.Background(), model, runner.Request{Prompt: "Once upon a time", MaxTokens: 20}, func(string) {
			once.Do(func() { close(st); <-rel })
		})
		d <- err
	}()
	return st, rel, d
}

func gone(pid int) bool { return syscall.Kill(pid, 0) != nil }

// TestReloadPriorityOnly: a priority change in the file is applied by the
// watcher without a runner restart; /status shows the new generation and
// hash.
func TestReloadPriorityOnly(t *testing.T) {
	e := startReload(t, func() string { return model("m", "priority = 10") }, true)
	pid := e.ready("m").Pid
	e.write(model("m", "priority = 77"))
	e.waitFor("the reload", func() bool { return e.d.ReloadStatus().Generation == 2 })
	if m := e.model("m"); m.Pid != pid || m.Priority != 77 || m.State != pool.StateReady {
		t.Fatalf("after a priority change: pid %d (was %d), priority %d, %s", m.Pid, pid, m.Priority, m.State)
	}
	st := e.status()
	if st["generation"].(float64) != 2 || st["hash"] != e.d.Config().Hash || st["last_error"] != "" || st["last_reload"] == nil || st["watching"] != true {
		t.Fatalf("/status config: %v", st)
	}
	// The summary is logged just after the new generation is in force.
	e.waitFor("the reload's summary and plan in the log", func() bool {
		l := e.log.String()
		return strings.Contains(l, "config reloaded") && strings.Contains(l, "priority 10→77")
	})
	if code := e.infer("m"); code != 200 {
		t.Fatalf("inference after the reload: %d", code)
	}
}

// TestReloadThreads: a threads change in the file is applied to the
// running runner: same pid, the new count in /models.
func TestReloadThreads(t *testing.T) {
	e := startReload(t, func() string { return strings.Replace(model("m", ""), "threads = 1", "threads = 2", 1) }, true)
	pid := e.ready("m").Pid
	e.waitFor("two threads", func() bool { return e.model("m").Threads == 2 })
	e.write(model("m", ""))
	e.waitFor("the reload", func() bool { return e.d.ReloadStatus().Generation == 2 })
	e.waitFor("one thread in /models", func() bool {
		resp, err := http.Get(e.base + "/models")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var out struct {
			Models []pool.ModelStatus `json:"models"`
		}
		return json.NewDecoder(resp.Body).Decode(&out) == nil && len(out.Models) == 1 && out.Models[0].Threads == 1
	})
	if m := e.model("m"); m.Pid != pid || m.Loads != 1 || m.State != pool.StateReady {
		t.Fatalf("after a threads change: pid %d (was %d), loads %d, %s", m.Pid, pid, m.Loads, m.State)
	}
	if code := e.infer("m"); code != 200 {
		t.Fatalf("inference after the reload: %d", code)
	}
}

// TestReloadContextRestart: a context change replaces the runner; a stream
// started before the change completes normally.
func TestReloadContextRestart(t *testing.T) {
	e := startReload(t, func() string { return model("m", "") }, false)
	pid := e.ready("m").Pid
	started, release, done := e.hold("m")
	<-started
	e.write(strings.Replace(model("m", ""), "context = 256", "context = 512", 1))
	res := e.d.Reload(context.Background(), "test")
	if !res.OK || len(res.Plan.Restarted) != 1 || res.Generation != 2 {
		t.Fatalf("reload: %+v", res)
	}
	e.waitFor("the new runner", func() bool { m := e.model("m"); return m.Pid != pid && m.State == pool.StateReady })
	if code := e.infer("m"); code != 200 {
		t.Fatalf("inference on the new runner: %d", code)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the stream started before the change: %v", err)
	}
	e.waitFor("the old runner to exit", func() bool { return gone(pid) })
}

// TestReloadAddRemove: an added model serves; a model removed while a
// stream runs finishes the stream, then is gone (404 for new requests).
func TestReloadAddRemove(t *testing.T) {
	e := startReload(t, func() string { return model("a", "") }, false)
	pid := e.ready("a").Pid
	started, release, done := e.hold("a")
	<-started
	e.write(model("b", ""))
	res := e.d.Reload(context.Background(), "test")
	if !res.OK || strings.Join(res.Plan.Added, ",") != "b" || strings.Join(res.Plan.Removed, ",") != "a" {
		t.Fatalf("reload: %+v", res)
	}
	if code := e.infer("b"); code != 200 {
		t.Fatalf("inference on the added model: %d", code)
	}
	if code := e.infer("a"); code != 404 {
		t.Fatalf("inference on the removed model: %d, want 404", code)
	}
	if m := e.model("a"); m.Reload != pool.ReloadRemoving || m.Pid != pid {
		t.Fatalf("the removed model while its stream runs: %+v", m)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the stream on the removed model: %v", err)
	}
	e.waitFor("a to go", func() bool { return len(e.d.Pool().Models()) == 1 && gone(pid) })
}

// TestReloadRejected: a syntax error and semantic errors (a duplicate
// alias, a soft limit above the hard one) are rejected with line:col
// diagnostics; the old config keeps serving and /status shows the error.
func TestReloadRejected(t *testing.T) {
	tinyModel = testmodel.Path(t)
	good := model("m", `aliases = ["fast"]`)
	e := startReload(t, func() string { return good }, false)
	hash := e.d.Config().Hash
	tests := []struct {
		name, hcl string
		want      []string // "line:col" fragments and message fragments
	}{
		{"syntax", good + "model \"x\" {\n  path = \"unterminated\n}\n", []string{"jetai.hcl:10:23:", "Invalid multi-line string"}},
		{"duplicate alias", good + model("n", `aliases = ["fast"]`), []string{"jetai.hcl:15:12:", `alias "fast" of model "n" is already used at`}},
		{"thermal", "thermal {\n  soft_limit = 95\n  hard_limit = 90\n}\n" + good, []string{"jetai.hcl:2:16:", "soft_limit (95 °C) must be below hard_limit (90 °C)"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.write(tc.hcl)
			res := e.d.Reload(context.Background(), "test")
			if res.OK || res.Generation != 1 || res.Error == "" {
				t.Fatalf("an invalid file was not rejected: %+v", res)
			}
			all := strings.Join(res.Diagnostics, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Fatalf("diagnostics lack %q:\n%s", w, all)
				}
			}
			if e.d.Config().Hash != hash {
				t.Fatal("the config in force changed")
			}
			if code := e.infer("fast"); code != 200 {
				t.Fatalf("the old config does not serve: %d", code)
			}
			st := e.status()
			if !strings.Contains(st["last_error"].(string), tc.want[0]) || st["generation"].(float64) != 1 || st["rejected"].(float64) != float64(i+1) {
				t.Fatalf("/status after a rejected reload: %v", st)
			}
			b, _ := json.Marshal(res)
			if !strings.Contains(string(b), `"ok":false`) {
				t.Fatalf("result JSON: %s", b)
			}
		})
	}
	// Fixed again: applied, and the error is cleared.
	e.write(good + "\n# fixed\n")
	if res := e.d.Reload(context.Background(), "test"); !res.OK || res.Generation != 2 {
		t.Fatalf("a good file after bad ones: %+v", res)
	}
	if st := e.status(); st["last_error"] != "" {
		t.Fatalf("last_error after a good reload: %v", st["last_error"])
	}
}

// TestReloadBurst: twenty writes within one second give one reload, or one
// more per writer stall longer than the debounce (a loaded 2-core machine;
// testburst.Write counts them). The debounce is 250 ms here, not the
// default 100 ms.
func TestReloadBurst(t *testing.T) {
	const debounce = 250 * time.Millisecond
	e := startReloadWatch(t, func() string { return model("m", "priority = 1") }, config.WatchOptions{Debounce: debounce, Poll: -1})
	minSplits, maxSplits := testburst.Write(t, 20, 50*time.Millisecond, debounce, func(i int) {
		if err := os.WriteFile(e.conf, []byte(ownCache(model("m", fmt.Sprintf("priority = %d", i+2)))), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	e.waitFor("the last write in force", func() bool { return e.model("m").Priority == 21 })
	time.Sleep(500 * time.Millisecond) // anything more would have come by now
	st := e.d.ReloadStatus()
	if n := int(st.Reloads); n < 1+minSplits || n > 1+maxSplits || st.Generation != st.Reloads+1 {
		t.Fatalf("after twenty writes: %d reloads (want %d to %d), generation %d", st.Reloads, 1+minSplits, 1+maxSplits, st.Generation)
	}
}

// TestReloadDeletedFile: a deleted file keeps the last good config and
// warns; the file coming back is applied.
func TestReloadDeletedFile(t *testing.T) {
	e := startReload(t, func() string { return model("m", "") }, true)
	os.Remove(e.conf)
	e.waitFor("the deletion to be noticed", func() bool { return e.d.ReloadStatus().Rejected == 1 })
	if st := e.d.ReloadStatus(); st.Generation != 1 || !strings.Contains(st.LastError, "gone") {
		t.Fatalf("after deleting the file: %+v", st)
	}
	if code := e.infer("m"); code != 200 {
		t.Fatalf("the last good config does not serve: %d", code)
	}
	e.write(model("m", "priority = 5"))
	e.waitFor("the file's return", func() bool { return e.d.ReloadStatus().Generation == 2 })
	if e.model("m").Priority != 5 {
		t.Fatal("the returned file is not in force")
	}
}

// TestReloadSIGHUP: SIGHUP reloads.
func TestReloadSIGHUP(t *testing.T) {
	e := startReload(t, func() string { return model("m", "") }, false)
	e.write(model("m", "priority = 33"))
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	e.waitFor("the SIGHUP reload", func() bool { return e.d.ReloadStatus().Generation == 2 })
	if st := e.d.ReloadStatus(); st.LastTrigger != "SIGHUP" || e.model("m").Priority != 33 {
		t.Fatalf("%+v", st)
	}
}

// TestReloadNeedsProcessRestart: a changed listen address is applied as a
// note, not silently: the reload says it waits for a restart, /status
// lists it, and the API goes on serving where it listens.
func TestReloadNeedsProcessRestart(t *testing.T) {
	e := startReload(t, func() string { return model("m", "") }, false)
	e.write("server {\n  listen = \"127.0.0.1:1\"\n}\n" + model("m", ""))
	res := e.d.Reload(context.Background(), "test")
	if !res.OK || len(res.Plan.NeedsProcessRestart) != 1 || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "server.listen") {
		t.Fatalf("reload: %+v", res)
	}
	st := e.status()
	nr, _ := st["needs_restart"].([]any)
	if len(nr) != 1 || !strings.Contains(nr[0].(string), "server.listen: 127.0.0.1:8000 → 127.0.0.1:1") {
		t.Fatalf("/status needs_restart: %v", st["needs_restart"])
	}
	if code := e.infer("m"); code != 200 {
		t.Fatalf("inference after the reload: %d", code)
	}

	// A second change is stated against the address in force, the one
	// jetaid started with, not against the file of the last reload.
	e.write("server {\n  listen = \"127.0.0.1:2\"\n}\n" + model("m", ""))
	res = e.d.Reload(context.Background(), "test")
	if !res.OK || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "(127.0.0.1:8000 → 127.0.0.1:2)") ||
		!strings.Contains(res.Notes[0], "until then 127.0.0.1:8000 stays in force") {
		t.Fatalf("second change: %+v", res)
	}
	// Back to the address in force: nothing waits for a restart any more.
	e.write(model("m", ""))
	res = e.d.Reload(context.Background(), "test")
	if !res.OK || len(res.Plan.NeedsProcessRestart) != 0 || len(res.Notes) != 0 {
		t.Fatalf("back to the address in force: %+v", res)
	}
	if nr, _ := e.status()["needs_restart"].([]any); len(nr) != 0 {
		t.Fatalf("/status needs_restart: %v", nr)
	}
}

// TestValidateAgreesWithReload: what a reload refuses (an empty file, a
// missing one, one the daemon cannot read), the admin socket's validate
// command refuses with the same diagnostic, whether the client sends the
// file's content or only its path.
func TestValidateAgreesWithReload(t *testing.T) {
	var sock string
	e := startReload(t, func() string {
		sock = filepath.Join(t.TempDir(), "admin.sock")
		return fmt.Sprintf("server {\n  admin_socket = %q\n}\n", sock) + model("m", "")
	}, false)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	validate := func(req map[string]string) (int, admin.ValidateResult) {
		t.Helper()
		body, _ := json.Marshal(req)
		resp, err := hc.Post("http://jetaid/v1/validate", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r admin.ValidateResult
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, r
	}
	good, err := os.ReadFile(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	// The reload's verdict on an empty file.
	if err := os.WriteFile(e.conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := e.d.Reload(context.Background(), "test")
	want := e.conf + ": the config file is empty"
	if res.OK || len(res.Diagnostics) != 1 || res.Diagnostics[0] != want {
		t.Fatalf("reload of an empty file: %+v", res)
	}
	missing := filepath.Join(e.dir, "nope.hcl")
	tests := []struct {
		name string
		req  map[string]string
		want string
	}{
		{"empty file by path", map[string]string{"path": e.conf}, want},
		{"white space as content", map[string]string{"path": e.conf, "content": " \n\t\n"}, want},
		{"missing file by path", map[string]string{"path": missing}, missing + ": the config file does not exist"},
		{"a directory by path", map[string]string{"path": e.dir}, e.dir + ": cannot read the config file: read " + e.dir + ": is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, r := validate(tc.req)
			if code != http.StatusUnprocessableEntity || r.OK || len(r.Diagnostics) != 1 || r.Diagnostics[0] != tc.want {
				t.Fatalf("validate %v: %d %+v, want the diagnostic %q", tc.req, code, r, tc.want)
			}
		})
	}
	// A good file by path only: usable, and no change from the running one.
	if err := os.WriteFile(e.conf, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, r := validate(map[string]string{"path": e.conf}); code != 200 || !r.OK || r.Plan == nil || len(r.Plan.Added)+len(r.Plan.Removed) != 0 {
		t.Fatalf("validate of the good file by path: %d %+v", code, r)
	}
}

// TestReloadEveryPart: one reload puts a change of every reloadable part in
// force: the pool (a model's priority), the REST API (api keys), the model
// cache (max_size), the log level, the daemon's config and generation, and
// the platform monitor (memory reserve).
func TestReloadEveryPart(t *testing.T) {
	var sock string
	hcl := func(level, maxSize, keys, reserve string, priority int) string {
		return fmt.Sprintf("server {\n  admin_socket = %q\n  log_level = %q\n%s}\nmemory {\n  reserve = %q\n}\ncache {\n  dir = \"cache\"\n  max_size = %q\n}\n",
			sock, level, keys, reserve, maxSize) + model("m", fmt.Sprintf("priority = %d", priority))
	}
	e := startReload(t, func() string {
		sock = filepath.Join(t.TempDir(), "admin.sock")
		return hcl("info", "1GiB", "", "256MiB", 1)
	}, false)
	client := admin.NewClient(sock)
	defer client.Close()
	ctx := context.Background()

	e.write(hcl("debug", "2GiB", "  api_keys = [\"sk-every\"]\n", "300MiB", 7))
	res := e.d.Reload(ctx, "test")
	if !res.OK || !res.Changed || res.Generation != 2 {
		t.Fatalf("reload: %+v", res)
	}
	if e.d.Config().Hash != res.Hash || e.d.ReloadStatus().Generation != 2 {
		t.Errorf("the daemon's config: hash %.12s, generation %d", e.d.Config().Hash, e.d.ReloadStatus().Generation)
	}
	if p := e.model("m").Priority; p != 7 {
		t.Errorf("pool: priority %d, want 7", p)
	}
	resp, err := http.Get(e.base + "/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("api: /models without the new key: %d, want 401", resp.StatusCode)
	}
	st, err := client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LogLevel != "debug" {
		t.Errorf("log level %q, want debug", st.LogLevel)
	}
	if st.Cache == nil || st.Cache.MaxBytes != 2<<30 {
		t.Errorf("model cache: %+v, want max 2 GiB", st.Cache)
	}
	if r := e.d.Platform().Status().Reserve; r != 300<<20 {
		t.Errorf("platform: reserve %d, want 300 MiB", r)
	}
}
