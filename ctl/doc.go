// Package ctl is jetai-ctl's command logic: the command table, argument
// parsing, the calls to the admin socket (package admin) and the tables
// and JSON it prints. cmd/jetai-ctl only calls Main. It speaks only the
// admin package's wire types and links no cgo, HCL or file watcher (see
// cmd/jetai-ctl's TestDeps): what needs the engine, such as bench's raw
// loop, runs in the daemon.
//
// Adding a command is adding an entry to the table in commands.go: its
// name, usage, help text, flags and a run function; help, usage errors
// and shell completion follow from the entry.
//
// Exit codes: 0 success, 1 the daemon or the command reported a failure
// (a rejected reload, an unusable config, a failed load), 2 bad usage,
// 3 the daemon cannot be reached (not running, no socket, no permission),
// 4 the daemon refused for now and said when to retry (Retry-After:
// thermal shedding, a full queue, shutting down).
package ctl
