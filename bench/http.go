package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// HTTPConfig sets up the daemon-level measurements: the whole stack
// (HTTP → jetaid → runner) against the runner alone, endpoint latency under
// a steady request rate, and a model swap.
type HTTPConfig struct {
	Jetaid    string // jetaid binary
	Model     string // model for the stream comparison
	SwapA     string // two models of the same size for the swap, each
	SwapB     string // alone fitting the budget (empty = skip the swap)
	Threads   int
	GenTokens int
	Streams   int // concurrency of the aggregate figure
	Rate      int // requests/s for the latency figure
	Out, Log  io.Writer
	// CacheResponses, when set, is the daemon's cache.responses.
	CacheResponses string
}

// HTTPReport holds the figures.
type HTTPReport struct {
	RunnerSingle, HTTPSingle float64 // decode tok/s, one stream
	RunnerAgg, HTTPAgg       float64 // aggregate tok/s at Streams
	Latency                  map[string]LatencyStats
	SwapFirstToken           time.Duration
	SwapEvicted              bool
}

// LatencyStats summarises one endpoint's latencies.
type LatencyStats struct {
	N             int
	P50, P99, Max time.Duration
	Errors        int
}

const slotContext = 512

// benchSampling is greedy with every filter off, for the runner directly
// and over HTTP alike.
var benchSampling = runner.Sampling{Temperature: 0, TopK: 0, TopP: 1, MinP: 0, RepeatPenalty: 1}

