package systemd

import (
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
)

// File descriptor names (FileDescriptorName= in the socket units).
const (
	FDNameAPI   = "api"
	FDNameAdmin = "admin"
)

var (
	activatedOnce sync.Once
	activated     map[string][]net.Listener
	activatedErr  error
)

// Activated returns the listeners systemd passed under name, or nil when
// it passed none (not socket-activated, or no socket of that name). The
// environment (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) is read once per
// process and then cleared, so that runner processes do not inherit it.
func Activated(name string) ([]net.Listener, error) {
	activatedOnce.Do(func() {
		if os.Getenv("LISTEN_FDS") == "" {
			return
		}
		activated, activatedErr = activation.ListenersWithNames()
		if activatedErr != nil {
			activatedErr = fmt.Errorf("socket activation: %w", activatedErr)
		}
	})
	if activatedErr != nil {
		return nil, activatedErr
	}
	var out []net.Listener
	for _, l := range activated[name] {
		if l != nil { // nil: a passed descriptor that is not a stream socket
			out = append(out, l)
		}
	}
	return out, nil
}

// Listen returns the listener systemd passed under name, or, when it
// passed none, a new one on network/address. activated says which.
func Listen(name, network, address string) (ln net.Listener, wasActivated bool, err error) {
	ls, err := Activated(name)
	if err != nil {
		return nil, false, err
	}
	switch len(ls) {
	case 0:
	case 1:
		return ls[0], true, nil
	default:
		for _, l := range ls[1:] {
			l.Close()
		}
		return nil, false, fmt.Errorf("socket activation: %d sockets named %q; the unit must pass one", len(ls), name)
	}
	ln, err = net.Listen(network, address)
	return ln, false, err
}
