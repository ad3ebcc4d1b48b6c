package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
	"github.com/jetai/jetai/internal/testsd"
)

// daemonEnv makes the test binary run as jetaid (with the config it names),
// the way cmd/jetaid does: SIGTERM and SIGINT stop it gracefully, exit 0
// after a clean shutdown.
const daemonEnv = "JETAI_TEST_DAEMON"

func serveIfDaemon() {
	conf := os.Getenv(daemonEnv)
	if conf == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runnerCmd := testrunner.Command()
	if os.Getenv("JETAI_TEST_RUNNER_DELAY") != "" {
		// A slow load: the runner starts after a pause.
		runnerCmd = append([]string{"/bin/sh", "-c", `sleep "$JETAI_TEST_RUNNER_DELAY"; exec "$0" "$@"`}, runnerCmd...)
	}
	err := daemon.Run(ctx, daemon.Options{ConfigPath: conf, RunnerCommand: runnerCmd, RunnerEnv: testrunner.Env(),
		ShutdownTimeout: 20 * time.Second, NoWatch: true}) // the tests reload by hand
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetaid:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// sdConfig writes a config with one preloaded model on the tiny model.
func sdConfig(t *testing.T, dir, listen, adminSock string, context int) string {
	t.Helper()
	conf := filepath.Join(dir, "jetai.hcl")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`
server {
  listen       = %q
  admin_socket = %q
}
cache {
  dir = "cache"
}
model "stories" {
  path       = %q
  context    = %d
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
}
`, listen, adminSock, testmodel.Path(t), context)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// child is a jetaid started as a child process.
type child struct {
	cmd  *exec.Cmd
	done chan error
	log  *logBuffer // os/exec writes it from another goroutine
}

func startChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, done: make(chan error, 1), log: &logBuffer{}}
	cmd.Stderr = c.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// stop sends SIGTERM and wants exit status 0 within limit.
func (c *child) stop(t *testing.T, limit time.Duration) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.wait(t, limit)
}

func (c *child) wait(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("jetaid exited with %v; log:\n%s", err, c.log)
		}
	case <-time.After(limit):
		t.Fatalf("jetaid did not exit within %s of SIGTERM; log:\n%s", limit, c.log)
	}
}

