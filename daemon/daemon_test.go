package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
)

func TestMain(m *testing.M) {
	testrunner.ServeIfRunner()
	serveIfDaemon()
	os.Exit(m.Run())
}

// TestRunServesAndStops runs the whole daemon on a real listener: it serves
// an answer from the real tiny model, then shuts down cleanly on ctx's end,
// leaving no runner behind.
func TestRunServesAndStops(t *testing.T) {
	dir := t.TempDir()
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
server {
  admin_socket = %q
}
cache {
  dir = "cache"
}
model "stories" {
  path       = %q
  aliases    = ["gpt2"]
  context    = 256
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
}
`, filepath.Join(dir, "admin.sock"), testmodel.Path(t)))
	d := testdaemon.Start(t, daemon.Options{ConfigPath: conf})
	base := d.URL
	d.WaitHealthy(t)
	resp, err := http.Post(base+"/inference", "application/json",
		strings.NewReader(`{"prompt": "Once upon a time", "model": "gpt2", "max_length": 20, "temperature": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Response string `json:"response"`
		Model    string `json:"model"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out.Model != "stories" || len(strings.Fields(out.Response)) < 3 {
		t.Fatalf("inference: %d %+v", resp.StatusCode, out)
	}

	var pids []int
	resp, err = http.Get(base + "/models")
	if err == nil {
		var ms struct {
			Models []struct {
				Pid int `json:"pid"`
			} `json:"models"`
		}
		json.NewDecoder(resp.Body).Decode(&ms)
		resp.Body.Close()
		for _, m := range ms.Models {
			if m.Pid > 0 {
				pids = append(pids, m.Pid)
			}
		}
	}
	if len(pids) != 1 {
		t.Fatalf("want one runner pid, got %v", pids)
	}

	if err := d.Stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z ") {
				t.Fatalf("runner %d still running after shutdown", pid)
			}
		}
	}
}

// TestRunBadConfig refuses an invalid file with file:line:col diagnostics.
func TestRunBadConfig(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "bad.hcl")
	os.WriteFile(conf, []byte("server {\n  listen = 8000\n  bogus = true\n}\n"), 0o644)
	err := daemon.Run(context.Background(), daemon.Options{ConfigPath: conf})
	var diags config.Diagnostics
	if !errors.As(err, &diags) || len(diags) < 2 || !strings.Contains(err.Error(), conf+":3:") {
		t.Fatalf("want diagnostics for both problems with positions, got %v", err)
	}
}

// TestShutdownParks: a conversation's model is parked when the daemon stops
// gracefully, and after a start on the same cache the same prompt reports
// its tokens as cached (what an upgrade of the package does to a running
// conversation).
func TestShutdownParks(t *testing.T) {
	dir := t.TempDir()
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
cache {
  dir = "cache"
}
model "stories" {
  path       = %q
  context    = 256
  parallel   = 1
  threads    = 1
  preload    = true
  keep_alive = "forever"
}
`, testmodel.Path(t)))
	prompt := strings.Repeat("Once upon a time there was a little dog. ", 6)
	body := fmt.Sprintf(`{"prompt": %q, "model": "stories", "max_length": 8, "temperature": 0}`, prompt)
	// run starts a daemon, sends the prompt, stops the daemon gracefully
	// and returns the answer's usage.
	type usage struct {
		PromptTokens int `json:"prompt_tokens"`
		CachedTokens int `json:"cached_tokens"`
	}
	run := func() usage {
		t.Helper()
		d := testdaemon.Start(t, daemon.Options{ConfigPath: conf, Log: slog.New(slog.DiscardHandler)})
		base := d.URL
		var out struct {
			Usage usage `json:"usage"`
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Post(base+"/inference", "application/json", strings.NewReader(body))
			if err == nil {
				code := resp.StatusCode
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if code == 200 && err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer from the daemon: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := d.Stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		return out.Usage
	}
	first := run()
	if first.CachedTokens != 0 || first.PromptTokens < 32 {
		t.Fatalf("first conversation: %+v (want no cached tokens, a prompt long enough to park)", first)
	}
	parked, _ := filepath.Glob(filepath.Join(dir, "cache", "parked", "*", "manifest.json"))
	if len(parked) != 1 {
		t.Fatalf("parked after a graceful stop: %v", parked)
	}
	second := run()
	if second.CachedTokens < first.PromptTokens-1 {
		t.Fatalf("after a restart the same prompt reused %d of %d prompt tokens", second.CachedTokens, first.PromptTokens)
	}
}
