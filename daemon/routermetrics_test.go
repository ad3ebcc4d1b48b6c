package daemon_test

import (
	"bufio"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jetai/jetai/internal/promtool"
)

// TestRouterMetricsRealRunner scrapes /metrics while a real runner
// generates: the request shows as running under jetai's and the endpoint
// picker's names, and the KV cache it holds as used cells and a share of
// the runner's cache. After it, the share falls back to 0: cells a slot
// keeps for prefix reuse are free for the next request.
func TestRouterMetricsRealRunner(t *testing.T) {
	base, _ := platformDaemon(t, fakeRoot(t, "orin-nano"), `
model "story" {
  path       = %[1]q
  context    = 2048
  parallel   = 2
  threads    = 1
  preload    = true
  keep_alive = "forever"
}
`, io.Discard)
	eventually(t, "loaded", func() bool { return modelState(t, base, "story") == "ready" })
	scrape := func() string {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		promtool.Check(t, b)
		return string(b)
	}
	value := func(text, series string) float64 {
		t.Helper()
		m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no series %s in:\n%s", series, text)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}

	resp, err := http.Post(base+"/inference", "application/json", strings.NewReader(
		`{"prompt": "Once upon a time", "model": "story", "max_tokens": 1900, "ignore_eos": true, "stream": true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	text := scrape()
	if v := value(text, `vllm:num_requests_running{model_name="story"}`); v != 1 {
		t.Errorf("running %v, want 1", v)
	}
	if v := value(text, `jetai_requests_active{model="story"}`); v != 1 {
		t.Errorf("jetai_requests_active %v, want 1", v)
	}
	if v := value(text, `jetai_kv_cache_size_cells{model="story"}`); v != 2*2048 {
		t.Errorf("KV size %v, want 2 slots × 2048 (context is per slot)", v)
	}
	// The first frame can come before the prompt's first decode step
	// (on a loaded machine): wait for the cells, while the request runs.
	var used, ratio float64
	eventually(t, "the running request's KV cells", func() bool {
		text = scrape()
		used = value(text, `jetai_kv_cache_used_cells{model="story"}`)
		ratio = value(text, `vllm:kv_cache_usage_perc{model_name="story"}`)
		return used >= 4
	})
	if value(text, `vllm:num_requests_running{model_name="story"}`) != 1 || ratio <= 0 || ratio != value(text, `jetai_kv_cache_usage_ratio{model="story"}`) {
		t.Errorf("KV used %v, ratio %v: want the running request's cells under both names", used, ratio)
	}
	io.Copy(io.Discard, resp.Body)
	eventually(t, "KV share back to 0", func() bool {
		text := scrape()
		return value(text, `vllm:kv_cache_usage_perc{model_name="story"}`) == 0 && value(text, `vllm:num_requests_running{model_name="story"}`) == 0
	})
}
