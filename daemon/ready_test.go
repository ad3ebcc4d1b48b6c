package daemon_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// readyCode is GET /ready's status and, when unready, its error code.
func readyCode(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("GET %s: not JSON: %q", url, b)
	}
	if resp.StatusCode == 200 {
		return 200, body.Status
	}
	return resp.StatusCode, body.Error.Code
}

// TestReadyFollowsThermalPolicy drives the fake tree's temperature across
// the hard limit and back: /ready goes 503 "shedding" at the crossing,
// stays so between the hard limit and the hard limit less the hysteresis
// (no flapping with a temperature that hovers at the limit), and is 200
// again once cooled below it. /health stays 200 throughout: the daemon is
// alive, only not the place to send work.
func TestReadyFollowsThermalPolicy(t *testing.T) {
	root := fakeRoot(t, "orin-nano")
	base, _ := platformDaemon(t, root, `
thermal {
  soft_limit    = 80
  hard_limit    = 90
  hysteresis    = 5
  poll_interval = "20ms"
}
model "story" {
  path     = %[1]q
  context  = 256
  parallel = 1
  threads  = 1
}
model "gone" {
  path = "/nonexistent/gone.gguf"
}
`, io.Discard)
	ready := base + "/ready"
	eventually(t, "ready", func() bool { c, _ := readyCode(t, ready); return c == 200 })
	if c, code := readyCode(t, ready+"?model=gone"); c != 503 || code != "model_not_ready" {
		t.Fatalf("?model=gone: %d %s", c, code)
	}
	if c, _ := readyCode(t, ready+"?model=story"); c != 200 {
		t.Fatalf("?model=story: %d", c)
	}

	setTemp(t, root, 91000)
	eventually(t, "unready at the hard limit", func() bool { c, code := readyCode(t, ready); return c == 503 && code == "shedding" })
	if c, _ := readyCode(t, base+"/health"); c != 200 {
		t.Fatalf("/health while shedding: %d", c)
	}
	// Between the hard limit and the hard limit less the hysteresis: still
	// unready, over many polls.
	setTemp(t, root, 87000)
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, code := readyCode(t, ready); c != 503 || code != "shedding" {
			t.Fatalf("at 87 °C (within the hysteresis): %d %s, want 503 shedding", c, code)
		}
	}
	setTemp(t, root, 84000)
	eventually(t, "ready after cooling", func() bool { c, _ := readyCode(t, ready); return c == 200 })
}

// TestReadyNoModel: a daemon whose every model is unavailable is alive
// (/health 200) but not ready.
func TestReadyNoModel(t *testing.T) {
	dir := t.TempDir()
	base, _ := platformDaemon(t, fakeRoot(t, "orin-nano"), `
# no model at %[1]s
model "a" {
  path = "`+filepath.Join(dir, "a.gguf")+`"
}
model "b" {
  path = "`+filepath.Join(dir, "b.gguf")+`"
}
`, io.Discard)
	if c, _ := readyCode(t, base+"/health"); c != 200 {
		t.Fatalf("/health: %d", c)
	}
	if c, code := readyCode(t, base+"/ready"); c != 503 || code != "no_model_ready" {
		t.Fatalf("/ready: %d %s, want 503 no_model_ready", c, code)
	}
}