// RunHTTP measures and prints the report.
func RunHTTP(ctx context.Context, cfg HTTPConfig) (HTTPReport, error) {
	rep := HTTPReport{Latency: map[string]LatencyStats{}}
	dir, err := os.MkdirTemp("", "jetai-bench-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)

	// The runner alone, with the settings the daemon's config gives it.
	logf(cfg.Log, "runner directly: %s", filepath.Base(cfg.Model))
	p, err := runner.Start(runner.Options{Name: "direct", Model: cfg.Model, SlotContext: slotContext, Slots: cfg.Streams,
		Threads: cfg.Threads, Queue: cfg.Streams, Command: []string{cfg.Jetaid, "runner"}})
	if err != nil {
		return rep, err
	}
	if _, err := p.WaitReady(ctx); err != nil {
		return rep, err
	}
	direct := func(ctx context.Context, prompt string, onFirst func()) (int, error) {
		first := false
		r, err := p.Complete(ctx, runner.Request{Prompt: prompt, Sampling: benchSampling, MaxTokens: cfg.GenTokens, IgnoreEOS: true},
			func(string) {
				if !first {
					first = true
					onFirst()
				}
			})
		return r.Timings.GeneratedTokens, err
	}
	rep.RunnerSingle, rep.RunnerAgg, err = streamFigures(ctx, cfg, direct)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	p.Stop(sctx)
	cancel()
	if err != nil {
		return rep, err
	}

	// The same through jetaid's REST API.
	logf(cfg.Log, "through jetaid: %s", filepath.Base(cfg.Model))
	d, err := startDaemon(ctx, cfg, dir, "stream", fmt.Sprintf(`model "m" {
  path = %q
  context = %d
  parallel = %d
  threads = %d
  preload = true
  keep_alive = "forever"
}`, cfg.Model, slotContext, cfg.Streams, cfg.Threads), "8GiB")
	if err != nil {
		return rep, err
	}
	viaHTTP := func(ctx context.Context, prompt string, onFirst func()) (int, error) {
		return d.stream(ctx, "m", prompt, cfg.GenTokens, onFirst)
	}
	rep.HTTPSingle, rep.HTTPAgg, err = streamFigures(ctx, cfg, viaHTTP)
	if err == nil {
		for _, path := range []string{"/health", "/models"} {
			rep.Latency[path] = d.latency(ctx, path, cfg.Rate, 4*time.Second)
		}
	}
	d.stop()
	if err != nil {
		return rep, err
	}

	if cfg.SwapA != "" && cfg.SwapB != "" {
		logf(cfg.Log, "model swap")
		if rep.SwapFirstToken, rep.SwapEvicted, err = measureSwap(ctx, cfg, dir); err != nil {
			return rep, err
		}
	}
	if cfg.Out != nil {
		printHTTP(cfg.Out, cfg, rep)
	}
	return rep, nil
}

type streamFunc func(ctx context.Context, prompt string, onFirst func()) (int, error)

// streamFigures returns the best single-stream decode tok/s (after the first
// token) and the best aggregate tok/s at cfg.Streams, over repeats.
func streamFigures(ctx context.Context, cfg HTTPConfig, run streamFunc) (single, agg float64, err error) {
	for rep := range repeats + 1 {
		var first time.Time
		n, err := run(ctx, fmt.Sprintf("%d %s", rep, shortPrompt(1, rep)), func() { first = time.Now() })
		if err != nil {
			return 0, 0, err
		}
		if rep > 0 {
			single = max(single, float64(n-1)/time.Since(first).Seconds())
		}
	}
	for rep := range repeats {
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		var firstErr error
		start := time.Now()
		for i := range cfg.Streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := run(ctx, shortPrompt(cfg.Streams, i)+strings.Repeat(" ", rep), func() {})
				mu.Lock()
				defer mu.Unlock()
				total += n
				if err != nil && firstErr == nil {
					firstErr = err
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return 0, 0, firstErr
		}
		agg = max(agg, float64(total)/time.Since(start).Seconds())
	}
	return single, agg, nil
}

type daemonProc struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
	// conf is the config file; confHead its blocks before the models
	// (for rewriting it: see reload.go).
	conf, confHead string
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startDaemon starts jetaid on a config of its own in dir; models is the
// rest of the config (model blocks, other blocks); args go to jetaid.
func startDaemon(ctx context.Context, cfg HTTPConfig, dir, name, models, budget string, args ...string) (*daemonProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, name+".hcl")
	head := fmt.Sprintf("server {\n  listen = \"127.0.0.1:%d\"\n  admin_socket = %q\n}\nmemory {\n  budget = %q\n  reserve = \"64MiB\"\n}\ncache {\n  dir = %q\n}\n",
		port, filepath.Join(dir, name+".sock"), budget, filepath.Join(dir, "cache"))
	if cfg.CacheResponses != "" {
		head = strings.Replace(head, "cache {\n", fmt.Sprintf("cache {\n  responses = %q\n", cfg.CacheResponses), 1)
	}
	if err := os.WriteFile(conf, []byte(head+models+"\n"), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, cfg.Jetaid, append([]string{"--config", conf}, args...)...)
	cmd.Stderr = cfg.Log
	if cfg.Log == nil {
		cmd.Stderr = io.Discard
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemonProc{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), conf: conf, confHead: head,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	// Ready when every preloaded model is: /models says so.
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if ok, _ := d.allReady(ctx); ok {
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop()
	return nil, fmt.Errorf("jetaid did not get ready (config %s)", conf)
}

// modelRow is the part of GET /models the bench reads.
type modelRow struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Preload bool   `json:"preload"`
}

func (d *daemonProc) models(ctx context.Context) ([]modelRow, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/models", nil)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /models: %s", resp.Status)
	}
	var body struct {
		Models []modelRow `json:"models"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	return body.Models, err
}

func (d *daemonProc) allReady(ctx context.Context) (bool, error) {
	ms, err := d.models(ctx)
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.Preload && m.State != "ready" {
			return false, nil
		}
	}
	return true, nil
}

func (d *daemonProc) stop() {
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// stream runs a streamed /inference and returns the generated token count.
func (d *daemonProc) stream(ctx context.Context, model, prompt string, maxTokens int, onFirst func()) (int, error) {
	// Every sampling setting is explicit, so the daemon's model defaults do
	// not make its requests do more work than the direct ones.
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": maxTokens,
		"temperature": benchSampling.Temperature, "top_k": benchSampling.TopK, "top_p": benchSampling.TopP,
		"min_p": benchSampling.MinP, "repeat_penalty": benchSampling.RepeatPenalty, "stream": true, "ignore_eos": true})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/inference", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("/inference: %s: %s", resp.Status, b)
	}
	r := bufio.NewReader(resp.Body)
	first := false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("/inference stream ended early: %w", err)
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if !first {
			first = true
			onFirst()
		}
		if !bytes.Contains(data, []byte(`"done":true`)) {
			continue
		}
		var final struct {
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(data, &final); err != nil {
			return 0, err
		}
		return final.Usage.CompletionTokens, nil
	}
}

// latency sends GETs at a steady rate for dur and returns the spread.
func (d *daemonProc) latency(ctx context.Context, path string, rate int, dur time.Duration) LatencyStats {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for time.Now().Before(end) {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
			resp, err := d.client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			el := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || resp.StatusCode != 200 {
				errs++
				return
			}
			lat = append(lat, el)
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	s := LatencyStats{N: len(lat), Errors: errs}
	if len(lat) > 0 {
		s.P50 = lat[len(lat)/2]
		s.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		s.Max = lat[len(lat)-1]
	}
	return s
}

// measureSwap loads A, then asks for B under a budget that holds one of
// them: B's first token includes A's eviction and B's load. Both files are
// read once first, so they are in the page cache.
func measureSwap(ctx context.Context, cfg HTTPConfig, dir string) (time.Duration, bool, error) {
	for _, f := range []string{cfg.SwapA, cfg.SwapB} {
		if b, err := os.Open(f); err == nil {
			io.Copy(io.Discard, b)
			b.Close()
		}
	}
	st, err := os.Stat(cfg.SwapA)
	if err != nil {
		return 0, false, err
	}
	budget := fmt.Sprintf("%dMiB", (st.Size()*3/2)>>20+256)
	models := ""
	for _, m := range []struct{ name, path string }{{"a", cfg.SwapA}, {"b", cfg.SwapB}} {
		models += fmt.Sprintf("model %q {\n  path = %q\n  context = %d\n  parallel = 1\n  threads = %d\n  keep_alive = \"forever\"\n}\n", m.name, m.path, slotContext, cfg.Threads)
	}
	d, err := startDaemon(ctx, cfg, dir, "swap", models, budget)
	if err != nil {
		return 0, false, err
	}
	defer d.stop()
	var best time.Duration
	evicted := false
	// a → b → a → b: each request after the first swaps.
	order := []string{"a", "b", "a", "b", "a"}
	for i, m := range order {
		start := time.Now()
		var first time.Time
		if _, err := d.stream(ctx, m, "Once upon a time", 2, func() { first = time.Now() }); err != nil {
			return 0, false, err
		}
		if i == 0 {
			continue
		}
		if ft := first.Sub(start); best == 0 || ft < best {
			best = ft
		}
		other := order[i-1]
		if st, _ := d.modelState(ctx, other); st != "ready" {
			evicted = true
		}
	}
	return best, evicted, nil
}

func (d *daemonProc) modelState(ctx context.Context, name string) (string, error) {
	ms, err := d.models(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.Name == name {
			return m.State, nil
		}
	}
	return "", fmt.Errorf("model %s not listed", name)
}

func printHTTP(w io.Writer, cfg HTTPConfig, r HTTPReport) {
	fmt.Fprintf(w, "\njetaid over HTTP vs the runner directly (%s, threads=%d, %d tokens per stream)\n", filepath.Base(cfg.Model), cfg.Threads, cfg.GenTokens)
	row := func(name string, direct, viaHTTP, target float64) {
		ratio := viaHTTP / direct
		mark := "ok"
		if ratio < target {
			mark = "MISS"
		}
		fmt.Fprintf(w, "  %-28s runner %8.1f tok/s   http %8.1f tok/s   http/runner %.3f  (≥%.2f %s)\n", name, direct, viaHTTP, ratio, target, mark)
	}
	row("decode, 1 stream", r.RunnerSingle, r.HTTPSingle, 0.97)
	row(fmt.Sprintf("aggregate, %d streams", cfg.Streams), r.RunnerAgg, r.HTTPAgg, 0.95)
	for _, path := range []string{"/health", "/models"} {
		s := r.Latency[path]
		mark := "ok"
		if s.P99 >= 2*time.Millisecond || s.Errors > 0 {
			mark = "MISS"
		}
		fmt.Fprintf(w, "  GET %-8s at %d req/s: n=%d p50 %v p99 %v max %v errors %d  (p99 <2ms %s)\n", path, cfg.Rate, s.N, s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.Max.Round(time.Microsecond), s.Errors, mark)
	}
	if cfg.SwapA != "" {
		mark := "ok"
		if r.SwapFirstToken >= time.Second || !r.SwapEvicted {
			mark = "MISS"
		}
		fmt.Fprintf(w, "  model swap (evict one %s, load the other, first token): %v, eviction seen %v  (<1s %s)\n", filepath.Base(cfg.SwapA), r.SwapFirstToken.Round(time.Millisecond), r.SwapEvicted, mark)
	}
}