func health(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("GET /health on %s: %v", addr, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkActivated: READY=1 comes once the passed sockets serve (the API
// answers at once, the preload is done), the daemon says it was activated,
// and it did not bind the configured address or socket.
func checkActivated(t *testing.T, n *testsd.Notifications, apiAddr, adminPath, confListen, confAdmin string) {
	t.Helper()
	_, ready := n.Wait(t, 0, "READY=1", 60*time.Second)
	if code := health(t, apiAddr); code != 200 {
		t.Fatalf("/health right after READY=1: %d", code)
	}
	if v, _ := ready.Value("STATUS"); !strings.HasPrefix(v, "serving: 1/1 models loaded (stories), memory ") {
		t.Fatalf("READY=1 should carry the summary: %v", ready.Lines)
	}
	s, err := admin.NewClient(adminPath).Status(context.Background())
	if err != nil {
		t.Fatalf("admin status over the passed socket: %v", err)
	}
	if !s.Activated || s.Listen != apiAddr || s.AdminSocket != adminPath || s.State != "serving" {
		t.Fatalf("status: activated=%v listen=%s admin=%s state=%s", s.Activated, s.Listen, s.AdminSocket, s.State)
	}
	if len(s.Models) != 1 || s.Models[0].State != "ready" {
		t.Fatalf("the preload should be done at READY=1: %+v", s.Models)
	}
	if c, err := net.DialTimeout("tcp", confListen, time.Second); err == nil {
		c.Close()
		t.Fatalf("the configured address %s is bound too", confListen)
	}
	if _, err := os.Stat(confAdmin); err == nil {
		t.Fatalf("the configured admin socket %s was created too", confAdmin)
	}
}

// TestSocketActivationPassedFDs passes real listening sockets the way
// systemd does (descriptors 3 and 4, LISTEN_FDNAMES=api:admin, LISTEN_PID
// the child's own pid).
func TestSocketActivationPassedFDs(t *testing.T) {
	dir := t.TempDir()
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminPath := filepath.Join(dir, "passed-admin.sock")
	adminLn, err := net.Listen("unix", adminPath)
	if err != nil {
		t.Fatal(err)
	}
	files := []*os.File{testsd.ListenerFile(t, apiLn), testsd.ListenerFile(t, adminLn)}
	confListen, confAdmin := freeAddr(t), filepath.Join(dir, "config-admin.sock")
	conf := sdConfig(t, dir, confListen, confAdmin, 256)
	n := testsd.ListenNotify(t)
	c := startChild(t, testsd.ActivatedCommand(os.Args[0], nil, []string{"api", "admin"}, files,
		[]string{daemonEnv + "=" + conf, "NOTIFY_SOCKET=" + n.Path}))
	for _, f := range files {
		f.Close()
	}
	apiLn.Close() // the child holds its own copies
	checkActivated(t, n, apiLn.Addr().String(), adminPath, confListen, confAdmin)
	i, _ := n.Wait(t, 0, "READY=1", time.Second)
	c.stop(t, 30*time.Second)
	n.Wait(t, i, "STOPPING=1", time.Second)
	// The socket file belongs to the manager: jetaid leaves it.
	if _, err := os.Stat(adminPath); err != nil {
		t.Fatalf("passed admin socket removed by jetaid: %v", err)
	}
}

// TestSystemdSocketActivate runs jetaid under Debian's
// systemd-socket-activate, which binds both sockets and starts jetaid on
// the first connection.
func TestSystemdSocketActivate(t *testing.T) {
	bin, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-socket-activate is missing; .ci/run installs Debian's systemd package")
		}
		t.Skip("systemd-socket-activate not installed (Debian package systemd)")
	}
	dir := t.TempDir()
	apiAddr, adminPath := freeAddr(t), filepath.Join(dir, "admin.sock")
	confListen, confAdmin := freeAddr(t), filepath.Join(dir, "config-admin.sock")
	conf := sdConfig(t, dir, confListen, confAdmin, 256)
	n := testsd.ListenNotify(t)
	cmd := exec.Command(bin, "-l", apiAddr, "-l", adminPath, "--fdname=api:admin",
		"-E", daemonEnv+"="+conf, "-E", "NOTIFY_SOCKET="+n.Path, "-E", "CI="+os.Getenv("CI"),
		"-E", testmodel.Env+"="+os.Getenv(testmodel.Env), os.Args[0])
	c := startChild(t, cmd)
	// It starts jetaid on the first connection; that connection is then
	// served by jetaid itself.
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, err = net.Dial("tcp", apiAddr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate does not listen on %s: %v\n%s", apiAddr, err, c.log)
		}
	}
	fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 ") {
		t.Fatalf("first connection: %q %v\n%s", line, err, c.log)
	}
	checkActivated(t, n, apiAddr, adminPath, confListen, confAdmin)
	c.stop(t, 30*time.Second)
	n.Wait(t, 0, "STOPPING=1", time.Second)
}

// TestFallbackAndWatchdog: without passed sockets jetaid listens on
// server.listen and server.admin_socket; with WatchdogSec set it pings
// while healthy and stops pinging when its admin path no longer answers
// (the socket file is gone).
func TestFallbackAndWatchdog(t *testing.T) {
	dir := t.TempDir()
	listen, adminPath := freeAddr(t), filepath.Join(dir, "admin.sock")
	conf := sdConfig(t, dir, listen, adminPath, 256)
	n := testsd.ListenNotify(t)
	c := startChild(t, testsd.ActivatedCommand(os.Args[0], nil, nil, nil,
		[]string{daemonEnv + "=" + conf, "NOTIFY_SOCKET=" + n.Path, "WATCHDOG_USEC=600000"}))
	n.Wait(t, 0, "READY=1", 60*time.Second)
	if code := health(t, listen); code != 200 {
		t.Fatalf("/health on server.listen: %d", code)
	}
	s, err := admin.NewClient(adminPath).Status(context.Background())
	if err != nil || s.Activated || s.Listen != listen || s.WatchdogSeconds != 0.6 {
		t.Fatalf("status: %+v %v", s, err)
	}
	fi, err := os.Stat(adminPath)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("admin socket: %v %v", fi, err)
	}

	time.Sleep(300 * time.Millisecond)
	from := time.Now()
	time.Sleep(1500 * time.Millisecond)
	healthy := n.Count("WATCHDOG=1", from, time.Now())
	// Break the admin path: the socket file is gone, nobody can reach the
	// daemon with jetai-ctl any more.
	os.Remove(adminPath)
	time.Sleep(300 * time.Millisecond) // a check in flight may still ping
	from = time.Now()
	time.Sleep(1500 * time.Millisecond)
	broken := n.Count("WATCHDOG=1", from, time.Now())
	if healthy < 4 || broken != 0 {
		t.Fatalf("WATCHDOG=1 pings in 1.5s: %d healthy, %d with the admin path broken\n%s", healthy, broken, c.log)
	}
	if !strings.Contains(c.log.String(), "watchdog: not healthy") {
		t.Fatalf("no log line about the failed check:\n%s", c.log)
	}
	c.stop(t, 30*time.Second)
}

