package daemon_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon"
)

// logBuffer is a log sink tests read while the daemon writes.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *logBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *logBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runDaemon runs a daemon with opts on a fresh loopback listener until the
// test ends, and returns its base URL. The cleanup fails the test when Run
// returns an error or does not return within 30 s of the cancel.
func runDaemon(t *testing.T, opts daemon.Options) (string, *daemon.Daemon) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	d, err := daemon.New(opts)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
	return "http://" + ln.Addr().String(), d
}
