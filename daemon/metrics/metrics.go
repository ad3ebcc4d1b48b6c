// Package metrics owns jetaid's Prometheus metrics: their names, help
// texts and label sets, the counters and histograms fed by the pool's
// Observer events, and GET /metrics, which adds the pool's, the platform
// monitor's and the model cache's figures at scrape time. Counters that /performance
// and /status also show (loads, evictions, generated tokens, memory,
// temperatures, throttle state) are read from the same sources at scrape
// time, so the two never disagree. Names use the jetai_ prefix and base
// units (seconds, bytes, celsius, watts, volts, amperes, hertz, ratios).
//
// It uses github.com/VictoriaMetrics/metrics for storage and exposition
// and writes the HELP and TYPE lines itself (that package's metadata has
// no help text, which promtool rejects).
package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/connlimit"
	"github.com/jetai/jetai/daemon/platform"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
)

// family is one metric family's metadata.
type family struct {
	typ, help string
}

// families are every metric /metrics exposes.
var families = map[string]family{
	"jetai_requests_total":                      {"counter", "Requests by model and outcome (ok, rejected, throttled, no_room, load_failed, invalid, canceled, timeout, error)."},
	"jetai_prompt_tokens_total":                 {"counter", "Prompt tokens of finished completions, by model."},
	"jetai_speculative_drafted_tokens_total":    {"counter", "Tokens drafted by speculative decoding for verification, by model."},
	"jetai_speculative_accepted_tokens_total":   {"counter", "Drafted tokens the target's sampler accepted, by model (each one a decode step saved)."},
	"jetai_generated_tokens_total":              {"counter", "Generated tokens, by model (the figure /performance shows as tokens)."},
	"jetai_time_to_first_token_seconds":         {"histogram", "Time from the pool receiving a completion to its first text, queueing and loading included."},
	"jetai_token_latency_seconds":               {"histogram", "Mean time per generated token of each completion."},
	"jetai_queue_wait_seconds":                  {"histogram", "Time requests waited for a load or a free slot."},
	"jetai_queue_depth":                         {"gauge", "Requests waiting for a load or a slot, by model."},
	"jetai_requests_active":                     {"gauge", "Requests running in a runner, by model."},
	"jetai_models_loaded":                       {"gauge", "Models loaded and ready."},
	"jetai_model_loaded":                        {"gauge", "1 when the model is loaded and ready, else 0."},
	"jetai_model_unavailable":                   {"gauge", "1 when the model's file is missing, unreadable or not GGUF (requests get 503 until it is there), else 0."},
	"jetai_model_memory_bytes":                  {"gauge", "Measured resident memory of the model's runner (0 when not loaded)."},
	"jetai_model_charged_bytes":                 {"gauge", "Memory charged against the budget for the model: the larger of estimate and measured peak."},
	"jetai_model_loads_total":                   {"counter", "Successful model loads, by model."},
	"jetai_model_load_failures_total":           {"counter", "Model loads that failed, by model."},
	"jetai_model_evictions_total":               {"counter", "Models unloaded by the pool to make room, for memory pressure or for heat, by model."},
	"jetai_model_load_duration_seconds":         {"histogram", "Time a runner took to load its model."},
	"jetai_model_unload_duration_seconds":       {"histogram", "Time a runner took to stop."},
	"jetai_model_load_phase_seconds":            {"histogram", "Time of each phase of a model swap (drain, park, runner_exit, stage, process_start, engine_init, file_check, metadata, model_mmap, weights, model_info, context, adapters, ready_report, restore, first_prompt), by model and phase."},
	"jetai_runner_threads":                      {"gauge", "CPU threads of a runner as it reported them after the thermal throttle or a reload last changed them."},
	"jetai_memory_budget_bytes":                 {"gauge", "memory.budget: what all loaded models together may use."},
	"jetai_memory_reserve_bytes":                {"gauge", "memory.reserve: MemAvailable the daemon keeps free."},
	"jetai_memory_used_bytes":                   {"gauge", "Memory charged against the budget by all models."},
	"jetai_memory_available_bytes":              {"gauge", "MemAvailable from /proc/meminfo."},
	"jetai_device_memory_free_bytes":            {"gauge", "Free memory of a ggml device (CPU, GPU) as the last runner to load reported it."},
	"jetai_device_memory_total_bytes":           {"gauge", "Total memory of a ggml device (CPU, GPU) as the last runner to load reported it."},
	"jetai_model_gpu_layers":                    {"gauge", "Layers of a loaded model that llama.cpp offloaded to a GPU device."},
	"jetai_model_gpu_bytes":                     {"gauge", "Bytes of a loaded model's backend buffers on GPU devices (weights, KV cache, compute)."},
	"jetai_memory_total_bytes":                  {"gauge", "MemTotal from /proc/meminfo."},
	"jetai_swap_total_bytes":                    {"gauge", "SwapTotal from /proc/meminfo."},
	"jetai_swap_free_bytes":                     {"gauge", "SwapFree from /proc/meminfo."},
	"jetai_memory_pressure_ratio":               {"gauge", "Memory pressure stall information, avg10 as a ratio: share of the last 10 s in which some (or all) tasks stalled on memory."},
	"jetai_memory_pressure_stall_seconds_total": {"counter", "Memory pressure stall time since boot, some and full."},
	"jetai_memory_pressure_evictions_total":     {"counter", "Models evicted because MemAvailable fell below memory.reserve or memory pressure rose."},
	"jetai_temperature_celsius":                 {"gauge", "Temperature of each thermal zone that reads a plausible value."},
	"jetai_thermal_zone_valid":                  {"gauge", "1 when the thermal zone reads a plausible temperature, else 0."},
	"jetai_thermal_limit_celsius":               {"gauge", "Thermal limits from the config: soft (throttle) and hard (shed)."},
	"jetai_thermal_state":                       {"gauge", "1 for the thermal state in force (normal, throttle, shed), 0 for the others."},
	"jetai_thermal_transitions_total":           {"counter", "Changes of thermal state."},
	"jetai_power_watts":                         {"gauge", "Power of each INA3221 rail."},
	"jetai_rail_voltage_volts":                  {"gauge", "Bus voltage of each INA3221 rail."},
	"jetai_rail_current_amperes":                {"gauge", "Current of each INA3221 rail."},
	"jetai_gpu_load_ratio":                      {"gauge", "GPU load from devfreq, 0 to 1."},
	"jetai_gpu_frequency_hertz":                 {"gauge", "GPU clock from devfreq."},
	"jetai_platform_polls_total":                {"counter", "Readings of the machine taken by the platform monitor."},
	"jetai_platform_poll_seconds_total":         {"counter", "Time the platform monitor spent reading the machine."},
	"jetai_http_connections":                    {"gauge", "REST connections open now."},
	"jetai_http_connections_max":                {"gauge", "server.max_connections in force (at most half the open-file limit)."},
	"jetai_http_connections_evicted_total":      {"counter", "Idle REST connections closed to make room for new ones at server.max_connections."},
	"jetai_http_connections_refused_total":      {"counter", "New REST connections answered 503 too_many_connections because every open one was busy."},
	"jetai_cache_max_bytes":                     {"gauge", "cache.max_size: what the model cache may hold; 0 is no bound."},
	"jetai_cache_used_bytes":                    {"gauge", "Bytes in the model cache: model files (staged, imported, quantized) and parked conversations."},
	"jetai_cache_files":                         {"gauge", "Model files in the cache, and models with parked conversations."},
	"jetai_cache_stages_total":                  {"counter", "Loads that went through the model cache: the copy was there (hit), was made now (miss), or staging failed and the model loaded from its own path (failed)."},
	"jetai_cache_staged_bytes_total":            {"counter", "Bytes copied into the model cache by staging."},
	"jetai_cache_evictions_total":               {"counter", "Model files and parked conversations removed to stay within cache.max_size."},
	"jetai_cache_parks_total":                   {"counter", "Parks of a model's conversations at its unload or at a graceful stop: saved and kept (ok), or not (failed)."},
	"jetai_cache_restores_total":                {"counter", "Restores of parked conversations into a new runner: ok, failed, or dropped (saved under other settings)."},
}

