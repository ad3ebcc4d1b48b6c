package daemon_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/daemon/dropin"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
)

// localEnv is a daemon with an admin socket and its own model cache.
type localEnv struct {
	*reloadEnv
	sock string
}

func startLocal(t *testing.T, extra string) *localEnv {
	t.Helper()
	tinyModel = testmodel.Path(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`server {
  admin_socket = %q
}
memory {
  budget = "512MiB"
  reserve = "1MiB"
}
cache {
  dir = "cache"
}
%s%s`, sock, model("m", ""), extra))
	e := &reloadEnv{t: t, dir: dir, conf: conf, log: &logBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", e.log.String())
		}
	})
	td := testdaemon.Start(t, daemon.Options{ConfigPath: conf, Log: slogTo(e.log), Watch: config.WatchOptions{Debounce: 50 * time.Millisecond, Poll: -1}})
	e.base, e.d = td.URL, td.Daemon
	td.WaitHealthy(t)
	return &localEnv{reloadEnv: e, sock: sock}
}

func (e *localEnv) ctl(args ...string) (int, string, string) { return ctlRun(e.sock, args...) }

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// import --add writes a drop-in whose model answers, with the source, the
// sha256 and a context that fits the budget; a name that exists is refused
// with where, before anything is copied; ls shows the files and their
// models; rm refuses a model of the main config, with where.
func TestImportAddLs(t *testing.T) {
	e := startLocal(t, "")
	code, out, errs := e.ctl("import", tinyModel, "--add", "chat")
	if code != 0 {
		t.Fatalf("import --add: exit %d\n%s%s", code, out, errs)
	}
	file := filepath.Join(e.dir, "jetai.d", "chat.hcl")
	cached := filepath.Join(e.dir, "cache", "models", "chat.gguf")
	if !strings.Contains(out, "added model chat in "+file) {
		t.Fatalf("import --add output:\n%s", out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := fileSHA256(t, tinyModel)
	for _, want := range []string{"# source: " + tinyModel + "\n", "# sha256: " + sum + "\n", time.Now().UTC().Format("2006-01-02"), "path     = \"" + cached + "\""} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the drop-in lacks %q:\n%s", want, b)
		}
	}
	// The context: the trained one capped to the budget, as the pool
	// estimates it.
	g, err := gguf.Open(tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := g.Params()
	cfg := e.d.Config()
	fit, err := dropin.FitContext(p, uint64(cfg.Memory.Budget), "f16", "")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := cfg.Lookup("chat")
	if !ok || m.Context != fit.Context || m.Parallel != fit.Parallel || m.File != file || fit.Estimate.Total > uint64(cfg.Memory.Budget) {
		t.Fatalf("model chat in force: %+v; fit %+v", m, fit)
	}
	if code := e.infer("chat"); code != 200 {
		t.Fatalf("inference on the added model: %d", code)
	}

	// Taken names, said where; nothing copied.
	for _, tc := range []struct{ name, where string }{
		{"chat", fmt.Sprintf(`model "chat" exists already, defined at %s:`, file)},
		{"m", fmt.Sprintf(`model "m" exists already, defined at %s:`, e.conf)},
	} {
		code, out, errs := e.ctl("import", tinyModel, "--add", tc.name, "--name", "copy-"+tc.name)
		if code == 0 || !strings.Contains(errs, tc.where) {
			t.Errorf("import --add %s: exit %d, want a refusal with %q\n%s%s", tc.name, code, tc.where, out, errs)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "cache", "models", "copy-"+tc.name+".gguf")); err == nil {
			t.Errorf("--add %s was refused after the copy", tc.name)
		}
	}
	// The same over the admin socket, as a 409 with its code.
	_, err = admin.NewClient(e.sock).Import(context.Background(), admin.ImportRequest{Path: tinyModel, Add: "chat"}, nil)
	if ae, ok := err.(*admin.APIError); !ok || ae.Status != 409 || ae.Code != "name_taken" {
		t.Errorf("admin import --add chat again: %#v", err)
	}
	if code, _, errs := e.ctl("import", tinyModel, "--add", "../evil"); code == 0 || !strings.Contains(errs, `model name "../evil"`) {
		t.Errorf("--add ../evil: exit %d %s", code, errs)
	}

	// ls: the cached file with its drop-in model, the main config's file.
	code, out, errs = e.ctl("ls")
	if code != 0 {
		t.Fatalf("ls: exit %d\n%s%s", code, out, errs)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = l
		}
	}
	if r := rows["chat.gguf"]; !strings.Contains(r, "F32") || !strings.Contains(r, "chat* (ready)") || !strings.Contains(r, tinyModel) || !strings.Contains(r, "llama") {
		t.Errorf("ls row of chat.gguf: %q\n%s", r, out)
	}
	if r := rows[tinyModel]; !strings.Contains(r, "m (") || strings.Contains(r, "m*") || !strings.Contains(r, "config") {
		t.Errorf("ls row of the main config's file: %q\n%s", r, out)
	}
	code, out, _ = e.ctl("ls", "--json")
	var lf admin.LocalFiles
	if code != 0 || json.Unmarshal([]byte(out), &lf) != nil {
		t.Fatalf("ls --json: exit %d\n%s", code, out)
	}
	found := false
	for _, f := range lf.Files {
		if f.Path == cached {
			found = true
			if !f.InCache || f.SHA256 != sum || f.Source != tinyModel || f.Parameters == 0 || f.ContextTrain != 2048 || len(f.Models) != 1 || f.Models[0].Name != "chat" || !f.Models[0].DropIn || !strings.HasPrefix(f.Models[0].DefinedAt, file+":") {
				t.Errorf("ls --json of chat.gguf: %+v", f)
			}
		}
	}
	if !found {
		t.Errorf("ls --json lacks %s: %+v", cached, lf)
	}

	// rm of the main config's model or file: refused, with where.
	for _, target := range []string{"m", tinyModel} {
		code, out, errs := e.ctl("rm", target)
		if code == 0 || !strings.Contains(errs, "in the main config file, at "+e.conf+":") {
			t.Errorf("rm %s: exit %d\n%s%s", target, code, out, errs)
		}
	}
	if _, ok := e.d.Config().Lookup("m"); !ok || e.infer("m") != 200 {
		t.Error("the refused rm changed the main config's model")
	}
}