// TestSIGTERMDuringStream: a stream running when SIGTERM arrives finishes
// in full; new connections are refused meanwhile; then jetaid exits 0.
func TestSIGTERMDuringStream(t *testing.T) {
	dir := t.TempDir()
	listen := freeAddr(t)
	conf := sdConfig(t, dir, listen, filepath.Join(dir, "admin.sock"), 2048)
	n := testsd.ListenNotify(t)
	c := startChild(t, testsd.ActivatedCommand(os.Args[0], nil, nil, nil, []string{daemonEnv + "=" + conf, "NOTIFY_SOCKET=" + n.Path}))
	n.Wait(t, 0, "READY=1", 60*time.Second)

	s, err := admin.NewClient(filepath.Join(dir, "admin.sock")).Status(context.Background())
	if err != nil || len(s.Models) != 1 || s.Models[0].Pid == 0 {
		t.Fatalf("status: %+v %v", s.Models, err)
	}
	runnerPid := s.Models[0].Pid

	const want = 1500
	resp, err := http.Post("http://"+listen+"/inference", "application/json", strings.NewReader(fmt.Sprintf(
		`{"model": "stories", "prompt": "Once upon a time", "max_tokens": %d, "ignore_eos": true, "stream": true}`, want)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	sigAt := time.Now()
	c.cmd.Process.Signal(syscall.SIGTERM)
	_, stopping := n.Wait(t, 0, "STOPPING=1", 5*time.Second)
	// The listener is closed at once: new clients get connection refused.
	if _, err := net.DialTimeout("tcp", listen, time.Second); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after SIGTERM: %v (want connection refused)", err)
	}
	var last struct {
		Done         bool   `json:"done"`
		FinishReason string `json:"finish_reason"`
		Usage        struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	events := 0
	for {
		line, err := r.ReadString('\n')
		if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok && data != "[DONE]" {
			events++
			json.Unmarshal([]byte(data), &last)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stream broke after SIGTERM: %v", err)
		}
	}
	streamEnd := time.Now()
	if !last.Done || last.FinishReason != "length" || last.Usage.CompletionTokens != want {
		t.Fatalf("stream after SIGTERM: done=%v finish=%q tokens=%d (%d events)", last.Done, last.FinishReason, last.Usage.CompletionTokens, events)
	}
	if !stopping.At.Before(streamEnd) {
		t.Fatal("STOPPING=1 should come at SIGTERM, before the stream ends")
	}
	c.wait(t, 20*time.Second)
	if err := syscall.Kill(runnerPid, 0); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", runnerPid)); !strings.Contains(string(b), ") Z ") {
			t.Fatalf("runner %d outlived jetaid", runnerPid)
		}
	}
	t.Logf("stream finished %s after SIGTERM (%d events); exit 0", streamEnd.Sub(sigAt).Round(time.Millisecond), events)
}

