package ctl

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/bytesize"
	"github.com/jetai/jetai/version"
)

// commands is the command table. Keep it in the order people meet the
// commands; help sorts it.
var commands []*Command

func init() {
	commands = []*Command{
		{Name: "status", Summary: "show the daemon's state, config, memory, model cache and throughput", MaxArgs: 0, Run: runStatus},
		{Name: "models", Aliases: []string{"ps"}, Summary: "list the configured models and their state", MaxArgs: 0, Run: runModels,
			Help: modelsHelp, Flags: modelsFlags},
		{Name: "load", Args: "NAME", Summary: "load a model (--wait: until it is ready)", MinArgs: 1, MaxArgs: 1,
			Help:     "Without --wait the load runs on in the daemon and the command returns at once.\nWith --wait it returns when the model is ready, and exits 1 if the load fails.",
			Flags:    func(fs *flag.FlagSet, e *Env) { fs.BoolVar(&e.wait, "wait", false, "wait until the model is ready") },
			Complete: []string{"models"}, Run: runLoad},
		{Name: "unload", Args: "NAME", Summary: "unload a model once its running requests finish", MinArgs: 1, MaxArgs: 1,
			Complete: []string{"models"}, Run: runUnload},
		{Name: "optimize", Summary: "unload idle models past keep_alive and free memory down to the reserve", MaxArgs: 0, Run: runOptimize},
		{Name: "reload", Summary: "re-read the config file and apply it; exit 1 if it is rejected", MaxArgs: 0,
			Help: "The daemon parses and checks the file first: a file with errors is rejected as a whole\n(each error with file:line:col), the running config stays, and jetai-ctl exits 1.\nThis is the unit's ExecReload=.",
			Run:  runReload},
		{Name: "validate", Args: "FILE", Summary: "check a config file and show what a reload to it would change", MinArgs: 1, MaxArgs: 1,
			Help:     "jetai-ctl reads FILE and sends it to the daemon, which checks it as a reload would: with the\ndrop-in files in jetai.d/ beside it; a FILE in the running config's jetai.d/ is checked as a\ndrop-in, with the config file and the other drop-ins.\nExit 0 when usable (warnings, such as a model file that is not there yet, are printed and allowed), 1 when not.\nWithout a running daemon use: jetaid --check-config FILE",
			Complete: []string{"files"}, Run: runValidate},
		{Name: "log-level", Args: "[LEVEL]", Summary: "show or set the daemon's log level (debug, info, warn, error)", MaxArgs: 1,
			Help:     "The level set here lasts until jetaid restarts or server.log_level changes in the config.",
			Complete: []string{"debug", "info", "warn", "error"}, Run: runLogLevel},
		{Name: "top", Summary: "live view of models, memory, throughput and temperatures", MaxArgs: 0,
			Help: "Refreshes in place every --interval until q or Ctrl-C. With --json (or --count) it prints\none status per interval instead of redrawing.",
			Flags: func(fs *flag.FlagSet, e *Env) {
				fs.DurationVar(&e.interval, "interval", time.Second, "refresh every `DURATION`")
				fs.IntVar(&e.count, "count", 0, "stop after `N` refreshes (0: until interrupted)")
			}, Run: runTop},
		benchCommand(),
		{Name: "version", Summary: "print jetai-ctl's version and the daemon's", MaxArgs: 0,
			Help: "Exits 0 even when the daemon cannot be reached; it says so.", Run: runVersion},
		{Name: "completion", Args: "bash|zsh", Summary: "print a shell completion script", MinArgs: 1, MaxArgs: 1,
			Help:     "bash: jetai-ctl completion bash > /etc/bash_completion.d/jetai-ctl\nzsh:  jetai-ctl completion zsh > \"${fpath[1]}/_jetai-ctl\"",
			Complete: []string{"bash", "zsh"}, Run: runCompletion},
		{Name: "help", Args: "[COMMAND]", Summary: "show help for a command", MaxArgs: 1, Run: runHelp},
	}
}

func runHelp(_ context.Context, e *Env, args []string) error {
	if len(args) == 0 {
		printUsage(e.Stdout)
		return nil
	}
	c := lookup(args[0])
	if c == nil {
		return usageErr("unknown command %q", args[0])
	}
	printCommandHelp(e.Stdout, c)
	return nil
}

