package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
)

// configMapVolume lays out a directory as the kubelet does for a mounted
// ConfigMap, and updates it as the kubelet's atomic writer does: the keys'
// files go into a new timestamped directory (..2026_12_02_20_01_02.123456789),
// a symlink ..data_tmp to it is renamed over ..data (the one atomic step),
// then the old directory is removed. Each key is a symlink KEY ->
// ..data/KEY, made once.
type configMapVolume struct {
	t   *testing.T
	dir string
	cur string // the timestamped directory ..data points at
	// slow, when set, writes each file in two halves this far apart, so a
	// reader of the new directory before the swap would see half a file.
	slow time.Duration
}

func newConfigMapVolume(t *testing.T, files map[string]string) *configMapVolume {
	v := &configMapVolume{t: t, dir: t.TempDir()}
	v.update(files)
	for key := range files {
		if err := os.Symlink(filepath.Join("..data", key), filepath.Join(v.dir, key)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *configMapVolume) update(files map[string]string) {
	v.t.Helper()
	now := time.Now().UTC()
	ts := fmt.Sprintf("..%s.%09d", now.Format("2006_01_02_15_04_05"), now.Nanosecond())
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		v.t.Fatal(err)
	}
	for key, content := range files {
		f, err := os.OpenFile(filepath.Join(v.dir, ts, key), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
		if err != nil {
			v.t.Fatal(err)
		}
		half := len(content) / 2
		f.WriteString(content[:half])
		time.Sleep(v.slow)
		f.WriteString(content[half:])
		if err := f.Close(); err != nil {
			v.t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if v.cur != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.cur)); err != nil {
			v.t.Fatal(err)
		}
	}
	v.cur = ts
}

// TestConfigMapReload runs a daemon on a ConfigMap volume's jetai.hcl with
// the default watch settings. Each update is one reload with the new
// content, even when the kubelet takes its time writing the new directory
// (nothing reads it before the swap), and nothing more follows; a broken
// ConfigMap is rejected with file:line:col in /status while the old config
// keeps serving; fixing it applies.
func TestConfigMapReload(t *testing.T) {
	tiny := testmodel.Path(t)
	block := func(name string) string {
		return fmt.Sprintf("model %q {\n  path = %q\n  context = 256\n  parallel = 1\n  threads = 1\n}\n", name, tiny)
	}
	const readme = "Managed by Helm: edit values.yaml, not this volume.\n"
	vol := newConfigMapVolume(t, map[string]string{"jetai.hcl": ownCache(block("a")), "README": readme})
	var logs logBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	td := testdaemon.Start(t, daemon.Options{ConfigPath: filepath.Join(vol.dir, "jetai.hcl"), Log: slogTo(&logs),
		Watch: config.WatchOptions{}})
	td.WaitHealthy(t)
	e := &reloadEnv{t: t, dir: vol.dir, conf: filepath.Join(vol.dir, "jetai.hcl"), base: td.URL, d: td.Daemon, log: &logs}

	quiet := func(gen uint64) {
		t.Helper()
		// Twice the default debounce ceiling: a second reload would come by then.
		time.Sleep(config.DefaultMaxDelay + 500*time.Millisecond)
		if st := e.d.ReloadStatus(); st.Generation != gen {
			t.Fatalf("reload storm: generation %d, want %d (%+v)", st.Generation, gen, st)
		}
	}

	// A swap that adds model b, its file written slowly into the new
	// directory: one reload, no rejected read of half a file.
	vol.slow = 300 * time.Millisecond
	vol.update(map[string]string{"jetai.hcl": ownCache(block("a") + block("b")), "README": readme})
	e.waitFor("generation 2", func() bool { return e.d.ReloadStatus().Generation == 2 })
	quiet(2)
	if st := e.d.ReloadStatus(); st.Reloads != 1 || st.Rejected != 0 || st.LastError != "" {
		t.Fatalf("after one swap: %+v, want one applied reload", st)
	}
	if code := e.infer("b"); code != 200 {
		t.Fatalf("model b from the new ConfigMap: %d", code)
	}

	// A broken ConfigMap: rejected, shown in /status, the old config serves.
	vol.slow = 0
	vol.update(map[string]string{"jetai.hcl": ownCache(block("a") + block("b") + "model \"c\" {\n  path = \n}\n"), "README": readme})
	e.waitFor("the rejected reload", func() bool { return e.d.ReloadStatus().Rejected == 1 })
	st := e.status()
	if msg, _ := st["last_error"].(string); !strings.Contains(msg, "jetai.hcl:14:10:") || st["generation"].(float64) != 2 {
		t.Fatalf("/status after a broken ConfigMap: %v", st)
	}
	if code := e.infer("b"); code != 200 {
		t.Fatalf("the old config does not serve: %d", code)
	}
	quiet(2)
	if st := e.d.ReloadStatus(); st.Reloads != 2 {
		t.Fatalf("the broken ConfigMap was read %d times, want once: %+v", st.Reloads-1, st)
	}

	// Fixed: applied, the error cleared.
	vol.update(map[string]string{"jetai.hcl": ownCache(block("a")), "README": readme})
	e.waitFor("generation 3", func() bool { return e.d.ReloadStatus().Generation == 3 })
	quiet(3)
	if st := e.status(); st["last_error"] != "" {
		t.Fatalf("last_error after the fix: %v", st["last_error"])
	}
	if m := e.d.Config().ModelNames(); len(m) != 1 || m[0] != "a" {
		t.Fatalf("models after the fix: %v", m)
	}
}
