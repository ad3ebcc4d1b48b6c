package config

import "strings"

// Log formats of server.log_format. Under journald the log is native
// journal entries whatever the format; off the journal (a container, a
// terminal) it is text lines or JSON lines on stderr.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
	// DefaultLogFormat is text, for people at a terminal; the container
	// image sets json, which log collectors expect.
	DefaultLogFormat = LogFormatText
)

var logFormats = []string{LogFormatText, LogFormatJSON}

func (d *decoder) logFormat(s *Server, b *serverBlock) {
	s.LogFormat = str(b.LogFormat, DefaultLogFormat)
	for _, f := range logFormats {
		if s.LogFormat == f {
			return
		}
	}
	d.errf(valueRange(b.Body, "log_format", b.DefRange), "log_format %q is not one of %s", s.LogFormat, strings.Join(logFormats, ", "))
}
