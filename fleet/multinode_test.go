package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/fleet"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
)

// nodeEnv, when set, makes the test binary a jetaid node with that config
// (and nodeRootEnv its platform root): the test kills nodes with SIGKILL,
// so each is a process of its own.
const (
	nodeEnv     = "JETAI_FLEET_NODE_CONFIG"
	nodeRootEnv = "JETAI_FLEET_NODE_ROOT"
)

func TestMain(m *testing.M) {
	testrunner.ServeIfRunner()
	if conf := os.Getenv(nodeEnv); conf != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		err := daemon.Run(ctx, daemon.Options{ConfigPath: conf, PlatformRoot: os.Getenv(nodeRootEnv),
			RunnerCommand: testrunner.Command(), RunnerEnv: testrunner.Env(),
			ToolCommand: testrunner.Command(), ToolEnv: testrunner.ToolEnv(),
			Watch: config.WatchOptions{Debounce: 50 * time.Millisecond}})
		if err != nil {
			fmt.Fprintln(os.Stderr, "jetaid node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// freePort returns a port free on ip now.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v (the test needs 127.0.0.2-4 on the loopback interface)", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// node is one jetaid process.
type node struct {
	t          *testing.T
	name, addr string
	dir, root  string
	conf       string
	cmd        *exec.Cmd
	done       chan struct{}
}

func copyTree(t *testing.T, name string) string {
	_, file, _, _ := runtime.Caller(0)
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(filepath.Dir(file), "..", "testdata", "platform", name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func modelBlock(name string) string {
	return fmt.Sprintf(`model %q {
  path       = %q
  context    = 2048
  parallel   = 4
  threads    = 1
  preload    = true
  keep_alive = "forever"
}
`, name, tinyModel)
}

// tinyModel is the real tiny model's path, set by the test.
var tinyModel string

func (n *node) writeConfig(models ...string) {
	n.t.Helper()
	hcl := fmt.Sprintf(`server {
  listen       = %q
  admin_socket = %q
}
cache {
  dir = "cache"
}
thermal {
  soft_limit    = 80
  hard_limit    = 90
  hysteresis    = 5
  poll_interval = "50ms"
}
`, n.addr, filepath.Join(n.dir, "admin.sock"))
	for _, m := range models {
		hcl += modelBlock(m)
	}
	tmp := n.conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(hcl), 0o644); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Rename(tmp, n.conf); err != nil {
		n.t.Fatal(err)
	}
}

func startNode(t *testing.T, name, ip string, models ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, dir: t.TempDir(), root: copyTree(t, "orin-nano")}
	n.addr = fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	n.conf = filepath.Join(n.dir, "jetai.hcl")
	n.writeConfig(models...)
	logf, err := os.Create(filepath.Join(n.dir, "jetaid.log"))
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(os.Args[0])
	n.cmd.Env = append(os.Environ(), nodeEnv+"="+n.conf, nodeRootEnv+"="+n.root)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func() { n.cmd.Wait(); logf.Close(); close(n.done) }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(40 * time.Second):
			n.cmd.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(n.dir, "jetaid.log"))
			t.Logf("%s log (last 3000 bytes):\n%s", n.name, tail(b, 3000))
		}
	})
	return n
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (n *node) setTemp(milli int) {
	n.t.Helper()
	p := filepath.Join(n.root, "sys/class/thermal/thermal_zone8/temp")
	if err := os.WriteFile(p+".new", []byte(strconv.Itoa(milli)+"\n"), 0o644); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) readyStatus(model string) int {
	url := "http://" + n.addr + "/ready"
	if model != "" {
		url += "?model=" + model
	}
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lb is an HAProxy process over a generated config.
type lb struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	gen  int
}

// generate discovers the nodes, writes the config and starts HAProxy, or
// replaces the running one (-sf: the old process finishes its requests).
func (l *lb) generate(nodes ...*node) {
	l.t.Helper()
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr)
	}
	ns, err := fleet.Discover(context.Background(), nil, addrs, "")
	if err != nil {
		l.t.Fatal(err)
	}
	cfg, err := fleet.HAProxy(ns, fleet.Options{Bind: l.addr, CheckInterval: 250 * time.Millisecond, Fall: 2, Rise: 2, ServerTimeout: time.Minute})
	if err != nil {
		l.t.Fatal(err)
	}
	l.gen++
	p := filepath.Join(l.dir, fmt.Sprintf("haproxy-%d.cfg", l.gen))
	if err := os.WriteFile(p, cfg, 0o644); err != nil {
		l.t.Fatal(err)
	}
	args := []string{"-db", "-f", p}
	old := l.cmd
	if old != nil {
		args = append(args, "-sf", strconv.Itoa(old.Process.Pid))
	}
	logf, _ := os.Create(filepath.Join(l.dir, fmt.Sprintf("haproxy-%d.log", l.gen)))
	cmd := exec.Command(l.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.cmd = cmd
	l.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if old != nil {
		go old.Wait()
	}
}