// Histogram buckets, in seconds.
var (
	ttftBuckets   = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	tokenBuckets  = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	queueBuckets  = []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	loadBuckets   = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	unloadBuckets = []float64{.005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10}
	phaseBuckets  = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// PoolSource is what the metrics read from the pool at scrape time;
// *pool.Pool implements it.
type PoolSource interface {
	Models() []pool.ModelStatus
	Status() pool.Status
	Performance() pool.Performance
	ThrottleStatus() pool.ThrottleStatus
}

var _ PoolSource = (*pool.Pool)(nil)

// Registry holds the metrics. It implements pool.Observer.
type Registry struct {
	set *vm.Set

	mu       sync.Mutex
	pool     PoolSource
	platform func() platform.Status
	cache    func() cache.Stats
	conns    func() connlimit.Stats
	// extra write families of other parts (response cache, experiments),
	// in attach order; see AttachWriter.
	extra   []func(*writer)
	devices func() []runner.Device
}

var _ pool.Observer = (*Registry)(nil)

// New returns an empty registry.
func New() *Registry { return &Registry{set: vm.NewSet()} }

// Attach sets the scrape-time sources; either may be nil.
func (r *Registry) Attach(p PoolSource, platformStatus func() platform.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pool, r.platform = p, platformStatus
}

// AttachDevices sets the source of the ggml devices' memory gauges; nil
// reads them from the pool's models.
func (r *Registry) AttachDevices(devices func() []runner.Device) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.devices = devices
}

