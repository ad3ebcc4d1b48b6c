// Package runner is the daemon's side of a per-model runner process: the
// wire protocol between jetaid and `jetaid runner`, and Process, which
// starts a runner, waits for its model to load, streams completions from
// it, changes its thread count and stops it.
//
// The runner itself (the child's HTTP server and its continuous-batching
// decode loop) is package runner/serve; this package is pure Go, so the
// pool and the API never link llama.cpp through it.
//
// Transport: the parent creates a Unix socket listener in a private
// directory and hands it to the child as file descriptor 3, together with a
// status pipe (fd 4) on which the child reports load progress, readiness or
// its load error as JSON lines. The child's stdin is a pipe from the parent:
// when it reads EOF, the parent is gone and the child exits. Requests are
// HTTP/1.1 over the socket; a completion streams newline-delimited JSON
// frames.
package runner
