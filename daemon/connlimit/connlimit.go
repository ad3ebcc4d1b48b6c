// Package connlimit caps how many connections the REST port holds open at
// once, so that a flood of idle or half-open TCP connections cannot use up
// jetaid's file descriptors (which its runners, model files and sockets
// need too) nor its memory. It owns the listener wrapper and the
// bookkeeping of each connection's state; it knows nothing of HTTP
// routes.
//
// At the cap, a new connection first makes room by closing the connection
// that has been idle the longest, if that is at least MinIdle: one that
// has sent no request yet or sits between keep-alive requests, and has no
// bytes waiting unread (those are a request on its way). Such a
// connection costs its client little to reopen, whereas refusing the
// newcomer would let whoever holds the most idle sockets lock everyone
// else out (a /health probe included). MinIdle keeps a burst of clients
// that have just connected (and are about to send their requests) from
// evicting each other. When no connection qualifies, the newcomer waits
// up to MaxWait for one to close or turn idle (a burst of short requests
// drains meanwhile, its connections queued in the listen backlog), then
// its request is answered 503 with Retry-After and the connection closed.
package connlimit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// refusal is the whole answer to a connection over the cap: a complete
// HTTP/1.1 reply that closes the connection, with the API's error body.
var refusal = func() []byte {
	body := `{"error":{"message":"too many open connections (server.max_connections); retry later","type":"server_error","param":null,"code":"too_many_connections"}}` + "\n"
	return []byte(fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
}()

// Listener is a net.Listener that keeps at most Max() connections open.
// Its ConnState must be set as the http.Server's ConnState, so that it
// knows which connections are idle.
type Listener struct {
	net.Listener
	max func() int

	mu    sync.Mutex
	conns map[*conn]struct{}

	evicted, refused atomic.Int64
	refusing         chan struct{} // a slot per refusal being answered

	freed chan struct{} // a connection closed or turned idle

	// MinIdle is how long a connection must have been idle to be closed
	// for a newcomer, and MaxWait how long a newcomer waits for room
	// before it is refused; New sets the defaults. Set them before Accept.
	MinIdle, MaxWait time.Duration
}

// Defaults of Listener.MinIdle and MaxWait.
const (
	DefaultMinIdle = time.Second
	DefaultMaxWait = time.Second
)

// New wraps ln. max is read at every accept, so a config reload can change
// the cap; a value below 1 means no cap.
func New(ln net.Listener, max func() int) *Listener {
	return &Listener{Listener: ln, max: max, conns: map[*conn]struct{}{}, refusing: make(chan struct{}, maxRefusing),
		freed: make(chan struct{}, 1), MinIdle: DefaultMinIdle, MaxWait: DefaultMaxWait}
}

type conn struct {
	net.Conn
	l      *Listener
	idle   bool      // no request in progress; guarded by l.mu
	since  time.Time // when it became idle; guarded by l.mu
	closed sync.Once
}

func (c *conn) Close() error {
	c.closed.Do(c.l.forget(c))
	return c.Conn.Close()
}

func (l *Listener) forget(c *conn) func() {
	return func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		l.wake()
	}
}

// wake tells an Accept waiting at the cap that a connection closed or
// became idle.
func (l *Listener) wake() {
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// Accept returns the next connection within the cap. At the cap with no
// connection to evict, it waits up to MaxWait for one to close or turn
// idle (new connections queue in the kernel's listen backlog meanwhile, as
// a burst of short requests would want), then refuses the newcomer.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &conn{Conn: nc, l: l, idle: true}
		for deadline := time.Now().Add(l.MaxWait); ; {
			ok, victim := l.admit(c)
			if victim != nil {
				l.evicted.Add(1)
				victim.Close()
			}
			if ok {
				return c, nil
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				l.refused.Add(1)
				l.refuse(nc)
				break
			}
			t := time.NewTimer(min(wait, 50*time.Millisecond)) // idle ones age past MinIdle too
			select {
			case <-l.freed:
			case <-t.C:
			}
			t.Stop()
		}
	}
}

// admit adds c within the cap, evicting the longest-idle connection if
// that makes room; it reports whether c was added, and the victim.
func (l *Listener) admit(c *conn) (bool, *conn) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var victim *conn
	if n := l.max(); n > 0 && len(l.conns) >= n {
		idleSince := now.Add(-l.MinIdle)
		var idle []*conn
		for o := range l.conns {
			if o.idle && !o.since.After(idleSince) {
				idle = append(idle, o)
			}
		}
		slices.SortFunc(idle, func(a, b *conn) int { return a.since.Compare(b.since) })
		// A connection with bytes waiting unread is a request on its way
		// (its server goroutine has not run yet, as in a burst on a busy
		// machine): it is not idle, whatever its state says.
		for _, o := range idle {
			if !pending(o.Conn) {
				victim = o
				break
			}
		}
		if victim == nil {
			return false, nil
		}
		delete(l.conns, victim)
	}
	c.since = now
	l.conns[c] = struct{}{}
	return true, victim
}

// pending reports whether nc has received bytes not read yet (FIONREAD);
// false when that cannot be told.
func pending(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) // FIONREAD
	})
	return err == nil && n > 0
}

// refuse answers 503 and closes. It reads the request first (HTTP clients
// take an answer that comes before their request for a broken connection)
// and drains what follows, so that closing does not reset the connection
// under the answer; all of it within refuseTime. At most maxRefusing
// connections are answered at once; beyond that they are just closed.
func (l *Listener) refuse(nc net.Conn) {
	select {
	case l.refusing <- struct{}{}:
	default:
		nc.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(refuseTime))
		br := bufio.NewReaderSize(nc, 1024)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		if _, err := nc.Write(refusal); err != nil {
			return
		}
		if cw, ok := nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, br)
	}()
}

const (
	refuseTime  = time.Second
	maxRefusing = 256
)

// ConnState records whether each connection is in a request; set it as
// http.Server.ConnState.
func (l *Listener) ConnState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	switch st {
	case http.StateActive:
		l.mu.Lock()
		c.idle = false
		l.mu.Unlock()
	case http.StateIdle:
		l.mu.Lock()
		c.idle, c.since = true, time.Now()
		l.mu.Unlock()
		l.wake()
	case http.StateHijacked, http.StateClosed:
		c.closed.Do(l.forget(c))
	}
}

// Stats are the listener's counters.
type Stats struct {
	Open    int   `json:"open"`    // connections open now
	Max     int   `json:"max"`     // the cap in force
	Evicted int64 `json:"evicted"` // idle connections closed to make room
	Refused int64 `json:"refused"` // new connections answered 503 at the cap
}

// Stats returns the counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	n := len(l.conns)
	l.mu.Unlock()
	return Stats{Open: n, Max: l.max(), Evicted: l.evicted.Load(), Refused: l.refused.Load()}
}