// AttachCache sets the model cache's scrape-time source; nil (no usable
// cache.dir) leaves the jetai_cache_* families out.
func (r *Registry) AttachCache(stats func() cache.Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache = stats
}

// AttachConnections sets the REST listener's scrape-time source (jetaid
// makes the listener in Run, after the registry exists).
func (r *Registry) AttachConnections(stats func() connlimit.Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = stats
}

// Request records one finished or refused request's durations (the pool
// counts requests and tokens; see writePool).
func (r *Registry) Request(ev pool.RequestEvent) {
	m := label("model", ev.Model)
	observe(r.set, "jetai_time_to_first_token_seconds", m, ttftBuckets, ev.TTFTSeconds)
	observe(r.set, "jetai_token_latency_seconds", m, tokenBuckets, ev.TokenSeconds)
	observe(r.set, "jetai_queue_wait_seconds", m, queueBuckets, ev.QueueSeconds)
}

// Load records a finished load.
func (r *Registry) Load(model string, seconds float64, err error) {
	m := label("model", model)
	if err != nil {
		r.set.GetOrCreateCounter("jetai_model_load_failures_total{" + m + "}").Inc()
		return
	}
	observe(r.set, "jetai_model_load_duration_seconds", m, loadBuckets, seconds)
}

// LoadPhase records one phase of a load (pool.PhaseObserver).
func (r *Registry) LoadPhase(model, phase string, seconds float64) {
	observe(r.set, "jetai_model_load_phase_seconds", label("model", model)+","+label("phase", phase), phaseBuckets, seconds)
}

var _ pool.PhaseObserver = (*Registry)(nil)

// Unload records a stopped runner.
func (r *Registry) Unload(model, _ string, seconds float64) {
	observe(r.set, "jetai_model_unload_duration_seconds", label("model", model), unloadBuckets, seconds)
}

func observe(s *vm.Set, name, labels string, buckets []float64, v float64) {
	if math.IsNaN(v) || v < 0 {
		return
	}
	s.GetOrCreatePrometheusHistogramExt(name+"{"+labels+"}", buckets).Update(v)
}

