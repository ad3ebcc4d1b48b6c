package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
)

// The test binary doubles as an admin client run under another uid.
func TestMain(m *testing.M) {
	if path := os.Getenv("JETAI_TEST_ADMIN_CLIENT"); path != "" {
		s, err := admin.NewClient(path).Status(context.Background())
		if err != nil {
			fmt.Println("error:", err)
			var ae *admin.APIError
			if errors.As(err, &ae) {
				fmt.Println("status:", ae.Status)
			}
			os.Exit(1)
		}
		fmt.Println("state:", s.State)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// backend is a minimal Backend for protocol tests; the daemon's real one
// is tested in package daemon and ctl.
type backend struct {
	level    string
	statuses atomic.Int64 // Status calls
}

func (b *backend) Status(context.Context) admin.Status {
	b.statuses.Add(1)
	return admin.Status{APIVersion: admin.APIVersion, State: "serving"}
}
func (b *backend) Models(context.Context) []admin.Model { return nil }
func (b *backend) Load(_ context.Context, name string, _ bool) (admin.LoadResult, error) {
	return admin.LoadResult{}, admin.Errorf(404, admin.CodeNotFound, "no model %q", name)
}
func (b *backend) Unload(_ context.Context, name string) (admin.LoadResult, error) {
	if name == "hot" {
		return admin.LoadResult{}, fmt.Errorf("unload %s: %w", name, hotError{})
	}
	return admin.LoadResult{}, nil
}

// hotError is an error from the daemon's parts that knows how it reaches
// a client, as the pool's ThrottledError does.
type hotError struct{}

func (hotError) Error() string             { return "too hot" }
func (hotError) Code() string              { return "thermal_shed" }
func (hotError) HTTPStatus() int           { return http.StatusServiceUnavailable }
func (hotError) RetryAfter() time.Duration { return 30 * time.Second }
func (b *backend) Optimize(context.Context) (admin.OptimizeReport, error) {
	return admin.OptimizeReport{}, nil
}
func (b *backend) Reload(context.Context) (admin.ReloadResult, error) {
	return admin.ReloadResult{OK: false, Error: "bad file"}, nil
}
func (b *backend) Validate(_ context.Context, r admin.ValidateRequest) admin.ValidateResult {
	return admin.ValidateResult{OK: r.Content != "", Path: r.Path}
}
func (b *backend) LogLevel() string { return b.level }
func (b *backend) SetLogLevel(l string) error {
	if l != "debug" && l != "info" {
		return errors.New("unknown level")
	}
	b.level = l
	return nil
}
func (b *backend) Complete(context.Context, admin.CompleteRequest, func(string)) (admin.CompleteResult, error) {
	return admin.CompleteResult{}, errors.New("no")
}

// worldDir makes a directory every user can enter (t.TempDir is 0700).
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "jetai-admin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return dir
}

func serve(t *testing.T, path string, acc admin.Access) *admin.Server {
	t.Helper()
	ln, err := admin.Listen(path, acc.Gid)
	if err != nil {
		t.Fatal(err)
	}
	s := admin.NewServer(admin.Options{Backend: &backend{level: "info"}, Access: acc})
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func TestSocketFileAndStale(t *testing.T) {
	dir := worldDir(t)
	path := filepath.Join(dir, "sub", "admin.sock")
	// A stale socket: bound, then its listener gone without unlinking.
	os.MkdirAll(filepath.Dir(path), 0o755)
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal("stale socket file should exist:", err)
	}
	serve(t, path, admin.Access{Uid: os.Geteuid(), Gid: os.Getegid(), GroupName: "test"})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != uint32(os.Getegid()) {
		t.Fatalf("socket mode %v gid %d, want 0660 gid %d", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid, os.Getegid())
	}
	s, err := admin.NewClient(path).Status(context.Background())
	if err != nil || s.State != "serving" {
		t.Fatalf("status over the replaced socket: %+v %v", s, err)
	}
	// A live socket is not taken over.
	if _, err := admin.Listen(path, -1); err == nil || !strings.Contains(err.Error(), "another jetaid is running") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	// A regular file is not removed.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o644)
	if _, err := admin.Listen(file, -1); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatal("regular file was touched")
	}
}

