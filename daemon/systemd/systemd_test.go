package systemd_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/jetai/jetai/daemon/systemd"
	"github.com/jetai/jetai/internal/testsd"
)

func TestFieldName(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"model", "MODEL"},
		{"request_id", "REQUEST_ID"},
		{"generation", "CONFIG_GENERATION"},
		{"err", "ERROR"},
		{"tok/s", "TOK_S"},
		{"_private", "PRIVATE"},
		{"9lives", "JETAI_9LIVES"},
		{"message", "JETAI_MESSAGE"},
		{"priority", "JETAI_PRIORITY"},
		{"code_line", "JETAI_CODE_LINE"},
		{"", "JETAI_"},
		{strings.Repeat("a", 80), strings.Repeat("A", 64)},
	} {
		if got := systemd.FieldName(c.key); got != c.want {
			t.Errorf("FieldName(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}

type entry struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

// TestJournalHandler checks what the handler hands to the journal: the
// priority from the level, one field per attribute (groups prefixed), the
// identifier, and a MESSAGE that still shows the attributes.
func TestJournalHandler(t *testing.T) {
	var got []entry
	var mu sync.Mutex
	level := new(slog.LevelVar)
	h := systemd.NewJournalHandler(level, "jetaid", func(msg string, p journal.Priority, vars map[string]string) error {
		mu.Lock()
		got = append(got, entry{msg, p, vars})
		mu.Unlock()
		return nil
	})
	log := slog.New(h).With("generation", 3)
	log.Info("request done", "model", "stories", "request_id", "req-1", "tokens", 42)
	log.WithGroup("runner").Warn("slow", "pid", 77, "note", "two words")
	log.Debug("hidden")
	level.Set(slog.LevelDebug)
	log.Debug("shown")
	log.Error("boom", "err", errors.New("bad thing"))

	if len(got) != 4 {
		t.Fatalf("want 4 entries (debug filtered until the level changed), got %d: %+v", len(got), got)
	}
	e := got[0]
	if e.prio != journal.PriInfo || e.vars["MODEL"] != "stories" || e.vars["REQUEST_ID"] != "req-1" ||
		e.vars["CONFIG_GENERATION"] != "3" || e.vars["TOKENS"] != "42" || e.vars["SYSLOG_IDENTIFIER"] != "jetaid" {
		t.Errorf("entry 0: %+v", e)
	}
	if e.msg != "request done generation=3 model=stories request_id=req-1 tokens=42" {
		t.Errorf("MESSAGE = %q", e.msg)
	}
	e = got[1]
	if e.prio != journal.PriWarning || e.vars["RUNNER_PID"] != "77" || e.vars["CONFIG_GENERATION"] != "3" ||
		!strings.Contains(e.msg, `runner_note="two words"`) {
		t.Errorf("entry 1: %+v", e)
	}
	if got[2].prio != journal.PriDebug || got[2].msg != "shown generation=3" {
		t.Errorf("entry 2: %+v", got[2])
	}
	if got[3].prio != journal.PriErr || got[3].vars["ERROR"] != "bad thing" {
		t.Errorf("entry 3: %+v", got[3])
	}
}

// TestJournalReal sends through go-systemd's real journal.Send to a
// journal socket: a private /run (mount namespace) holds a datagram socket
// at /run/systemd/journal/socket, as journald's. Needs root.
func TestJournalReal(t *testing.T) {
	if os.Getenv("JETAI_TEST_JOURNAL_CHILD") == "1" {
		journalChild(t)
		return
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test needs a mount namespace")
		}
		t.Skip("needs root for a private mount namespace")
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0], "-test.run", "^TestJournalReal$", "-test.v")
	cmd.Env = append(os.Environ(), "JETAI_TEST_JOURNAL_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "journal-child-ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func journalChild(t *testing.T) {
	if err := exec.Command("mount", "-t", "tmpfs", "tmpfs", "/run").Run(); err != nil {
		t.Fatalf("mount tmpfs on /run: %v", err)
	}
	os.MkdirAll("/run/systemd/journal", 0o755)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "/run/systemd/journal/socket", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !journal.Enabled() {
		t.Fatal("journal.Enabled() is false with a journal socket")
	}
	log := slog.New(systemd.NewJournalHandler(slog.LevelInfo, "jetaid", nil))
	log.Warn("model loaded", "model", "stories", "request_id", "r-9")
	buf := make([]byte, 64<<10)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(buf[:n])
	for _, want := range []string{"PRIORITY=4\n", "MESSAGE=model loaded model=stories request_id=r-9\n", "MODEL=stories\n", "REQUEST_ID=r-9\n", "SYSLOG_IDENTIFIER=jetaid\n"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("journal datagram lacks %q:\n%s", want, msg)
		}
	}
	t.Log("journal-child-ok")
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if ok, err := systemd.Notify("READY=1"); ok || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v %v", ok, err)
	}
	n := testsd.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", n.Path)
	if ok, err := systemd.Notify("READY=1", systemd.Status("serving:\n2 models")); !ok || err != nil {
		t.Fatalf("Notify: %v %v", ok, err)
	}
	_, m := n.Wait(t, 0, "READY=1", 5*time.Second)
	if v, _ := m.Value("STATUS"); v != "serving: 2 models" {
		t.Fatalf("STATUS=%q (newlines must not split the line)", v)
	}
	systemd.Notify(systemd.Reloading()...)
	_, m = n.Wait(t, 1, "RELOADING=1", 5*time.Second)
	if v, ok := m.Value("MONOTONIC_USEC"); !ok || v == "" || v == "0" {
		t.Fatalf("RELOADING=1 without MONOTONIC_USEC: %v", m.Lines)
	}
	systemd.Notify(systemd.ExtendTimeout(30 * time.Second))
	n.Wait(t, 2, "EXTEND_TIMEOUT_USEC=30000000", 5*time.Second)
}

// TestWatchdogOnlyWhileHealthy: pings come while the check passes and stop
// while it fails or hangs.
func TestWatchdogOnlyWhileHealthy(t *testing.T) {
	n := testsd.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", n.Path)
	t.Setenv("WATCHDOG_USEC", "300000")
	t.Setenv("WATCHDOG_PID", "")
	iv := systemd.WatchdogInterval()
	if iv != 300*time.Millisecond {
		t.Fatalf("WatchdogInterval = %s", iv)
	}
	var mode atomic.Int32 // 0 healthy, 1 failing, 2 hanging
	var fails atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		systemd.Watchdog(ctx, iv, func(ctx context.Context) error {
			switch mode.Load() {
			case 1:
				return errors.New("admin socket does not answer")
			case 2:
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}, func(error) { fails.Add(1) })
	}()
	phase := func(m int32) (time.Time, time.Time) {
		mode.Store(m)
		time.Sleep(150 * time.Millisecond) // let a check in flight finish
		from := time.Now()
		time.Sleep(time.Second)
		return from, time.Now()
	}
	a, b := phase(0)
	healthy := n.Count("WATCHDOG=1", a, b)
	a, b = phase(1)
	failing := n.Count("WATCHDOG=1", a, b)
	a, b = phase(2)
	hanging := n.Count("WATCHDOG=1", a, b)
	a, b = phase(0)
	again := n.Count("WATCHDOG=1", a, b)
	cancel()
	<-done
	if healthy < 5 || again < 5 || failing != 0 || hanging != 0 || fails.Load() == 0 {
		t.Fatalf("pings per second: healthy %d, failing %d, hanging %d, healthy again %d (failures seen %d)", healthy, failing, hanging, again, fails.Load())
	}
}

// TestListenFallback: without passed sockets Listen listens on the address.
func TestListenFallback(t *testing.T) {
	ln, activated, err := systemd.Listen(systemd.FDNameAPI, "unix", filepath.Join(t.TempDir(), "x.sock"))
	if err != nil || activated {
		t.Fatalf("Listen: %v activated=%v", err, activated)
	}
	ln.Close()
}