func runStatus(ctx context.Context, e *Env, _ []string) error {
	s, err := e.Client.Status(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, s)
	}
	t := newTable(e.Stdout)
	t.kv("state", s.State)
	t.kv("version", fmt.Sprintf("%s (pid %d, user %s, up %s)", s.Version, s.Pid, s.User, roundDur(s.UptimeSeconds)))
	listen := s.Listen
	if s.Activated {
		listen += " (socket activated)"
	}
	t.kv("listen", listen)
	t.kv("admin socket", s.AdminSocket)
	t.kv("config", fmt.Sprintf("%s (generation %d, %s)", s.Config.Path, s.Config.Generation, short(s.Config.Hash)))
	if n := len(s.Config.DropIns); n > 0 {
		t.kv("drop-ins", fmt.Sprintf("%d in %s", n, s.Config.DropInDir))
	}
	if at := s.Config.LastReload; at != nil {
		verdict := "applied"
		if s.Config.LastError != "" {
			verdict = "REJECTED (the config above stays in force): " + firstLine(s.Config.LastError)
		}
		t.kv("last reload", fmt.Sprintf("%s ago by %s, %s; %d reloads, %d rejected", roundDur(time.Since(*at).Seconds()),
			s.Config.LastTrigger, verdict, s.Config.Reloads, s.Config.Rejected))
	}
	loaded := 0
	for _, m := range s.Models {
		if m.State == admin.StateReady {
			loaded++
		}
	}
	t.kv("models", fmt.Sprintf("%d loaded, %d loading, %d configured, %d queued", loaded, s.Pool.Loading, len(s.Models), s.Pool.Queued))
	mem := fmt.Sprintf("%s used of %s budget (reserve %s)", bytesize.IEC(s.Pool.Used), bytesize.IEC(s.Pool.Budget), bytesize.IEC(s.Pool.Reserve))
	if s.Pool.MemAvailable > 0 {
		mem += fmt.Sprintf(", %s available", bytesize.IEC(s.Pool.MemAvailable))
	}
	t.kv("memory", mem)
	if sp := s.Pool.Spare; sp != nil {
		t.kv("warm spare", spareLine(sp))
	}
	if c := s.Cache; c != nil {
		t.kv("cache", cacheUsage(c))
	}
	p := s.Performance
	t.kv("throughput", fmt.Sprintf("%.1f tok/s now; %d requests, %d tokens since start (%d failed, %d rejected)", p.WindowTokensPerSecond, p.Requests, p.Tokens, p.Failures, p.Rejected))
	if p.TimeToFirstTokenMS.Count > 0 {
		t.kv("latency", fmt.Sprintf("first token p50 %.0f ms, p95 %.0f ms over the last %s", p.TimeToFirstTokenMS.P50, p.TimeToFirstTokenMS.P95, time.Duration(p.WindowSeconds*float64(time.Second))))
	}
	if pl := s.Platform; pl != nil {
		if temps := temperatures(pl); temps != "" {
			t.kv("temperature", temps)
		}
		if pl.Throttle != "" {
			th := pl.Throttle
			if pl.ThrottleReason != "" {
				th += " (" + pl.ThrottleReason + ")"
			}
			t.kv("throttle", th)
		}
		if pl.PowerWatts > 0 {
			t.kv("power", fmt.Sprintf("%.1f W", pl.PowerWatts))
		}
		for _, d := range pl.Devices {
			if d.Type != "cpu" {
				t.kv("device", fmt.Sprintf("%s (%s): %s free of %s", d.Name, d.Type, bytesize.IEC(d.FreeBytes), bytesize.IEC(d.TotalBytes)))
			}
		}
	}
	wd := "off"
	if s.WatchdogSeconds > 0 {
		wd = fmt.Sprintf("%gs", s.WatchdogSeconds)
	}
	t.kv("watchdog", wd)
	t.kv("log level", s.LogLevel)
	return t.flush()
}

func runModels(ctx context.Context, e *Env, _ []string) error {
	ms, err := e.Client.Models(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, map[string]any{"models": ms})
	}
	printModels(e.Stdout, ms)
	if e.verbose {
		printLoadPhases(e.Stdout, ms)
	}
	return nil
}

func runLoad(ctx context.Context, e *Env, args []string) error {
	r, err := e.Client.Load(ctx, args[0], e.wait)
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, r)
	}
	m := r.Model
	switch {
	case m.State == admin.StateReady && e.wait:
		fmt.Fprintf(e.Stdout, "%s: ready in %.1fs (%s, pid %d)\n", m.Name, r.Seconds, bytesize.IEC(m.ChargedBytes), m.Pid)
	case m.State == admin.StateReady:
		fmt.Fprintf(e.Stdout, "%s: ready (pid %d)\n", m.Name, m.Pid)
	case m.State == admin.StateFailed:
		fmt.Fprintf(e.Stdout, "%s: load failed: %s\n", m.Name, m.LastError)
		return failed()
	case m.State == admin.StateUnavailable:
		fmt.Fprintf(e.Stdout, "%s: %s\n", m.Name, m.LastError)
		return failed()
	default:
		fmt.Fprintf(e.Stdout, "%s: %s; follow it with: jetai-ctl models\n", m.Name, m.State)
	}
	return nil
}