// rm of a model in use: it waits for the running request, unloads the
// model, deletes its drop-in and its cached file, and the config no longer
// has it.
func TestRmInUse(t *testing.T) {
	e := startLocal(t, "")
	if code, out, errs := e.ctl("import", tinyModel, "--add", "chat"); code != 0 {
		t.Fatalf("import --add: exit %d\n%s%s", code, out, errs)
	}
	pid := e.ready("chat").Pid
	started, release, done := e.hold("chat")
	<-started
	type result struct {
		code      int
		out, errs string
	}
	rmDone := make(chan result, 1)
	go func() {
		code, out, errs := e.ctl("rm", "chat")
		rmDone <- result{code, out, errs}
	}()
	select {
	case r := <-rmDone:
		t.Fatalf("rm returned while a request ran: %+v", r)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the running request failed: %v", err)
	}
	r := <-rmDone
	file := filepath.Join(e.dir, "jetai.d", "chat.hcl")
	cached := filepath.Join(e.dir, "cache", "models", "chat.gguf")
	if r.code != 0 || !strings.Contains(r.out, "unloaded and removed model chat") || !strings.Contains(r.out, "deleted drop-in "+file) || !strings.Contains(r.out, "deleted "+cached) {
		t.Fatalf("rm chat: exit %d\n%s%s", r.code, r.out, r.errs)
	}
	for _, p := range []string{file, cached, cached + ".json"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if _, ok := e.d.Config().Lookup("chat"); ok {
		t.Error("chat is still configured")
	}
	e.waitFor("the runner's exit", func() bool { return gone(pid) })
	if code := e.infer("chat"); code != 404 {
		t.Errorf("a request for the removed model: %d", code)
	}
	if code, _, errs := e.ctl("rm", "chat"); code == 0 || !strings.Contains(errs, `no model or model file "chat"`) {
		t.Errorf("rm chat again: exit %d %s", code, errs)
	}
}

// An rm whose config would not load (a router tier of the main file names
// the model) puts the drop-in back and changes nothing.
func TestRmRejectedPutsBack(t *testing.T) {
	e := startLocal(t, "")
	if code, out, errs := e.ctl("import", tinyModel, "--add", "chat"); code != 0 {
		t.Fatalf("import --add: exit %d\n%s%s", code, out, errs)
	}
	file := filepath.Join(e.dir, "jetai.d", "chat.hcl")
	before, _ := os.ReadFile(file)
	main, _ := os.ReadFile(e.conf)
	e.write(string(main) + "\nrouter {\n  tier \"small\" { models = [\"chat\"] }\n}\n")
	e.waitFor("the tier", func() bool { return len(e.d.Config().Router.Tiers) == 1 })
	code, out, errs := e.ctl("rm", "chat")
	if code == 0 || !strings.Contains(errs, `router tier "small" names model "chat"`) || !strings.Contains(errs, "so it was put back") {
		t.Fatalf("rm chat: exit %d\n%s%s", code, out, errs)
	}
	after, err := os.ReadFile(file)
	if err != nil || string(after) != string(before) {
		t.Fatalf("the drop-in was not put back as it was: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "cache", "models", "chat.gguf")); err != nil {
		t.Errorf("the file went: %v", err)
	}
	if code := e.infer("chat"); code != 200 {
		t.Errorf("chat after the refused rm: %d", code)
	}
}

// jetai-ctl validate of a file in the drop-in directory checks it with the
// config file and the other drop-ins, as a reload will read it.
func TestValidateDropIn(t *testing.T) {
	e := startLocal(t, "")
	dir := filepath.Join(e.dir, "jetai.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	draft := filepath.Join(dir, "d.hcl.draft") // not read by a reload
	if err := os.WriteFile(draft, []byte(model("d", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := e.ctl("validate", draft)
	if code != 0 || !strings.Contains(out, draft+": ok (2 models") || !strings.Contains(out, "models: +1 (d)") {
		t.Fatalf("validate a good drop-in: exit %d\n%s%s", code, out, errs)
	}
	if err := os.WriteFile(draft, []byte("\n"+model("m", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = e.ctl("validate", draft)
	if code != 1 || !strings.Contains(errs, draft+`:2:7: model "m" is defined twice; the first definition is at `+e.conf) {
		t.Fatalf("validate a drop-in that repeats a name: exit %d\n%s%s", code, out, errs)
	}
	if err := os.WriteFile(draft, []byte("server {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := e.ctl("validate", draft); code != 1 || !strings.Contains(errs, "a drop-in file holds only model blocks") {
		t.Fatalf("validate a drop-in with a server block: exit %d\n%s", code, errs)
	}
	if e.d.ReloadStatus().Generation != 1 {
		t.Error("validate changed the config in force")
	}
}

// --add into a config that does not load (another drop-in is broken)
// leaves no drop-in behind and says why.
func TestAddRejectedLeavesNothing(t *testing.T) {
	e := startLocal(t, "")
	dir := filepath.Join(e.dir, "jetai.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "zz.hcl")
	if err := os.WriteFile(broken, []byte("model \"x\" {\n  path = \n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the broken drop-in's rejection", func() bool { return e.d.ReloadStatus().Rejected >= 1 })
	code, out, errs := e.ctl("import", tinyModel, "--add", "chat")
	if code != 1 || !strings.Contains(errs, "does not load, so it was removed again") || !strings.Contains(errs, broken+":2:") {
		t.Fatalf("import --add with a broken drop-in beside: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "chat.hcl")); err == nil {
		t.Fatal("the drop-in was left behind")
	}
	if _, ok := e.d.Config().Lookup("chat"); ok || e.infer("m") != 200 {
		t.Fatal("the config in force changed")
	}
}
