package daemon

import (
	"sync/atomic"
	"syscall"
)

// connCap returns the REST connection cap in force: server.max_connections,
// but at most half of the file descriptors jetaid may open (RLIMIT_NOFILE,
// read once at start), so that a flood of connections cannot take the
// ones its runners, model files, sockets and config watch need. (Go raises
// the soft limit to the hard one at start; under systemd that is 524288
// unless the unit sets LimitNOFILE=.)
func (d *Daemon) connCap() func() int {
	fdCap := 0
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<30 {
		fdCap = int(rl.Cur / 2)
	}
	var warned atomic.Bool
	return func() int {
		n := d.Config().Server.MaxConnections
		if fdCap > 0 && n > fdCap {
			if !warned.Swap(true) {
				d.log.Warn("server.max_connections is more than half the open-file limit; capping it there (raise LimitNOFILE= to allow more)",
					"max_connections", n, "cap", fdCap, "nofile", fdCap*2)
			}
			n = fdCap
		}
		return n
	}
}