// answer is one request's outcome.
type answer struct {
	status      int
	node        string // X-Jetai-Node
	code        string // the error's code, when not 200
	tokens      int
	start, took time.Duration
	contentType string
}

var (
	client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// fresh opens a connection for each request. HAProxy answers a
	// failure at the node with the JSON 502 only on a client connection's
	// first request; on a later one it closes the connection without a
	// word (so that the client may retry, as HTTP allows after a
	// keep-alive connection closes).
	fresh = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
)

func complete(t *testing.T, base, model string, maxTokens int, ignoreEOS bool) answer {
	return completeWith(client, base, model, maxTokens, ignoreEOS)
}

func completeWith(client *http.Client, base, model string, maxTokens int, ignoreEOS bool) answer {
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": "Once upon a time", "max_tokens": maxTokens, "temperature": 0, "ignore_eos": ignoreEOS})
	start := time.Now()
	resp, err := client.Post(base+"/v1/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		return answer{status: -1, code: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, node: resp.Header.Get(fleet.NodeHeader), took: time.Since(start), contentType: resp.Header.Get("Content-Type")}
	var out struct {
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &out) != nil && resp.StatusCode != 200 {
		a.code = "not JSON: " + string(tail(b, 200))
	}
	a.tokens, a.code = out.Usage.CompletionTokens, out.Error.Code
	if a.status != 200 && a.code == "" {
		a.code = "no code: " + string(tail(b, 200))
	}
	return a
}

// spread sends n requests, conc at a time, and counts answers by node.
func spread(t *testing.T, base, model string, n, conc int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := complete(t, base, model, 8, false)
			mu.Lock()
			defer mu.Unlock()
			if a.status != 200 {
				t.Errorf("%s: %d %s", model, a.status, a.code)
				return
			}
			counts[a.node]++
		}()
	}
	wg.Wait()
	return counts
}

// TestFleetBehindHAProxy runs three jetaid nodes on 127.0.0.2-4 (model A
// on two, B on one) behind a real HAProxy whose config is generated from
// their /v1/models, and checks what a fleet relies on: routing by model,
// a hot reload that adds a model showing up at the next generation,
// draining a node that sheds for heat and taking it back once cool, and
// a node killed with SIGKILL losing no request that had not reached it.
// It logs the figures of docs/benchmarks.md (through HAProxy vs direct).
func TestFleetBehindHAProxy(t *testing.T) {
	bin := fleet.HAProxyBin(t)
	tinyModel = testmodel.Path(t)
	const A, B = "story-a", "story-b"
	n1 := startNode(t, "node1", "127.0.0.2", A)
	n2 := startNode(t, "node2", "127.0.0.3", A)
	n3 := startNode(t, "node3", "127.0.0.4", B)
	for _, n := range []*node{n1, n2, n3} {
		waitFor(t, n.name+" ready", time.Minute, func() bool { return n.readyStatus("") == 200 })
	}
	l := &lb{t: t, bin: bin, dir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))}
	l.generate(n1, n2, n3)
	base := "http://" + l.addr
	srv := func(n *node) string { return fleet.ServerName(n.addr) }
	waitFor(t, "HAProxy serving both models", 20*time.Second, func() bool {
		return complete(t, base, A, 1, false).status == 200 && complete(t, base, B, 1, false).status == 200
	})

	// Routing: A over its two nodes, B only on its own.
	if c := spread(t, base, A, 40, 4); c[srv(n1)] == 0 || c[srv(n2)] == 0 || c[srv(n3)] != 0 {
		t.Fatalf("A's requests by node: %v, want both A nodes and not %s", c, srv(n3))
	}
	if c := spread(t, base, B, 12, 4); len(c) != 1 || c[srv(n3)] != 12 {
		t.Fatalf("B's requests by node: %v, want all on %s", c, srv(n3))
	}

	// Figures, while B is on node3 alone (the same node direct and
	// through HAProxy).
	figures(t, base, "http://"+n3.addr, B)

	// A hot reload that adds B on node2 shows up after the next generation.
	n2.writeConfig(A, B)
	waitFor(t, "node2 serving B", 30*time.Second, func() bool { return n2.readyStatus(B) == 200 })
	if c := spread(t, base, B, 8, 4); c[srv(n2)] != 0 {
		t.Fatalf("B reached node2 before the config was generated again: %v", c)
	}
	l.generate(n1, n2, n3)
	waitFor(t, "B over node2 and node3", 20*time.Second, func() bool {
		c := spread(t, base, B, 16, 4)
		return c[srv(n2)] > 0 && c[srv(n3)] > 0
	})

	// Heat: node1 crosses the hard limit, goes unready, its traffic drains
	// to node2 with no request lost; cooled, it comes back.
	n1.setTemp(91000)
	crossed := time.Now()
	var lastOnHot time.Duration
	for quietSince := time.Now(); time.Since(quietSince) < 1500*time.Millisecond; {
		if time.Since(crossed) > 30*time.Second {
			t.Fatal("traffic did not leave the hot node within 30 s")
		}
		a := complete(t, base, A, 4, false)
		if a.status != 200 {
			t.Fatalf("a request while node1 drained: %d %s", a.status, a.code)
		}
		if a.node == srv(n1) {
			lastOnHot = time.Since(crossed)
			quietSince = time.Now()
		}
	}
	if n1.readyStatus("") != 503 {
		t.Fatal("node1 is not unready while hot")
	}
	t.Logf("FIGURE thermal crossing to traffic gone: %v (last request on the hot node after the crossing; checks every 250ms, fall 2, thermal poll 50ms)", lastOnHot.Round(time.Millisecond))
	n1.setTemp(70000)
	waitFor(t, "node1 back in A's backend", 30*time.Second, func() bool {
		return spread(t, base, A, 8, 4)[srv(n1)] > 0
	})

	// SIGKILL of node1 while requests run on both A nodes.
	var mu sync.Mutex
	var inflight []answer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := completeWith(fresh, base, A, 1500, true)
			mu.Lock()
			inflight = append(inflight, a)
			mu.Unlock()
		}()
	}
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	n1.cmd.Process.Kill()
	<-n1.done
	// Requests sent after the kill: none lost, whether HAProxy has noticed
	// yet (a refused connection is retried elsewhere) or not.
	for i := range 30 {
		a := complete(t, base, A, 4, false)
		if a.status != 200 || a.node != srv(n2) {
			t.Fatalf("request %d after the kill (%v after): %d %s from %q", i, time.Since(killed).Round(time.Millisecond), a.status, a.code, a.node)
		}
	}
	wg.Wait()
	failed := 0
	for _, a := range inflight {
		switch {
		case a.status == 200:
		case a.status == 502 && a.code == "node_failed" && a.contentType == "application/json":
			failed++
		default:
			t.Errorf("an in-flight request: %d %q (%s), want 200 or 502 node_failed as JSON", a.status, a.code, a.contentType)
		}
	}
	if failed == 0 {
		t.Errorf("no in-flight request was on node1 when it was killed: %+v", inflight)
	}
	t.Logf("in flight at the kill: %d of %d failed with 502 node_failed", failed, len(inflight))
}

