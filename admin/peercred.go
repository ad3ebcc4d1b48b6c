package admin

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Peer is the process at the other end of an admin connection, as the
// kernel reports it (SO_PEERCRED) when it connected.
type Peer struct {
	Pid, Uid, Gid int
	// Groups are the peer's supplementary groups (from /proc/PID/status,
	// so they are the process's real ones, not the user database's).
	Groups []int
}

// Access decides who may use the admin socket: root, the daemon's own
// user, and members (primary or supplementary) of the admin group.
type Access struct {
	Uid       int    // the daemon's effective uid
	Gid       int    // the admin group's gid; -1 when it does not exist
	GroupName string // for messages
}

// Allowed returns nil or an error that tells the peer what to do.
func (a Access) Allowed(p Peer) error {
	if p.Uid == 0 || p.Uid == a.Uid {
		return nil
	}
	if a.Gid >= 0 && (p.Gid == a.Gid || slices.Contains(p.Groups, a.Gid)) {
		return nil
	}
	who := "uid " + strconv.Itoa(p.Uid)
	name := strconv.Itoa(p.Uid)
	if u, err := user.LookupId(name); err == nil {
		who += " (" + u.Username + ")"
		name = u.Username
	}
	msg := fmt.Sprintf("permission denied: %s may not use the jetai admin socket; allowed are root, the daemon's user (uid %d) and members of group %s", who, a.Uid, a.GroupName)
	if a.Gid >= 0 {
		msg += fmt.Sprintf("; add the user with: sudo usermod -aG %s %s (then log in again)", a.GroupName, name)
	} else {
		msg += " (the group does not exist on this machine; create it with: sudo groupadd --system " + a.GroupName + ")"
	}
	return &Error{Status: 403, Code: CodeForbidden, Message: msg}
}

// PeerOf reads the credentials of a Unix socket connection's peer.
func PeerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("not a Unix socket connection: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if serr != nil {
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	p := Peer{Pid: int(cred.Pid), Uid: int(cred.Uid), Gid: int(cred.Gid)}
	p.Groups = procGroups(p.Pid)
	return p, nil
}

// procGroups reads the Groups: line of /proc/PID/status; nil when the
// process is gone (then only uid and primary gid count).
func procGroups(pid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var gs []int
			for _, f := range strings.Fields(rest) {
				if g, err := strconv.Atoi(f); err == nil {
					gs = append(gs, g)
				}
			}
			return gs
		}
	}
	return nil
}

type peerKey struct{}

// peerConn carries the peer read at Accept.
type peerConn struct {
	net.Conn
	peer Peer
	err  error
}

// peerListener reads each connection's peer credentials as it is accepted.
type peerListener struct{ net.Listener }

func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	p, perr := PeerOf(c)
	return &peerConn{Conn: c, peer: p, err: perr}, nil
}

func withPeer(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*peerConn); ok {
		return context.WithValue(ctx, peerKey{}, pc)
	}
	return ctx
}

func peerFrom(ctx context.Context) (*peerConn, bool) {
	pc, ok := ctx.Value(peerKey{}).(*peerConn)
	return pc, ok
}
