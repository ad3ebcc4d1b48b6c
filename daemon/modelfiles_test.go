package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/ctl"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// ctlRun runs jetai-ctl against sock and returns its exit code and output.
func ctlRun(sock string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := ctl.Main(append([]string{"--socket", sock}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// blockOf cuts the model block out of import/quantize output.
func blockOf(t *testing.T, out string) config.Model {
	t.Helper()
	i := strings.Index(out, "model \"")
	if i < 0 {
		t.Fatalf("no model block in:\n%s", out)
	}
	cfg, err := config.Parse([]byte(out[i:]), filepath.Join(t.TempDir(), "jetai.hcl"))
	if err != nil {
		t.Fatalf("printed block is not usable: %v\n%s", err, out[i:])
	}
	return cfg.Models[0]
}

// TestImportQuantizeOverAdminSocket drives jetai-ctl import, quantize and
// cache against a running daemon: a generated model is imported, a
// configured model quantized to a smaller file that the engine loads, and
// bad input is refused with a clear message.
func TestImportQuantizeOverAdminSocket(t *testing.T) {
	dir := t.TempDir()
	spec := modelgen.Tiny()
	spec.ChatTemplate = modelgen.ChatML
	src := testmodel.Gen(t, spec)
	sock := filepath.Join(dir, "admin.sock")
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
server {
  admin_socket = %q
}
cache {
  dir = "cache"
}
model "tiny" {
  path    = %q
  context = 256
  threads = 1
}
`, sock, src))
	testdaemon.Start(t, daemon.Options{ConfigPath: conf})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, _ := ctlRun(sock, "cache"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("admin socket not answering")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cacheModels := filepath.Join(dir, "cache", "models")

	code, out, errs := ctlRun(sock, "import", src, "--name", "imported")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	importOut := out
	m := blockOf(t, out)
	if m.Name != "imported" || filepath.Dir(m.Path) != cacheModels || !strings.Contains(out, "llama F16") {
		t.Fatalf("import output:\n%s", out)
	}

	code, out, errs = ctlRun(sock, "quantize", "tiny", "--type", "q8_0")
	if code != 0 {
		t.Fatalf("quantize: exit %d\n%s%s", code, out, errs)
	}
	quantOut := out
	q := blockOf(t, out)
	if q.Name != "tiny-q8_0" || filepath.Dir(q.Path) != cacheModels || !strings.Contains(out, "Q8_0") {
		t.Fatalf("quantize output:\n%s", out)
	}
	if q.FileSize >= m.FileSize {
		t.Fatalf("quantized file %d bytes, not smaller than the F16 %d", q.FileSize, m.FileSize)
	}

	code, out, _ = ctlRun(sock, "cache")
	if code != 0 || !strings.Contains(out, "imported.gguf") || !strings.Contains(out, "tiny-q8_0.gguf") || !strings.Contains(out, "quantized") {
		t.Fatalf("cache: exit %d\n%s", code, out)
	}

	// The printed blocks pasted into the config: a reload adds both models
	// and the runner loads and serves them.
	f, _ := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	for _, o := range []string{importOut, quantOut} {
		f.WriteString("\n" + o[strings.Index(o, "model \""):])
	}
	f.Close()
	if code, out, errs := ctlRun(sock, "reload"); code != 0 {
		t.Fatalf("reload with the pasted blocks: exit %d\n%s%s", code, out, errs)
	}
	for _, name := range []string{"imported", "tiny-q8_0"} {
		if code, out, errs := ctlRun(sock, "load", name, "--wait"); code != 0 {
			t.Fatalf("load %s: exit %d\n%s%s", name, code, out, errs)
		}
	}
	code, out, _ = ctlRun(sock, "cache", "--json")
	var st admin.CacheStatus
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("cache --json: exit %d %v\n%s", code, err, out)
	}
	for _, f := range st.Files {
		if f.InUse != 1 {
			t.Errorf("%s: in use %d while its model is loaded", f.Name, f.InUse)
		}
	}

	// Verification: both files match their records; a flipped byte in the
	// imported one is found, kept while its model is loaded, removed after.
	if code, out, errs := ctlRun(sock, "cache", "--verify"); code != 0 || strings.Count(out, "ok ") != 2 {
		t.Fatalf("cache --verify: exit %d\n%s%s", code, out, errs)
	}
	fh, _ := os.OpenFile(m.Path, os.O_WRONLY, 0)
	fh.WriteAt([]byte{0x55, 0xaa, 0x55}, int64(m.FileSize)-100)
	fh.Close()
	code, out, _ = ctlRun(sock, "cache", "--verify")
	if code != 1 || !strings.Contains(out, "CORRUPT  imported.gguf (kept while a loaded model uses it)") || !strings.Contains(out, "ok       tiny-q8_0.gguf") {
		t.Fatalf("verify with a corrupt file in use: exit %d\n%s", code, out)
	}
	if code, out, errs := ctlRun(sock, "unload", "imported"); code != 0 {
		t.Fatalf("unload: exit %d\n%s%s", code, out, errs)
	}
	// The runner's exit releases the file a moment after unload returns.
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, out, _ = ctlRun(sock, "cache", "--verify")
		if code == 1 && strings.Contains(out, "CORRUPT  imported.gguf (removed)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verify with the corrupt file unused: exit %d\n%s", code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(m.Path); !os.IsNotExist(err) {
		t.Fatalf("corrupt file still on disk: %v", err)
	}

	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(bad, []byte("GGUF but not really"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", bad}, "not a GGUF model"},
		{[]string{"import", filepath.Join(dir, "none.gguf")}, "no such file"},
		{[]string{"quantize", "tiny", "--type", "q9"}, "unknown type"},
		{[]string{"quantize", "nope", "--type", "q8_0"}, "no model \"nope\""},
	} {
		code, out, errs := ctlRun(sock, tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q); want exit 1 and %q", tc.args, code, errs, out, tc.want)
		}
	}
	if code, _, errs := ctlRun(sock, "quantize", "tiny"); code != 2 || !strings.Contains(errs, "--type") {
		t.Errorf("quantize without --type: exit %d %q", code, errs)
	}

	// A name the config already has: the block says so before it is pasted.
	code, out, errs = ctlRun(sock, "import", src, "--name", "tiny")
	if code != 0 || !strings.Contains(out, `"tiny" is already a model name or alias in the config (model "tiny"): rename this block`) {
		t.Errorf("import under a configured name: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = ctlRun(sock, "import", src, "--name", "fresh")
	if code != 0 || strings.Contains(out, "already a model name") {
		t.Errorf("import under a new name: exit %d\n%s%s", code, out, errs)
	}
}

// TestQuantizePausedWhileHot: a quantize job is paused while the thermal
// policy throttles the box and resumes (and finishes) once it is cool.
func TestQuantizePausedWhileHot(t *testing.T) {
	root := fakeRoot(t, "orin-nano")
	src := testmodel.Gen(t, modelgen.Small())
	dir := t.TempDir()
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
thermal {
  soft_limit    = 80
  hard_limit    = 90
  hysteresis    = 5
  poll_interval = "20ms"
}
server {
  admin_socket = %q
}
cache {
  dir = "cache"
}
model "small" {
  path = %q
}
`, filepath.Join(dir, "admin.sock"), src))
	d := testdaemon.Start(t, daemon.Options{ConfigPath: conf, PlatformRoot: root})
	ctx := t.Context()

	setTemp(t, root, 85000) // throttle
	eventually(t, "throttle", func() bool { return d.Platform().Level().String() == "throttle" })
	type result struct {
		path string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		r, err := d.QuantizeModel(ctx, "small", "", "q4_k_m", nil)
		res <- result{r.Entry.Path, err}
	}()
	paused := func() bool {
		st, err := d.CacheStatus()
		return err == nil && len(st.Quantizing) == 1 && st.Quantizing[0].Paused
	}
	eventually(t, "the quantize job to be paused", func() bool {
		select {
		case r := <-res:
			t.Fatalf("quantize finished while hot (%v) before it was paused", r.err)
		default:
		}
		return paused()
	})
	time.Sleep(100 * time.Millisecond)
	if !paused() {
		t.Fatal("the job was resumed while the box is still hot")
	}

	// A second job over the admin socket, cancelled by the client going
	// away while it is paused: it dies and leaves nothing.
	client := admin.NewClient(filepath.Join(dir, "admin.sock"))
	cctx, ccancel := context.WithCancel(ctx)
	cres := make(chan error, 1)
	go func() {
		_, err := client.Quantize(cctx, admin.QuantizeRequest{Model: "small", Type: "q8_0", Name: "gone"}, nil)
		cres <- err
	}()
	jobs := func() int {
		st, _ := d.CacheStatus()
		return len(st.Quantizing)
	}
	eventually(t, "the second job to start", func() bool { return jobs() == 2 })
	ccancel()
	if err := <-cres; err == nil {
		t.Fatal("cancelled quantize returned no error")
	}
	eventually(t, "the cancelled job to end", func() bool { return jobs() == 1 })
	if _, err := os.Stat(filepath.Join(dir, "cache", "models", "gone.gguf")); !os.IsNotExist(err) {
		t.Fatalf("cancelled job left its file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "cache", "tmp", "gone*")); len(left) != 0 {
		t.Fatalf("cancelled job left %v", left)
	}

	setTemp(t, root, 50000) // normal
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatalf("quantize after cooling: %v", r.err)
		}
		if _, err := os.Stat(r.path); err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("quantize did not finish after the box cooled")
	}
}