func TestAPI(t *testing.T) {
	path := filepath.Join(worldDir(t), "admin.sock")
	serve(t, path, admin.Access{Uid: os.Geteuid(), Gid: -1, GroupName: "jetai"})
	c := admin.NewClient(path)
	ctx := context.Background()
	if _, err := c.Load(ctx, "nope", true); err == nil {
		t.Fatal("load of an unknown model succeeded")
	} else if ae := (*admin.APIError)(nil); !errors.As(err, &ae) || ae.Status != 404 || ae.Code != admin.CodeNotFound {
		t.Fatalf("load error: %#v", err)
	}
	// An error with its own code and status is answered with them (and
	// Retry-After); one without is a 500 "internal".
	_, err := c.Unload(ctx, "hot")
	if ae := (*admin.APIError)(nil); !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "thermal_shed" ||
		ae.RetryAfter != 30*time.Second || ae.Message != "unload hot: too hot" {
		t.Fatalf("unload error with its own code: %#v", err)
	}
	_, err = c.Complete(ctx, admin.CompleteRequest{Model: "m"}, nil)
	if ae := (*admin.APIError)(nil); !errors.As(err, &ae) || ae.Status != 500 || ae.Code != admin.CodeInternal {
		t.Fatalf("complete error without a code: %#v", err)
	}
	r, err := c.Reload(ctx)
	if err != nil || r.OK || r.Error != "bad file" {
		t.Fatalf("rejected reload must come back as a result: %+v %v", r, err)
	}
	if l, err := c.SetLogLevel(ctx, "debug"); err != nil || l != "debug" {
		t.Fatalf("set level: %q %v", l, err)
	}
	if _, err := c.SetLogLevel(ctx, "loud"); err == nil {
		t.Fatal("bad level accepted")
	}
	n := 0
	start := time.Now()
	if err := c.Top(ctx, 200*time.Millisecond, 3, func(admin.Status) bool { n++; return true }); err != nil || n != 3 {
		t.Fatalf("top: %d statuses, %v", n, err)
	}
	if el := time.Since(start); el < 350*time.Millisecond {
		t.Fatalf("3 statuses at 200ms came in %s", el)
	}
	// Plain HTTP works too (curl --unix-socket), and unknown paths say so.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", path)
	}}}
	resp, err := hc.Get("http://x/v9/status")
	if err != nil {
		t.Fatal(err)
	}
	var eb admin.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(eb.Error.Message, "API v1") {
		t.Fatalf("unknown path: %d %+v", resp.StatusCode, eb)
	}
	resp, err = hc.Post("http://x/v1/validate", "application/json", strings.NewReader(`{"path": 5}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("bad body: %d", resp.StatusCode)
	}
}

func TestUnreachable(t *testing.T) {
	dir := worldDir(t)
	_, err := admin.NewClient(filepath.Join(dir, "none.sock")).Status(context.Background())
	var ue *admin.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "is jetaid running? try: systemctl status jetaid") {
		t.Fatalf("missing socket: %v", err)
	}
	path := filepath.Join(dir, "stale.sock")
	l, _ := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	l.SetUnlinkOnClose(false)
	l.Close()
	_, err = admin.NewClient(path).Status(context.Background())
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("stale socket: %v", err)
	}
}

// TestPeerCredentials runs a client as nobody (65534): refused with a
// message naming the group, even when the socket's mode would let it
// connect; accepted once its primary group is the admin group; root is
// accepted.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test needs to start a process as another user")
		}
		t.Skip("needs root to run a client as another user")
	}
	dir := worldDir(t)
	bin := filepath.Join(dir, "client")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	const adminGid = 4242 // a group nobody is in
	path := filepath.Join(dir, "admin.sock")
	serve(t, path, admin.Access{Uid: 0, Gid: adminGid, GroupName: "jetai"})
	run := func(uid, gid uint32, groups []uint32) (string, int) {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "JETAI_TEST_ADMIN_CLIENT="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	// Mode 0660 keeps nobody out at the file system already.
	out, code := run(65534, 65534, nil)
	if code == 0 || !strings.Contains(out, "permission denied on "+path) || !strings.Contains(out, "member of group jetai") {
		t.Fatalf("nobody through mode 0660: exit %d\n%s", code, out)
	}
	// With the mode opened up, SO_PEERCRED still refuses it.
	os.Chmod(path, 0o666)
	out, code = run(65534, 65534, nil)
	if code == 0 || !strings.Contains(out, "status: 403") || !strings.Contains(out, "uid 65534") ||
		!strings.Contains(out, "members of group jetai") || !strings.Contains(out, "usermod -aG jetai") {
		t.Fatalf("nobody through SO_PEERCRED: exit %d\n%s", code, out)
	}
	if out, code = run(65534, adminGid, nil); code != 0 || !strings.Contains(out, "state: serving") {
		t.Fatalf("member by primary group: exit %d\n%s", code, out)
	}
	if out, code = run(65534, 65534, []uint32{adminGid}); code != 0 || !strings.Contains(out, "state: serving") {
		t.Fatalf("member by supplementary group: exit %d\n%s", code, out)
	}
	if out, code = run(0, 0, nil); code != 0 || !strings.Contains(out, "state: serving") {
		t.Fatalf("root: exit %d\n%s", code, out)
	}
}

// TestTopNeverRead: a top client that stops reading but keeps its
// connection open must not hold its handler (and the status calls behind
// it) blocked in a write for the daemon's whole life. Each line has a
// write deadline: the stream ends, and reading what was buffered meets
// the end of the answer.
func TestTopNeverRead(t *testing.T) {
	path := filepath.Join(worldDir(t), "admin.sock")
	ln, err := admin.Listen(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	be := &backend{level: "info"}
	s := admin.NewServer(admin.Options{Backend: be, Access: admin.Access{Uid: os.Geteuid(), Gid: -1, GroupName: "jetai"},
		MinTopInterval: time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.UnixConn).SetReadBuffer(1) // fill up after a few lines
	io.WriteString(c, "GET /v1/top?interval=1ms HTTP/1.1\r\nHost: x\r\n\r\n")
	// Nothing is read until the handler has stalled: no status asked for
	// during 3 s, far over the write deadline (the buffers are full; a
	// goroutine that writes a line a millisecond is not descheduled that
	// long).
	last, since := int64(-1), time.Now()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n := be.statuses.Load(); n != last {
			last, since = n, time.Now()
		} else if n > 0 && time.Since(since) > 3*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the top stream never stalled (%d statuses)", last)
		}
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("after %d bytes: %v (the stream went on: the stalled writer was never cut off)", n, err)
	}
	t.Logf("the stream ended after %d bytes", n)
}

// TestHungDaemon: a daemon that accepts connections but never answers
// (deadlocked) made every jetai-ctl command wait forever. Now a status or
// other read gets no more than AnswerTimeout to start answering, and an
// operation (POST) is preceded by such a status probe: either way an
// UnreachableError that says the daemon is hung (jetai-ctl exit code 3).
func TestHungDaemon(t *testing.T) {
	path := filepath.Join(worldDir(t), "hung.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	c := admin.NewClient(path)
	c.AnswerTimeout = 300 * time.Millisecond
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"status":    func() error { _, err := c.Status(ctx); return err },
		"top":       func() error { return c.Top(ctx, time.Second, 1, func(admin.Status) bool { return true }) },
		"load wait": func() error { _, err := c.Load(ctx, "m", true); return err },
		"reload":    func() error { _, err := c.Reload(ctx); return err },
	} {
		start := time.Now()
		err := call()
		var ue *admin.UnreachableError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "did not answer within 300ms") {
			t.Errorf("%s: %v, want an UnreachableError saying the daemon is hung", name, err)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("%s: took %v", name, el)
		}
	}
}
