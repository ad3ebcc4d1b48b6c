package connlimit_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/connlimit"
)

// serve runs an http.Server behind a Listener with cap max; handler
// blocks while hold is open.
func serve(t *testing.T, max int, hold chan struct{}) (*connlimit.Listener, string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := connlimit.New(ln, func() int { return max })
	lim.MinIdle, lim.MaxWait = 0, 0
	var held atomic.Int32
	hs := &http.Server{ConnState: lim.ConnState, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held.Add(1)
			<-hold
		}
		io.WriteString(w, "ok")
	})}
	go hs.Serve(lim)
	t.Cleanup(func() { hs.Close() })
	return lim, ln.Addr().String(), &held
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// closedByServer reports whether the server has closed c (a read sees EOF
// or a reset rather than its deadline).
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func TestEvictsLongestIdleFirst(t *testing.T) {
	lim, addr, _ := serve(t, 4, nil)
	var conns []net.Conn
	for i := range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		waitFor(t, "accept", func() bool { return lim.Stats().Open == i+1 })
	}
	// The newest one made a request and is idle between keep-alive
	// requests now: still more recently idle than the first three.
	io.WriteString(conns[3], "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(conns[3]), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitFor(t, "eviction", func() bool { return lim.Stats().Evicted == int64(i+1) })
		waitFor(t, "the oldest idle connection closed", func() bool { return closedByServer(conns[i]) })
	}
	if closedByServer(conns[3]) {
		t.Fatal("the most recently used connection was closed before older idle ones")
	}
	if st := lim.Stats(); st.Open != 4 || st.Refused != 0 {
		t.Fatalf("stats %+v, want 4 open, 3 evicted, none refused", st)
	}
}

func TestRefusesWhenAllBusy(t *testing.T) {
	hold := make(chan struct{})
	lim, addr, held := serve(t, 3, hold)
	done := make(chan error, 3)
	for range 3 {
		go func() {
			resp, err := http.Get("http://" + addr + "/hold")
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
	}
	waitFor(t, "three requests in their handler", func() bool { return held.Load() == 3 })
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), `"code":"too_many_connections"`) {
		t.Fatalf("answer %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	close(hold)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatalf("a request in progress failed: %v", err)
		}
	}
	if lim.Stats().Refused == 0 {
		t.Fatal("refusal not counted")
	}
}

// TestFreshConnectionsAreNotEvicted: connections younger than MinIdle
// (a burst of clients about to send their requests) are not closed for a
// newcomer; the newcomer is refused instead.
func TestFreshConnectionsAreNotEvicted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := connlimit.New(ln, func() int { return 2 })
	lim.MinIdle, lim.MaxWait = time.Hour, 0
	hs := &http.Server{ConnState: lim.ConnState, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go hs.Serve(lim)
	defer hs.Close()
	for i := range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitFor(t, "accept", func() bool { return lim.Stats().Open == i+1 })
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := lim.Stats(); resp.StatusCode != 503 || st.Evicted != 0 || st.Refused != 1 {
		t.Fatalf("answer %d, stats %+v; want 503, none evicted, 1 refused", resp.StatusCode, st)
	}
}

// TestPendingBytesAreNotIdle: a connection whose request bytes wait unread
// (its server goroutine has not run yet, as in a burst on a busy machine)
// is not evicted, even when it is the oldest; a silent one is.
func TestPendingBytesAreNotIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := connlimit.New(ln, func() int { return 2 })
	lim.MinIdle, lim.MaxWait = 0, 0
	defer lim.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := lim.Accept() // and never read: no server here
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(send string) net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if send != "" {
			io.WriteString(c, send)
		}
		<-accepted
		return c
	}
	busy := dial("GET / HTTP/1.1\r\nHost: x\r\n\r\n") // oldest, with bytes waiting
	silent := dial("")
	dial("") // over the cap: one of the two must go
	waitFor(t, "an eviction", func() bool { return lim.Stats().Evicted == 1 })
	waitFor(t, "the silent connection closed", func() bool { return closedByServer(silent) })
	if closedByServer(busy) {
		t.Fatal("the connection with a request waiting was evicted")
	}
}
