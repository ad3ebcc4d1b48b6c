package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FloodConfig configures RunFlood: a jetaid on Model (one slot, the
// default queues and connection cap) takes floods of idle connections and
// a burst of requests.
type FloodConfig struct {
	Jetaid   string
	Model    string
	Idle     []int // idle connections held while /health is timed
	Burst    int   // inference requests sent at once
	Out, Log io.Writer
}

// FloodReport holds the figures.
type FloodReport struct {
	Health      map[int]time.Duration // idle connections -> /health answer time
	BurstCodes  map[string]int        // "200", "429", "error: …" -> count
	Before      ProcStats
	After       ProcStats
	BurstLength time.Duration
}

// ProcStats are a process's resident memory and open files.
type ProcStats struct {
	RSSKiB int
	FDs    int
}

func procStats(pid int) ProcStats {
	var s ProcStats
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				s.RSSKiB, _ = strconv.Atoi(f[1])
			}
		}
	}
	if es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.FDs = len(es)
	}
	return s
}

// RunFlood starts jetaid, holds each count of idle connections in turn
// while it times GET /health on a new one, then sends the burst, and
// prints the table.
func RunFlood(ctx context.Context, cfg FloodConfig) (FloodReport, error) {
	r := FloodReport{Health: map[int]time.Duration{}, BurstCodes: map[string]int{}}
	dir, err := os.MkdirTemp("", "jetai-bench-flood-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	models := fmt.Sprintf("model \"m\" {\n  path = %q\n  context = 256\n  parallel = 1\n  threads = 1\n  preload = true\n}\n", cfg.Model)
	d, err := startDaemon(ctx, HTTPConfig{Jetaid: cfg.Jetaid, Log: cfg.Log}, dir, "flood", models, "4GiB")
	if err != nil {
		return r, err
	}
	defer d.stop()
	pid := d.cmd.Process.Pid
	addr := strings.TrimPrefix(d.base, "http://")
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Minute}
	r.Before = procStats(pid)
	for _, n := range cfg.Idle {
		var conns []net.Conn
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		start := time.Now()
		resp, err := probe.Get(d.base + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r.Health[len(conns)] = time.Since(start)
		}
		for _, c := range conns {
			c.Close()
		}
		if err != nil {
			return r, fmt.Errorf("/health under %d idle connections: %w", len(conns), err)
		}
	}
	if cfg.Burst > 0 {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for range cfg.Burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := ""
				resp, err := client.Post(d.base+"/inference", "application/json", strings.NewReader(`{"prompt": "Once", "model": "m", "max_tokens": 8}`))
				if err != nil {
					key = "error: " + err.Error()
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					key = strconv.Itoa(resp.StatusCode)
					if resp.StatusCode != 200 && resp.Header.Get("Retry-After") == "" {
						key += " without Retry-After"
					}
				}
				mu.Lock()
				r.BurstCodes[key]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		r.BurstLength = time.Since(start)
		tr.CloseIdleConnections()
	}
	time.Sleep(time.Second) // let the server see the closed connections
	r.After = procStats(pid)
	printFlood(cfg.Out, cfg, r)
	return r, nil
}

func printFlood(w io.Writer, cfg FloodConfig, r FloodReport) {
	fmt.Fprintf(w, "\nConnection floods and a burst (jetaid, one-slot model %s)\n", cfg.Model)
	var ns []int
	for n := range r.Health {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	for _, n := range ns {
		fmt.Fprintf(w, "  /health on a new connection while %d idle connections are held: %v\n", n, r.Health[n].Round(10*time.Microsecond))
	}
	if cfg.Burst > 0 {
		var keys []string
		for k := range r.BurstCodes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "  burst of %d requests at once, done in %v:", cfg.Burst, r.BurstLength.Round(time.Millisecond))
		for _, k := range keys {
			fmt.Fprintf(w, " %s × %d;", k, r.BurstCodes[k])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  jetaid before: RSS %d KiB, %d open files; after: RSS %d KiB, %d open files\n",
		r.Before.RSSKiB, r.Before.FDs, r.After.RSSKiB, r.After.FDs)
}