func runUnload(ctx context.Context, e *Env, args []string) error {
	r, err := e.Client.Unload(ctx, args[0])
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, r)
	}
	fmt.Fprintf(e.Stdout, "%s: %s\n", r.Model.Name, r.Model.State)
	return nil
}

func runOptimize(ctx context.Context, e *Env, _ []string) error {
	r, err := e.Client.Optimize(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, r)
	}
	if len(r.Unloaded) == 0 {
		fmt.Fprintln(e.Stdout, "nothing to unload: no idle model is past its keep_alive and memory is above the reserve")
		return nil
	}
	for _, n := range r.Unloaded {
		fmt.Fprintf(e.Stdout, "unloaded %s: %s\n", n, r.Reasons[n])
	}
	fmt.Fprintf(e.Stdout, "freed %s\n", bytesize.IEC(r.FreedBytes))
	return nil
}

func runReload(ctx context.Context, e *Env, _ []string) error {
	r, err := e.Client.Reload(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		if err := printJSON(e.Stdout, r); err != nil {
			return err
		}
	} else {
		printReload(e, r)
	}
	if !r.OK {
		return failed()
	}
	return nil
}

func printReload(e *Env, r admin.ReloadResult) {
	if !r.OK {
		fmt.Fprintf(e.Stderr, "reload rejected; the running config (generation %d) stays in force\n", r.Generation)
		for _, d := range r.Diagnostics {
			fmt.Fprintln(e.Stderr, d)
		}
		if r.Error != "" && len(r.Diagnostics) == 0 {
			fmt.Fprintln(e.Stderr, r.Error)
		}
		return
	}
	if !r.Changed {
		fmt.Fprintf(e.Stdout, "config unchanged (generation %d, %s)\n", r.Generation, short(r.Hash))
	} else {
		fmt.Fprintf(e.Stdout, "config generation %d applied in %.2fs (%s)\n", r.Generation, r.Seconds, short(r.Hash))
		if r.Plan != nil {
			fmt.Fprintf(e.Stdout, "  %s\n", r.Plan.Summary)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(e.Stdout, "  note: %s\n", n)
	}
	for _, d := range r.Diagnostics {
		fmt.Fprintln(e.Stdout, d)
	}
}

func runValidate(ctx context.Context, e *Env, args []string) error {
	path := args[0]
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if _, err := os.Stat(path); err != nil {
		return &exitError{code: ExitFailed, msg: err.Error()}
	}
	r, err := e.Client.Validate(ctx, path)
	if err != nil {
		return err
	}
	if e.JSON {
		if err := printJSON(e.Stdout, r); err != nil {
			return err
		}
	} else {
		out := e.Stdout
		if !r.OK {
			out = e.Stderr
		}
		for _, d := range r.Diagnostics {
			fmt.Fprintln(out, d)
		}
		fmt.Fprintln(out, r.Summary)
	}
	if !r.OK {
		return failed()
	}
	return nil
}

func runLogLevel(ctx context.Context, e *Env, args []string) error {
	var level string
	var err error
	if len(args) == 1 {
		level, err = e.Client.SetLogLevel(ctx, args[0])
	} else {
		level, err = e.Client.LogLevel(ctx)
	}
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, admin.LogLevel{Level: level})
	}
	fmt.Fprintln(e.Stdout, level)
	return nil
}

func runVersion(ctx context.Context, e *Env, _ []string) error {
	out := map[string]any{"jetai_ctl": version.Version, "api_version": admin.APIVersion}
	s, err := e.Client.Status(ctx)
	if err == nil {
		out["jetaid"] = s.Version
		out["daemon_api_version"] = s.APIVersion
	} else {
		out["daemon_error"] = err.Error()
	}
	if e.JSON {
		return printJSON(e.Stdout, out)
	}
	fmt.Fprintf(e.Stdout, "jetai-ctl %s (admin API v%d)\n", version.Version, admin.APIVersion)
	if err == nil {
		fmt.Fprintf(e.Stdout, "jetaid    %s (admin API v%d)\n", s.Version, s.APIVersion)
	} else {
		fmt.Fprintf(e.Stdout, "jetaid    unknown: %v\n", err)
	}
	return nil
}

func temperatures(p *admin.Platform) string {
	var parts []string
	for _, t := range p.Temperatures {
		parts = append(parts, fmt.Sprintf("%s %.1f°C", t.Zone, t.Celsius))
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