// label renders name="value" with the exposition format's escapes.
func label(name, value string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(`="`)
	for _, c := range value {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Handler serves GET /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.WritePrometheus(w)
	})
}

// WritePrometheus writes every metric in the text exposition format.
func (r *Registry) WritePrometheus(w io.Writer) {
	var ev bytes.Buffer
	r.set.WritePrometheus(&ev)
	out := &writer{w: bufio.NewWriter(w), seen: map[string]bool{}}
	out.copyWithMetadata(ev.Bytes())

	r.mu.Lock()
	ps, plat, cs, conns, extra, devs := r.pool, r.platform, r.cache, r.conns, r.extra, r.devices
	r.mu.Unlock()
	if ps != nil {
		writePool(out, ps)
		ms := ps.Models()
		var dl []runner.Device
		if devs != nil {
			dl = devs()
		} else {
			dl, _ = pool.Devices(ms)
		}
		writeDevices(out, ms, dl)
	}
	if plat != nil {
		writePlatform(out, plat())
	}
	if cs != nil {
		writeCache(out, cs())
	}
	if conns != nil {
		writeConnections(out, conns())
	}
	for _, f := range extra {
		f(out)
	}
	out.w.Flush()
}

// writer writes samples, each family's HELP and TYPE first.
type writer struct {
	w    *bufio.Writer
	cur  string
	seen map[string]bool
}

func (o *writer) header(fam string) {
	if fam == o.cur {
		return
	}
	o.cur = fam
	if o.seen[fam] {
		return // families are written in one piece; see copyWithMetadata
	}
	o.seen[fam] = true
	f, ok := families[fam]
	if !ok {
		panic("metrics: family " + fam + " has no help text")
	}
	fmt.Fprintf(o.w, "# HELP %s %s\n# TYPE %s %s\n", fam, f.help, fam, f.typ)
}

// sample writes one sample of fam; labels are label() outputs.
func (o *writer) sample(fam string, v float64, labels ...string) {
	o.header(fam)
	o.w.WriteString(fam)
	if len(labels) > 0 {
		o.w.WriteByte('{')
		o.w.WriteString(strings.Join(labels, ","))
		o.w.WriteByte('}')
	}
	o.w.WriteByte(' ')
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		o.w.WriteString(strconv.FormatInt(int64(v), 10)) // bytes and counts in full
	} else {
		o.w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	o.w.WriteByte('\n')
}

