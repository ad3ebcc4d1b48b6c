package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testhub"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// pullDaemon starts a daemon whose pull block points at hub, with a model
// "tiny" in its main config; it returns the config path and admin socket.
func pullDaemon(t *testing.T, dir string, hub *testhub.Hub, model string) (*testdaemon.Daemon, string, string) {
	t.Helper()
	t.Setenv("HF_TOKEN", "")
	sock := filepath.Join(dir, "admin.sock")
	conf := filepath.Join(dir, "jetai.hcl")
	if _, err := os.Stat(conf); err != nil {
		testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
server {
  admin_socket = %q
}
memory {
  budget = "2GiB"
}
cache {
  dir = "cache"
}
pull {
  hf_endpoint     = %q
  ollama_registry = %q
}
model "tiny" {
  path    = %q
  context = 256
  threads = 1
}
`, sock, hub.URL, hub.URL, model))
	}
	d := testdaemon.Start(t, daemon.Options{ConfigPath: conf})
	waitAdmin(t, sock)
	return d, conf, sock
}

func waitAdmin(t *testing.T, sock string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, _ := ctlRun(sock, "status"); code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("admin socket not answering")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func chatTiny(t *testing.T, seed uint64) string {
	s := modelgen.Tiny()
	s.ChatTemplate, s.Seed = modelgen.ChatML, seed
	return testmodel.Gen(t, s)
}

// TestPullOverAdminSocket drives `jetai-ctl pull` against a running daemon
// and a local hub: a pull with --add writes a drop-in whose model block
// serves once in the config; bad sources, a gated repo, a name conflict
// and a corrupt download are refused with clear errors, leaving nothing.
func TestPullOverAdminSocket(t *testing.T) {
	dir := t.TempDir()
	hub := testhub.New(t)
	model := chatTiny(t, 51)
	hub.AddRepo(t, "org/Tiny-GGUF", map[string]string{"Tiny-Q4_K_M.gguf": model, "Tiny-Q8_0.gguf": chatTiny(t, 52)}, false)
	hub.AddRepo(t, "meta/Gated-GGUF", map[string]string{"Gated-Q4_K_M.gguf": model}, true)
	hub.AddRepo(t, "org/Bad-GGUF", map[string]string{"Bad-Q4_K_M.gguf": chatTiny(t, 53)}, false)
	hub.SetFault("Bad-Q4_K_M.gguf", &testhub.Fault{Corrupt: true})
	hub.AddOllama(t, "tinyllama:1b", chatTiny(t, 54), "")
	d, conf, sock := pullDaemon(t, dir, hub, testmodel.Path(t))

	// --json: NDJSON frames, the last one the result.
	code, out, errs := ctlRun(sock, "--json", "pull", "hf.co/org/Tiny-GGUF", "--add", "chat")
	if code != 0 {
		t.Fatalf("pull --add: exit %d\n%s%s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last admin.PullFrame
	for i, l := range lines {
		var f admin.PullFrame
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("line %d is not a frame: %v\n%s", i, err, l)
		}
		last = f
	}
	if last.Result == nil || len(lines) < 2 {
		t.Fatalf("no events and result:\n%s", out)
	}
	res := *last.Result
	dropIn := filepath.Join(dir, "jetai.d", "chat.hcl")
	if res.Model != "chat" || res.DropIn != dropIn || res.Files[0].SHA256 != hub.SHA256("Tiny-Q4_K_M.gguf") ||
		filepath.Dir(res.Files[0].Path) != filepath.Join(dir, "cache", "models") {
		t.Fatalf("result: %+v", res)
	}
	b, err := os.ReadFile(dropIn)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"hf.co/org/Tiny-GGUF", res.Files[0].SHA256, time.Now().UTC().Format("2006-01-02"), "context  = 2048"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("drop-in lacks %q:\n%s", w, b)
		}
	}
	dc, err := config.Parse(b, dropIn)
	if err != nil || len(dc.Models) != 1 || dc.Models[0].Path != res.Files[0].Path {
		t.Fatalf("drop-in is not a usable config: %v\n%s", err, b)
	}
	// The model serves through the reload that --add ran.
	if res.Generation == 0 || !strings.Contains(out, `"generation"`) {
		t.Fatalf("--add reported no config generation: %+v", res)
	}
	// ls names where the file came from and the model that uses it.
	if code, out, errs := ctlRun(sock, "ls"); code != 0 || !strings.Contains(out, "hf.co/org/Tiny-GGUF/Tiny-Q4_K_M.gguf") || !strings.Contains(out, "chat*") {
		t.Errorf("ls: %d\n%s%s", code, out, errs)
	}
	resp, err := http.Post(d.URL+"/v1/completions", "application/json", strings.NewReader(`{"model":"chat","prompt":"Hi","max_tokens":4}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the pulled model does not answer: %d %s", resp.StatusCode, body)
	}

	// Refusals: each names what to do, and leaves nothing.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"pull", "hf.co/org/Tiny-GGUF:Q8_0", "--add", "chat"}, []string{`model "chat" exists already, defined at ` + dropIn + ":"}},
		{[]string{"pull", "hf.co/org/Tiny-GGUF:Q8_0", "--add", "tiny"}, []string{`model "tiny" exists already, defined at ` + conf + ":"}},
		{[]string{"pull", "hf.co/org/Tiny-GGUF:Q5_K_M"}, []string{"has no Q5_K_M", "closest quants: Q4_K_M, Q8_0"}},
		{[]string{"pull", "hf.co/org/Tiny:Q4_K_M"}, []string{"no repo org/Tiny", "org/Tiny-GGUF"}},
		{[]string{"pull", "hf.co/meta/Gated-GGUF"}, []string{"gated", "HF_TOKEN", "hf_token_file"}},
		{[]string{"pull", "hf.co/org/Bad-GGUF"}, []string{"sha256 mismatch", hub.SHA256("Bad-Q4_K_M.gguf")}},
		{[]string{"pull", "llama3.2"}, []string{"ollama:llama3.2"}},
	} {
		code, out, errs := ctlRun(sock, c.args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1\n%s%s", c.args, code, out, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: %q lacks %q", c.args, errs, w)
			}
		}
	}
	if s := hub.Stats("Tiny-Q8_0.gguf"); s.Gets != 0 {
		t.Errorf("a refused --add downloaded first")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "cache", "downloads")); len(ents) != 0 {
		t.Errorf("left in downloads: %v", ents)
	}
	st, _ := admin.NewClient(sock).CacheStatus(context.Background())
	for _, f := range st.Files {
		if strings.Contains(f.Name, "Bad") {
			t.Errorf("a corrupt download was registered: %s", f.Name)
		}
	}

	// The gated repo with the client's token; an Ollama name.
	t.Setenv("HF_TOKEN", hub.Token)
	if code, out, errs := ctlRun(sock, "pull", "hf.co/meta/Gated-GGUF"); code != 0 || !strings.Contains(out, "verified") {
		t.Errorf("gated with a token: %d\n%s%s", code, out, errs)
	}
	if code, out, errs := ctlRun(sock, "pull", "ollama:tinyllama:1b"); code != 0 || !strings.Contains(out, "pulled ollama:tinyllama:1b") {
		t.Errorf("ollama: %d\n%s%s", code, out, errs)
	}
}

