package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// SocketMode is the admin socket's permission bits: owner and group.
const SocketMode = 0o660

// Listen creates the admin socket at path: its directory if missing, mode
// SocketMode, group gid (-1 leaves the group alone). A socket file left by
// a crashed daemon is replaced; one that still answers (another jetaid) is
// an error, and so is a path that exists and is not a socket.
func Listen(path string, gid int) (*net.UnixListener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("admin socket %q: not an absolute path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// Until the chmod below the file has the umask's mode; the SO_PEERCRED
	// check in Server refuses strangers during that moment too.
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("admin socket: set group %d: %w", gid, err)
		}
	}
	return ln, nil
}

// removeStale removes a socket file nobody answers on. Dialling first
// means a running daemon's socket is never pulled from under it.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket %s exists and is not a socket; move it away or set server.admin_socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s is in use: another jetaid is running (systemctl status jetaid)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("admin socket %s: cannot tell whether it is stale: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("admin socket: remove stale %s: %w", path, err)
	}
	return nil
}

// LookupGroup returns the gid of group name (a name or a number).
func LookupGroup(name string) (int, error) {
	if name == "" {
		return -1, errors.New("no admin group configured")
	}
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("admin group %q: %w (create it with: groupadd --system %s)", name, err, name)
	}
	return strconv.Atoi(g.Gid)
}
