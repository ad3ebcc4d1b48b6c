package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/bytesize"
)

// runTop shows the live view. On a terminal it redraws in place until q
// or Ctrl-C; with --json each status is one JSON line; otherwise (a pipe,
// --count) each refresh is printed after the last, separated by a blank
// line.
func runTop(ctx context.Context, e *Env, _ []string) error {
	if e.interval <= 0 {
		return usageErr("--interval must be positive")
	}
	redraw := e.IsTerminal && !e.JSON
	if redraw {
		var restore func()
		ctx, restore = quitOnQ(ctx, e.Stdin)
		defer restore()
	}
	n := 0
	err := e.Client.Top(ctx, e.interval, e.count, func(s admin.Status) bool {
		n++
		if e.JSON {
			printJSONLine(e.Stdout, s)
			return true
		}
		var buf bytes.Buffer
		renderTop(&buf, s, e.interval)
		if redraw {
			// Home, draw, clear what is left of the last frame (the
			// whole screen before the first).
			if n == 1 {
				fmt.Fprint(e.Stdout, "\x1b[2J")
			}
			fmt.Fprint(e.Stdout, "\x1b[H"+string(bytes.ReplaceAll(buf.Bytes(), []byte("\n"), []byte("\x1b[K\n")))+"\x1b[J")
		} else {
			if n > 1 {
				fmt.Fprintln(e.Stdout)
			}
			e.Stdout.Write(buf.Bytes())
		}
		return true
	})
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		if redraw {
			fmt.Fprintln(e.Stdout)
		}
		return nil // q or interrupted: the normal way out of top
	}
	if err == nil && redraw {
		fmt.Fprintln(e.Stdout)
	}
	return err
}

func renderTop(w io.Writer, s admin.Status, every time.Duration) {
	fmt.Fprintf(w, "jetaid %s  %s  up %s  config gen %d  every %s  %s\n", s.Version, s.State, roundDur(s.UptimeSeconds),
		s.Config.Generation, every, time.Now().Format("15:04:05"))
	mem := fmt.Sprintf("memory %s / %s budget", bytesize.IEC(s.Pool.Used), bytesize.IEC(s.Pool.Budget))
	if s.Pool.MemAvailable > 0 {
		mem += fmt.Sprintf(", %s available", bytesize.IEC(s.Pool.MemAvailable))
	}
	if c := s.Cache; c != nil {
		mem += "   cache " + cacheUsed(c)
	}
	fmt.Fprintf(w, "%s   %.1f tok/s   queued %d/%d   requests %d (failed %d, rejected %d)\n", mem,
		s.Performance.WindowTokensPerSecond, s.Pool.Queued, s.Pool.QueueTotal, s.Performance.Requests, s.Performance.Failures, s.Performance.Rejected)
	if p := s.Platform; p != nil {
		line := ""
		if t := temperatures(p); t != "" {
			line += t
		}
		if p.Throttle != "" {
			line += "   throttle " + p.Throttle
		}
		if p.PowerWatts > 0 {
			line += fmt.Sprintf("   %.1f W", p.PowerWatts)
		}
		if line != "" {
			fmt.Fprintln(w, line)
		}
	} else {
		fmt.Fprintln(w, "temperatures: no readings on this machine")
	}
	fmt.Fprintln(w)
	printModels(w, s.Models)
}

func printJSONLine(w io.Writer, v any) {
	var buf bytes.Buffer
	printJSON(&buf, v)
	w.Write(bytes.Join(bytes.Fields(bytes.TrimSpace(buf.Bytes())), []byte(" ")))
	fmt.Fprintln(w)
}
