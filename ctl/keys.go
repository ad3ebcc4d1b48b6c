package ctl

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// quitOnQ cancels the returned context when q (or Q) is typed on the
// terminal in; it puts the terminal in cbreak mode (keys arrive one at a
// time, not echoed; Ctrl-C still interrupts) and restore puts it back. Where
// in is not a terminal, it does nothing.
func quitOnQ(ctx context.Context, in *os.File) (_ context.Context, restore func()) {
	if in == nil {
		return ctx, func() {}
	}
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return ctx, func() {}
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		b := make([]byte, 1)
		for {
			n, err := in.Read(b)
			if err != nil {
				return
			}
			if n == 1 && (b[0] == 'q' || b[0] == 'Q') {
				cancel()
				return
			}
		}
	}()
	return ctx, func() {
		cancel()
		unix.IoctlSetTermios(fd, unix.TCSETS, old)
	}
}
