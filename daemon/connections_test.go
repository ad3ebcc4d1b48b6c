package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/promtool"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
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
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
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
`, filepath.Join(dir, "admin.sock"), limit, testmodel.Path(t)))
	d := testdaemon.Start(t, daemon.Options{ConfigPath: conf})
	base := d.URL
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
	// /metrics reports the cap and what the flood cost (the scrape's own
	// connection may evict one more, so the counters are at least these).
	_, text, err := get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	promtool.Check(t, []byte(text))
	if !strings.Contains(text, fmt.Sprintf("jetai_http_connections_max %d\n", limit)) {
		t.Errorf("/metrics lacks jetai_http_connections_max %d", limit)
	}
	for _, name := range []string{"jetai_http_connections_evicted_total", "jetai_http_connections_refused_total"} {
		var n int64
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				fmt.Sscan(v, &n)
			}
		}
		want := st.Evicted
		if name == "jetai_http_connections_refused_total" {
			want = st.Refused
		}
		if n < want {
			t.Errorf("%s %d, want at least %d (Connections: %+v)", name, n, want, st)
		}
	}
	if st.Evicted+st.Refused == 0 {
		t.Errorf("a flood of %d over a cap of %d evicted and refused nothing: %+v", flood, limit, st)
	}
}

// TestBurstReturnsToBaseline sends 1000 requests at once to a model with
// one slot and short queues: each gets 200, or 429/503 with Retry-After
// and a JSON error, and afterwards the daemon's goroutines return to
// their baseline (nothing queued or parked for good).
func TestBurstReturnsToBaseline(t *testing.T) {
	const burst = 1000
	dir := t.TempDir()
	conf := testdaemon.WriteConfig(t, dir, fmt.Sprintf(`
server {
  admin_socket    = %q
  queue_per_model = 4
  queue_total     = 8
}
cache {
  dir = "cache"
}
model "stories" {
  path     = %q
  context  = 256
  parallel = 1
  threads  = 1
  preload  = true
}
`, filepath.Join(dir, "admin.sock"), testmodel.Path(t)))
	base := testdaemon.Start(t, daemon.Options{ConfigPath: conf}).URL
	tr := &http.Transport{MaxIdleConnsPerHost: burst}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 120 * time.Second}
	infer := func() (int, string, string, error) {
		resp, err := client.Post(base+"/inference", "application/json", strings.NewReader(`{"prompt": "Once", "model": "stories", "max_tokens": 8}`))
		if err != nil {
			return 0, "", "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b), nil
	}
	eventually(t, "the model answers", func() bool { code, _, _, _ := infer(); return code == 200 })
	tr.CloseIdleConnections()
	settle := func() int {
		var n int
		for i := 0; i < 20; i++ { // the lowest of a few looks: exiting goroutines
			n = runtime.NumGoroutine()
			time.Sleep(5 * time.Millisecond)
			n = min(n, runtime.NumGoroutine())
		}
		return n
	}
	before := settle()

	type result struct {
		code       int
		retryAfter string
		body       string
		err        error
	}
	results := make(chan result, burst)
	var wg sync.WaitGroup
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, ra, body, err := infer()
			results <- result{code, ra, body, err}
		}()
	}
	wg.Wait()
	close(results)
	counts := map[int]int{}
	for r := range results {
		switch {
		case r.err != nil:
			t.Errorf("request failed: %v", r.err)
		case r.code == 200:
		case r.code == 429 || r.code == 503:
			if r.retryAfter == "" || !strings.Contains(r.body, `"error"`) {
				t.Errorf("%d without Retry-After or JSON error: %q %s", r.code, r.retryAfter, r.body)
			}
		default:
			t.Errorf("answer %d: %s", r.code, r.body)
		}
		counts[r.code]++
	}
	tr.CloseIdleConnections()
	var after int
	eventually(t, "goroutines back to their baseline", func() bool {
		after = settle()
		return after <= before+5
	})
	t.Logf("%d requests at once: answers %v; goroutines %d before, %d after", burst, counts, before, after)
}
