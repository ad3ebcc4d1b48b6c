// Package testsd stands in for systemd's side of its protocols in tests: a
// datagram socket that collects sd_notify messages (NOTIFY_SOCKET), and a
// command wrapper that passes listening sockets to a child the way systemd
// does (LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID set to the child's own
// pid). Real descriptors, real environment: only the manager is missing.
package testsd

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Notifications collects what a service sends to NOTIFY_SOCKET.
type Notifications struct {
	Path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []Message
	wake chan struct{}
}

// Message is one datagram, split into its lines.
type Message struct {
	At    time.Time
	Lines []string
}

// Has reports whether the message holds line (exactly) or, for a line
// ending in "=", a line with that prefix.
func (m Message) Has(line string) bool {
	for _, l := range m.Lines {
		if l == line || (strings.HasSuffix(line, "=") && strings.HasPrefix(l, line)) {
			return true
		}
	}
	return false
}

// Value returns the value of KEY= in the message.
func (m Message) Value(key string) (string, bool) {
	for _, l := range m.Lines {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// ListenNotify opens a notify socket in a temporary directory; it closes
// when the test ends.
func ListenNotify(t testing.TB) *Notifications {
	t.Helper()
	dir, err := os.MkdirTemp("", "jetai-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &Notifications{Path: path, conn: c, wake: make(chan struct{})}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, Message{At: time.Now(), Lines: strings.Split(string(buf[:k]), "\n")})
			close(n.wake)
			n.wake = make(chan struct{})
			n.mu.Unlock()
		}
	}()
	return n
}

// All returns the messages so far.
func (n *Notifications) All() []Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Message(nil), n.msgs...)
}

// Wait returns the index and the first message at or after index from
// that has line (see Message.Has), failing the test after timeout.
func (n *Notifications) Wait(t testing.TB, from int, line string, timeout time.Duration) (int, Message) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		n.mu.Lock()
		for i := from; i < len(n.msgs); i++ {
			if n.msgs[i].Has(line) {
				m := n.msgs[i]
				n.mu.Unlock()
				return i, m
			}
		}
		wake := n.wake
		n.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("no %q on the notify socket within %s; got %v", line, timeout, n.All())
		}
	}
}

// Count counts messages with line received in [from, to).
func (n *Notifications) Count(line string, from, to time.Time) int {
	k := 0
	for _, m := range n.All() {
		if m.Has(line) && !m.At.Before(from) && m.At.Before(to) {
			k++
		}
	}
	return k
}

// ActivatedCommand returns a command that runs name with args as systemd
// would after socket activation: files become descriptors 3, 4, … named
// names, and LISTEN_PID (and WATCHDOG_PID, when the environment sets
// WATCHDOG_USEC) is the child's own pid. A shell sets the pid and execs the
// program, so the pid is the program's. env adds to the environment.
func ActivatedCommand(name string, args []string, names []string, files []*os.File, env []string) *exec.Cmd {
	script := `LISTEN_PID=$$; export LISTEN_PID; if [ -n "$WATCHDOG_USEC" ]; then WATCHDOG_PID=$$; export WATCHDOG_PID; fi; exec "$0" "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, name}, args...)...)
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), env...)
	if len(files) > 0 {
		cmd.Env = append(cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	}
	return cmd
}

// ListenerFile returns a listener's descriptor as a file to pass on.
func ListenerFile(t testing.TB, ln net.Listener) *os.File {
	t.Helper()
	var f *os.File
	var err error
	switch l := ln.(type) {
	case *net.TCPListener:
		f, err = l.File()
	case *net.UnixListener:
		f, err = l.File()
	default:
		t.Fatalf("cannot pass a %T", ln)
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}
