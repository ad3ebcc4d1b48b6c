package systemd

import (
	"context"
	"fmt"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// Notify sends state lines ("READY=1", "STATUS=…") to the service manager
// in one datagram. It reports whether a manager listens (NOTIFY_SOCKET is
// set); without one it does nothing.
func Notify(states ...string) (bool, error) {
	if len(states) == 0 {
		return false, nil
	}
	ok, err := sd.SdNotify(false, strings.Join(states, "\n"))
	if err != nil {
		return ok, fmt.Errorf("sd_notify: %w", err)
	}
	return ok, nil
}

// Reloading is the line pair systemd (since 253) wants at the start of a
// reload; older managers ignore MONOTONIC_USEC. READY=1 ends the reload.
func Reloading() []string {
	return []string{sd.SdNotifyReloading, sd.SdNotifyMonotonicUsec()}
}

// ExtendTimeout asks for d more before the start (or stop) timeout fires.
func ExtendTimeout(d time.Duration) string {
	return fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", d.Microseconds())
}

// Status is a STATUS= line; newlines would end it early and are replaced.
func Status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

// WatchdogInterval is the unit's WatchdogSec when the watchdog is on for
// this process, else 0.
func WatchdogInterval() time.Duration {
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}

// Watchdog pings the watchdog every interval/3 while healthy answers nil
// within that time; a failing or hung check skips the ping (and logs it
// through onFail), so a daemon whose main loop or admin path hangs is
// restarted by systemd instead of being kept alive by a blind ticker. It
// returns when ctx ends. interval 0 returns at once.
func Watchdog(ctx context.Context, interval time.Duration, healthy func(context.Context) error, onFail func(error)) {
	if interval <= 0 {
		return
	}
	every := interval / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, every)
		err := healthy(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			Notify(sd.SdNotifyWatchdog)
		} else if onFail != nil {
			onFail(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
