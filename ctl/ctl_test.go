package ctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/bench"
	"github.com/jetai/jetai/ctl"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
)

func TestMain(m *testing.M) {
	// The daemon's `jetaid tool bench` child (jetai-ctl bench): this test
	// binary, as its ToolCommand.
	if args, ok := testrunner.ToolArgs(); ok && len(args) > 0 && args[0] == "bench" {
		if err := bench.ToolMain(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testrunner.ServeIfRunner()
	if os.Getenv("JETAI_TEST_CTL") == "1" { // the test binary as jetai-ctl
		os.Exit(ctl.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type env struct {
	dir, conf, sock string
	broken          string // a copy of the tiny model, spoilt by a test
}

// startDaemon runs a real daemon (real runners, the tiny model) with its
// admin socket in a temporary directory.
func startDaemon(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{dir: dir, conf: filepath.Join(dir, "jetai.hcl"), sock: filepath.Join(dir, "admin.sock"), broken: filepath.Join(dir, "broken.gguf")}
	b, err := os.ReadFile(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(e.broken, b, 0o644)
	testdaemon.WriteConfig(t, dir, configText(t, e.sock, fmt.Sprintf(`model "broken" {
  path    = %q
  context = 256
  cache   = false
}`, e.broken)))
	testdaemon.Start(t, daemon.Options{ConfigPath: e.conf, NoWatch: true})
	return e
}

func configText(t *testing.T, sock, extra string) string {
	return fmt.Sprintf(`
server {
  admin_socket = %q
}
cache {
  dir = "cache"
}
# Room for both models, but then the headroom (budget − used) is under the
# reserve: optimize unloads the idle, unpinned one.
memory {
  budget  = "100MiB"
  reserve = "50MiB"
}
model "stories" {
  path       = %q
  aliases    = ["gpt2"]
  context    = 256
  parallel   = 2
  threads    = 1
  preload    = true
  pinned     = true
  keep_alive = "forever"
}
model "second" {
  path     = %q
  context  = 128
  parallel = 1
  threads  = 1
  sampling {
    max_tokens = 64
  }
}
%s`, sock, testmodel.Path(t), testmodel.Path(t), extra)
}

type result struct {
	code           int
	stdout, stderr string
}

func (e *env) run(args ...string) result {
	var out, errb bytes.Buffer
	code := ctl.Main(append([]string{"--socket", e.sock}, args...), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (r result) want(t *testing.T, code int, stdout, stderr []string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Fatalf("stdout lacks %q:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
}

// runFD2 runs f with the process's file descriptor 2 sent to a file and
// returns what landed there: llama.cpp's log and slog's default logger
// write to it, not to the Env's Stderr.
func runFD2(t *testing.T, f func() result) (result, string) {
	t.Helper()
	tmp, err := os.CreateTemp(t.TempDir(), "fd2")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(saved)
	if err := syscall.Dup2(int(tmp.Fd()), 2); err != nil {
		t.Fatal(err)
	}
	r := f()
	if err := syscall.Dup2(saved, 2); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return r, string(b)
}

func (r result) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, r.stdout)
	}
}

// TestCommands runs every command against a running daemon: tables, JSON
// and exit codes.
func TestCommands(t *testing.T) {
	e := startDaemon(t)
	e.run("load", "stories", "--wait").want(t, 0, []string{"stories: ready"}, nil) // the preload

	t.Run("status", func(t *testing.T) {
		e.run("status").want(t, 0, []string{"state:", "serving", "admin socket:  " + e.sock, "models:", "1 loaded, 0 loading, 3 configured", "watchdog:      off"}, nil)
		var s admin.Status
		r := e.run("status", "--json")
		r.want(t, 0, nil, nil)
		r.json(t, &s)
		if s.State != "serving" || s.APIVersion != admin.APIVersion || len(s.Models) != 3 || s.Config.Path != e.conf || s.Pid != os.Getpid() {
			t.Fatalf("status --json: %+v", s)
		}
		// The model cache in brief: its directory beside the config, and
		// the same figures as `jetai-ctl cache --json`.
		var cs admin.CacheStatus
		r = e.run("cache", "--json")
		r.want(t, 0, nil, nil)
		r.json(t, &cs)
		if c := s.Cache; c == nil || c.Dir != filepath.Join(filepath.Dir(e.conf), "cache") || c.UsedBytes != cs.Used || c.ModelFiles != len(cs.Files) || c.ParkedBytes != cs.ParkedBytes {
			t.Fatalf("status --json cache %+v; cache --json %+v", s.Cache, cs)
		}
		e.run("status").want(t, 0, []string{"cache:", "used of max_size 20.0 GiB in " + s.Cache.Dir + ": 0 model files, parked conversations of 0 models (0 B)"}, nil)
		if !strings.Contains(s.Summary, ", cache ") {
			t.Fatalf("summary without the cache: %q", s.Summary)
		}
	})
	t.Run("models", func(t *testing.T) {
		for _, name := range []string{"models", "ps"} {
			r := e.run(name)
			r.want(t, 0, []string{"NAME", "STATE", "MEMORY", "TOK/S"}, nil)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 4 || !strings.HasPrefix(lines[1], "stories") || !strings.Contains(lines[1], "ready") ||
				!strings.HasPrefix(lines[2], "second") || !strings.Contains(lines[2], "unloaded") || !strings.HasPrefix(lines[3], "broken") {
				t.Fatalf("%s table:\n%s", name, r.stdout)
			}
		}
		var out struct{ Models []admin.Model }
		r := e.run("--json", "models")
		r.want(t, 0, nil, nil)
		r.json(t, &out)
		if len(out.Models) != 3 || out.Models[0].Name != "stories" || out.Models[0].Path != testmodel.Path(t) || out.Models[0].Context != 256 {
			t.Fatalf("models --json: %+v", out.Models)
		}
		// -v adds the phases of the loaded model's last load, in the
		// order of the record.
		if len(out.Models[0].LoadPhases) == 0 {
			t.Fatalf("models --json: stories has no load phases")
		}
		r = e.run("models", "-v")
		var want []string
		for _, p := range out.Models[0].LoadPhases {
			want = append(want, "  "+p.Name+" ")
		}
		r.want(t, 0, append([]string{"stories: last load", "PHASE", "SHARE"}, want...), nil)
		if strings.Contains(r.stdout, "second: last load") {
			t.Fatalf("models -v: phases of a model never loaded:\n%s", r.stdout)
		}
		at := -1
		for _, w := range want {
			i := strings.Index(r.stdout, w)
			if i < at {
				t.Fatalf("models -v: %q out of order:\n%s", w, r.stdout)
			}
			at = i
		}
	})
	t.Run("load and unload", func(t *testing.T) {
		e.run("load", "second", "--wait").want(t, 0, []string{"second: ready in"}, nil)
		var lr admin.LoadResult
		r := e.run("load", "--json", "--wait", "second")
		r.want(t, 0, nil, nil)
		r.json(t, &lr)
		if lr.Model.State != admin.StateReady || lr.Model.Pid == 0 {
			t.Fatalf("load --json: %+v", lr.Model)
		}
		e.run("unload", "second").want(t, 0, []string{"second: unloaded"}, nil)
		// Without --wait it answers while the load goes on.
		r = e.run("load", "second")
		r.want(t, 0, []string{"second: "}, nil)
		if !strings.Contains(r.stdout, "loading") && !strings.Contains(r.stdout, "ready") {
			t.Fatalf("load without --wait: %s", r.stdout)
		}
		r = e.run("unload", "--json", "second")
		r.want(t, 0, nil, nil)
		r.json(t, &lr)
		if lr.Model.State != admin.StateUnloaded {
			t.Fatalf("unload --json: %+v", lr.Model)
		}
		// A file that went bad after the config was read: the load fails,
		// exit 1 with the reason; the other models carry on.
		os.WriteFile(e.broken, []byte("GGUF but not really"), 0o644)
		r = e.run("load", "broken", "--wait")
		r.want(t, 1, nil, []string{"jetai-ctl load:", "broken"})
		t.Logf("failed load: %s", r.stderr)
		e.run("models").want(t, 0, []string{"failed"}, nil)
		// A file that is gone: the model is unavailable; load exits 1
		// with the file and what to do, with or without --wait.
		bad, _ := os.ReadFile(e.broken)
		os.Remove(e.broken)
		unavailable := []string{`model "broken" is unavailable: model file ` + e.broken + " does not exist", "jetai-ctl import"}
		r = e.run("load", "broken", "--wait")
		r.want(t, 1, nil, append([]string{"jetai-ctl load:"}, unavailable...))
		e.run("load", "broken").want(t, 1, append([]string{"broken: "}, unavailable...), nil)
		e.run("models").want(t, 0, append([]string{"unavailable"}, unavailable...), nil)
		os.WriteFile(e.broken, bad, 0o644)
		e.run("load", "nope").want(t, 1, nil, []string{`no model "nope"`, "stories"})
		e.run("unload", "nope").want(t, 1, nil, []string{`no model "nope"`})
		// The admin answer carries the pool's code for it, as the REST API does.
		_, err := admin.NewClient(e.sock).Load(context.Background(), "nope", false)
		if ae := (*admin.APIError)(nil); !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "model_not_found" || strings.HasPrefix(ae.Message, "unknown model") {
			t.Fatalf("admin load of an unknown model: %#v", err)
		}
		e.run("load").want(t, 2, nil, []string{"wrong number of arguments", "usage: jetai-ctl load"})
	})
	t.Run("optimize", func(t *testing.T) {
		e.run("optimize").want(t, 0, []string{"nothing to unload"}, nil)
		e.run("load", "second", "--wait").want(t, 0, []string{"second: ready"}, nil)
		e.run("optimize").want(t, 0, []string{"unloaded second: memory headroom", "is under the reserve 50.0 MiB", "freed "}, nil)
		e.run("models").want(t, 0, []string{"unloaded"}, nil)
		var rep admin.OptimizeReport
		r := e.run("optimize", "--json")
		r.want(t, 0, nil, nil)
		r.json(t, &rep)
		if rep.Unloaded == nil || len(rep.Unloaded) != 0 {
			t.Fatalf("optimize --json with nothing left to unload: %+v", rep)
		}
	})
	t.Run("validate", func(t *testing.T) {
		good := filepath.Join(e.dir, "good.hcl")
		os.WriteFile(good, []byte(configText(t, e.sock, `model "third" {
  path = "`+testmodel.Path(t)+`"
  context = 256
}`)), 0o644)
		e.run("validate", good).want(t, 0, []string{good + ": ok (3 models, listen 127.0.0.1:8000", "+1 (third)"}, nil)
		var vr admin.ValidateResult
		r := e.run("validate", "--json", good)
		r.want(t, 0, nil, nil)
		r.json(t, &vr)
		if !vr.OK || vr.Plan == nil || len(vr.Plan.Added) != 1 {
			t.Fatalf("validate --json: %+v", vr)
		}
		bad := filepath.Join(e.dir, "bad.hcl")
		os.WriteFile(bad, []byte("server {\n  listen = 8000\n  bogus = true\n}\n"), 0o644)
		e.run("validate", bad).want(t, 1, nil, []string{bad + ":3:", "not usable"})
		r = e.run("validate", "--json", bad)
		r.want(t, 1, nil, nil)
		r.json(t, &vr)
		if vr.OK || len(vr.Diagnostics) < 2 || !strings.HasPrefix(vr.Diagnostics[0], bad+":2:") {
			t.Fatalf("validate --json of a bad file: %+v", vr)
		}
		// A model file that is not there is a warning: usable, exit 0,
		// the warning with its position on stdout.
		warned := filepath.Join(e.dir, "warned.hcl")
		os.WriteFile(warned, []byte(configText(t, e.sock, `model "later" {
  path = "later.gguf"
}`)), 0o644)
		e.run("validate", warned).want(t, 0, []string{warned + ":", `: warning: model file ` + filepath.Join(e.dir, "later.gguf") + ` of model "later" does not exist`, warned + ": ok (3 models"}, nil)
		e.run("validate", filepath.Join(e.dir, "missing.hcl")).want(t, 1, nil, []string{"no such file"})
		// What a reload refuses, validate refuses with the same words.
		empty := filepath.Join(e.dir, "empty.hcl")
		os.WriteFile(empty, []byte("\n  \n"), 0o644)
		e.run("validate", empty).want(t, 1, nil, []string{empty + ": the config file is empty", empty + ": not usable"})
	})
	t.Run("reload", func(t *testing.T) {
		e.run("reload").want(t, 0, []string{"config unchanged (generation 1"}, nil)
		// A valid change is applied as a diff.
		os.WriteFile(e.conf, []byte(configText(t, e.sock, `model "third" {
  path    = "`+testmodel.Path(t)+`"
  context = 256
}`)), 0o644)
		e.run("reload").want(t, 0, []string{"config generation 2 applied in", "+1 (third)"}, nil)
		e.run("models").want(t, 0, []string{"third"}, nil)
		// A broken file is rejected: exit 1, diagnostics with positions,
		// and the running config (generation 2) stays.
		good, _ := os.ReadFile(e.conf)
		os.WriteFile(e.conf, []byte("server {\n  listen = 8000\n  bogus = true\n}\n"), 0o644)
		e.run("reload").want(t, 1, nil, []string{"reload rejected; the running config (generation 2) stays in force", e.conf + ":2:", e.conf + ":3:"})
		var rr admin.ReloadResult
		r := e.run("reload", "--json")
		r.want(t, 1, nil, nil)
		r.json(t, &rr)
		if rr.OK || rr.Generation != 2 || len(rr.Diagnostics) < 2 || rr.Trigger != "admin" {
			t.Fatalf("rejected reload --json: %+v", rr)
		}
		e.run("status").want(t, 0, []string{"generation 2", "last reload:", "by admin, REJECTED (the config above stays in force)", "4 reloads, 2 rejected"}, nil)
		e.run("models").want(t, 0, []string{"stories", "third"}, nil)
		os.WriteFile(e.conf, good, 0o644)
		r = e.run("reload", "--json")
		r.want(t, 0, nil, nil)
		r.json(t, &rr)
		if !rr.OK || rr.Changed || rr.Generation != 2 {
			t.Fatalf("reload back to the good file: %+v", rr)
		}
	})
	t.Run("import of a file that is not a model", func(t *testing.T) {
		junk := filepath.Join(e.dir, "junk.gguf")
		os.WriteFile(junk, []byte("not a model at all"), 0o644)
		r := e.run("import", junk)
		// The daemon's "import: ..." is not repeated after jetai-ctl's own prefix.
		r.want(t, 1, nil, []string{"jetai-ctl import: " + junk + " is not a GGUF model"})
		if strings.Contains(r.stderr, "import: import:") {
			t.Fatalf("prefix said twice: %s", r.stderr)
		}
	})
	t.Run("log-level", func(t *testing.T) {
		e.run("log-level").want(t, 0, []string{"info"}, nil)
		e.run("log-level", "debug").want(t, 0, []string{"debug"}, nil)
		var l admin.LogLevel
		r := e.run("log-level", "--json")
		r.want(t, 0, nil, nil)
		r.json(t, &l)
		if l.Level != "debug" {
			t.Fatalf("log-level --json: %+v", l)
		}
		e.run("log-level", "loud").want(t, 1, nil, []string{`unknown log level "loud"`})
		e.run("log-level", "info").want(t, 0, []string{"info"}, nil)
	})
	t.Run("top", func(t *testing.T) {
		start := time.Now()
		r := e.run("top", "--count", "3", "--interval", "200ms")
		r.want(t, 0, []string{"jetaid dev  serving", "memory ", "   cache ", "tok/s", "NAME"}, nil)
		if n := strings.Count(r.stdout, "NAME  "); n != 3 {
			t.Fatalf("top --count 3 printed %d frames:\n%s", n, r.stdout)
		}
		if el := time.Since(start); el < 350*time.Millisecond {
			t.Fatalf("3 frames at 200ms took %s", el)
		}
		r = e.run("top", "--json", "--count", "2", "--interval", "200ms")
		r.want(t, 0, nil, nil)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 2 {
			t.Fatalf("top --json: %d lines", len(lines))
		}
		for _, l := range lines {
			var s admin.Status
			if err := json.Unmarshal([]byte(l), &s); err != nil || s.State != "serving" {
				t.Fatalf("top --json line: %v %q", err, l)
			}
		}
		e.run("top", "--interval", "0s").want(t, 2, nil, []string{"--interval must be positive"})
	})
	t.Run("bench", func(t *testing.T) {
		// llama.cpp's load log of the raw engine (warnings about
		// stories260K's special tokens and context, the binding's "system"
		// line) stays out of the table's output, and out of the process's
		// own stderr, unless --verbose asks for it.
		r, fd2 := runFD2(t, func() result {
			return e.run("bench", "stories", "--streams", "1", "--prompt-tokens", "16", "--gen-tokens", "16")
		})
		r.want(t, 0, []string{"decode, 1 stream"}, nil)
		for _, noise := range []string{"llama_", "load:", "CPU.0."} {
			if strings.Contains(r.stderr+fd2, noise) {
				t.Fatalf("bench printed llama.cpp's log (%q):\n%s%s", noise, r.stderr, fd2)
			}
		}
		r = e.run("bench", "stories", "--streams", "1,2,8", "--prompt-tokens", "32", "--gen-tokens", "64")
		r.want(t, 0, []string{"model", "raw tok/s", "runner tok/s", "runner/raw", "decode, 1 stream", "aggregate, 2 streams",
			`runner = model "stories" of the running jetaid`}, nil)
		if strings.Contains(r.stdout, "aggregate, 8 streams") {
			t.Fatalf("8 streams exceed the model's parallel = 2:\n%s", r.stdout)
		}
		r = e.run("bench", "stories", "--streams", "1", "--prompt-tokens", "16", "--gen-tokens", "16", "--verbose")
		r.want(t, 0, []string{"decode, 1 stream"}, []string{"llama_model_loader"})
		var out struct {
			Model string
			Rows  []struct {
				Metric      string
				Raw, Runner float64
				Ratio       float64
			}
		}
		r = e.run("--json", "bench", "gpt2", "--streams", "1", "--gen-tokens", "32")
		r.want(t, 0, nil, nil)
		r.json(t, &out)
		if out.Model != "stories" || len(out.Rows) != 3 {
			t.Fatalf("bench --json: %+v", out)
		}
		for _, row := range out.Rows {
			if row.Raw <= 0 || row.Runner <= 0 || row.Ratio <= 0 {
				t.Fatalf("bench --json row without figures: %+v", row)
			}
		}
		e.run("bench", "nope").want(t, 1, nil, []string{`no model "nope"`})
		e.run("bench", "stories", "--gen-tokens", "500").want(t, 2, nil, []string{"do not fit the model's context of 256"})
	})
	t.Run("version", func(t *testing.T) {
		e.run("version").want(t, 0, []string{"jetai-ctl dev (admin API v1)", "jetaid    dev (admin API v1)"}, nil)
		var v map[string]any
		r := e.run("version", "--json")
		r.want(t, 0, nil, nil)
		r.json(t, &v)
		if v["jetaid"] != "dev" || v["jetai_ctl"] != "dev" {
			t.Fatalf("version --json: %v", v)
		}
	})
	t.Run("completion of model names", func(t *testing.T) {
		// A jetai-ctl on PATH (this test binary) answers the completion's
		// `jetai-ctl models --json`.
		bin := t.TempDir()
		os.WriteFile(filepath.Join(bin, "jetai-ctl"), []byte("#!/bin/sh\nJETAI_TEST_CTL=1 exec "+os.Args[0]+" \"$@\"\n"), 0o755)
		script := e.run("completion", "bash").stdout + `
COMP_WORDS=(jetai-ctl unload s); COMP_CWORD=2; _jetai_ctl; echo "${COMPREPLY[@]}"
`
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), ctl.SocketEnv+"="+e.sock)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "stories second\n" {
			t.Fatalf("bash completion of model names: %v %q", err, out)
		}
	})
	t.Run("top on a terminal redraws in place", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			t.Fatal("script (bsdutils) not found")
		}
		// script gives jetai-ctl (this test binary) a pseudo-terminal.
		cmd := exec.Command("script", "-qec", os.Args[0]+" top --count 3 --interval 200ms", "/dev/null")
		cmd.Env = append(os.Environ(), "JETAI_TEST_CTL=1", ctl.SocketEnv+"="+e.sock)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("top on a pty: %v\n%q", err, out)
		}
		o := string(out)
		if strings.Count(o, "\x1b[2J") != 1 || strings.Count(o, "\x1b[H") != 3 || strings.Count(o, "\x1b[J") != 3 || !strings.Contains(o, "stories") {
			t.Fatalf("top on a terminal should clear once and redraw 3 frames in place:\n%q", o)
		}
	})
	t.Run("top on a terminal quits on q and restores the terminal", func(t *testing.T) {
		// stty -g before and after: top's cbreak mode must not outlive it.
		cmd := exec.Command("script", "-qec", "stty -g; "+os.Args[0]+" top --interval 200ms; echo exit=$?; stty -g", "/dev/null")
		cmd.Env = append(os.Environ(), "JETAI_TEST_CTL=1", ctl.SocketEnv+"="+e.sock)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// q once top has drawn two frames: typed earlier, it would sit in
		// the terminal's buffer before top reads keys.
		for deadline := time.Now().Add(15 * time.Second); strings.Count(out.String(), "\x1b[H") < 2; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("top drew no frames:\n%q", out.String())
			}
		}
		in.Write([]byte("q"))
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("top on a pty: %v\n%q", err, out.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			o := out.String()
			t.Fatalf("top did not quit on q; its last output:\n%q", o[max(0, len(o)-600):])
		}
		in.Close()
		var lines []string
		for _, l := range strings.Split(strings.ReplaceAll(out.String(), "\r", ""), "\n") {
			if strings.Count(l, ":") > 10 && !strings.Contains(l, " ") { // stty -g's one line
				lines = append(lines, l)
			}
		}
		o := out.String()
		if !strings.Contains(o, "stories") || !strings.Contains(o, "exit=0") || len(lines) != 2 || lines[0] != lines[1] {
			t.Fatalf("top should draw, exit 0 on q and leave the terminal as it found it (stty -g %q):\n%q", lines, o)
		}
	})
	t.Run("socket from the environment", func(t *testing.T) {
		t.Setenv(ctl.SocketEnv, e.sock)
		var out, errb bytes.Buffer
		if code := ctl.Main([]string{"status"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "serving") {
			t.Fatalf("JETAI_SOCKET: exit %d %s %s", code, out.String(), errb.String())
		}
	})
}

