package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"
)

// Targets of the response cache and shadow mode figures.
const (
	// TargetHitP99 is the most a cached answer may take through HTTP, p99.
	TargetHitP99 = time.Millisecond
	// TargetShadowRatio is the most shadow mode may stretch the primary's
	// p95.
	TargetShadowRatio = 1.05
)

// RespCacheConfig configures RunRespCache: for each model, a jetaid with
// the response cache on answers the same deterministic request over and
// over (every answer after the first is a hit), timed next to GET /health
// on the same connection; then requests to the model directly and to a
// shadow-mode experiment whose shadow variant is the same file, alternated.
type RespCacheConfig struct {
	Jetaid   string
	Models   []string // stories260K, the generated 0.8B model
	Hits     int      // cached answers timed per model (0 = 2000)
	Shadow   int      // requests of each kind for the shadow figure (0 = 40; 0 < n)
	Tokens   int      // tokens of each answer (0 = 32)
	Out, Log io.Writer
}

// RespCacheRow is one model's figures.
type RespCacheRow struct {
	Model                  string
	HitP50, HitP99         time.Duration
	HealthP50, HealthP99   time.Duration
	StreamP50, StreamP99   time.Duration
	Generated              time.Duration // the first (generated) answer
	ShadowOffP95, ShadowOn time.Duration // primary p95 without and with shadow copies
}

// RunRespCache measures the figures of every model.
func RunRespCache(ctx context.Context, cfg RespCacheConfig) ([]RespCacheRow, error) {
	if cfg.Hits <= 0 {
		cfg.Hits = 2000
	}
	if cfg.Shadow <= 0 {
		cfg.Shadow = 40
	}
	if cfg.Tokens <= 0 {
		cfg.Tokens = 32
	}
	var rows []RespCacheRow
	for _, m := range cfg.Models {
		r, err := respCacheModel(ctx, cfg, m)
		if err != nil {
			return rows, err
		}
		rows = append(rows, r)
	}
	PrintRespCache(cfg.Out, cfg, rows)
	return rows, nil
}

