package metrics

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jetai/jetai/daemon/pool"
)

// Router metrics: the per-model gauges a model-aware router scores a
// server by. The Gateway API Inference Extension's endpoint picker reads
// queue depth, running requests, KV-cache utilisation and loaded LoRA
// adapters from each model server (its "model server protocol"), under
// vLLM's names by default. jetai writes them under its own names and, per
// model, under those names too (label model_name, as vLLM's), so that an
// InferencePool of jetaid pods works with the picker's defaults or with a
// label selector per model (docs/operating.md).
var routerFamilies = map[string]family{
	"jetai_kv_cache_usage_ratio":  {"gauge", "Share of the model's KV cache (parallel × context cells) held by running requests, 0 to 1; 0 when not loaded."},
	"jetai_kv_cache_used_cells":   {"gauge", "KV cache cells held by the model's running requests."},
	"jetai_kv_cache_size_cells":   {"gauge", "KV cache cells of the loaded model: parallel × per-slot context."},
	"jetai_model_adapter_loaded":  {"gauge", "1 for each LoRA adapter applied to a loaded model (adapter: its file name without .gguf)."},
	"vllm:num_requests_waiting":   {"gauge", "Requests waiting for a load or a slot, by model (jetai_queue_depth under the name the Gateway API Inference Extension's endpoint picker reads)."},
	"vllm:num_requests_running":   {"gauge", "Requests running in a runner, by model (jetai_requests_active under the endpoint picker's name)."},
	"vllm:kv_cache_usage_perc":    {"gauge", "KV cache utilisation by model, 0 to 1 (jetai_kv_cache_usage_ratio under the endpoint picker's name)."},
	"vllm:gpu_cache_usage_perc":   {"gauge", "KV cache utilisation by model, 0 to 1 (jetai_kv_cache_usage_ratio under the endpoint picker's older default name)."},
	"vllm:lora_requests_info":     {"gauge", "LoRA adapters of each loaded model that has any, in labels running_lora_adapters, waiting_lora_adapters and max_lora; the value is when they were applied (Unix seconds)."},
	"jetai_router_scrape_seconds": {"gauge", "Time the last scrape took to ask the runners for their KV cache use."},
}

func init() {
	for n, f := range routerFamilies {
		families[n] = f
	}
}

// runnerLoadSource is a PoolSource that can also ask its runners for
// their load (*pool.Pool does); without it the KV figures are left out.
type runnerLoadSource interface {
	RunnerLoads(ctx context.Context) []pool.RunnerLoad
}

// routerScrapeTimeout bounds asking the runners at a scrape: a busy
// runner answers its health at once (it reads counters), a stuck one
// must not hold /metrics.
const routerScrapeTimeout = time.Second

// writeRouter writes the router gauges for every configured model (zeros
// for those not loaded, so each series exists from the start).
func writeRouter(o *writer, ps PoolSource, ms []pool.ModelStatus) {
	loads := map[string]pool.RunnerLoad{}
	rs, hasLoads := ps.(runnerLoadSource)
	var took time.Duration
	if hasLoads {
		ctx, cancel := context.WithTimeout(context.Background(), routerScrapeTimeout)
		start := time.Now()
		for _, l := range rs.RunnerLoads(ctx) {
			loads[l.Model] = l
		}
		took = time.Since(start)
		cancel()
	}
	for _, m := range ms {
		o.sample("vllm:num_requests_waiting", float64(m.Queued), label("model_name", m.Name))
	}
	for _, m := range ms {
		o.sample("vllm:num_requests_running", float64(m.Active), label("model_name", m.Name))
	}
	if !hasLoads {
		return
	}
	for _, fam := range []string{"jetai_kv_cache_usage_ratio", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"} {
		lname := "model_name"
		if strings.HasPrefix(fam, "jetai_") {
			lname = "model"
		}
		for _, m := range ms {
			o.sample(fam, loads[m.Name].KVUsage(), label(lname, m.Name))
		}
	}
	for _, m := range ms {
		o.sample("jetai_kv_cache_used_cells", float64(loads[m.Name].KVUsed), label("model", m.Name))
	}
	for _, m := range ms {
		l := loads[m.Name]
		o.sample("jetai_kv_cache_size_cells", float64(l.Slots*l.SlotContext), label("model", m.Name))
	}
	for _, m := range ms {
		for _, a := range loads[m.Name].Adapters {
			o.sample("jetai_model_adapter_loaded", 1, label("model", m.Name), label("adapter", a))
		}
	}
	for _, m := range ms {
		l, ok := loads[m.Name]
		if !ok || len(l.Adapters) == 0 {
			continue
		}
		o.sample("vllm:lora_requests_info", float64(l.LoadedAt.Unix()), label("model_name", m.Name),
			label("max_lora", strconv.Itoa(len(l.Adapters))), label("running_lora_adapters", strings.Join(l.Adapters, ",")),
			label("waiting_lora_adapters", ""))
	}
	o.sample("jetai_router_scrape_seconds", took.Seconds())
}