// TestNotRunning: every command that needs the daemon exits 3 and says
// what to do; version still exits 0.
func TestNotRunning(t *testing.T) {
	e := &env{sock: filepath.Join(t.TempDir(), "admin.sock")}
	conf := filepath.Join(t.TempDir(), "x.hcl")
	os.WriteFile(conf, []byte("server {}\n"), 0o644)
	for _, args := range [][]string{{"status"}, {"models"}, {"ps", "--json"}, {"load", "x", "--wait"}, {"unload", "x"},
		{"optimize"}, {"reload"}, {"bench", "stories"}, {"validate", conf}, {"log-level"}, {"top", "--count", "1"}} {
		r := e.run(args...)
		r.want(t, 3, nil, []string{"no admin socket at " + e.sock, "is jetaid running? try: systemctl status jetaid"})
	}
	e.run("version").want(t, 0, []string{"jetai-ctl dev", "jetaid    unknown: no admin socket"}, nil)
}

func TestUsage(t *testing.T) {
	e := &env{sock: "/nonexistent.sock"}
	e.run("frobnicate").want(t, 2, nil, []string{`unknown command "frobnicate"`, "Commands:"})
	e.run("status", "--bogus").want(t, 2, nil, []string{"flag provided but not defined: -bogus"})
	e.run("status", "extra").want(t, 2, nil, []string{"wrong number of arguments"})
	e.run("completion", "fish").want(t, 2, nil, []string{`unknown shell "fish"`})
	var out, errb bytes.Buffer
	if code := ctl.Main(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: jetai-ctl") {
		t.Fatalf("no arguments: exit %d %s", code, errb.String())
	}
	r := e.run("--help")
	r.want(t, 0, []string{"Commands:", "reload", "Exit codes: 0 ok, 1 failed"}, nil)
	e.run("help", "load").want(t, 0, []string{"usage: jetai-ctl load [flags] NAME", "-wait"}, nil)
	e.run("load", "-h").want(t, 0, []string{"usage: jetai-ctl load"}, nil)
}

