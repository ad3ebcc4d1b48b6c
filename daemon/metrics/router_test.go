package metrics

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/internal/promtool"
)

// loadPool is fakePool whose runners report their load.
type loadPool struct{ fakePool }

func (loadPool) RunnerLoads(context.Context) []pool.RunnerLoad {
	return []pool.RunnerLoad{{Model: "big", Slots: 4, SlotContext: 1024, KVUsed: 1024,
		Adapters: []string{"pirate", "terse"}, LoadedAt: time.Unix(1700000000, 0)}}
}

// TestRouterMetrics checks the gauges a model-aware router reads, under
// jetai's names and the endpoint picker's (vLLM's), per model: queue,
// running, KV cache use, adapters. promtool accepts the exposition (the
// vllm: names' colons aside, which that convention fixes).
func TestRouterMetrics(t *testing.T) {
	for _, c := range []struct {
		name    string
		src     PoolSource
		want    []string
		wantNot []string
	}{
		{"runners report", loadPool{}, []string{
			`vllm:num_requests_waiting{model_name="big"} 3`,
			`vllm:num_requests_running{model_name="big"} 1`,
			`vllm:num_requests_waiting{model_name="gone"} 0`,
			`jetai_kv_cache_usage_ratio{model="big"} 0.25`,
			`vllm:kv_cache_usage_perc{model_name="big"} 0.25`,
			`vllm:gpu_cache_usage_perc{model_name="big"} 0.25`,
			`vllm:kv_cache_usage_perc{model_name="gone"} 0`,
			`jetai_kv_cache_used_cells{model="big"} 1024`,
			`jetai_kv_cache_size_cells{model="big"} 4096`,
			`jetai_model_adapter_loaded{model="big",adapter="pirate"} 1`,
			`jetai_model_adapter_loaded{model="big",adapter="terse"} 1`,
			`vllm:lora_requests_info{model_name="big",max_lora="2",running_lora_adapters="pirate,terse",waiting_lora_adapters=""} 1700000000`,
			"# TYPE vllm:num_requests_waiting gauge",
			"# TYPE vllm:lora_requests_info gauge",
		}, []string{`vllm:lora_requests_info{model_name="gone"`}},
		{"no runner figures", fakePool{}, []string{
			`vllm:num_requests_waiting{model_name="big"} 3`,
		}, []string{"vllm:kv_cache_usage_perc", "jetai_kv_cache_usage_ratio"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := New()
			r.Attach(c.src, nil)
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			promtool.Check(t, rec.Body.Bytes())
			text := rec.Body.String()
			for _, w := range c.want {
				if !strings.Contains(text, w+"\n") {
					t.Errorf("missing %s", w)
				}
			}
			for _, w := range c.wantNot {
				if strings.Contains(text, w) {
					t.Errorf("unexpected %s", w)
				}
			}
			if t.Failed() {
				t.Log(text)
			}
		})
	}
}

func TestKVUsage(t *testing.T) {
	for _, c := range []struct {
		l    pool.RunnerLoad
		want float64
	}{
		{pool.RunnerLoad{}, 0},
		{pool.RunnerLoad{Slots: 2, SlotContext: 100, KVUsed: 50}, 0.25},
		{pool.RunnerLoad{Slots: 1, SlotContext: 100, KVUsed: 150}, 1},
	} {
		if got := c.l.KVUsage(); got != c.want {
			t.Errorf("%+v: %v, want %v", c.l, got, c.want)
		}
	}
}