// copyWithMetadata copies the Set's exposition, adding each family's
// metadata before its first line (the Set writes families contiguously).
func (o *writer) copyWithMetadata(b []byte) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		name := line
		if i := strings.IndexAny(name, "{ "); i >= 0 {
			name = name[:i]
		}
		fam := name
		if _, ok := families[fam]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suf); ok {
					if f, ok := families[base]; ok && f.typ == "histogram" {
						fam = base
					}
				}
			}
		}
		o.header(fam)
		o.w.WriteString(line)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func writePool(o *writer, ps PoolSource) {
	ms := ps.Models()
	st := ps.Status()
	thr := ps.ThrottleStatus()
	perf := ps.Performance()
	// Every outcome of every model, zeros included, so that rates work
	// from the first request on.
	for _, mp := range perf.Models {
		for _, oc := range pool.Outcomes {
			o.sample("jetai_requests_total", float64(mp.Outcomes[oc]), label("model", mp.Name), label("outcome", oc))
		}
	}
	for _, mp := range perf.Models {
		o.sample("jetai_prompt_tokens_total", float64(mp.PromptTokens), label("model", mp.Name))
	}
	for _, mp := range perf.Models {
		o.sample("jetai_speculative_drafted_tokens_total", float64(mp.DraftedTokens), label("model", mp.Name))
	}
	for _, mp := range perf.Models {
		o.sample("jetai_speculative_accepted_tokens_total", float64(mp.AcceptedTokens), label("model", mp.Name))
	}
	type perModel struct {
		fam string
		v   func(m pool.ModelStatus) float64
	}
	for _, pm := range []perModel{
		{"jetai_generated_tokens_total", func(m pool.ModelStatus) float64 { return float64(m.Tokens) }},
		{"jetai_model_loads_total", func(m pool.ModelStatus) float64 { return float64(m.Loads) }},
		{"jetai_model_evictions_total", func(m pool.ModelStatus) float64 { return float64(m.Evictions) }},
		{"jetai_model_loaded", func(m pool.ModelStatus) float64 { return b2f(m.State == pool.StateReady) }},
		{"jetai_model_unavailable", func(m pool.ModelStatus) float64 { return b2f(m.State == pool.StateUnavailable) }},
		{"jetai_model_memory_bytes", func(m pool.ModelStatus) float64 { return float64(m.MeasuredBytes) }},
		{"jetai_model_charged_bytes", func(m pool.ModelStatus) float64 { return float64(m.ChargedBytes) }},
		{"jetai_queue_depth", func(m pool.ModelStatus) float64 { return float64(m.Queued) }},
		{"jetai_requests_active", func(m pool.ModelStatus) float64 { return float64(m.Active) }},
	} {
		for _, m := range ms {
			o.sample(pm.fam, pm.v(m), label("model", m.Name))
		}
	}
	names := make([]string, 0, len(thr.RunnerThreads))
	for n := range thr.RunnerThreads {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		o.sample("jetai_runner_threads", float64(thr.RunnerThreads[n]), label("model", n))
	}
	writeRouter(o, ps, ms) // router.go
	o.sample("jetai_models_loaded", float64(st.Loaded))
	o.sample("jetai_memory_budget_bytes", float64(st.Budget))
	o.sample("jetai_memory_reserve_bytes", float64(st.Reserve))
	o.sample("jetai_memory_used_bytes", float64(st.Used))
}

func writePlatform(o *writer, s platform.Status) {
	r := s.Reading
	if mem := r.Memory; mem != nil {
		o.sample("jetai_memory_available_bytes", float64(mem.Available))
		o.sample("jetai_memory_total_bytes", float64(mem.Total))
		o.sample("jetai_swap_total_bytes", float64(mem.SwapTotal))
		o.sample("jetai_swap_free_bytes", float64(mem.SwapFree))
	}
	if p := r.PSI; p != nil {
		o.sample("jetai_memory_pressure_ratio", p.Some.Avg10, label("kind", "some"))
		o.sample("jetai_memory_pressure_ratio", p.Full.Avg10, label("kind", "full"))
		o.sample("jetai_memory_pressure_stall_seconds_total", float64(p.Some.Total)/1e6, label("kind", "some"))
		o.sample("jetai_memory_pressure_stall_seconds_total", float64(p.Full.Total)/1e6, label("kind", "full"))
	}
	o.sample("jetai_memory_pressure_evictions_total", float64(s.EvictionCount))
	for _, z := range r.Zones {
		if z.Valid {
			o.sample("jetai_temperature_celsius", z.Celsius, label("zone", z.Name), label("type", z.Type))
		}
	}
	for _, z := range r.Zones {
		o.sample("jetai_thermal_zone_valid", b2f(z.Valid), label("zone", z.Name), label("type", z.Type))
	}
	o.sample("jetai_thermal_limit_celsius", s.Limits.Soft, label("limit", "soft"))
	o.sample("jetai_thermal_limit_celsius", s.Limits.Hard, label("limit", "hard"))
	for _, l := range platform.Levels {
		o.sample("jetai_thermal_state", b2f(s.State == l), label("state", l.String()))
	}
	o.sample("jetai_thermal_transitions_total", float64(s.TransitionCount))
	for _, fam := range []string{"jetai_power_watts", "jetai_rail_voltage_volts", "jetai_rail_current_amperes"} {
		for _, rl := range r.Rails {
			if rl.Err != "" {
				continue
			}
			v := map[string]float64{"jetai_power_watts": rl.Watts, "jetai_rail_voltage_volts": rl.Volts, "jetai_rail_current_amperes": rl.Amps}[fam]
			o.sample(fam, v, label("rail", rl.Name), label("chip", rl.Chip))
		}
	}
	for _, g := range r.GPUs {
		if g.LoadKnown {
			o.sample("jetai_gpu_load_ratio", g.Load, label("gpu", g.Name))
		}
	}
	for _, g := range r.GPUs {
		if g.Err == "" {
			o.sample("jetai_gpu_frequency_hertz", float64(g.FreqHz), label("gpu", g.Name))
		}
	}
	o.sample("jetai_platform_polls_total", float64(s.Polls))
	o.sample("jetai_platform_poll_seconds_total", s.PollSeconds)
}