// TestCompletion checks that the scripts are valid shell and name every
// command.
func TestCompletion(t *testing.T) {
	e := &env{sock: "/nonexistent.sock"}
	for _, shell := range []string{"bash", "zsh"} {
		r := e.run("completion", shell)
		r.want(t, 0, []string{"status", "models", "reload", "completion", "--json", "--wait"}, nil)
		path, err := exec.LookPath(shell)
		if err != nil {
			if shell == "bash" || os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (.ci/run installs zsh)", shell)
			}
			t.Logf("%s not installed; syntax not checked", shell)
			continue
		}
		f := filepath.Join(t.TempDir(), "c")
		os.WriteFile(f, []byte(r.stdout), 0o644)
		if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
			t.Fatalf("%s -n: %v\n%s\n%s", shell, err, out, r.stdout)
		}
	}
	// bash: the completion offers commands and a command's flags.
	script := e.run("completion", "bash").stdout + `
COMP_WORDS=(jetai-ctl lo); COMP_CWORD=1; _jetai_ctl; echo "${COMPREPLY[@]}"
COMP_WORDS=(jetai-ctl load --w); COMP_CWORD=2; _jetai_ctl; echo "${COMPREPLY[@]}"
COMP_WORDS=(jetai-ctl completion z); COMP_CWORD=2; _jetai_ctl; echo "${COMPREPLY[@]}"
`
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil || string(out) != "load log-level\n--wait\nzsh\n" {
		t.Fatalf("bash completion: %v %q", err, out)
	}
	// zsh: the file loads from $fpath as the completion function.
	if _, err := exec.LookPath("zsh"); err == nil {
		f := filepath.Join(t.TempDir(), "_jetai-ctl")
		os.WriteFile(f, []byte(e.run("completion", "zsh").stdout), 0o644)
		zs := "fpath=(" + filepath.Dir(f) + " $fpath); autoload -Uz +X _jetai-ctl && functions _jetai-ctl"
		if out, err := exec.Command("zsh", "-f", "-c", zs).CombinedOutput(); err != nil || !strings.Contains(string(out), "_describe 'command' cmds") {
			t.Fatalf("zsh completion does not load: %v %s", err, out)
		}
	}
}

// syncBuffer is a bytes.Buffer that a child's output goroutine writes
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
