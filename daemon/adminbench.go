package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/jetai/jetai/admin"
)

var _ admin.Benchmarker = adminBackend{}

// Bench implements admin.Benchmarker: `jetaid tool bench` runs the
// measurement in a child process (the raw engine is llama.cpp, which the
// daemon never runs in its own process) and reaches the model through
// this daemon's admin socket, as a client would. Its stderr lines are the
// progress; its stdout the result. The request's context ends the child.
func (b adminBackend) Bench(ctx context.Context, req admin.BenchRequest, onLog func(string)) (admin.BenchResult, error) {
	d := b.d
	m, ok := admin.FindModel(b.Models(ctx), req.Model)
	if !ok {
		return admin.BenchResult{}, unknownModel(d.Config(), req.Model)
	}
	req, err := req.Sized(m)
	if err != nil {
		return admin.BenchResult{}, err
	}
	d.sys.mu.Lock()
	sock := d.sys.adminSocket
	d.sys.mu.Unlock()
	if sock == "" {
		return admin.BenchResult{}, admin.Errorf(http.StatusServiceUnavailable, admin.CodeUnavailable, "the daemon does not know its admin socket's path")
	}
	cmdline := d.opts.ToolCommand
	if len(cmdline) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return admin.BenchResult{}, fmt.Errorf("bench: %w", err)
		}
		cmdline = []string{exe, "tool"}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return admin.BenchResult{}, err
	}
	cmd := exec.CommandContext(ctx, cmdline[0], append(cmdline[1:], "bench", sock, string(body))...)
	cmd.Env = append(os.Environ(), d.opts.ToolEnv...)
	// A client that goes away stops the run: SIGTERM, then SIGKILL if
	// the engine's loop does not return soon.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return admin.BenchResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return admin.BenchResult{}, fmt.Errorf("bench: start %s: %w", cmdline[0], err)
	}
	d.log.Info("bench started", "model", m.Name, "streams", req.Streams, "pid", cmd.Process.Pid)
	var last string
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		last = line
		if onLog != nil {
			onLog(line)
		}
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return admin.BenchResult{}, ctx.Err()
		}
		return admin.BenchResult{}, fmt.Errorf("bench of %s failed: %s", m.Name, strings.TrimSpace(strings.TrimPrefix(last, "jetaid tool:")))
	}
	var res admin.BenchResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return admin.BenchResult{}, fmt.Errorf("bench of %s: unreadable result: %w", m.Name, err)
	}
	return res, nil
}
