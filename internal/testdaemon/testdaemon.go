// Package testdaemon runs a real jetaid inside a test: daemon.New and Run
// over an HCL config, on a loopback port, with runners (and `jetaid tool`)
// started from the test binary (package testrunner, whose ServeIfRunner
// the test's TestMain must call). It owns the starting, the wait for the
// API and the stop at the test's end; what a test asserts stays in the
// test.
package testdaemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testrunner"
)

// StopTimeout is how long Stop and the test's cleanup wait for Run to
// return.
const StopTimeout = 60 * time.Second

// startTimeout bounds the wait for the REST API to serve.
const startTimeout = 60 * time.Second

// Daemon is a daemon running for a test.
type Daemon struct {
	*daemon.Daemon
	// URL is the REST API's base: "http://127.0.0.1:PORT".
	URL string
	// Addr is the REST API's address.
	Addr net.Addr

	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// WriteConfig writes hcl as dir/jetai.hcl and returns its path.
func WriteConfig(t testing.TB, dir, hcl string) string {
	t.Helper()
	p := filepath.Join(dir, "jetai.hcl")
	if err := os.WriteFile(p, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Start runs a daemon with opts until the test ends and returns once its
// REST API serves. opts.ConfigPath is required; what opts leaves unset
// defaults to: a fresh loopback listener, runners and tools from the test
// binary, the runners' sockets in the config's directory, the runners'
// stderr discarded (unless LogOutput is set: the daemon logs it there). A
// config the daemon refuses, or a Run that ends before serving, fails the
// test. The cleanup stops the daemon and fails the
// test when Run returns an error or does not return within StopTimeout.
func Start(t testing.TB, opts daemon.Options) *Daemon {
	t.Helper()
	if opts.ConfigPath == "" {
		t.Fatal("testdaemon: Options.ConfigPath is required")
	}
	if opts.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts.Listener = ln
	}
	if opts.RunnerCommand == nil {
		opts.RunnerCommand, opts.RunnerEnv = testrunner.Command(), testrunner.Env()
	}
	if opts.ToolCommand == nil {
		opts.ToolCommand, opts.ToolEnv = testrunner.Command(), testrunner.ToolEnv()
	}
	if opts.SocketDir == "" {
		opts.SocketDir = filepath.Dir(opts.ConfigPath)
	}
	if opts.RunnerLog == nil && opts.LogOutput == nil {
		opts.RunnerLog = io.Discard // a test that captures the log gets the runners' output with it
	}
	ready := make(chan struct{})
	userReady := opts.Ready
	opts.Ready = func(a net.Addr) {
		if userReady != nil {
			userReady(a)
		}
		close(ready)
	}
	dd, err := daemon.New(opts)
	if err != nil {
		opts.Listener.Close()
		t.Fatalf("testdaemon: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{Daemon: dd, Addr: opts.Listener.Addr(), URL: "http://" + opts.Listener.Addr().String(),
		cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- dd.Run(ctx) }()
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("testdaemon: Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-d.done:
		d.ended, d.err = true, err
		t.Fatalf("testdaemon: Run ended before serving: %v", err)
	case <-time.After(startTimeout):
		t.Fatalf("testdaemon: the REST API does not serve after %v", startTimeout)
	}
	return d
}

// Stop stops the daemon gracefully, as SIGTERM does, and returns Run's
// error (nil after a clean shutdown). Later calls return the same.
func (d *Daemon) Stop() error {
	if d.ended {
		return d.err
	}
	d.cancel()
	select {
	case d.err = <-d.done:
	case <-time.After(StopTimeout):
		d.err = fmt.Errorf("Run did not return within %v of the stop", StopTimeout)
	}
	d.ended = true
	return d.err
}

// WaitHealthy waits until GET /health answers 200 (the preloads are
// ready) and fails the test after a minute without.
func (d *Daemon) WaitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get(d.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not healthy after %v: %v", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
