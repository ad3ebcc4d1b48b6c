// Package connlimit caps how many connections the REST port holds open at
// once, so that a flood of idle or half-open TCP connections cannot use up
// jetaid's file descriptors (which its runners, model files and sockets
// need too) nor its memory. It owns the listener wrapper and the
// bookkeeping of each connection's state; it knows nothing of HTTP
// routes.
//
// At the cap, a new connection first makes room by closing the connection
// that has been idle the longest: one that has sent no request yet or sits
// between keep-alive requests. Such a connection costs its client nothing
// to reopen, whereas refusing the newcomer would let whoever holds the most
// idle sockets lock everyone else out (a /health probe included). When
// every connection is in the middle of a request, the newcomer's request
// is answered 503 with Retry-After and the connection closed; the accept
// loop never blocks, so the listen backlog does not fill up behind it.
package connlimit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
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
}

// New wraps ln. max is read at every accept, so a config reload can change
// the cap; a value below 1 means no cap.
func New(ln net.Listener, max func() int) *Listener {
	return &Listener{Listener: ln, max: max, conns: map[*conn]struct{}{}, refusing: make(chan struct{}, maxRefusing)}
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
	}
}

// Accept returns the next connection within the cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &conn{Conn: nc, l: l, idle: true, since: time.Now()}
		var victim *conn
		l.mu.Lock()
		if n := l.max(); n > 0 && len(l.conns) >= n {
			for o := range l.conns {
				if o.idle && (victim == nil || o.since.Before(victim.since)) {
					victim = o
				}
			}
			if victim == nil {
				l.mu.Unlock()
				l.refused.Add(1)
				l.refuse(nc)
				continue
			}
			delete(l.conns, victim)
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		if victim != nil {
			l.evicted.Add(1)
			victim.Close()
		}
		return c, nil
	}
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
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		io.Copy(io.Discard, br)
	}()
}

const (
	refuseTime  = time.Second
	maxRefusing = 64
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
	case http.StateHijacked, http.StateClosed:
		c.closed.Do(l.forget(c))
	}
}

// Stats are the listener's counters.
type Stats struct {
	Open    int   `json:"open"`    // connections open now
	Evicted int64 `json:"evicted"` // idle connections closed to make room
	Refused int64 `json:"refused"` // new connections answered 503 at the cap
}

// Stats returns the counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	n := len(l.conns)
	l.mu.Unlock()
	return Stats{Open: n, Evicted: l.evicted.Load(), Refused: l.refused.Load()}
}
