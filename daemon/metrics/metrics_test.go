package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/connlimit"
	"github.com/jetai/jetai/daemon/platform"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/internal/promtool"
)

type fakePool struct{}

func (fakePool) Models() []pool.ModelStatus {
	return []pool.ModelStatus{
		{Name: "big", State: pool.StateReady, Tokens: 120, Loads: 2, Evictions: 1, MeasuredBytes: 900 << 20, ChargedBytes: 1 << 30, Active: 1, Queued: 3},
		{Name: `odd"name\`, State: pool.StateUnloaded},
		{Name: "gone", State: pool.StateUnavailable},
	}
}

func (fakePool) Status() pool.Status {
	return pool.Status{Budget: 6 << 30, Reserve: 512 << 20, Used: 1 << 30, Loaded: 1}
}

func (fakePool) Performance() pool.Performance {
	return pool.Performance{Models: []pool.ModelPerformance{
		{Name: "big", PerfFigures: pool.PerfFigures{Outcomes: map[string]uint64{"ok": 2}, PromptTokens: 12}},
		{Name: `odd"name\`, PerfFigures: pool.PerfFigures{Outcomes: map[string]uint64{"throttled": 1}}},
	}}
}

func (fakePool) ThrottleStatus() pool.ThrottleStatus {
	return pool.ThrottleStatus{RunnerThreads: map[string]int{"big": 3}}
}

func orinMonitor(t *testing.T) *platform.Monitor {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "platform", "orin-nano")
	m := platform.New(platform.Options{Root: root, Log: slog.New(slog.DiscardHandler),
		Thermal: config.Thermal{Zones: config.DefaultThermalZones(), SoftLimit: 80, HardLimit: 90, Hysteresis: 5, PollInterval: time.Hour}})
	m.Poll(context.Background())
	return m
}