// figures measures single-stream tokens/s and the latency HAProxy adds at
// 100 requests/s, direct against through HAProxy, to the same node.
func figures(t *testing.T, lbBase, direct, model string) {
	t.Helper()
	// Single stream: alternate, so drift hits both alike.
	var viaRates, directRates []float64
	for i := range 10 {
		for _, base := range []string{direct, lbBase} {
			a := complete(t, base, model, 400, true)
			if a.status != 200 || a.tokens == 0 {
				t.Fatalf("single stream %d: %d %s", i, a.status, a.code)
			}
			r := float64(a.tokens) / a.took.Seconds()
			if base == direct {
				directRates = append(directRates, r)
			} else {
				viaRates = append(viaRates, r)
			}
		}
	}
	med := func(x []float64) float64 { s := slices.Clone(x); sort.Float64s(s); return s[len(s)/2] }
	t.Logf("FIGURE single-stream tok/s: direct %.0f, through HAProxy %.0f, ratio %.3f (medians of 10, 400 tokens each)",
		med(directRates), med(viaRates), med(viaRates)/med(directRates))

	// 100 requests/s, open loop, 5 s each way.
	p := func(base string) (p50, p99 time.Duration, errs int) {
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range 500 {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := complete(t, base, model, 1, false)
				mu.Lock()
				defer mu.Unlock()
				if a.status != 200 {
					errs++
					return
				}
				lat = append(lat, a.took)
			}()
		}
		wg.Wait()
		slices.Sort(lat)
		if len(lat) == 0 {
			return 0, 0, errs
		}
		return lat[len(lat)/2], lat[len(lat)*99/100], errs
	}
	d50, d99, de := p(direct)
	v50, v99, ve := p(lbBase)
	t.Logf("FIGURE 100 req/s, 1 token each, 500 requests: direct p50 %v p99 %v (%d errors); through HAProxy p50 %v p99 %v (%d errors); added p50 %v p99 %v",
		d50.Round(10*time.Microsecond), d99.Round(10*time.Microsecond), de, v50.Round(10*time.Microsecond), v99.Round(10*time.Microsecond), ve,
		(v50 - d50).Round(10*time.Microsecond), (v99 - d99).Round(10*time.Microsecond))
}
