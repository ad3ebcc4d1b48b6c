// Package testrunner lets a test binary double as the runner executable, so
// tests that start real runner processes need no separately built jetaid:
// TestMain calls ServeIfRunner first, and the tests pass Command and Env
// wherever a runner command is configured.
package testrunner

import (
	"fmt"
	"os"

	"github.com/jetai/jetai/daemon/ingest/tool"
	"github.com/jetai/jetai/daemon/runner/serve"
)

const envVar = "JETAI_TEST_RUNNER"

// ServeIfRunner runs the runner and exits when this process was started as
// one by Command/Env; otherwise it returns at once.
func ServeIfRunner() {
	switch os.Getenv(envVar) {
	case "tool":
		if err := tool.Main(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "1":
	default:
		return
	}
	if err := serve.Main(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Command is the runner command: this test binary.
func Command() []string { return []string{os.Args[0]} }

// Env marks the child as a runner.
func Env() []string { return []string{envVar + "=1"} }

// ToolEnv marks the child as `jetaid tool` (with Command as ToolCommand).
func ToolEnv() []string { return []string{envVar + "=tool"} }

// ToolArgs returns the arguments after "tool" of a child started with
// ToolEnv, for a test package whose TestMain serves a tool command this
// package cannot link (`tool bench` imports the pool, whose tests use this
// package).
func ToolArgs() ([]string, bool) {
	if os.Getenv(envVar) != "tool" {
		return nil, false
	}
	return os.Args[1:], true
}