// TestExposition feeds every kind of event and checks the text: promtool
// accepts it, each family has its help, and the figures are the ones fed.
func TestExposition(t *testing.T) {
	r := New()
	r.Attach(fakePool{}, orinMonitor(t).Status)
	r.AttachConnections(func() connlimit.Stats {
		return connlimit.Stats{Open: 7, Max: 4096, Evicted: 12, Refused: 3}
	})
	r.AttachCache(func() cache.Stats {
		return cache.Stats{MaxBytes: 8 << 30, ModelBytes: 3 << 30, ParkedBytes: 40 << 20, ModelFiles: 2, ParkedModels: 1,
			StageHits: 5, StageMisses: 2, StageFailures: 1, StagedBytes: 3 << 30, EvictedModels: 1, EvictedParked: 4,
			Parks: 6, ParkFailures: 1, Restores: 3, RestoreFailures: 2, RestoresDropped: 1}
	})
	r.Request(pool.RequestEvent{Model: "big", Outcome: pool.OutcomeOK, PromptTokens: 7, GeneratedTokens: 20,
		QueueSeconds: 0.002, TTFTSeconds: 0.04, TokenSeconds: 0.003})
	r.Request(pool.RequestEvent{Model: "big", Outcome: pool.OutcomeOK, PromptTokens: 5, GeneratedTokens: 1,
		QueueSeconds: 0.5, TTFTSeconds: 0.7, TokenSeconds: math.NaN()})
	r.Request(pool.RequestEvent{Model: `odd"name\`, Outcome: pool.OutcomeThrottled, QueueSeconds: math.NaN(), TTFTSeconds: math.NaN(), TokenSeconds: math.NaN()})
	r.Load("big", 1.5, nil)
	r.Load(`odd"name\`, 0.1, errors.New("bad file"))
	r.Unload("big", "evicted", 0.02)
	r.LoadPhase("big", "model_mmap", 0.3)
	r.LoadPhase("big", "model_mmap", 0.004)
	r.LoadPhase("big", "first_prompt", 0.2)

	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.Bytes()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	promtool.Check(t, body)
	text := string(body)
	for _, want := range []string{
		`jetai_requests_total{model="big",outcome="ok"} 2`,
		`jetai_requests_total{model="odd\"name\\",outcome="throttled"} 1`,
		`jetai_requests_total{model="odd\"name\\",outcome="ok"} 0`,
		`jetai_prompt_tokens_total{model="big"} 12`,
		`jetai_generated_tokens_total{model="big"} 120`,
		`jetai_time_to_first_token_seconds_bucket{model="big",le="0.05"} 1`,
		`jetai_time_to_first_token_seconds_count{model="big"} 2`,
		`jetai_token_latency_seconds_count{model="big"} 1`,
		`jetai_queue_wait_seconds_bucket{model="big",le="+Inf"} 2`,
		`jetai_model_load_duration_seconds_sum{model="big"} 1.5`,
		`jetai_model_load_failures_total{model="odd\"name\\"} 1`,
		`jetai_model_load_phase_seconds_bucket{model="big",phase="model_mmap",le="0.005"} 1`,
		`jetai_model_load_phase_seconds_count{model="big",phase="model_mmap"} 2`,
		`jetai_model_load_phase_seconds_sum{model="big",phase="first_prompt"} 0.2`,
		`jetai_model_unload_duration_seconds_count{model="big"} 1`,
		`jetai_model_loads_total{model="big"} 2`,
		`jetai_model_evictions_total{model="big"} 1`,
		`jetai_model_unavailable{model="gone"} 1`,
		`jetai_model_unavailable{model="big"} 0`,
		`jetai_model_memory_bytes{model="big"} 943718400`,
		`jetai_queue_depth{model="big"} 3`,
		`jetai_runner_threads{model="big"} 3`,
		`jetai_models_loaded 1`,
		`jetai_memory_budget_bytes 6442450944`,
		`jetai_memory_reserve_bytes 536870912`,
		`jetai_memory_available_bytes 5368709120`,
		`jetai_temperature_celsius{zone="thermal_zone8",type="tj-thermal"} 49.062`,
		`jetai_thermal_zone_valid{zone="thermal_zone2",type="cv0-thermal"} 0`,
		`jetai_thermal_state{state="normal"} 1`,
		`jetai_thermal_state{state="shed"} 0`,
		`jetai_thermal_limit_celsius{limit="hard"} 90`,
		`jetai_power_watts{rail="VDD_IN",chip="hwmon1"} 6.27936`,
		`jetai_gpu_load_ratio{gpu="17000000.ga10b"} 0.237`,
		`jetai_gpu_frequency_hertz{gpu="17000000.ga10b"} 624750000`,
		`jetai_memory_pressure_ratio{kind="some"} 0`,
		`jetai_platform_polls_total 1`,
		`jetai_http_connections 7`,
		`jetai_http_connections_max 4096`,
		`jetai_http_connections_evicted_total 12`,
		`jetai_http_connections_refused_total 3`,
		"# TYPE jetai_http_connections_evicted_total counter",
		`jetai_cache_max_bytes 8589934592`,
		`jetai_cache_used_bytes{kind="models"} 3221225472`,
		`jetai_cache_used_bytes{kind="parked"} 41943040`,
		`jetai_cache_files{kind="models"} 2`,
		`jetai_cache_files{kind="parked"} 1`,
		`jetai_cache_stages_total{result="hit"} 5`,
		`jetai_cache_stages_total{result="miss"} 2`,
		`jetai_cache_stages_total{result="failed"} 1`,
		`jetai_cache_staged_bytes_total 3221225472`,
		`jetai_cache_evictions_total{kind="models"} 1`,
		`jetai_cache_evictions_total{kind="parked"} 4`,
		`jetai_cache_parks_total{result="ok"} 6`,
		`jetai_cache_parks_total{result="failed"} 1`,
		`jetai_cache_restores_total{result="ok"} 3`,
		`jetai_cache_restores_total{result="failed"} 2`,
		`jetai_cache_restores_total{result="dropped"} 1`,
		"# TYPE jetai_cache_stages_total counter",
		"# HELP jetai_requests_total Requests by model and outcome",
		"# TYPE jetai_time_to_first_token_seconds histogram",
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("missing %q", want)
		}
	}
	// Every family exposed has exactly one HELP and TYPE, and every
	// sample belongs to a documented family.
	helps := regexp.MustCompile(`(?m)^# HELP (\S+) `).FindAllStringSubmatch(text, -1)
	seen := map[string]bool{}
	for _, h := range helps {
		if seen[h[1]] {
			t.Errorf("family %s written twice", h[1])
		}
		seen[h[1]] = true
	}
	if len(seen) < 35 {
		t.Errorf("only %d families exposed", len(seen))
	}
}

// BenchmarkScrape: a scrape is cheap enough to run every few seconds on a
// Jetson (it holds the pool's lock only to copy figures).
func BenchmarkScrape(b *testing.B) {
	r := New()
	m := platform.New(platform.Options{Root: "/", Log: slog.New(slog.DiscardHandler),
		Thermal: config.Thermal{Zones: config.DefaultThermalZones(), SoftLimit: 80, HardLimit: 90, Hysteresis: 5, PollInterval: time.Hour}})
	m.Poll(context.Background())
	r.Attach(fakePool{}, m.Status)
	for range 100 {
		r.Request(pool.RequestEvent{Model: "big", Outcome: pool.OutcomeOK, QueueSeconds: 0.01, TTFTSeconds: 0.1, TokenSeconds: 0.01})
	}
	for b.Loop() {
		r.WritePrometheus(io.Discard)
	}
}
