package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/internal/testmodel"
)

const fixtures = "../testdata/config"

func fixture(name string) string { return filepath.Join(fixtures, name) }

// want is one expected diagnostic: its exact "file:line:col" and fragments
// of its message.
type want struct {
	pos   string // "line:col", prefixed with the file name by the test
	frags []string
}

func TestInvalidFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []want
	}{
		{"invalid_syntax.hcl", []want{
			{"2:27", []string{"Invalid multi-line string"}},
			{"2:27", []string{"Unterminated template string"}},
			{"3:2", []string{"Invalid multi-line string"}},
			{"5:12", []string{"Invalid multi-line string"}},
		}},
		{"invalid_unknown.hcl", []want{
			{"2:3", []string{`argument named "listn" is not expected`, `Did you mean "listen"?`}},
			{"5:1", []string{`Blocks of type "gpus" are not expected`}},
			{"11:3", []string{`"contxt"`, `Did you mean "context"?`}},
			{"13:5", []string{`"temprature"`, `Did you mean "temperature"?`}},
		}},
		{"invalid_types.hcl", []want{
			{"2:18", []string{"queue_total has the wrong type", "a number is required"}},
			{"3:18", []string{"api_keys has the wrong type", "list of string required"}},
			{"8:15", []string{"context has the wrong type", "a number is required"}},
			{"9:15", []string{"pinned has the wrong type", "a bool is required"}},
			{"10:14", []string{"aliases has the wrong type", "element 1"}},
		}},
		{"invalid_duplicates.hcl", []want{
			{"3:22", []string{`alias "b" of model "a" is the name of another model`, "invalid_duplicates.hcl:6:7"}},
			{"8:14", []string{`alias "fast" of model "b" is already used at`, "invalid_duplicates.hcl:3:14"}},
			{"8:22", []string{`alias "auto" is reserved`}},
			{"11:7", []string{`model "a" is defined twice`, "invalid_duplicates.hcl:1:7"}},
			{"16:1", []string{"Duplicate server block"}},
		}},
		// Only the directory is an error; the other three blocks are
		// warnings (TestModelFileWarnings).
		{"invalid_files.hcl", []want{
			{"6:10", []string{"models/adir", "is a directory"}},
		}},
		{"invalid_ranges.hcl", []want{
			{"3:16", []string{"context is 0", "from 1 to"}},
			{"4:16", []string{"parallel is -2", "number of slots"}},
			{"5:16", []string{"priority is 101", "from 0 to 100"}},
			{"6:16", []string{"threads is -1", "0 (automatic)"}},
			{"7:16", []string{"gpu_layers is -5", "-1 (all layers)"}},
			{"10:22", []string{"temperature is -1"}},
			{"11:22", []string{"top_p is 1.5"}},
			{"12:22", []string{"min_p is 2"}},
			{"13:22", []string{"repeat_penalty is 0"}},
			{"14:22", []string{"seed is -7", "-1 (random)"}},
			{"15:22", []string{"max_tokens is 0"}},
			{"16:29", []string{"stop string 2 is empty"}},
			{"22:13", []string{`default max_tokens (256) of model "b" is larger than its per-slot context (100 tokens)`}},
		}},
		{"invalid_budget.hcl", []want{
			{"3:13", []string{"memory reserve (4KiB) must be smaller than the memory budget (4KiB)"}},
			{"8:19", []string{`memory_budget of model "medium" (1GiB) is larger than the global memory budget (4KiB)`}},
			{"13:19", []string{`memory_budget of model "large" (1KiB) cannot hold the model`, "8KiB"}},
		}},
		{"invalid_budget_small.hcl", []want{
			{"2:13", []string{"memory budget (3.91KiB) cannot hold even one model", `the smallest, "medium", is 4KiB`}},
		}},
		{"invalid_thermal.hcl", []want{
			{"2:32", []string{`thermal zone "" is not a zone type`}},
			{"3:16", []string{"soft_limit (95 °C) must be below hard_limit (90 °C)"}},
			{"5:16", []string{"hysteresis is -1"}},
		}},
		{"invalid_router.hcl", []want{
			{"2:19", []string{`default_model "gpt4" is not a model name or alias`, "the models are a"}},
			{"5:31", []string{`tier "small" names model "ghost"`}},
			{"8:3", []string{`tier "medium" has no models`}},
			{"9:25", []string{`max_prompt_tokens 512, less than the tier "small" before it (1024)`}},
			{"11:8", []string{`router tier "small" is defined twice`, "invalid_router.hcl:4:8"}},
			{"18:10", []string{`model "a" is in tier "huge"`, "the tiers are small, medium"}},
		}},
		{"invalid_values.hcl", []want{
			{"2:21", []string{`listen address "localhost" is not host:port`}},
			{"3:21", []string{`admin_socket "admin.sock" must be an absolute path`}},
			{"4:21", []string{`max_body: size "1M" has the ambiguous unit "M"`, "MiB", "MB"}},
			{"5:21", []string{`request_timeout: duration "300" has no unit`, `"300s"`}},
			{"6:21", []string{"queue_per_model (100) is larger than queue_total (64)"}},
			{"7:21", []string{`log_level "verbose" is not one of debug, info, warn, error`}},
			{"8:22", []string{`CORS origin "localhost:3000"`}},
			{"12:12", []string{`budget: size "6 gigs" has the unknown unit "gigs"`}},
			{"16:14", []string{`max_size: size "-1GiB" is negative`}},
			{"20:19", []string{`poll_interval: duration "soon" is not valid`}},
			{"25:19", []string{`memory_budget: size "1.5" is not a whole number of bytes`}},
			{"26:19", []string{`keep_alive: duration "10 minutes" is not valid`, `"forever"`}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := fixture(tt.file)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) succeeded, want %d errors", path, len(tt.want))
			}
			if c != nil {
				t.Errorf("Load returned a Config with an error")
			}
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("error is %T, want Diagnostics", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) || len(ds) != len(tt.want) {
				t.Fatalf("got %d diagnostics, want %d (every problem at once):\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				prefix := path + ":" + w.pos + ": "
				if !strings.HasPrefix(lines[i], prefix) {
					t.Errorf("diagnostic %d = %q, want prefix %q", i, lines[i], prefix)
				}
				for _, f := range w.frags {
					if !strings.Contains(lines[i], f) {
						t.Errorf("diagnostic %d = %q, want it to contain %q", i, lines[i], f)
					}
				}
				if ds[i].Severity != Error || ds[i].Filename != path {
					t.Errorf("diagnostic %d: severity %v file %q", i, ds[i].Severity, ds[i].Filename)
				}
			}
		})
	}
}

