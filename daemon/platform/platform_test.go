package platform

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/internal/bytesize"
)

// tree is the path of a fake machine under the repository's testdata.
func tree(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "platform", name)
}

// CopyTree copies a fake tree into a temporary directory for a test that
// changes it.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(tree(name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestReadersOnFakeTrees(t *testing.T) {
	tests := []struct {
		tree       string
		zones      int
		valid      map[string]float64 // type -> °C of valid zones
		invalid    []string
		hottest    string // among the default zones
		hottestC   float64
		avail      uint64
		swap       uint64
		psi        bool
		gpus       []string
		gpuLoad    float64
		gpuHz      uint64
		rails      []string
		vddInWatts float64
		model, l4t string
	}{
		{
			tree: "orin-nano", zones: 9,
			valid:   map[string]float64{"cpu-thermal": 48.5, "gpu-thermal": 46.968, "soc0-thermal": 47.781, "tj-thermal": 49.062},
			invalid: []string{"cv0-thermal", "cv1-thermal", "cv2-thermal"},
			hottest: "tj-thermal", hottestC: 49.062,
			avail: 5242880 * 1024, swap: 3810096 * 1024, psi: true,
			gpus: []string{"17000000.ga10b"}, gpuLoad: 0.237, gpuHz: 624750000,
			rails: []string{"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}, vddInWatts: 5.064 * 1.240,
			model: "NVIDIA Jetson Orin Nano Developer Kit", l4t: "R36.3.0",
		},
		{
			tree: "xavier-nx", zones: 8,
			valid:   map[string]float64{"CPU-therm": 39, "GPU-therm": 38.5, "PMIC-Die": 100},
			hottest: "CPU-therm", hottestC: 39,
			avail: 6403496 * 1024, swap: 3882704 * 1024,
			gpus: []string{"17000000.gv11b"}, gpuHz: 114750000,
			rails: []string{"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}, vddInWatts: 5.032 * 0.952,
			model: "NVIDIA Jetson Xavier NX Developer Kit", l4t: "R35.4.1",
		},
		{
			tree: "x86", zones: 2,
			valid: map[string]float64{"acpitz": 27.8, "x86_pkg_temp": 45},
			avail: 12850532 * 1024,
			model: "Standard PC (Q35 + ICH9, 2009)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.tree, func(t *testing.T) {
			root := tree(tc.tree)
			zones, err := ReadZones(root)
			if err != nil {
				t.Fatal(err)
			}
			if len(zones) != tc.zones {
				t.Fatalf("%d zones, want %d: %+v", len(zones), tc.zones, zones)
			}
			for _, z := range zones {
				if c, ok := tc.valid[z.Type]; ok && (!z.Valid || !near(z.Celsius, c)) {
					t.Errorf("zone %s: %+v, want valid %.3f °C", z.Type, z, c)
				}
			}
			for _, typ := range tc.invalid {
				for _, z := range zones {
					if z.Type == typ && (z.Valid || !strings.Contains(z.Err, "discarded")) {
						t.Errorf("zone %s should be discarded: %+v", typ, z)
					}
				}
			}
			h, ok := Hottest(zones, config.DefaultThermalZones())
			if ok != (tc.hottest != "") || (ok && (h.Type != tc.hottest || !near(h.Celsius, tc.hottestC))) {
				t.Errorf("hottest default zone %+v %v, want %q %.3f", h, ok, tc.hottest, tc.hottestC)
			}

			mem, err := ReadMemInfo(root)
			if err != nil {
				t.Fatal(err)
			}
			if mem.Available != tc.avail || mem.SwapTotal != tc.swap {
				t.Errorf("meminfo %+v, want available %d swap %d", mem, tc.avail, tc.swap)
			}
			_, hasPSI, err := ReadPSI(root)
			if err != nil || hasPSI != tc.psi {
				t.Errorf("PSI present %v (err %v), want %v", hasPSI, err, tc.psi)
			}

			gpus, err := ReadGPUs(root)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, g := range gpus {
				names = append(names, g.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.gpus, ",") {
				t.Fatalf("GPUs %v, want %v", names, tc.gpus)
			}
			if len(gpus) > 0 && (!gpus[0].LoadKnown || !near(gpus[0].Load, tc.gpuLoad) || gpus[0].FreqHz != tc.gpuHz) {
				t.Errorf("GPU %+v, want load %.3f at %d Hz", gpus[0], tc.gpuLoad, tc.gpuHz)
			}

			rails, err := ReadRails(root)
			if err != nil {
				t.Fatal(err)
			}
			names = names[:0]
			for _, r := range rails {
				names = append(names, r.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.rails, ",") {
				t.Fatalf("rails %v, want %v", names, tc.rails)
			}
			if len(rails) > 0 && !near(rails[0].Watts, tc.vddInWatts) {
				t.Errorf("VDD_IN %.4f W, want %.4f", rails[0].Watts, tc.vddInWatts)
			}

			b := ReadBoard(root)
			if b.Model != tc.model || b.L4T != tc.l4t || b.Jetson != (tc.l4t != "") {
				t.Errorf("board %+v, want %q %q", b, tc.model, tc.l4t)
			}
		})
	}
}

// TestReadersOnThisMachine runs every reader on the live /sys and /proc:
// they must not fail, and what this machine surely has must be read.
func TestReadersOnThisMachine(t *testing.T) {
	r := Read("/")
	if len(r.Errors) > 0 {
		t.Fatalf("errors on the live machine: %v", r.Errors)
	}
	if r.Memory == nil || r.Memory.Available == 0 || r.Memory.Total < r.Memory.Available {
		t.Fatalf("meminfo %+v", r.Memory)
	}
	if _, err := os.Stat("/proc/pressure/memory"); err == nil {
		if _, ok, err := ReadPSI("/"); err != nil {
			t.Errorf("PSI: %v", err)
		} else if ok != (r.PSI != nil) {
			t.Errorf("PSI present %v but Read says %v", ok, r.PSI != nil)
		}
	}
	for _, z := range r.Zones {
		if z.Valid && (z.Celsius < MinCelsius || z.Celsius > MaxCelsius) {
			t.Errorf("zone %+v valid out of range", z)
		}
	}
	t.Logf("live: %d zones, %d GPUs, %d rails, PSI %v, MemAvailable %s, board %+v, took %v",
		len(r.Zones), len(r.GPUs), len(r.Rails), r.PSI != nil, bytesize.IEC(r.Memory.Available), ReadBoard("/"), r.Took)
}

// TestBadZones: a zone that vanishes or holds garbage is reported in its
// entry and the others still read.
func TestBadZones(t *testing.T) {
	root := copyTree(t, "orin-nano")
	tz := "sys/class/thermal/"
	write(t, root, tz+"thermal_zone0/temp", "garbage\n")
	os.Remove(filepath.Join(root, tz+"thermal_zone1/temp")) // temp vanished
	os.RemoveAll(filepath.Join(root, tz+"thermal_zone5"))   // whole zone vanished
	write(t, root, tz+"thermal_zone6/temp", "999999999\n")  // implausible
	os.Remove(filepath.Join(root, tz+"thermal_zone7/type")) // no type
	zones, err := ReadZones(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Zone{}
	for _, z := range zones {
		got[z.Name] = z
	}
	for name, want := range map[string]string{
		"thermal_zone0": "not a number", "thermal_zone1": "no such file",
		"thermal_zone6": "outside", "thermal_zone7": "type:",
	} {
		if z := got[name]; z.Valid || !strings.Contains(z.Err, want) {
			t.Errorf("%s: %+v, want an error with %q", name, z, want)
		}
	}
	if _, ok := got["thermal_zone5"]; ok || len(zones) != 8 {
		t.Errorf("vanished zone still listed: %d zones", len(zones))
	}
	if h, ok := Hottest(zones, config.DefaultThermalZones()); !ok || h.Type != "tj-thermal" {
		t.Errorf("hottest %+v %v, want tj-thermal from the zones that still read", h, ok)
	}
	// The monitor reports each bad zone once and keeps going.
	var logBuf bytes.Buffer
	m := New(Options{Root: root, Thermal: thermal(), Log: slog.New(slog.NewTextHandler(&logBuf, nil))})
	for range 3 {
		m.Poll(context.Background())
	}
	// 4 broken here, and the 3 CV zones that read −256 °C.
	if n := strings.Count(logBuf.String(), "thermal zone unreadable"); n != 7 {
		t.Errorf("%d 'unreadable' log lines over 3 polls, want 7 (one per bad zone):\n%s", n, logBuf.String())
	}
	if n := strings.Count(logBuf.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings, want 2 (the watched cpu- and gpu-thermal):\n%s", n, logBuf.String())
	}
	if s := m.Status(); s.Hottest == nil || s.Hottest.Type != "tj-thermal" || s.State != Normal {
		t.Errorf("status %+v", s)
	}
}

func TestGarbageFiles(t *testing.T) {
	root := copyTree(t, "orin-nano")
	write(t, root, "proc/pressure/memory", "some avg10=x avg60=0 avg300=0 total=1\n")
	if _, _, err := ReadPSI(root); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("PSI garbage: %v", err)
	}
	write(t, root, "proc/meminfo", "MemTotal: 100 kB\n")
	if _, err := ReadMemInfo(root); err == nil || !strings.Contains(err.Error(), "MemAvailable") {
		t.Errorf("meminfo without MemAvailable: %v", err)
	}
	write(t, root, "sys/class/hwmon/hwmon1/curr2_input", "zz\n")
	rails, err := ReadRails(root)
	if err != nil || len(rails) != 3 || rails[1].Err == "" || rails[0].Err != "" {
		t.Errorf("rails with one garbage current: %+v %v", rails, err)
	}
	r := Read(root)
	if len(r.Errors) != 2 || r.Memory != nil || len(r.Zones) != 9 {
		t.Errorf("Read with bad meminfo and PSI: errors %v, memory %v, %d zones", r.Errors, r.Memory, len(r.Zones))
	}
}

// A machine without a sysfs class (most containers) has none of its
// devices and no error; a class that cannot be listed is an error.
func TestMissingClasses(t *testing.T) {
	root := t.TempDir()
	zones, zerr := ReadZones(root)
	rails, rerr := ReadRails(root)
	gpus, gerr := ReadGPUs(root)
	if zones != nil || rails != nil || gpus != nil || zerr != nil || rerr != nil || gerr != nil {
		t.Errorf("no sys/class: %v %v %v, errors %v %v %v", zones, rails, gpus, zerr, rerr, gerr)
	}
	if err := os.MkdirAll(filepath.Join(root, "sys/class"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"thermal", "hwmon", "devfreq"} {
		write(t, root, "sys/class/"+class, "not a directory\n")
	}
	_, zerr = ReadZones(root)
	_, rerr = ReadRails(root)
	_, gerr = ReadGPUs(root)
	if zerr == nil || !strings.Contains(zerr.Error(), "thermal zones") || rerr == nil || gerr == nil {
		t.Errorf("classes that are files: errors %v, %v, %v", zerr, rerr, gerr)
	}
}

func thermal() config.Thermal {
	return config.Thermal{Zones: config.DefaultThermalZones(), SoftLimit: 80, HardLimit: 90, Hysteresis: 5, PollInterval: time.Hour}
}

func TestLimitsNext(t *testing.T) {
	lim := Limits{Soft: 80, Hard: 90, Hysteresis: 5}
	// One walk through temperatures; each step's expected level.
	steps := []struct {
		c    float64
		want Level
	}{
		{50, Normal}, {79.9, Normal}, {80, Throttle}, {79.9, Throttle}, {80.1, Throttle},
		{75.1, Throttle}, {75, Throttle}, {74.9, Normal}, {79.99, Normal},
		{85, Throttle}, {90, Shed}, {89.9, Shed}, {85.1, Shed}, {90.5, Shed}, {85, Shed},
		{84.9, Throttle}, {89.9, Throttle}, {95, Shed}, {60, Normal}, {100, Shed},
		{78, Throttle}, // out of shed below both bands' tops but above soft-hyst
	}
	cur := Normal
	for i, s := range steps {
		next, why := lim.Next(cur, s.c)
		if next != s.want {
			t.Fatalf("step %d: %s at %.2f °C -> %s, want %s", i, cur, s.c, next, s.want)
		}
		if (why != "") != (next != cur) {
			t.Errorf("step %d: reason %q for %s -> %s", i, why, cur, next)
		}
		cur = next
	}
}

func TestMemoryPressure(t *testing.T) {
	gib := uint64(1 << 30)
	tests := []struct {
		avail   uint64
		psi     float64
		reserve uint64
		want    bool
		reason  string
	}{
		{avail: 2 * gib, reserve: gib / 2},
		{avail: gib / 4, reserve: gib / 2, want: true, reason: "below memory.reserve"},
		{avail: 2 * gib, psi: 0.25, reserve: gib / 2, want: true, reason: "PSI some avg10"},
		{avail: 2 * gib, psi: 0.05, reserve: gib / 2},
		{avail: gib / 4, reserve: 0},
	}
	for _, tc := range tests {
		got, why := MemoryPressure(&MemInfo{Available: tc.avail}, &PSI{Some: PSILine{Avg10: tc.psi}}, tc.reserve, DefaultPSILimit)
		if got != tc.want || !strings.Contains(why, tc.reason) {
			t.Errorf("%+v: %v %q", tc, got, why)
		}
	}
}

type fakeAct struct {
	mu      sync.Mutex
	applied []Level
	relieve []string
	victims []string
}

func (f *fakeAct) Apply(_ context.Context, l Level, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, l)
}

func (f *fakeAct) RelieveMemory(_ context.Context, reason string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.relieve = append(f.relieve, reason)
	if len(f.victims) == 0 {
		return "", nil
	}
	v := f.victims[0]
	f.victims = f.victims[1:]
	return v, nil
}

// TestMonitorPolicy drives a monitor by hand through a fake tree: levels
// follow the hottest watched zone, every transition is logged exactly
// once, the level holds while the zones cannot be read for a few polls,
// and memory pressure asks for one eviction per poll.
func TestMonitorPolicy(t *testing.T) {
	root := copyTree(t, "orin-nano")
	var logBuf bytes.Buffer
	act := &fakeAct{victims: []string{"small"}}
	m := New(Options{Root: root, Thermal: thermal(), Reserve: 1 << 30, Act: act, NoThermalGrace: 3,
		Log: slog.New(slog.NewTextHandler(&logBuf, nil))})
	ctx := context.Background()
	set := func(milli string) { write(t, root, "sys/class/thermal/thermal_zone8/temp", milli+"\n") }
	for _, s := range []struct {
		milli string
		want  Level
	}{
		{"49062", Normal}, {"81000", Throttle}, {"79000", Throttle}, {"80500", Throttle},
		{"91000", Shed}, {"88000", Shed}, {"84000", Throttle}, {"70000", Normal}, {"79999", Normal},
	} {
		set(s.milli)
		m.Poll(ctx)
		if got := m.Level(); got != s.want {
			t.Fatalf("at %s m°C: %s, want %s", s.milli, got, s.want)
		}
	}
	st := m.Status()
	if st.TransitionCount != 4 || strings.Count(logBuf.String(), "msg=\"thermal state\"") != 4 {
		t.Errorf("%d transitions, log:\n%s", st.TransitionCount, logBuf.String())
	}
	if st.Transitions[1].To != Shed || !strings.Contains(st.Transitions[1].Reason, "tj-thermal: 91.0 °C reached the hard limit 90") {
		t.Errorf("transition %+v", st.Transitions[1])
	}
	if len(act.applied) != 9 || act.applied[4] != Shed {
		t.Errorf("applied %v", act.applied)
	}
	if len(act.relieve) != 0 {
		t.Errorf("eviction asked without pressure: %v", act.relieve)
	}

	// Sensors gone while hot: the level holds for NoThermalGrace polls.
	set("95000")
	m.Poll(ctx)
	for _, z := range []string{"0", "1", "8"} {
		os.RemoveAll(filepath.Join(root, "sys/class/thermal/thermal_zone"+z))
	}
	for i := 1; i <= 3; i++ {
		m.Poll(ctx)
		want := Shed
		if i == 3 {
			want = Normal
		}
		if got := m.Level(); got != want {
			t.Fatalf("blind poll %d: %s, want %s", i, got, want)
		}
	}
	if s := m.Status(); !strings.Contains(s.Reason, "no watched thermal zone") || s.Hottest != nil {
		t.Errorf("blind status: %+v", s)
	}

	// Memory: MemAvailable under the reserve evicts, one per poll.
	write(t, root, "proc/meminfo", "MemTotal: 7620236 kB\nMemAvailable: 262144 kB\n")
	m.Poll(ctx)
	m.Poll(ctx)
	s := m.Status()
	if !s.MemoryPressure || s.EvictionCount != 1 || len(act.relieve) != 2 || s.Evictions[0].Model != "small" {
		t.Errorf("memory pressure: %+v, relieve %v", s, act.relieve)
	}
	if !strings.Contains(m.Summary(), "thermal normal") || !strings.Contains(m.Summary(), "(pressure)") {
		t.Errorf("summary %q", m.Summary())
	}
}

func TestSummary(t *testing.T) {
	m := New(Options{Root: tree("orin-nano"), Thermal: thermal()})
	m.Poll(context.Background())
	want := "thermal normal, tj-thermal 49.1 °C; MemAvailable 5.0 GiB; VDD_IN 6.3 W"
	if got := m.Summary(); got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// BenchmarkPoll is one poll of the Orin Nano tree (the policy included).
func BenchmarkPoll(b *testing.B) {
	m := New(Options{Root: tree("orin-nano"), Thermal: thermal(), Log: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	for b.Loop() {
		m.Poll(ctx)
	}
}
