package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon"
	"github.com/jetai/jetai/internal/promtool"
	"github.com/jetai/jetai/internal/testdaemon"
	"github.com/jetai/jetai/internal/testmodel"
)

// fakeRoot copies a fake machine tree from testdata/platform.
func fakeRoot(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(filepath.Dir(file), "..", "testdata", "platform", name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// platformDaemon runs a daemon over the fake root with the config body
// (model paths as %[1]q) and returns its base URL and the Daemon.
func platformDaemon(t *testing.T, root, hcl string, log io.Writer) (string, *daemon.Daemon) {
	t.Helper()
	conf := testdaemon.WriteConfig(t, t.TempDir(), ownCache(fmt.Sprintf(hcl, testmodel.Path(t))))
	d := testdaemon.Start(t, daemon.Options{ConfigPath: conf, PlatformRoot: root,
		Log: slog.New(slog.NewTextHandler(log, nil))})
	return d.URL, d.Daemon
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

type platformView struct {
	Platform struct {
		State   string `json:"state"`
		Reason  string `json:"reason"`
		Hottest *struct {
			Type    string  `json:"type"`
			Celsius float64 `json:"celsius"`
		} `json:"hottest"`
		TransitionCount int `json:"transition_count"`
		Transitions     []struct {
			From, To, Reason string
		} `json:"transitions"`
		EvictionCount int `json:"memory_eviction_count"`
		Evictions     []struct {
			Model string `json:"model"`
		} `json:"memory_evictions"`
		MemoryPressure bool `json:"memory_pressure"`
		Throttle       struct {
			Level         string         `json:"level"`
			RunnerThreads map[string]int `json:"runner_threads"`
			Slots         map[string]int `json:"slots"`
			LowPriority   []string       `json:"low_priority"`
		} `json:"throttle"`
	} `json:"platform"`
}

func status(t *testing.T, base string) platformView {
	t.Helper()
	var v platformView
	getJSON(t, base+"/status", &v)
	return v
}

func modelState(t *testing.T, base, name string) string {
	t.Helper()
	var ms struct {
		Models []struct{ Name, State string } `json:"models"`
	}
	getJSON(t, base+"/models", &ms)
	for _, m := range ms.Models {
		if m.Name == name {
			return m.State
		}
	}
	t.Fatalf("no model %s", name)
	return ""
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func infer(t *testing.T, base, model string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Post(base+"/inference", "application/json",
		strings.NewReader(fmt.Sprintf(`{"prompt": "Once upon a time", "model": %q, "max_length": 8}`, model)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func setTemp(t *testing.T, root string, milli int) {
	t.Helper()
	// thermal_zone8 is tj-thermal in the Orin Nano tree. Write a new file
	// and rename it, so a poll never reads half a number.
	p := filepath.Join(root, "sys/class/thermal/thermal_zone8/temp")
	if err := os.WriteFile(p+".new", []byte(fmt.Sprintf("%d\n", milli)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
}

// TestThermalThrottling drives the daemon through normal → throttle →
// shed → recovery by changing the fake tree's tj-thermal temperature, and
// checks each effect through the API: runner threads and slots, 503 with
// Retry-After for the low-priority model while the high-priority one is
// served, the idle low-priority model unloaded, loads refused, no flapping
// at either boundary, and each transition logged once.
func TestThermalThrottling(t *testing.T) {
	root := fakeRoot(t, "orin-nano")
	cpus := runtime.NumCPU()
	threads := max(2, cpus)                   // configured
	throttled := min(threads, max(1, cpus/2)) // what throttle sets
	poll := 20 * time.Millisecond
	var logs logBuffer
	base, _ := platformDaemon(t, root, `
thermal {
  soft_limit    = 80
  hard_limit    = 90
  hysteresis    = 5
  poll_interval = "20ms"
}
model "high" {
  path       = %[1]q
  priority   = 90
  context    = 256
  parallel   = 2
  threads    = `+fmt.Sprint(threads)+`
  preload    = true
  keep_alive = "forever"
}
model "low" {
  path       = %[1]q
  priority   = 10
  context    = 256
  parallel   = 2
  threads    = `+fmt.Sprint(threads)+`
  preload    = true
  keep_alive = "forever"
}
`, &logs)
	eventually(t, "both models loaded", func() bool {
		return modelState(t, base, "high") == "ready" && modelState(t, base, "low") == "ready"
	})
	s := status(t, base)
	if s.Platform.State != "normal" || s.Platform.Hottest == nil || s.Platform.Hottest.Type != "tj-thermal" {
		t.Fatalf("start: %+v", s.Platform)
	}
	if got := s.Platform.Throttle.LowPriority; len(got) != 1 || got[0] != "low" {
		t.Fatalf("low priority models %v", got)
	}

	// Soft limit: throttle.
	setTemp(t, root, 82000)
	eventually(t, "throttle with fewer runner threads", func() bool {
		s = status(t, base)
		th := s.Platform.Throttle
		return s.Platform.State == "throttle" && th.Level == "throttle" && th.RunnerThreads["high"] == throttled && th.RunnerThreads["low"] == throttled
	})
	if s.Platform.Throttle.Slots["high"] != 1 || s.Platform.Throttle.Slots["low"] != 1 {
		t.Errorf("throttled slots %v, want 1 each (parallel 2 halved)", s.Platform.Throttle.Slots)
	}
	if code, _, body := infer(t, base, "low"); code != 200 {
		t.Errorf("low priority under throttle: %d %s (should be delayed, not refused)", code, body)
	}

	// Hard limit: shed.
	setTemp(t, root, 93000)
	eventually(t, "shed", func() bool { return status(t, base).Platform.State == "shed" })
	eventually(t, "idle low-priority model unloaded", func() bool { return modelState(t, base, "low") == "unloaded" })
	code, hdr, body := infer(t, base, "low")
	if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "thermal_shed") {
		t.Errorf("low priority while shedding: %d Retry-After %q %s", code, hdr.Get("Retry-After"), body)
	}
	if code, _, body := infer(t, base, "high"); code != 200 {
		t.Errorf("high priority while shedding: %d %s", code, body)
	}
	resp, err := http.Post(base+"/load_model", "application/json", strings.NewReader(`{"model_name": "low"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("load while shedding: %d, want 503", resp.StatusCode)
	}
	if modelState(t, base, "high") != "ready" {
		t.Errorf("high-priority model unloaded while shedding")
	}
	if th := status(t, base).Platform.Throttle; th.RunnerThreads["high"] != 1 {
		t.Errorf("shed runner threads %v, want 1", th.RunnerThreads)
	}

	// wavering sets each temperature for a few polls: the state must stay
	// want, with no transition.
	wavering := func(want string, millis ...int) {
		t.Helper()
		before := status(t, base).Platform.TransitionCount
		for _, c := range millis {
			setTemp(t, root, c)
			time.Sleep(4 * poll)
		}
		if s := status(t, base); s.Platform.State != want || s.Platform.TransitionCount != before {
			t.Fatalf("flapped while %s: %s, %d transitions (was %d)", want, s.Platform.State, s.Platform.TransitionCount, before)
		}
	}
	// Wavering around the hard limit, above hard − hysteresis: stays shed.
	wavering("shed", 89000, 90500, 86000, 91000, 85500, 89900)

	// Below hard − hysteresis: back to throttle; wavering around the soft
	// limit above soft − hysteresis stays there.
	setTemp(t, root, 84000)
	eventually(t, "throttle again", func() bool { return status(t, base).Platform.State == "throttle" })
	wavering("throttle", 79000, 80500, 76000, 81000, 75500, 79900)

	// Below soft − hysteresis: normal, threads as configured again.
	setTemp(t, root, 60000)
	eventually(t, "normal with configured threads", func() bool {
		s = status(t, base)
		return s.Platform.State == "normal" && s.Platform.Throttle.RunnerThreads["high"] == threads
	})
	if s.Platform.Throttle.Slots["high"] != 2 {
		t.Errorf("slots after recovery %v", s.Platform.Throttle.Slots)
	}
	if code, _, body := infer(t, base, "low"); code != 200 {
		t.Errorf("low priority after recovery: %d %s", code, body)
	}
	var path []string
	for _, tr := range s.Platform.Transitions {
		path = append(path, tr.From+"→"+tr.To)
	}
	if got := strings.Join(path, " "); got != "normal→throttle throttle→shed shed→throttle throttle→normal" {
		t.Errorf("transitions %s", got)
	}
	if n := strings.Count(logs.String(), `msg="thermal state"`); n != 4 {
		t.Errorf("%d transition log lines, want 4:\n%s", n, logs.String())
	}
}

// TestMemoryPressureEvicts: MemAvailable below memory.reserve in the fake
// /proc/meminfo evicts idle models one at a time, lowest priority first,
// and stops once MemAvailable is back; a pinned model is never evicted.
func TestMemoryPressureEvicts(t *testing.T) {
	root := fakeRoot(t, "orin-nano")
	model := func(name string, prio int, pinned bool) string {
		return fmt.Sprintf(`
model %q {
  path       = %%[1]q
  priority   = %d
  pinned     = %v
  context    = 256
  threads    = 1
  preload    = true
  keep_alive = "forever"
}`, name, prio, pinned)
	}
	base, d := platformDaemon(t, root, `
memory {
  budget  = "4GiB"
  reserve = "1GiB"
}
thermal {
  poll_interval = "1h"
}
`+model("mid", 50, false)+model("low", 10, false)+model("top", 90, false)+model("pin", 0, true), io.Discard)
	for _, m := range []string{"mid", "low", "top", "pin"} {
		eventually(t, m+" loaded", func() bool { return modelState(t, base, m) == "ready" })
	}
	meminfo := filepath.Join(root, "proc/meminfo")
	ok, _ := os.ReadFile(meminfo)
	if err := os.WriteFile(meminfo, []byte("MemTotal: 7620236 kB\nMemAvailable: 524288 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, want := range []string{"low", "mid", "top"} {
		d.Platform().Poll(ctx)
		eventually(t, want+" evicted", func() bool { return modelState(t, base, want) == "unloaded" })
		for _, other := range []string{"mid", "top", "pin"} {
			if other == want {
				break
			}
			if st := modelState(t, base, other); other != "pin" && st != "ready" && st != "unloaded" {
				t.Errorf("%s is %s", other, st)
			}
		}
	}
	d.Platform().Poll(ctx) // only the pinned one is left: nothing to do
	if st := modelState(t, base, "pin"); st != "ready" {
		t.Errorf("pinned model %s", st)
	}
	s := status(t, base)
	var order []string
	for _, e := range s.Platform.Evictions {
		order = append(order, e.Model)
	}
	if strings.Join(order, ",") != "low,mid,top" || !s.Platform.MemoryPressure {
		t.Errorf("evictions %v, pressure %v", order, s.Platform.MemoryPressure)
	}

	// MemAvailable back: no more evictions; a load works again.
	os.WriteFile(meminfo, ok, 0o644)
	d.Platform().Poll(ctx)
	if code, _, body := infer(t, base, "mid"); code != 200 {
		t.Errorf("after pressure: %d %s", code, body)
	}
	d.Platform().Poll(ctx)
	if s := status(t, base); s.Platform.EvictionCount != 3 || s.Platform.MemoryPressure {
		t.Errorf("after recovery: %d evictions, pressure %v", s.Platform.EvictionCount, s.Platform.MemoryPressure)
	}
}

// TestMetricsAfterTraffic: after some requests /metrics passes promtool,
// holds the series the issue lists, and agrees with /performance and
// /status.
func TestMetricsAfterTraffic(t *testing.T) {
	root := fakeRoot(t, "orin-nano")
	base, _ := platformDaemon(t, root, `
cache {
  dir      = "cache"
  max_size = "1GiB"
}

model "stories" {
  path       = %[1]q
  context    = 256
  threads    = 1
  keep_alive = "forever"
}
`, io.Discard)
	eventually(t, "healthy", func() bool {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for range 3 {
		if code, _, body := infer(t, base, "stories"); code != 200 {
			t.Fatalf("inference: %d %s", code, body)
		}
	}
	resp, err := http.Post(base+"/inference", "application/json", strings.NewReader(`{"prompt": "`+strings.Repeat("x ", 2000)+`", "model": "stories"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("overlong prompt: %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	promtool.Check(t, body)
	text := string(body)

	var perf struct {
		Models []struct {
			Name   string `json:"name"`
			Tokens uint64 `json:"tokens"`
			Loads  uint64 `json:"loads"`
		} `json:"models"`
	}
	getJSON(t, base+"/performance", &perf)
	var st struct {
		Pool struct {
			Budget  uint64 `json:"budget"`
			Reserve uint64 `json:"reserve"`
		} `json:"pool"`
		Platform struct {
			Reading struct {
				Memory struct {
					Available uint64 `json:"available"`
				} `json:"memory"`
			} `json:"reading"`
		} `json:"platform"`
	}
	getJSON(t, base+"/status", &st)
	if len(perf.Models) != 1 || perf.Models[0].Tokens == 0 {
		t.Fatalf("performance %+v", perf)
	}
	for _, want := range []string{
		`jetai_requests_total{model="stories",outcome="ok"} 3`,
		`jetai_requests_total{model="stories",outcome="invalid"} 1`,
		fmt.Sprintf(`jetai_generated_tokens_total{model="stories"} %d`, perf.Models[0].Tokens),
		fmt.Sprintf(`jetai_model_loads_total{model="stories"} %d`, perf.Models[0].Loads),
		`jetai_time_to_first_token_seconds_count{model="stories"} 3`,
		`jetai_token_latency_seconds_count{model="stories"} 3`,
		`jetai_queue_wait_seconds_count{model="stories"} 4`,
		`jetai_model_load_duration_seconds_count{model="stories"} 1`,
		`jetai_queue_depth{model="stories"} 0`,
		`jetai_models_loaded 1`,
		`jetai_model_loaded{model="stories"} 1`,
		fmt.Sprintf("jetai_memory_budget_bytes %d", st.Pool.Budget),
		fmt.Sprintf("jetai_memory_reserve_bytes %d", st.Pool.Reserve),
		fmt.Sprintf("jetai_memory_available_bytes %d", st.Platform.Reading.Memory.Available),
		`jetai_temperature_celsius{zone="thermal_zone8",type="tj-thermal"} 49.062`,
		`jetai_thermal_state{state="normal"} 1`,
		`jetai_power_watts{rail="VDD_IN",chip="hwmon1"}`,
		`jetai_prompt_tokens_total{model="stories"}`,
		`jetai_model_memory_bytes{model="stories"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, `jetai_model_memory_bytes{model="stories"} 0`) {
		t.Errorf("runner memory not measured")
	}

	// The model cache: a conversation long enough to park, then an unload
	// parks it; /metrics counts the park and the parked bytes.
	resp, err = http.Post(base+"/inference", "application/json", strings.NewReader(`{"prompt": "`+strings.Repeat("Once upon a time there was a dog. ", 6)+`", "model": "stories", "max_length": 8}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Post(base+"/unload_model", "application/json", strings.NewReader(`{"model_name": "stories"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var parked string
	eventually(t, "the park in /metrics", func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		parked = string(b)
		return strings.Contains(parked, `jetai_cache_parks_total{result="ok"} 1`)
	})
	promtool.Check(t, []byte(parked))
	for _, want := range []string{
		"jetai_cache_max_bytes 1073741824",
		`jetai_cache_used_bytes{kind="models"}`,
		`jetai_cache_files{kind="parked"} 1`,
		`jetai_cache_stages_total{result="hit"}`,
		`jetai_cache_stages_total{result="miss"}`,
		`jetai_cache_stages_total{result="failed"} 0`,
		"jetai_cache_staged_bytes_total",
		`jetai_cache_evictions_total{kind="parked"} 0`,
		`jetai_cache_parks_total{result="failed"} 0`,
		`jetai_cache_restores_total{result="ok"} 0`,
		`jetai_cache_restores_total{result="dropped"} 0`,
		"# HELP jetai_cache_used_bytes ",
		"# TYPE jetai_cache_parks_total counter",
	} {
		if !strings.Contains(parked, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(parked, `jetai_cache_used_bytes{kind="parked"} 0`) {
		t.Errorf("parked bytes not counted")
	}
}

// TestThermalReload: new limits in a reloaded config take effect at the
// next reading.
func TestThermalReload(t *testing.T) {
	root := fakeRoot(t, "orin-nano") // tj-thermal reads 49.062 °C
	hcl := `
thermal {
  soft_limit    = %d
  hard_limit    = 95
  poll_interval = "20ms"
}
model "m" {
  path    = %%[1]q
  context = 256
}
`
	base, d := platformDaemon(t, root, fmt.Sprintf(hcl, 80), io.Discard)
	eventually(t, "a reading", func() bool { return status(t, base).Platform.Hottest != nil })
	if s := status(t, base); s.Platform.State != "normal" {
		t.Fatalf("before reload: %s", s.Platform.State)
	}
	conf := d.Config().Path
	if err := os.WriteFile(conf, []byte(ownCache(fmt.Sprintf(fmt.Sprintf(hcl, 45), testmodel.Path(t)))), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := d.Reload(context.Background(), "test"); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	eventually(t, "throttle at the new soft limit", func() bool { return status(t, base).Platform.State == "throttle" })
	if s := status(t, base); !strings.Contains(s.Platform.Reason, "soft limit 45") {
		t.Errorf("reason %q", s.Platform.Reason)
	}
}
