package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/api"
)

// smallBuffers shrinks the socket buffers of accepted connections, so a
// client that stops reading stalls the server's writes after a few KiB
// instead of the megabytes loopback buffers hold.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(1)
	}
	return c, err
}

// deadlineServer serves the shared pool through an API with short body and
// write timeouts.
func deadlineServer(t *testing.T, e *env) string {
	t.Helper()
	srv := api.New(api.Options{Pool: e.pool, Config: e.cfg, Version: "test",
		BodyTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	srv.SetState(api.StateServing)
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener = smallBuffers{hs.Listener}
	hs.Start()
	t.Cleanup(hs.Close)
	return strings.TrimPrefix(hs.URL, "http://")
}

// dialSmall connects with a receive buffer of a few KiB.
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1) })
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStalledReaderFreesSlot: a client that asks for a long stream and
// then never reads it (but keeps the connection open) must not hold the
// model's slot until server.request_timeout (5 minutes by default), the
// handler blocked in a write. Each write has a deadline, and a write that
// misses it cancels the request.
func TestStalledReaderFreesSlot(t *testing.T) {
	e := mainServer(t)
	a := post(t, e.url+"/inference", `{"prompt": "x", "model": "slow", "max_tokens": 32}`)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	tps := a.JSON["timings"].(map[string]any)["tokens_per_second"].(float64)
	addr := deadlineServer(t, e)
	c := dialSmall(t, addr)
	body := `{"model": "slow", "prompt": "Once upon a time", "max_tokens": 4000, "ignore_eos": true, "stream": true}`
	fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 16), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream did not start: %v %v", resp, err)
	}
	started := time.Now()
	// From here on nothing is read. The stream fills the small buffers
	// within a few hundred tokens; generating all 4000 takes 4000/tps.
	waitFor := func(what string, bound time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(bound); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v (the slow model makes %.0f tokens/s)", what, bound, tps)
			}
		}
	}
	waitFor("the stream holds the slot", 10*time.Second, func() bool { st, _ := e.pool.Model("slow"); return st.Active == 1 })
	bound := time.Duration(4000 / tps / 2 * float64(time.Second))
	if bound < 3*time.Second {
		t.Logf("the slow model is fast here (%.0f tokens/s); this test proves less", tps)
		bound = 3 * time.Second
	}
	waitFor("the stalled stream's slot is freed", bound, func() bool { st, _ := e.pool.Model("slow"); return st.Active == 0 })
	t.Logf("slot freed %v after the client stopped reading (%.0f tokens/s)", time.Since(started).Round(time.Millisecond), tps)
}

// TestSlowBodyGets408: a client that sends its headers and then trickles
// the body a byte at a time must not hold its connection and handler for
// as long as it likes: the body has a read deadline, not only the
// headers, and the answer is 408 body_timeout.
func TestSlowBodyGets408(t *testing.T) {
	e := mainServer(t)
	addr := deadlineServer(t, e)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /inference HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	got := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			close(got)
			return
		}
		got <- resp
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second) // the whole body would take 100 s
	for {
		select {
		case resp, ok := <-got:
			if !ok {
				t.Fatal("connection closed without an answer")
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"code":"body_timeout"`) {
				t.Fatalf("answer %d %s, want 408 body_timeout", resp.StatusCode, b)
			}
			return
		case <-tick.C:
			c.Write([]byte(" ")) // one byte, keeping the body alive
		case <-deadline:
			t.Fatal("no answer within 20 s to a body trickled a byte per 100 ms")
		}
	}
}