func TestValidFull(t *testing.T) {
	c, err := Load(fixture("valid_full.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	abs, _ := filepath.Abs(fixtures)
	s := c.Server
	if s.Listen != "0.0.0.0:8080" || s.AdminSocket != "/run/jetai-test/admin.sock" || s.AdminGroup != "wheel" ||
		strings.Join(s.APIKeys, ",") != "sk-local-1,sk-local-2" || strings.Join(s.CORSOrigins, ",") != "http://localhost:3000,*" ||
		s.MaxBody != 4*MiB || s.RequestTimeout != 90*time.Second || s.QueuePerModel != 8 || s.QueueTotal != 32 || s.LogLevel != "debug" {
		t.Errorf("server = %+v", s)
	}
	if c.Memory.Budget != 1500*MB || c.Memory.Reserve != MiB || c.Memory.KVCache != "f16" {
		t.Errorf("memory = %+v", c.Memory)
	}
	if c.Cache.Dir != filepath.Join(abs, "cache") || c.Cache.MaxSize != 10*GiB {
		t.Errorf("cache = %+v", c.Cache)
	}
	th := c.Thermal
	if strings.Join(th.Zones, ",") != "cpu-thermal,gpu-thermal" || th.SoftLimit != 75 || th.HardLimit != 87.5 ||
		th.PollInterval != 500*time.Millisecond || th.Hysteresis != 3 {
		t.Errorf("thermal = %+v", th)
	}
	if c.Router.DefaultModel != "big" { // "chat" is big's alias
		t.Errorf("default model = %q", c.Router.DefaultModel)
	}
	if len(c.Router.Tiers) != 2 {
		t.Fatalf("tiers = %+v", c.Router.Tiers)
	}
	small, large := c.Router.Tiers[0], c.Router.Tiers[1]
	if small.Name != "small" || strings.Join(small.Models, ",") != "tiny" || small.MaxPromptTokens != 512 || small.MaxTokens != 256 || small.Structured {
		t.Errorf("small tier = %+v", small)
	}
	if large.Name != "large" || strings.Join(large.Models, ",") != "big" || large.MaxPromptTokens != 0 || !large.Structured {
		t.Errorf("large tier = %+v", large)
	}
	if len(c.Models) != 2 {
		t.Fatalf("models = %+v", c.Models)
	}
	m := c.Models[0]
	wantM := Model{
		Name: "tiny", Path: filepath.Join(abs, "models/small.gguf"), Aliases: []string{"t", "mini"},
		Priority: 10, MemoryBudget: 512 * MiB, Context: 1024, Parallel: 2, Threads: 4, GPULayers: -1,
		KeepAlive: Forever, Preload: true, Pinned: true, FlashAttention: true, KVCache: "q8_0", Cache: false, CacheResponses: true,
		Sampling: Sampling{Temperature: 0.2, TopK: 20, TopP: 0.9, MinP: 0, RepeatPenalty: 1.1, Seed: 42, MaxTokens: 128, Stop: []string{"</s>", "\n\n"}},
		FileSize: 64,
	}
	m.FileModTime = time.Time{}
	if f := fixture("valid_full.hcl"); m.File != f || m.DefinedAt != f+":47:7" {
		t.Errorf("model tiny: defined in %s at %s", m.File, m.DefinedAt)
	}
	m.File, m.DefinedAt = "", ""
	if g, w := mustJSON(t, m), mustJSON(t, wantM); g != w {
		t.Errorf("model tiny:\n got %s\nwant %s", g, w)
	}
	b := c.Models[1]
	if b.Name != "big" || b.Priority != 90 || b.Tier != "large" || b.KeepAlive != 0 || b.FileSize != 4096 || b.Context != DefaultContext {
		t.Errorf("model big = %+v", b)
	}
	for _, n := range []string{"tiny", "t", "mini"} {
		if got, ok := c.Lookup(n); !ok || got.Name != "tiny" {
			t.Errorf("Lookup(%q) = %v, %v", n, got, ok)
		}
	}
	if _, ok := c.Lookup("nope"); ok {
		t.Error("Lookup(nope) found a model")
	}
	byHand := &Config{Models: []Model{{Name: "x", Aliases: []string{"y"}}}}
	if m, ok := byHand.Lookup("y"); !ok || m.Name != "x" {
		t.Error("Lookup on a hand-built Config")
	}
	src, _ := os.ReadFile(fixture("valid_full.hcl"))
	c2, err := Parse(src, fixture("valid_full.hcl"))
	if err != nil || c2.Hash != c.Hash || len(c.Hash) != 64 {
		t.Errorf("hash %q vs %q (%v)", c.Hash, c2.Hash, err)
	}
	// API keys stay out of JSON (for /status).
	if strings.Contains(mustJSON(t, c), "sk-local") {
		t.Error("JSON of Config shows the API keys")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidMinimalDefaults(t *testing.T) {
	c, err := Load(fixture("valid_minimal.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	want := Server{Listen: DefaultListen, AdminSocket: DefaultAdminSocket, AdminGroup: DefaultAdminGroup,
		MaxBody: DefaultMaxBody, RequestTimeout: DefaultRequestTimeout, QueuePerModel: DefaultQueuePerModel,
		QueueTotal: DefaultQueueTotal, MaxConnections: DefaultMaxConnections, LogLevel: DefaultLogLevel,
		LogFormat: DefaultLogFormat, MaxImagePixels: DefaultMaxImagePixels}
	if mustJSON(t, c.Server) != mustJSON(t, want) || c.Server.APIKeys != nil {
		t.Errorf("server = %+v", c.Server)
	}
	if c.Memory != (Memory{DefaultMemoryBudget, DefaultMemoryReserve, DefaultKVCache, 0, DefaultWarmSpare}) || c.GPU.BackendsDir != DefaultBackendsDir {
		t.Errorf("memory = %+v", c.Memory)
	}
	if c.Cache != (Cache{DefaultCacheDir, DefaultCacheMaxSize, DefaultResponses, DefaultResponseTTL, DefaultResponsesDisk}) {
		t.Errorf("cache = %+v", c.Cache)
	}
	th := c.Thermal
	if strings.Join(th.Zones, ",") != strings.Join(DefaultThermalZones(), ",") || th.SoftLimit != DefaultSoftLimit ||
		th.HardLimit != DefaultHardLimit || th.PollInterval != DefaultPollInterval || th.Hysteresis != DefaultHysteresis {
		t.Errorf("thermal = %+v", th)
	}
	if c.Router.DefaultModel != "tiny" || len(c.Router.Tiers) != 0 {
		t.Errorf("router = %+v", c.Router)
	}
	m := c.Models[0]
	if m.Priority != DefaultPriority || m.MemoryBudget != 0 || m.Context != DefaultContext || m.Parallel != DefaultParallel ||
		m.Threads != DefaultThreads || m.GPULayers != DefaultGPULayers || m.KeepAlive != DefaultKeepAlive ||
		m.Preload != DefaultPreload || m.Pinned != DefaultPinned || m.FlashAttention != DefaultFlashAttention ||
		m.Cache != DefaultCache || m.Tier != "" || m.Aliases != nil {
		t.Errorf("model = %+v", m)
	}
	wantS := Sampling{DefaultTemperature, DefaultTopK, DefaultTopP, DefaultMinP, DefaultRepeatPenalty, DefaultSeed, DefaultMaxTokens, nil}
	if mustJSON(t, m.Sampling) != mustJSON(t, wantS) {
		t.Errorf("sampling = %+v", m.Sampling)
	}
}

// writeModel writes a dummy GGUF file of n bytes.
func writeModel(t *testing.T, dir, name string, n int) string {
	t.Helper()
	b := make([]byte, n)
	copy(b, ggufMagic)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseSnippets(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "m.gguf", 100)
	cfg := filepath.Join(dir, "jetai.hcl")
	tests := []struct {
		name, src string
		err       string // "" = valid; else "line:col: fragment"
		warn      string
	}{
		{"comments only", "# models come later\n", "", ""},
		{"no models", `server { listen = ":9000" }`, "", "beyond loopback"},
		{"ipv6 loopback", `server { listen = "[::1]:8000" }`, "", ""},
		{"bad port", `server { listen = "127.0.0.1:99999" }`, `1:19: listen address "127.0.0.1:99999" has port "99999"`, ""},
		{"keys silence warning", `server {
  listen = "0.0.0.0:8000"
  api_keys = ["k"]
}`, "", ""},
		{"api key with space", `server { api_keys = ["a b"] }`, "1:22: api key 1 is empty or holds white space", ""},
		{"allow_pull", `server { allow_pull = true }`, "", ""},
		{"allow_pull not a bool", `server {
  allow_pull = "yes please"
}`, "2:17: allow_pull has the wrong type: a bool is required", ""},
		{"variables refused", `model "m" { path = var.x }`, "1:20: Variables not allowed", ""},
		{"number as size", `memory {
  budget = 1000000
  reserve = 0
}
model "m" { path = "m.gguf" }`, "", ""},
		{"reserve default above budget", `memory { budget = "256MiB" }`, `1:19: memory reserve (512MiB) must be smaller than the memory budget (256MiB)`, ""},
		{"soft default above hard", `thermal { hard_limit = 70 }`, `1:24: thermal soft_limit (80 °C) must be below hard_limit (70 °C)`, ""},
		{"budget default cannot hold", `model "m" {
  path = "m.gguf"
  memory_budget = "10B"
}`, `3:19: memory_budget of model "m" (10B) cannot hold the model: its file alone is 100B`, ""},
		{"global budget points at path when absent", `memory { reserve = "1B" }
model "m" { path = "m.gguf" }`, "", ""},
		{"alias is own name", `model "m" {
  path = "m.gguf"
  aliases = ["m"]
}`, "", `repeats the model's own name`},
		{"preload with keep_alive 0", `model "m" {
  path = "m.gguf"
  preload = true
  keep_alive = "0s"
}`, "", "unloaded again as soon as it is idle"},
		{"pinned exceed budget", `memory {
  budget = "150B"
  reserve = "0"
}
model "a" {
  path = "m.gguf"
  pinned = true
}
model "b" {
  path = "m.gguf"
  pinned = true
}`, "", "pinned models add up to 200B"},
		{"model name with space", `model "a b" { path = "m.gguf" }`, `1:7: model name "a b" holds white space`, ""},
		{"model named auto", `model "auto" { path = "m.gguf" }`, `1:7: model name "auto" is reserved`, ""},
		{"tier via model attribute", `router {
  tier "s" {}
}
model "m" {
  path = "m.gguf"
  tier = "s"
}`, "", ""},
		{"tier max_tokens unlimited then limited", `router {
  tier "a" { models = ["m"] }
  tier "b" {
    models = ["m"]
    max_tokens = 10
  }
}
model "m" { path = "m.gguf" }`, `5:18: router tier "b" has max_tokens 10, less than the tier "a" before it (no limit)`, ""},
		{"duplicate attribute", `server {
  listen = ":1"
  listen = ":2"
}`, `3:3: Attribute redefined`, ""},
		{"huge number in a string list", `model "m" {
  path = "m.gguf"
  aliases = [1e999999999]
}`, `3:13: aliases holds a number out of range`, ""},
		{"huge size by arithmetic", `memory { budget = 1e300 * 1e300 }`, `1:19: budget holds a number out of range`, ""},
		{"fractional number as size", `memory { budget = 1.5 }`, `1:19: budget is a number that is not a whole number`, ""},
		{"list as duration", `server { request_timeout = ["5m"] }`, `1:28: request_timeout has the wrong type: it must be a string`, ""},
		{"int out of range", `model "m" {
  path = "m.gguf"
  context = 1e30
}`, `3:13: context has the wrong type: value must be a whole number`, ""},
		{"numeric keep_alive", `model "m" {
  path = "m.gguf"
  keep_alive = -1
}`, "", ""},
		{"missing path", `model "m" {}`, `1:11: Missing required argument`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), cfg)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				ws := c.Warnings.Error()
				if tt.warn == "" && len(c.Warnings) > 0 {
					t.Errorf("unexpected warnings: %s", ws)
				}
				if tt.warn != "" && !strings.Contains(ws, tt.warn) {
					t.Errorf("warnings %q, want %q", ws, tt.warn)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.err)
			}
			pos, frag, _ := strings.Cut(tt.err, ": ")
			line := strings.Split(err.Error(), "\n")[0]
			if !strings.HasPrefix(line, cfg+":"+pos+": ") || !strings.Contains(line, frag) {
				t.Errorf("error\n %s\nwant %s:%s: ...%s...", err, cfg, pos, frag)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.hcl")
	_, err := Load(p)
	if err == nil || err.Error() != p+": the config file does not exist" {
		t.Errorf("err = %v", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
}

func TestRelativePathsFollowConfigDir(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "etc")
	os.Mkdir(sub, 0o755)
	writeModel(t, dir, "m.gguf", 10)
	c, err := Parse([]byte(`model "m" { path = "../m.gguf" }
cache { dir = "c" }`), filepath.Join(sub, "jetai.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Models[0].Path != filepath.Join(dir, "m.gguf") || c.Cache.Dir != filepath.Join(sub, "c") || c.Dir != sub {
		t.Errorf("path %q cache %q dir %q", c.Models[0].Path, c.Cache.Dir, c.Dir)
	}
}

// TestModelFileWarnings: a model file that is missing, unreadable or not
// GGUF is a warning at the path's file:line:col, not an error: the config is
// valid, the model carries FileError and no size, and the other models are
// untouched.
func TestModelFileWarnings(t *testing.T) {
	dir := t.TempDir()
	good := writeModel(t, dir, "good.gguf", 100)
	writeModel(t, dir, "file.gguf", 10)
	os.WriteFile(filepath.Join(dir, "text.bin"), []byte("not a model\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "empty.gguf"), nil, 0o644)
	tests := []struct {
		name, path string
		frags      []string
	}{
		{"missing relative", "models/nope.gguf", []string{filepath.Join(dir, "models/nope.gguf"), `of model "m" does not exist`, "jetai-ctl import"}},
		{"missing absolute", "/nonexistent/jetai/x.gguf", []string{"/nonexistent/jetai/x.gguf", "does not exist", "unavailable until it is fixed"}},
		{"not gguf", "text.bin", []string{"text.bin", `of model "m" is not a GGUF file`}},
		{"empty", "empty.gguf", []string{"empty.gguf", "is not a GGUF file"}},
		// A path through a regular file fails with ENOTDIR: unreadable,
		// whoever runs the test (root reads files whatever their mode).
		{"unreadable", "file.gguf/x.gguf", []string{"file.gguf/x.gguf", "cannot be read: not a directory", "readable by the user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "jetai.hcl")
			src := "model \"ok\" { path = \"" + good + "\" }\nmodel \"m\" {\n  path = \"" + tt.path + "\"\n}\n"
			c, err := Parse([]byte(src), cfg)
			if err != nil {
				t.Fatalf("error, want a warning:\n%v", err)
			}
			if len(c.Warnings) != 1 {
				t.Fatalf("warnings = %v, want one", c.Warnings)
			}
			w := c.Warnings[0]
			if w.Severity != Warning || w.String()[:len(cfg+":3:10: warning: ")] != cfg+":3:10: warning: " {
				t.Errorf("warning %q, want it at %s:3:10", w, cfg)
			}
			for _, f := range tt.frags {
				if !strings.Contains(w.Message, f) {
					t.Errorf("warning %q lacks %q", w.Message, f)
				}
			}
			m, _ := c.Lookup("m")
			if m.FileError == "" || m.FileSize != 0 || !strings.Contains(w.Message, m.FileError[len("model file "+m.Path):]) {
				t.Errorf("model: file error %q size %d", m.FileError, m.FileSize)
			}
			if ok, _ := c.Lookup("ok"); ok.FileError != "" || ok.FileSize != 100 {
				t.Errorf("the good model: file error %q size %d", ok.FileError, ok.FileSize)
			}
			// Check's report (jetaid --check-config, jetai-ctl validate):
			// usable, the warning listed.
			os.WriteFile(cfg, []byte(src), 0o644)
			r := Check(cfg)
			if !r.OK || len(r.Diagnostics) != 1 || r.Diagnostics[0] != w.String() || !strings.Contains(r.String(), ": ok (2 models") {
				t.Errorf("Check: ok %v diagnostics %q\n%s", r.OK, r.Diagnostics, r)
			}
		})
	}
	if os.Geteuid() != 0 {
		p := writeModel(t, dir, "m0.gguf", 10)
		os.Chmod(p, 0)
		c, err := Parse([]byte(`model "m" { path = "m0.gguf" }`), filepath.Join(dir, "x.hcl"))
		if err != nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Message, "cannot be read: permission denied") {
			t.Errorf("mode 0: err %v warnings %v", err, c.Warnings)
		}
	}
}

// TestRealModel validates a config that names the real tiny model.
func TestRealModel(t *testing.T) {
	p := testmodel.Path(t)
	c, err := Parse([]byte(`model "stories" { path = "`+p+`" }`), "jetai.hcl")
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if c.Models[0].FileSize != Size(fi.Size()) {
		t.Errorf("file size %d, want %d", c.Models[0].FileSize, fi.Size())
	}
}

func TestRouterSelect(t *testing.T) {
	r := Router{Tiers: []Tier{
		{Name: "small", MaxPromptTokens: 512, MaxTokens: 256},
		{Name: "medium", MaxPromptTokens: 2048, MaxTokens: 1024, Structured: true},
		{Name: "large"},
	}}
	tests := []struct {
		req  Request
		want string
	}{
		{Request{PromptTokens: 10, MaxTokens: 50}, "small"},
		{Request{PromptTokens: 512, MaxTokens: 256}, "small"},
		{Request{PromptTokens: 513}, "medium"},
		{Request{PromptTokens: 10, MaxTokens: 300}, "medium"},
		{Request{PromptTokens: 10, Structured: true}, "medium"},
		{Request{PromptTokens: 5000, Structured: true}, "large"},
		{Request{PromptTokens: 1 << 20, MaxTokens: 1 << 20}, "large"},
	}
	for _, tt := range tests {
		if got := r.Select(tt.req); got == nil || got.Name != tt.want {
			t.Errorf("Select(%+v) = %v, want %s", tt.req, got, tt.want)
		}
	}
	// No tier fits and the last has limits: the largest still answers.
	r2 := Router{Tiers: []Tier{{Name: "only", MaxPromptTokens: 10}}}
	if got := r2.Select(Request{PromptTokens: 99}); got.Name != "only" {
		t.Errorf("fallback = %v", got)
	}
	if (&Router{}).Select(Request{}) != nil {
		t.Error("Select without tiers is not nil")
	}
	if tr, ok := r.Tier("medium"); !ok || tr.Name != "medium" {
		t.Error("Tier(medium)")
	}
}

// TestMain writes the stand-in model files the fixtures point at
// (testdata/config/models): a GGUF magic padded to the sizes the budget
// checks need, and a file that is not a GGUF. They carry no weights, so they
// are made here rather than kept in git.
func TestMain(m *testing.M) {
	dir := filepath.Join(fixtures, "models")
	files := map[string][]byte{
		"small.gguf":  ggufStandIn(64),
		"medium.gguf": ggufStandIn(4 << 10),
		"large.gguf":  ggufStandIn(8 << 10),
		"notgguf.bin": []byte("not a model\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "config tests: write fixture:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func ggufStandIn(size int) []byte {
	b := make([]byte, size)
	copy(b, "GGUF")
	return b
}

// TestAllowPull: off unless the server block sets it, and a change applies
// live (no restart).
func TestAllowPull(t *testing.T) {
	dir := t.TempDir()
	off, err := Parse([]byte(`server {}`), filepath.Join(dir, "a.hcl"))
	if err != nil || off.Server.AllowPull {
		t.Fatalf("default: %v, allow_pull %v", err, off.Server.AllowPull)
	}
	on, err := Parse([]byte(`server { allow_pull = true }`), filepath.Join(dir, "b.hcl"))
	if err != nil || !on.Server.AllowPull {
		t.Fatalf("set: %v, allow_pull %v", err, on.Server.AllowPull)
	}
	p := Diff(off, on)
	if got := p.String(); !strings.Contains(got, "server.allow_pull") || strings.Contains(got, "needs process restart") {
		t.Fatalf("diff %q: want server.allow_pull, live", got)
	}
}

// TestWarmSpare: memory.warm_spare defaults to on, takes a bool (anything
// else is an error at its line and column) and changes live on reload.
func TestWarmSpare(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range []struct {
		src     string
		want    bool
		wantErr string
	}{
		{`memory {}`, true, ""},
		{`server {}`, true, ""},
		{"memory {\n  warm_spare = false\n}", false, ""},
		{"memory {\n  warm_spare = true\n}", true, ""},
		{"memory {\n  warm_spare = \"maybe\"\n}", false, "2:17"},
	} {
		c, err := Parse([]byte(tc.src), filepath.Join(dir, fmt.Sprintf("%d.hcl", i)))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "bool") {
				t.Errorf("%q: error %v, want one at %s about a bool", tc.src, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.Memory.WarmSpare != tc.want {
			t.Errorf("%q: %v, warm_spare %v, want %v", tc.src, err, c != nil && c.Memory.WarmSpare, tc.want)
		}
	}
	on, _ := Parse([]byte(`memory {}`), filepath.Join(dir, "on.hcl"))
	off, _ := Parse([]byte("memory {\n  warm_spare = false\n}"), filepath.Join(dir, "off.hcl"))
	if got := Diff(on, off).String(); !strings.Contains(got, "memory.warm_spare") || strings.Contains(got, "needs process restart") {
		t.Fatalf("diff %q: want memory.warm_spare, live", got)
	}
}
