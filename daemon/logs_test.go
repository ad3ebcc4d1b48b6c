package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
)

// TestLogFormatJSON runs a daemon with log_format = "json" and its
// default logger (no journal here): every line it and its runners write
// is one JSON object with time, level and msg, the daemon's records carry
// their fields, and a runner's own output (here the error of a model file
// that is not a model) arrives as records too.
func TestLogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.gguf")
	if err := os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00 this is not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := testdaemon.WriteConfig(t, dir, ownCache(fmt.Sprintf(`
server {
  log_format = "json"
}
model "story" {
  path     = %q
  context  = 256
  parallel = 1
  threads  = 1
  preload  = true
}
model "broken" {
  path = %q
}
`, testmodel.Path(t), bad)))
	var out logBuffer
	td := testdaemon.Start(t, daemon.Options{ConfigPath: conf, LogOutput: &out})
	td.WaitHealthy(t)
	code, _, _ := infer(t, td.URL, "story")
	if code != 200 {
		t.Fatalf("inference: %d", code)
	}
	resp, err := http.Post(td.URL+"/inference", "application/json", strings.NewReader(`{"prompt": "Once", "model": "broken"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := td.Stop(); err != nil {
		t.Fatal(err)
	}

	var msgs []string
	var runnerLines int
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", sc.Text())
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("record without %q: %s", k, sc.Text())
			}
		}
		msg := rec["msg"].(string)
		msgs = append(msgs, msg)
		if msg == "jetaid serving" && rec["listen"] == nil {
			t.Errorf("serving record without its fields: %s", sc.Text())
		}
		if msg == "runner output" && rec["component"] == "runner" && rec["line"] != "" {
			runnerLines++
		}
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{"jetaid serving", "jetaid stopped"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q record among %q", want, msgs)
		}
	}
	if runnerLines == 0 {
		t.Errorf("no runner output record; records: %q", msgs)
	}
}