// TestNotifyReload: a reload that changes the config is framed by
// RELOADING=1 (with MONOTONIC_USEC, as systemd 253+ wants; older ones
// ignore it) and READY=1; a rejected one sends neither and changes nothing.
func TestNotifyReload(t *testing.T) {
	dir := t.TempDir()
	adminPath := filepath.Join(dir, "admin.sock")
	conf := sdConfig(t, dir, freeAddr(t), adminPath, 256)
	n := testsd.ListenNotify(t)
	c := startChild(t, testsd.ActivatedCommand(os.Args[0], nil, nil, nil, []string{daemonEnv + "=" + conf, "NOTIFY_SOCKET=" + n.Path}))
	i, _ := n.Wait(t, 0, "READY=1", 60*time.Second)
	client := admin.NewClient(adminPath)
	ctx := context.Background()

	good, _ := os.ReadFile(conf)
	os.WriteFile(conf, []byte(strings.Replace(string(good), "context    = 256", "context    = 512", 1)), 0o644)
	r, err := client.Reload(ctx)
	if err != nil || !r.OK || !r.Changed || r.Generation != 2 {
		t.Fatalf("reload: %+v %v", r, err)
	}
	j, m := n.Wait(t, i+1, "RELOADING=1", 5*time.Second)
	if v, ok := m.Value("MONOTONIC_USEC"); !ok || v == "" {
		t.Fatalf("RELOADING=1 without MONOTONIC_USEC: %v", m.Lines)
	}
	n.Wait(t, j+1, "READY=1", 5*time.Second)

	os.WriteFile(conf, []byte("model \"x\" {\n"), 0o644)
	mark := len(n.All())
	r, err = client.Reload(ctx)
	if err != nil || r.OK || len(r.Diagnostics) == 0 || !strings.Contains(r.Diagnostics[0], conf+":") {
		t.Fatalf("rejected reload: %+v %v", r, err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range n.All()[mark:] {
		if m.Has("RELOADING=1") || m.Has("READY=1") {
			t.Fatalf("a rejected reload sent %v", m.Lines)
		}
	}
	s, _ := client.Status(ctx)
	if s.Config.Generation != 2 || s.Config.Rejected != 1 || s.Models[0].State != "ready" {
		t.Fatalf("after the rejected reload: generation %d, rejected %d, model %s", s.Config.Generation, s.Config.Rejected, s.Models[0].State)
	}
	c.stop(t, 30*time.Second)
}

// TestPreloadHoldsReady: READY=1 waits for the preloads; while one loads,
// the start timeout is extended and STATUS says what is loading.
func TestPreloadHoldsReady(t *testing.T) {
	dir := t.TempDir()
	conf := sdConfig(t, dir, freeAddr(t), filepath.Join(dir, "admin.sock"), 256)
	n := testsd.ListenNotify(t)
	start := time.Now()
	c := startChild(t, testsd.ActivatedCommand(os.Args[0], nil, nil, nil,
		[]string{daemonEnv + "=" + conf, "NOTIFY_SOCKET=" + n.Path, "JETAI_TEST_RUNNER_DELAY=1.5"}))
	i, ext := n.Wait(t, 0, "EXTEND_TIMEOUT_USEC=30000000", 30*time.Second)
	if v, _ := ext.Value("STATUS"); !strings.HasPrefix(v, "starting: 0/1 models loaded") || !strings.HasSuffix(v, "; waiting for preloads: stories") {
		t.Fatalf("STATUS while preloading: %v", ext.Lines)
	}
	j, ready := n.Wait(t, 0, "READY=1", 30*time.Second)
	if j < i || ready.At.Sub(start) < 1500*time.Millisecond {
		t.Fatalf("READY=1 (message %d, %s after start) should follow the extension (message %d) and the 1.5 s load", j, ready.At.Sub(start), i)
	}
	if v, _ := ready.Value("STATUS"); !strings.HasPrefix(v, "serving: 1/1 models loaded (stories)") {
		t.Fatalf("STATUS at READY: %v", ready.Lines)
	}
	c.stop(t, 30*time.Second)
}

// TestPreloadMissingFileReady: a preloaded model whose file is missing
// does not hold READY=1 back or stop jetaid: the other preload loads, READY
// is sent, and STATUS names the unavailable model.
func TestPreloadMissingFileReady(t *testing.T) {
	dir := t.TempDir()
	conf := sdConfig(t, dir, freeAddr(t), filepath.Join(dir, "admin.sock"), 256)
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "model \"absent\" {\n  path    = \"absent.gguf\"\n  preload = true\n}\n")
	f.Close()
	n := testsd.ListenNotify(t)
	c := startChild(t, testsd.ActivatedCommand(os.Args[0], nil, nil, nil,
		[]string{daemonEnv + "=" + conf, "NOTIFY_SOCKET=" + n.Path}))
	_, ready := n.Wait(t, 0, "READY=1", 30*time.Second)
	if v, _ := ready.Value("STATUS"); !strings.HasPrefix(v, "serving: 1/2 models loaded (stories); unavailable: absent, memory ") {
		t.Fatalf("STATUS at READY: %v", ready.Lines)
	}
	c.stop(t, 30*time.Second)
}

// TestSIGTERMDuringPreload: stopped while a preload runs, jetaid never
// says READY=1, says STOPPING=1 and exits 0.
func TestSIGTERMDuringPreload(t *testing.T) {
	dir := t.TempDir()
	conf := sdConfig(t, dir, freeAddr(t), filepath.Join(dir, "admin.sock"), 256)
	n := testsd.ListenNotify(t)
	c := startChild(t, testsd.ActivatedCommand(os.Args[0], nil, nil, nil,
		[]string{daemonEnv + "=" + conf, "NOTIFY_SOCKET=" + n.Path, "JETAI_TEST_RUNNER_DELAY=3"}))
	n.Wait(t, 0, "EXTEND_TIMEOUT_USEC=", 30*time.Second)
	c.stop(t, 30*time.Second)
	n.Wait(t, 0, "STOPPING=1", time.Second)
	for _, m := range n.All() {
		if m.Has("READY=1") {
			t.Fatalf("READY=1 sent by a daemon stopped before its preloads finished: %v", n.All())
		}
	}
}
