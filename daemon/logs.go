package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/systemd"
)

// maxRunnerLine bounds one line of a runner's output kept before it is
// logged: a runaway line without a newline is logged in pieces.
const maxRunnerLine = 16 << 10

// setupLogs makes the default logger and the runners' output writer from
// the config: the journal under systemd; off it, server.log_format on
// opts.LogOutput. With JSON lines, the runners' output (llama.cpp's own
// lines) becomes records too, so that every line a collector reads is one
// JSON object.
func (d *Daemon) setupLogs(cfg *config.Config) {
	out := d.opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	d.log = d.opts.Log
	if d.log == nil {
		d.log = systemd.NewLoggerFormat(d.level, "jetaid", cfg.Server.LogFormat, out)
	}
	if d.opts.RunnerLog == nil {
		d.opts.RunnerLog = out
		if d.opts.Log == nil && cfg.Server.LogFormat == config.LogFormatJSON && !systemd.UnderJournal() {
			d.opts.RunnerLog = &lineLogger{log: d.log.With("component", "runner")}
		}
	}
}

// lineLogger logs each line written to it as one info record ("runner
// output", field line). The pool serialises the runners' writes; a line
// is logged once its newline arrives.
type lineLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

var _ io.Writer = (*lineLogger)(nil)

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) >= maxRunnerLine {
				l.emit(l.buf)
				l.buf = l.buf[:0]
			}
			return len(p), nil
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLogger) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "runner output", slog.String("line", string(line)))
}