// TestPullConcurrentAndCancel: two clients pulling one source share one
// download; Ctrl-C in a client does not stop it; --cancel does, keeping the
// partial file, and the next pull resumes it.
func TestPullConcurrentAndCancel(t *testing.T) {
	dir := t.TempDir()
	hub := testhub.New(t)
	small := testmodel.Gen(t, modelgen.Small())
	hub.AddRepo(t, "org/Small-GGUF", map[string]string{"Small-F16.gguf": small}, false)
	st, _ := os.Stat(small)
	hub.SetFault("Small-F16.gguf", &testhub.Fault{StallAt: st.Size() / 2})
	_, _, sock := pullDaemon(t, dir, hub, testmodel.Path(t))
	c := admin.NewClient(sock)

	// A client that goes away: the pull goes on.
	ctx1, detach := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	go func() {
		_, err := c.Pull(ctx1, admin.PullRequest{Source: "hf.co/org/Small-GGUF:F16"}, nil)
		errc <- err
	}()
	<-hub.Stalled()
	detach()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("detached client: %v", err)
	}
	ps, err := c.Pulls(context.Background())
	if err != nil || len(ps) != 1 || ps[0].Source != "hf.co/org/Small-GGUF:F16" {
		t.Fatalf("after Ctrl-C the pull must go on: %+v %v", ps, err)
	}
	// Two more clients join it; the hub lets the bytes go.
	type out struct {
		r   admin.PullResult
		err error
	}
	outs := make(chan out, 2)
	for range 2 {
		go func() {
			r, err := c.Pull(context.Background(), admin.PullRequest{Source: "hf.co/org/Small-GGUF/Small-F16.gguf"}, nil)
			outs <- out{r, err}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	hub.Release()
	for range 2 {
		o := <-outs
		if o.err != nil {
			t.Fatal(o.err)
		}
	}
	if s := hub.Stats("Small-F16.gguf"); s.Gets != 1 || s.Served != s.Size {
		t.Errorf("three clients, two sources of one file: %d downloads, %d of %d bytes", s.Gets, s.Served, s.Size)
	}

	// jetai-ctl pull --cancel stops it and keeps the partial file;
	// --cancel --discard deletes it.
	hub.AddRepo(t, "org/Other-GGUF", map[string]string{"Other-F16.gguf": small}, false)
	hub.SetFault("Other-F16.gguf", &testhub.Fault{StallAt: st.Size() / 2})
	go func() {
		_, err := c.Pull(context.Background(), admin.PullRequest{Source: "hf.co/org/Other-GGUF:F16"}, nil)
		errc <- err
	}()
	<-hub.Stalled()
	if code, out, errs := ctlRun(sock, "pull", "--cancel", "hf.co/org/Other-GGUF:F16"); code != 0 || !strings.Contains(out, "canceled: hf.co/org/Other-GGUF:F16") {
		t.Fatalf("--cancel: %d\n%s%s", code, out, errs)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("the watching client saw %v", err)
	}
	downloads := filepath.Join(dir, "cache", "downloads")
	if ents, _ := os.ReadDir(downloads); len(ents) != 2 {
		t.Errorf("after --cancel downloads/ holds %v, want the partial file and its sidecar", ents)
	}
	if code, out, errs := ctlRun(sock, "pull", "--cancel", "--discard", "hf.co/org/Other-GGUF"); code != 0 {
		t.Errorf("--cancel --discard: %d\n%s%s", code, out, errs)
	}
	if ents, _ := os.ReadDir(downloads); len(ents) != 0 {
		t.Errorf("after --discard downloads/ holds %v", ents)
	}
}

// TestPullResumesAfterRestart: the daemon stopped mid-download keeps the
// partial file; the same pull after a restart fetches only the rest.
func TestPullResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	hub := testhub.New(t)
	small := testmodel.Gen(t, modelgen.Small())
	hub.AddRepo(t, "org/Small-GGUF", map[string]string{"Small-F16.gguf": small}, false)
	st, _ := os.Stat(small)
	hub.SetFault("Small-F16.gguf", &testhub.Fault{StallAt: st.Size() * 2 / 5})
	d, _, sock := pullDaemon(t, dir, hub, testmodel.Path(t))
	errc := make(chan error, 1)
	go func() {
		_, err := admin.NewClient(sock).Pull(context.Background(), admin.PullRequest{Source: "hf.co/org/Small-GGUF:F16"}, nil)
		errc <- err
	}()
	<-hub.Stalled()
	time.Sleep(200 * time.Millisecond)
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if err == nil {
		t.Fatal("a pull survived its daemon")
	}
	t.Logf("the client saw: %v", err)
	part := filepath.Join(dir, "cache", "downloads")
	ents, _ := os.ReadDir(part)
	if len(ents) != 2 {
		t.Fatalf("after the stop downloads/ holds %v, want the partial file and its sidecar", ents)
	}
	hub.SetFault("Small-F16.gguf", nil)
	before := hub.Stats("Small-F16.gguf").Served
	_, _, sock = pullDaemon(t, dir, hub, testmodel.Path(t))
	r, err := admin.NewClient(sock).Pull(context.Background(), admin.PullRequest{Source: "hf.co/org/Small-GGUF:F16"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again := hub.Stats("Small-F16.gguf").Served - before
	f := r.Files[0]
	t.Logf("resumed %d of %d bytes; fetched %d after the restart", f.Resumed, f.Size, again)
	if f.Resumed < st.Size()/4 || again != f.Size-f.Resumed || f.SHA256 != hub.SHA256("Small-F16.gguf") {
		t.Errorf("after the restart: resumed %d, fetched %d, size %d", f.Resumed, again, f.Size)
	}
}

// TestPullDiskFull: a cache on a tmpfs too small for the model is refused
// before any byte is written, naming how much is missing.
func TestPullDiskFull(t *testing.T) {
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "cache")
	os.MkdirAll(cacheDir, 0o755)
	if err := syscall.Mount("tmpfs", cacheDir, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root and CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(cacheDir, syscall.MNT_DETACH) })
	hub := testhub.New(t)
	hub.AddRepo(t, "org/Small-GGUF", map[string]string{"Small-F16.gguf": testmodel.Gen(t, modelgen.Small())}, false)
	_, _, sock := pullDaemon(t, dir, hub, testmodel.Path(t))
	code, out, errs := ctlRun(sock, "pull", "hf.co/org/Small-GGUF:F16")
	if code != 1 || !strings.Contains(errs, "not enough disk space") || !strings.Contains(errs, "missing") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if s := hub.Stats("Small-F16.gguf"); s.Gets != 0 {
		t.Errorf("%d downloads started on a full disk", s.Gets)
	}
	ents, _ := os.ReadDir(filepath.Join(cacheDir, "downloads"))
	if len(ents) != 0 {
		t.Errorf("written on a full disk: %v", ents)
	}
}
