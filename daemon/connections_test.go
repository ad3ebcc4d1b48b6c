package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
)

// TestConnectionFlood opens five times server.max_connections idle TCP
// connections (some with half a request header) and holds them: the
// daemon keeps at most max_connections open, closing the longest-idle
// ones, so /health and an inference still answer from fresh clients.
// Without the cap every one of them held a file descriptor and a
// goroutine until its header timeout, and past the file limit nothing
// (a runner's socket, a model file) could be opened.
func TestConnectionFlood(t *testing.T) {
	const limit, flood = 16, 80
	dir := t.TempDir()
	conf := filepath.Join(dir, "jetai.hcl")
	os.WriteFile(conf, fmt.Appendf(nil, `
server {
  admin_socket    = %q
  max_connections = %d
}
cache {
  dir = "cache"
}
model "stories" {
  path    = %q
  context = 256
  threads = 1
  preload = true
}
`, filepath.Join(dir, "admin.sock"), limit, testmodel.Path(t)), 0o644)
	base, d := runDaemon(t, daemon.Options{ConfigPath: conf, SocketDir: dir,
		RunnerCommand: testrunner.Command(), RunnerEnv: testrunner.Env(), RunnerLog: io.Discard})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	eventually(t, "the daemon serves", func() bool {
		code, _, _ := get("/health")
		return code == 200
	})

	addr := strings.TrimPrefix(base, "http://")
	for i := range flood {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		if i%2 == 1 {
			io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n") // never finished
		}
	}
	eventually(t, "the flood accepted", func() bool {
		st := d.Connections()
		return st.Evicted+st.Refused+int64(st.Open) >= flood
	})
	if st := d.Connections(); st.Open > limit {
		t.Fatalf("%d connections open, over max_connections %d: %+v", st.Open, limit, st)
	}
	// Connections idle under a second are not evicted (a burst of real
	// clients); until the flood's are older, a newcomer may get 503.
	eventually(t, "/health answers under the flood", func() bool {
		code, _, _ := get("/health")
		return code == 200
	})
	resp, err := client.Post(base+"/inference", "application/json", strings.NewReader(`{"prompt": "Once", "model": "stories", "max_tokens": 4}`))
	if err != nil {
		t.Fatalf("inference under the flood: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("inference under the flood: %d %s", resp.StatusCode, b)
	}
	st := d.Connections()
	t.Logf("after %d idle connections with max_connections %d: %+v", flood, limit, st)
	if st.Open > limit {
		t.Fatalf("%d connections open, over max_connections %d", st.Open, limit)
	}
}
