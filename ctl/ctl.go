package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jetai/jetai/admin"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitUnreachable = 3
	// ExitRetry: the daemon refused for now and said when to retry
	// (Retry-After): thermal shedding, a full queue, shutting down.
	ExitRetry = 4
)

// SocketEnv names the environment variable that sets the admin socket.
const SocketEnv = "JETAI_SOCKET"

// Command is one jetai-ctl command.
type Command struct {
	Name    string
	Aliases []string
	Args    string // usage of the positional arguments, e.g. "NAME"
	Summary string // one line for the command list
	Help    string // more, for `jetai-ctl help NAME`
	// MinArgs and MaxArgs bound the positional arguments (MaxArgs -1: any).
	MinArgs, MaxArgs int
	// Flags adds the command's own flags.
	Flags func(fs *flag.FlagSet, e *Env)
	// Complete lists completions of the first argument: "models" for the
	// daemon's model names, "files" for file names, or fixed words.
	Complete []string
	Run      func(ctx context.Context, e *Env, args []string) error
}

// Env is what a command runs with.
type Env struct {
	Stdout, Stderr io.Writer
	Socket         string
	JSON           bool
	Client         *admin.Client
	// IsTerminal says whether Stdout is a terminal (top redraws in place).
	IsTerminal bool
	// Stdin is where top reads its q key; nil: no keys.
	Stdin *os.File

	// per-command flags
	wait     bool
	interval time.Duration
	count    int
	timeout  time.Duration
	bench    benchFlags
	verbose  bool
}

// exitError carries an exit code and an optional message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

// failed is a failure already reported on the output; only the code is left.
func failed() error { return &exitError{code: ExitFailed} }

// Main runs jetai-ctl with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	e := &Env{Stdout: stdout, Stderr: stderr, Socket: os.Getenv(SocketEnv), Stdin: os.Stdin}
	if e.Socket == "" {
		e.Socket = admin.DefaultSocket
	}
	if f, ok := stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			e.IsTerminal = true
		}
	}
	top := flag.NewFlagSet("jetai-ctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	globalFlags(top, e)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return ExitOK
		}
		fmt.Fprintf(stderr, "jetai-ctl: %v\n", err)
		printUsage(stderr)
		return ExitUsage
	}
	rest := top.Args()
	if len(rest) == 0 {
		printUsage(stderr)
		return ExitUsage
	}
	cmd := lookup(rest[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "jetai-ctl: unknown command %q\n", rest[0])
		printUsage(stderr)
		return ExitUsage
	}
	fs := flag.NewFlagSet("jetai-ctl "+cmd.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	globalFlags(fs, e)
	if cmd.Flags != nil {
		cmd.Flags(fs, e)
	}
	if err := fs.Parse(interleave(fs, rest[1:])); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(stdout, cmd)
			return ExitOK
		}
		fmt.Fprintf(stderr, "jetai-ctl %s: %v\n", cmd.Name, err)
		printCommandHelp(stderr, cmd)
		return ExitUsage
	}
	pos := fs.Args()
	if len(pos) < cmd.MinArgs || (cmd.MaxArgs >= 0 && len(pos) > cmd.MaxArgs) {
		fmt.Fprintf(stderr, "jetai-ctl %s: wrong number of arguments\n", cmd.Name)
		printCommandHelp(stderr, cmd)
		return ExitUsage
	}
	e.Client = admin.NewClient(e.Socket)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	return exitCode(stderr, cmd, cmd.Run(ctx, e, pos))
}

func globalFlags(fs *flag.FlagSet, e *Env) {
	fs.StringVar(&e.Socket, "socket", e.Socket, "admin socket `PATH` (env "+SocketEnv+"; default "+admin.DefaultSocket+")")
	fs.BoolVar(&e.JSON, "json", e.JSON, "print JSON instead of tables")
	fs.DurationVar(&e.timeout, "timeout", e.timeout, "give up after this `DURATION` (0: no limit)")
}

// interleave moves flags that follow positional arguments in front of
// them, so that `load NAME --wait` works as well as `load --wait NAME`.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") {
				if f := fs.Lookup(name); f != nil {
					if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !bf.IsBoolFlag() {
						if i+1 < len(args) {
							flags = append(flags, args[i+1])
							i++
						}
					}
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func exitCode(stderr io.Writer, cmd *Command, err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	var ue *admin.UnreachableError
	var ae *admin.APIError
	switch {
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintf(stderr, "jetai-ctl %s: %s\n", cmd.Name, ee.msg)
		}
		if ee.code == ExitUsage {
			printCommandHelp(stderr, cmd)
		}
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "jetai-ctl: %v\n", ue)
		return ExitUnreachable
	case errors.As(err, &ae) && ae.Forbidden():
		fmt.Fprintf(stderr, "jetai-ctl: %v\n", ae)
		return ExitUnreachable
	case errors.As(err, &ae) && ae.RetryAfter > 0:
		fmt.Fprintf(stderr, "jetai-ctl %s: %s (%s; retry after %s)\n", cmd.Name, strings.TrimPrefix(ae.Message, cmd.Name+": "), ae.Code, ae.RetryAfter)
		return ExitRetry
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "jetai-ctl %s: timed out (--timeout); the daemon may still be working on it\n", cmd.Name)
		return ExitFailed
	case errors.Is(err, context.Canceled):
		return ExitFailed
	}
	// The daemon's errors often start with the operation's name already
	// ("import: FILE is not a GGUF model"): say it once.
	fmt.Fprintf(stderr, "jetai-ctl %s: %s\n", cmd.Name, strings.TrimPrefix(err.Error(), cmd.Name+": "))
	return ExitFailed
}

func lookup(name string) *Command {
	for _, c := range commands {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: jetai-ctl [--socket PATH] [--json] [--timeout DURATION] COMMAND [ARGS]\n\n")
	fmt.Fprintf(w, "jetai-ctl drives a running jetaid over its admin socket.\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		c := lookup(n)
		use := c.Name
		if c.Args != "" {
			use += " " + c.Args
		}
		fmt.Fprintf(w, "  %-26s %s\n", use, c.Summary)
	}
	fmt.Fprintf(w, `
Global flags (before or after the command):
  --socket PATH       admin socket (env %s; default %s)
  --json              machine-readable output
  --timeout DURATION  give up after this long (default: no limit)

Exit codes: 0 ok, 1 failed (the daemon refused or the operation failed),
2 bad usage, 3 cannot reach the daemon (not running, no socket, no permission,
or hung: no answer to a status within 15 s), 4 refused for now, retry later
(thermal shedding, a full queue, the daemon stopping; it says when).

Run 'jetai-ctl help COMMAND' for a command's details.
`, SocketEnv, admin.DefaultSocket)
}

func printCommandHelp(w io.Writer, c *Command) {
	use := "jetai-ctl " + c.Name
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	var e Env
	if c.Flags != nil {
		c.Flags(fs, &e)
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		use += " [flags]"
	}
	if c.Args != "" {
		use += " " + c.Args
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", use, c.Summary)
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Help))
	}
	if len(c.Aliases) > 0 {
		fmt.Fprintf(w, "\nAliases: %s\n", strings.Join(c.Aliases, ", "))
	}
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprintf(w, "\nGlobal flags: --socket PATH, --json, --timeout DURATION (see jetai-ctl --help)\n")
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
