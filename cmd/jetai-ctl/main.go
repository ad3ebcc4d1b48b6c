// Command jetai-ctl drives a running jetaid over its admin socket: status,
// models, load, unload, optimize, reload, validate, top, bench and more.
// Run `jetai-ctl --help` for the commands; the logic lives in package ctl.
//
// Exit codes: 0 ok, 1 failed, 2 bad usage, 3 cannot reach the daemon,
// 4 refused for now (retry later).
package main

import (
	"os"

	"github.com/jetai/jetai/ctl"
)

func main() {
	os.Exit(ctl.Main(os.Args[1:], os.Stdout, os.Stderr))
}
