package engine

/*
#include "engine.h"
*/
import "C"

import (
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// ggml log levels (ggml.h).
const (
	logDebug = 1
	logInfo  = 2
	logWarn  = 3
	logError = 4
	logCont  = 5
)

// logSink forwards llama.cpp's log to a writer and remembers the recent
// warnings and errors, so a failed load can say why instead of "failed".
type logSink struct {
	mu       sync.Mutex
	out      io.Writer
	minLevel int
	last     int // level of the previous line, for logCont
	recent   []string
}

var engineLog = &logSink{out: os.Stderr, minLevel: logWarn}

// SetLogOutput sets where llama.cpp's log goes and whether info lines are
// included (verbose) or only warnings and errors.
func SetLogOutput(w io.Writer, verbose bool) {
	engineLog.mu.Lock()
	defer engineLog.mu.Unlock()
	engineLog.out = w
	engineLog.minLevel = logWarn
	if verbose {
		engineLog.minLevel = logDebug
	}
}

// SetLogErrorsOnly sends only llama.cpp's errors to w: for a command whose
// output is a table, where the load chatter and warnings are noise. A
// failure's error still carries the warnings logged just before it.
func SetLogErrorsOnly(w io.Writer) {
	engineLog.mu.Lock()
	defer engineLog.mu.Unlock()
	engineLog.out = w
	engineLog.minLevel = logError
}

// interruptibleDecodes counts the DecodeInterruptible calls running: the
// errors llama.cpp logs for a graph that Interrupt stopped are not errors.
var interruptibleDecodes atomic.Int32

func interruptedLine(text string) bool {
	return interruptibleDecodes.Load() > 0 &&
		(strings.Contains(text, "graph_compute_async failed with error 1") || strings.Contains(text, "failed to decode, ret = 2"))
}

func (s *logSink) write(level int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if level == logCont {
		level = s.last
	}
	s.last = level
	clock.line(text)
	observeLoadLog(text)
	if level == logError && interruptedLine(text) {
		return
	}
	if level >= logWarn {
		if line := strings.TrimSpace(text); line != "" {
			s.recent = append(s.recent, line)
			if len(s.recent) > 16 {
				s.recent = s.recent[len(s.recent)-16:]
			}
		}
	}
	if level >= s.minLevel && s.out != nil {
		io.WriteString(s.out, text)
	}
}

// LogError is a llama.cpp failure together with the warnings and errors
// llama.cpp logged while it ran. Its message carries those lines, for
// callers whose llama.cpp log goes elsewhere; Short leaves them out, for a
// caller that shows the log itself (it would print each line twice).
type LogError struct {
	Op    string // what failed, e.g. "quantize in.gguf"
	Err   error
	Lines []string
}

func (e *LogError) Error() string { return e.Short() + formatRecent(e.Lines) }

// Short is the message without llama.cpp's lines.
func (e *LogError) Short() string { return e.Op + ": " + e.Err.Error() }

func (e *LogError) Unwrap() error { return e.Err }

// takeRecent returns the warnings and errors logged since the last call.
func (s *logSink) takeRecent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recent
	s.recent = nil
	return r
}

func installLog() { C.jetai_install_log() }
