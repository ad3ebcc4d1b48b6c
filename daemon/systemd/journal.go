package systemd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// NewLogger returns jetaid's logger at level: native journal entries when
// stderr is connected to the journal (JOURNAL_STREAM names it, as systemd
// sets it for a service), readable text on stderr otherwise.
func NewLogger(level slog.Leveler, ident string) *slog.Logger {
	if ok, _ := journal.StderrIsJournalStream(); ok && journal.Enabled() {
		return slog.New(NewJournalHandler(level, ident, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// JournalSender sends one journal entry; journal.Send is the real one.
type JournalSender func(message string, priority journal.Priority, vars map[string]string) error

// JournalHandler is a slog.Handler writing native journal entries: the
// level becomes PRIORITY, every attribute becomes a field of its own
// (request_id → REQUEST_ID, group "a" key "b" → A_B), and MESSAGE holds the
// message followed by the attributes as key=value, so that plain
// `journalctl -u jetaid` shows them too. A few keys get the names operators
// look for: generation → CONFIG_GENERATION, err → ERROR.
type JournalHandler struct {
	level  slog.Leveler
	ident  string
	send   JournalSender
	prefix string      // open groups, as FIELD_ prefixes
	attrs  []journalKV // from WithAttrs, already flattened
	text   []string    // the same as key=value for MESSAGE
	mu     *sync.Mutex // guards fallback writes
	errOut io.Writer   // where entries go when the journal refuses them
}

type journalKV struct{ k, v string }

// NewJournalHandler builds a handler; send nil means journal.Send.
func NewJournalHandler(level slog.Leveler, ident string, send JournalSender) *JournalHandler {
	if send == nil {
		send = journal.Send
	}
	if level == nil {
		level = slog.LevelInfo
	}
	return &JournalHandler{level: level, ident: ident, send: send, mu: &sync.Mutex{}, errOut: os.Stderr}
}

// Enabled implements slog.Handler.
func (h *JournalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements slog.Handler.
func (h *JournalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	c.text = slices.Clone(h.text)
	for _, a := range as {
		c.attrs, c.text = flatten(c.attrs, c.text, h.prefix, a)
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "_"
	return &c
}

// Handle implements slog.Handler.
func (h *JournalHandler) Handle(_ context.Context, r slog.Record) error {
	kvs, text := slices.Clone(h.attrs), slices.Clone(h.text)
	r.Attrs(func(a slog.Attr) bool {
		kvs, text = flatten(kvs, text, h.prefix, a)
		return true
	})
	vars := make(map[string]string, len(kvs)+1)
	if h.ident != "" {
		vars["SYSLOG_IDENTIFIER"] = h.ident
	}
	for _, kv := range kvs {
		vars[FieldName(kv.k)] = kv.v
	}
	msg := r.Message
	if len(text) > 0 {
		msg += " " + strings.Join(text, " ")
	}
	if err := h.send(msg, Priority(r.Level), vars); err != nil {
		// The journal went away (journald restarting): keep the line.
		h.mu.Lock()
		fmt.Fprintf(h.errOut, "%s %s\n", r.Level, msg)
		h.mu.Unlock()
	}
	return nil
}

func flatten(kvs []journalKV, text []string, prefix string, a slog.Attr) ([]journalKV, []string) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return kvs, text
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "_"
		}
		for _, g := range a.Value.Group() {
			kvs, text = flatten(kvs, text, p, g)
		}
		return kvs, text
	}
	v := a.Value.String()
	kvs = append(kvs, journalKV{prefix + a.Key, v})
	if strings.ContainsAny(v, " \t\n\"=") || v == "" {
		v = fmt.Sprintf("%q", v)
	}
	text = append(text, strings.ToLower(prefix)+a.Key+"="+v)
	return kvs, text
}

// fieldAliases are attribute keys whose journal field names differ from
// the plain upper-cased key.
var fieldAliases = map[string]string{
	"generation": "CONFIG_GENERATION",
	"err":        "ERROR",
}

// reservedFields would collide with what journald or this handler sets.
var reservedFields = map[string]bool{"MESSAGE": true, "PRIORITY": true, "SYSLOG_IDENTIFIER": true, "MESSAGE_ID": true}

// FieldName turns an attribute key into a valid journal field name:
// upper-case letters, digits and underscores, not starting with an
// underscore or a digit, at most 64 characters.
func FieldName(key string) string {
	if n, ok := fieldAliases[key]; ok {
		return n
	}
	b := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	s := strings.TrimLeft(string(b), "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') || reservedFields[s] || strings.HasPrefix(s, "CODE_") {
		s = "JETAI_" + s
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// Priority maps a slog level onto syslog's priorities.
func Priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

// ParseLevel reads debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (debug, info, warn or error)", s)
}

// LevelName is ParseLevel's inverse.
func LevelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}
