package api

import (
	"encoding/json"
	"net/http"
	"unicode/utf8"
)

// sse writes a Server-Sent Events stream. Headers go out with the first
// event, so that an error before the first token is still a plain HTTP
// error with its status. Each text chunk is one Write and one Flush of a
// reused buffer: prefix + JSON-escaped text + suffix, no other allocation.
type sse struct {
	w       http.ResponseWriter
	flusher http.Flusher
	started bool
	failed  bool // the client is gone; stop writing
	prefix  []byte
	suffix  []byte
	buf     []byte
}

func newSSE(w http.ResponseWriter) *sse {
	f, _ := w.(http.Flusher)
	return &sse{w: w, flusher: f, buf: make([]byte, 0, 512)}
}

func (s *sse) begin() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
}

func (s *sse) write(b []byte) {
	if s.failed {
		return
	}
	s.begin()
	if _, err := s.w.Write(b); err != nil {
		s.failed = true
		return
	}
	if s.flusher != nil {
		s.flusher.Flush()
	}
}

// text sends one chunk of generated text in the current prefix/suffix.
func (s *sse) text(t string) {
	b := append(s.buf[:0], s.prefix...)
	b = appendJSONString(b, t)
	b = append(b, s.suffix...)
	s.buf = b
	s.write(b)
}

// event sends v as one data event.
func (s *sse) event(v any) {
	j, err := json.Marshal(v)
	if err != nil {
		return
	}
	b := append(s.buf[:0], "data: "...)
	b = append(b, j...)
	b = append(b, "\n\n"...)
	s.buf = b
	s.write(b)
}

func (s *sse) done() { s.write([]byte("data: [DONE]\n\n")) }

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal, as encoding/json
// would (invalid UTF-8 becomes U+FFFD; U+2028 and U+2029 are escaped).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
