package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
)

// writeDropIn writes a drop-in as a tool does: a temporary file renamed
// into place.
func (e *reloadEnv) writeDropIn(name, hcl string) string {
	e.t.Helper()
	dir := config.DropInDir(e.conf)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(hcl), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// The watcher follows the drop-in directory with a real daemon: a drop-in
// added is a new model that answers, a broken one is rejected with its
// file:line:col in /status while the config in force serves on, and a
// drop-in changed or removed is applied as a diff.
func TestReloadDropIns(t *testing.T) {
	e := startReload(t, func() string { return model("m", "") }, true)
	if st := e.status(); len(st["drop_ins"].([]any)) != 0 {
		t.Fatalf("/status drop_ins before any: %v", st["drop_ins"])
	}

	chat := e.writeDropIn("chat.hcl", model("chat", "priority = 10"))
	e.waitFor("the drop-in's model", func() bool { return e.d.ReloadStatus().Generation == 2 })
	if code := e.infer("chat"); code != 200 {
		t.Fatalf("inference on the drop-in's model: %d", code)
	}
	if st := e.status(); len(st["drop_ins"].([]any)) != 1 || st["drop_ins"].([]any)[0] != chat {
		t.Fatalf("/status drop_ins: %v", st["drop_ins"])
	}
	pid := e.ready("chat").Pid

	// Broken: the old config stays, and /status says where.
	bad := e.writeDropIn("bad.hcl", "model \"x\" {\n  path = \n}\n")
	e.waitFor("the rejected reload", func() bool { return e.d.ReloadStatus().Rejected == 1 })
	st := e.status()
	if le, _ := st["last_error"].(string); !strings.Contains(le, bad+":2:") || st["generation"].(float64) != 2 {
		t.Fatalf("/status after a broken drop-in: last_error %q, generation %v", st["last_error"], st["generation"])
	}
	if code := e.infer("chat"); code != 200 || e.model("chat").Pid != pid {
		t.Fatalf("the config in force no longer serves: %d", code)
	}
	// Also a second server block.
	e.writeDropIn("bad.hcl", "server {\n  listen = \"127.0.0.1:1\"\n}\n")
	e.waitFor("the second rejected reload", func() bool { return e.d.ReloadStatus().Rejected == 2 })
	if le := e.d.ReloadStatus().LastError; !strings.Contains(le, bad+":1:1: a drop-in file holds only model blocks; the server block belongs in the main config file "+e.conf) {
		t.Fatalf("last error: %q", le)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the error to clear", func() bool { return e.d.ReloadStatus().LastError == "" })

	// Changed in place: priority applies without a restart.
	e.writeDropIn("chat.hcl", model("chat", "priority = 60"))
	e.waitFor("the change", func() bool { return e.model("chat").Priority == 60 })
	if m := e.model("chat"); m.Pid != pid || m.State != pool.StateReady {
		t.Fatalf("after a priority change in the drop-in: pid %d (was %d), %s", m.Pid, pid, m.State)
	}

	// Removed: the model goes.
	if err := os.Remove(chat); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the model's removal", func() bool {
		for _, m := range e.d.Pool().Models() {
			if m.Name == "chat" {
				return false
			}
		}
		return true
	})
	e.waitFor("the runner's exit", func() bool { return gone(pid) })
	if code := e.infer("m"); code != 200 {
		t.Fatalf("the main file's model after the removal: %d", code)
	}
}
