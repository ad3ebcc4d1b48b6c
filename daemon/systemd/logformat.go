package systemd

import (
	"io"
	"log/slog"

	"github.com/coreos/go-systemd/v22/journal"
)

// UnderJournal reports whether stderr is connected to the journal (the
// service's output) and the journal takes native entries.
func UnderJournal() bool {
	ok, _ := journal.StderrIsJournalStream()
	return ok && journal.Enabled()
}

// NewLoggerFormat is the daemon's logger: native journal entries under
// journald; otherwise records on w, as JSON lines when format is "json"
// (what container log collectors read) or as text lines.
func NewLoggerFormat(level slog.Leveler, ident, format string, w io.Writer) *slog.Logger {
	if UnderJournal() {
		return slog.New(NewJournalHandler(level, ident, nil))
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