// writeConnections writes the REST port's connection figures.
func writeConnections(o *writer, s connlimit.Stats) {
	o.sample("jetai_http_connections", float64(s.Open))
	o.sample("jetai_http_connections_max", float64(s.Max))
	o.sample("jetai_http_connections_evicted_total", float64(s.Evicted))
	o.sample("jetai_http_connections_refused_total", float64(s.Refused))
}

// writeCache writes the model cache's figures. Every label value is
// written, zeros included, so the series exist from the start.
func writeCache(o *writer, s cache.Stats) {
	o.sample("jetai_cache_max_bytes", float64(s.MaxBytes))
	o.sample("jetai_cache_used_bytes", float64(s.ModelBytes), label("kind", "models"))
	o.sample("jetai_cache_used_bytes", float64(s.ParkedBytes), label("kind", "parked"))
	o.sample("jetai_cache_files", float64(s.ModelFiles), label("kind", "models"))
	o.sample("jetai_cache_files", float64(s.ParkedModels), label("kind", "parked"))
	o.sample("jetai_cache_stages_total", float64(s.StageHits), label("result", "hit"))
	o.sample("jetai_cache_stages_total", float64(s.StageMisses), label("result", "miss"))
	o.sample("jetai_cache_stages_total", float64(s.StageFailures), label("result", "failed"))
	o.sample("jetai_cache_staged_bytes_total", float64(s.StagedBytes))
	o.sample("jetai_cache_evictions_total", float64(s.EvictedModels), label("kind", "models"))
	o.sample("jetai_cache_evictions_total", float64(s.EvictedParked), label("kind", "parked"))
	o.sample("jetai_cache_parks_total", float64(s.Parks), label("result", "ok"))
	o.sample("jetai_cache_parks_total", float64(s.ParkFailures), label("result", "failed"))
	o.sample("jetai_cache_restores_total", float64(s.Restores), label("result", "ok"))
	o.sample("jetai_cache_restores_total", float64(s.RestoreFailures), label("result", "failed"))
	o.sample("jetai_cache_restores_total", float64(s.RestoresDropped), label("result", "dropped"))
}

func writeDevices(o *writer, ms []pool.ModelStatus, devs []runner.Device) {
	for _, d := range devs {
		o.sample("jetai_device_memory_free_bytes", float64(d.FreeBytes), label("device", d.Name), label("type", d.Type))
	}
	for _, d := range devs {
		o.sample("jetai_device_memory_total_bytes", float64(d.TotalBytes), label("device", d.Name), label("type", d.Type))
	}
	for _, m := range ms {
		if m.Info != nil && m.State == pool.StateReady {
			o.sample("jetai_model_gpu_layers", float64(m.Info.GPULayers), label("model", m.Name))
		}
	}
	for _, m := range ms {
		if m.Info != nil && m.State == pool.StateReady {
			o.sample("jetai_model_gpu_bytes", float64(m.Info.GPUBytes), label("model", m.Name))
		}
	}
}
