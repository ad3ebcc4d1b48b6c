// Package systemd is jetaid's side of the service manager: listeners passed
// by socket activation (file descriptors named "api" and "admin"),
// sd_notify state lines (READY, STATUS, RELOADING, STOPPING,
// EXTEND_TIMEOUT_USEC), the watchdog pinged only while a health check
// passes, and a log/slog handler that writes native journal entries with
// structured fields when stderr is the journal stream.
//
// It talks to systemd through github.com/coreos/go-systemd/v22 and knows
// nothing of models or HTTP: the daemon hands it a health check and the
// lines to send. Outside systemd every function here is a harmless no-op
// (no NOTIFY_SOCKET, no LISTEN_FDS, no JOURNAL_STREAM).
package systemd
