// Command jetaid is the jetai daemon. `jetaid runner …` is the per-model
// child process the daemon starts, and `jetaid tool …` the child that checks
// and quantizes model files and runs benchmarks for jetai-ctl; people do not
// run them by hand.
//
//	jetaid [--config FILE]       run in the foreground (default /etc/jetai/jetai.hcl)
//	       [--platform-root DIR] read /sys, /proc and /etc under DIR (a fake machine tree)
//	jetaid --check-config FILE   validate a config file; exit 0 when usable (warnings allowed), 1 when not
//	jetaid --version             print the version
//
// Under systemd (Type=notify) it takes its sockets from socket activation
// (file descriptors named "api" and "admin"), reports READY, STATUS,
// RELOADING and STOPPING, pings the watchdog while healthy and logs to the
// journal with structured fields (package daemon/systemd). jetai-ctl drives
// it over the admin socket.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/jetai/jetai/bench"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/daemon/ingest/tool"
	"github.com/jetai/jetai/daemon/runner/serve"
	"github.com/jetai/jetai/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "runner" {
		if err := serve.Main(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "jetaid runner:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "tool" {
		// Model checks and quantizing for jetai-ctl import/quantize, run
		// by the daemon as a child (package ingest); jetai-ctl bench's
		// measurement (package bench), which links the admin client.
		run := tool.Main
		if len(os.Args) > 2 && os.Args[2] == "bench" {
			run = func(args []string) error { return bench.ToolMain(args[1:]) }
		}
		if err := run(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "jetaid tool:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("jetaid", flag.ContinueOnError)
	configPath := fs.String("config", daemon.DefaultConfigPath, "config `FILE`, read with the drop-in files jetai.d/*.hcl beside it")
	check := fs.String("check-config", "", "validate config `FILE` (and the drop-ins beside it) as a start or a reload reads it, print its errors and warnings and exit (0: usable, warnings allowed; 1: not, an empty file too)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	platformRoot := fs.String("platform-root", "/", "read /sys, /proc and /etc (thermal zones, memory, power) under `DIR`; for trying the thermal policy on a fake machine tree such as testdata/platform/orin-nano")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: jetaid [--config FILE] [--platform-root DIR] | --check-config FILE | --version\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), `
jetaid serves the REST API on server.listen and the admin socket on
server.admin_socket, or on the sockets systemd passes (file descriptors named
"api" and "admin"). SIGTERM or SIGINT: stop accepting, finish the requests in
flight (up to 30s), stop the runners, exit 0. The config file is watched
and a change is applied as a diff without dropping requests (SIGHUP and
jetai-ctl reload do the same); a file with errors is rejected with
file:line:col diagnostics and the running config stays. A model file that
is missing, unreadable or not GGUF is a warning, not an error: jetaid
serves the other models and answers 503 (model_unavailable) for that one
until a GGUF file is there (checked again at every load).
Drive a running jetaid with jetai-ctl (jetai-ctl --help).
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "jetaid: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	switch {
	case *showVersion:
		fmt.Println("jetaid", version.Version)
		return 0
	case *check != "":
		return checkConfig(*check)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Absolute, so that status shows where the file is and reloads find it
	// whatever the working directory.
	if abs, err := filepath.Abs(*configPath); err == nil {
		*configPath = abs
	}
	if err := daemon.Run(ctx, daemon.Options{ConfigPath: *configPath, PlatformRoot: *platformRoot}); err != nil {
		var diags config.Diagnostics
		if errors.As(err, &diags) {
			for _, d := range diags {
				fmt.Fprintln(os.Stderr, d.String())
			}
			fmt.Fprintf(os.Stderr, "jetaid: %s is not usable (check it with: jetaid --check-config %s)\n", *configPath, *configPath)
			return 1
		}
		fmt.Fprintln(os.Stderr, "jetaid:", err)
		return 1
	}
	return 0
}

// checkConfig prints config.Check's report: the admin socket's validate
// command answers the same report.
func checkConfig(path string) int {
	r := config.Check(path)
	fmt.Print(r.String())
	if !r.OK {
		return 1
	}
	return 0
}