func respCacheModel(ctx context.Context, cfg RespCacheConfig, model string) (RespCacheRow, error) {
	row := RespCacheRow{Model: model}
	dir, err := os.MkdirTemp("", "jetai-bench-respcache-")
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dir)
	blocks := fmt.Sprintf(`model "m" {
  path = %q
  context = 512
  parallel = 1
  threads = 1
  preload = true
  keep_alive = "forever"
}
model "shadow" {
  path = %q
  context = 512
  parallel = 1
  threads = 1
  preload = true
  keep_alive = "forever"
}
experiment "shadowed" {
  mode = "shadow"
  variant "live" { model = "m" }
  variant "copy" { model = "shadow" }
}
`, model, model)
	d, err := startDaemon(ctx, HTTPConfig{Jetaid: cfg.Jetaid, Log: cfg.Log, CacheResponses: "64MiB"}, dir, "respcache", blocks, "16GiB")
	if err != nil {
		return row, err
	}
	defer d.stop()
	body := []byte(fmt.Sprintf(`{"model": "m", "prompt": "Once upon a time", "max_tokens": %d, "temperature": 0, "ignore_eos": true}`, cfg.Tokens))
	// A large model file is hashed in the background after the start; until
	// its sha256 is known its answers bypass the cache. The answer that
	// counts as generated once is the first one looked up (a miss).
	var t0 time.Time
	for deadline := time.Now().Add(2 * time.Minute); ; {
		t0 = time.Now()
		st, _, err := d.post(ctx, "/v1/completions", body, nil)
		if err == nil && st == "miss" {
			break
		}
		if err != nil || st != "bypass" || time.Now().After(deadline) {
			return row, fmt.Errorf("first answer: %q %v", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	row.Generated = time.Since(t0)
	stream := []byte(fmt.Sprintf(`{"model": "m", "prompt": "Once upon a time", "max_tokens": %d, "temperature": 0, "ignore_eos": true, "stream": true}`, cfg.Tokens))
	var hits, streams, health []time.Duration
	for i := range cfg.Hits {
		t := time.Now()
		st, _, err := d.post(ctx, "/v1/completions", body, nil)
		if err != nil || st != "hit" {
			return row, fmt.Errorf("repeat %d: %q %v", i, st, err)
		}
		hits = append(hits, time.Since(t))
		t = time.Now()
		if st, _, err := d.post(ctx, "/v1/completions", stream, nil); err != nil || st != "hit" {
			return row, fmt.Errorf("streamed repeat %d: %q %v", i, st, err)
		}
		streams = append(streams, time.Since(t))
		t = time.Now()
		if err := d.get(ctx, "/health"); err != nil {
			return row, err
		}
		health = append(health, time.Since(t))
	}
	row.HitP50, row.HitP99 = pct(hits, 50), pct(hits, 99)
	row.StreamP50, row.StreamP99 = pct(streams, 50), pct(streams, 99)
	row.HealthP50, row.HealthP99 = pct(health, 50), pct(health, 99)

	// Shadow: sampled requests (never cached), alternately to the model
	// and to the experiment whose copies run on the second runner.
	var off, on []time.Duration
	for i := range 2 * cfg.Shadow {
		name := "m"
		if i%2 == 1 {
			name = "shadowed"
		}
		b := []byte(fmt.Sprintf(`{"model": %q, "prompt": "Once upon a time", "max_tokens": %d, "temperature": 0.8, "ignore_eos": true}`, name, cfg.Tokens))
		t := time.Now()
		if _, _, err := d.post(ctx, "/v1/completions", b, nil); err != nil {
			return row, err
		}
		if i%2 == 1 {
			on = append(on, time.Since(t))
		} else {
			off = append(off, time.Since(t))
		}
	}
	row.ShadowOffP95, row.ShadowOn = pct(off, 95), pct(on, 95)
	return row, nil
}

// post sends a JSON body and returns X-Jetai-Cache and the body.
func (d *daemonProc) post(ctx context.Context, path string, body []byte, hdr http.Header) (string, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", b, fmt.Errorf("%s: %s: %s", path, resp.Status, b)
	}
	return resp.Header.Get("X-Jetai-Cache"), b, err
}

func (d *daemonProc) get(ctx context.Context, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return nil
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, len(s)*p/100)]
}

// PrintRespCache prints the table.
func PrintRespCache(w io.Writer, cfg RespCacheConfig, rows []RespCacheRow) {
	fmt.Fprintf(w, "\nResponse cache: a cached %d-token answer through HTTP, %d times, next to GET /health (target: p99 under %v); shadow mode (target: primary p95 at most %.2fx without)\n",
		cfg.Tokens, cfg.Hits, TargetHitP99, TargetShadowRatio)
	for _, r := range rows {
		mark := "ok"
		if r.HitP99 >= TargetHitP99 {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s\n    generated once: %.1f ms\n    hit:        p50 %.3f ms  p99 %.3f ms  %s\n    hit stream: p50 %.3f ms  p99 %.3f ms\n    /health:    p50 %.3f ms  p99 %.3f ms  (hit/health p50 %.2fx)\n",
			r.Model, ms(r.Generated), ms(r.HitP50), ms(r.HitP99), mark, ms(r.StreamP50), ms(r.StreamP99), ms(r.HealthP50), ms(r.HealthP99), float64(r.HitP50)/float64(max(r.HealthP50, 1)))
		ratio := float64(r.ShadowOn) / float64(max(r.ShadowOffP95, 1))
		smark := "ok"
		if ratio > TargetShadowRatio {
			smark = "MISSED"
		}
		fmt.Fprintf(w, "    shadow:     primary p95 %.1f ms off, %.1f ms on (%.3fx, %d requests each)  %s\n", ms(r.ShadowOffP95), ms(r.ShadowOn), ratio, cfg.Shadow, smark)
	}
}
