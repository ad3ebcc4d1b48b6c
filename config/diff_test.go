package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const diffBase = `
server {
  listen = "127.0.0.1:8000"
  api_keys = ["k1"]
}
memory { budget = "4GiB" }
router {
  tier "small" { models = ["a"] }
}
model "a" {
  path = "a.gguf"
  context = 1024
  priority = 10
}
model "b" {
  path = "b.gguf"
  aliases = ["bee"]
}
`

func parseIn(t *testing.T, dir, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), filepath.Join(dir, "jetai.hcl"))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return c
}

func fieldNames(fs []FieldChange) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Field)
	}
	return out
}

func changeNames(cs []ModelChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+":"+strings.Join(fieldNames(c.Fields), ","))
	}
	return out
}

func TestDiff(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.gguf", "b.gguf", "c.gguf"} {
		writeModel(t, dir, n, 64)
	}
	old := parseIn(t, dir, diffBase)
	tests := []struct {
		name     string
		edit     func(string) string
		added    []string
		removed  []string
		restart  []string // "model:field,field"
		update   []string
		same     []string
		live     []string
		procRest []string
	}{
		{name: "identical", edit: func(s string) string { return s }, same: []string{"a", "b"}},
		{name: "comment only", edit: func(s string) string { return "# hello\n" + s }, same: []string{"a", "b"}},
		{name: "priority in place",
			edit:   func(s string) string { return strings.Replace(s, "priority = 10", "priority = 80", 1) },
			update: []string{"a:priority"}, same: []string{"b"}},
		{name: "context restarts",
			edit:    func(s string) string { return strings.Replace(s, "context = 1024", "context = 4096", 1) },
			restart: []string{"a:context"}, same: []string{"b"}},
		{name: "restart lists in-place fields too",
			edit: func(s string) string {
				return strings.Replace(s, "context = 1024\n  priority = 10", "context = 512\n  priority = 11\n  gpu_layers = -1", 1)
			},
			restart: []string{"a:context,gpu_layers,priority"}, same: []string{"b"}},
		{name: "path restarts",
			edit:    func(s string) string { return strings.Replace(s, `path = "b.gguf"`, `path = "c.gguf"`, 1) },
			restart: []string{"b:path"}, same: []string{"a"}},
		{name: "in-place fields",
			edit: func(s string) string {
				return strings.Replace(s, `aliases = ["bee"]`, `aliases = ["bee", "b2"]
  keep_alive = "forever"
  pinned = true
  preload = true
  memory_budget = "1GiB"
  sampling {
    temperature = 0.1
    stop = ["x"]
  }`, 1)
			},
			update: []string{"b:aliases,memory_budget,keep_alive,preload,pinned,sampling.temperature,sampling.stop"}, same: []string{"a"}},
		{name: "runner settings restart",
			edit: func(s string) string {
				return strings.Replace(s, `aliases = ["bee"]`, `aliases = ["bee"]
  parallel = 8
  threads = 2
  flash_attention = true
  kv_cache = "q8_0"
  cache = false`, 1)
			},
			restart: []string{"b:parallel,threads,flash_attention,kv_cache,cache"}, same: []string{"a"}},
		{name: "threads in place",
			edit: func(s string) string {
				return strings.Replace(s, `aliases = ["bee"]`, `aliases = ["bee"]
  threads = 3`, 1)
			},
			update: []string{"b:threads"}, same: []string{"a"}},
		{name: "tier in place, router live",
			edit: func(s string) string {
				return strings.Replace(s, `aliases = ["bee"]`, `aliases = ["bee"]
  tier = "small"`, 1)
			},
			update: []string{"b:tier"}, same: []string{"a"}, live: []string{"router.tiers"}},
		{name: "add and remove",
			edit: func(s string) string {
				s = strings.Replace(s, `model "b" {
  path = "b.gguf"
  aliases = ["bee"]
}`, "", 1)
				return s + `model "c" { path = "c.gguf" }`
			},
			added: []string{"c"}, removed: []string{"b"}, same: []string{"a"}},
		{name: "rename is remove and add",
			edit:  func(s string) string { return strings.Replace(s, `model "b"`, `model "b2"`, 1) },
			added: []string{"b2"}, removed: []string{"b"}, same: []string{"a"}},
		{name: "process restart",
			edit: func(s string) string {
				return strings.Replace(s, `listen = "127.0.0.1:8000"`, `listen = "127.0.0.1:9000"
  admin_socket = "/run/x.sock"`, 1)
			},
			same: []string{"a", "b"}, procRest: []string{"server.listen", "server.admin_socket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nw := parseIn(t, dir, tt.edit(diffBase))
			p := Diff(old, nw)
			check := func(what string, got, want []string) {
				if len(got) == 0 && len(want) == 0 {
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %q, want %q\nplan: %s", what, got, want, p)
				}
			}
			check("added", p.Added, tt.added)
			check("removed", p.Removed, tt.removed)
			check("restarted", changeNames(p.Restarted), tt.restart)
			check("updated", changeNames(p.Updated), tt.update)
			check("unchanged", p.Unchanged, tt.same)
			check("live", fieldNames(p.Live), tt.live)
			check("needs process restart", fieldNames(p.NeedsProcessRestart), tt.procRest)
			for _, f := range p.NeedsProcessRestart {
				if !f.Restart {
					t.Errorf("%s in NeedsProcessRestart without Restart", f.Field)
				}
			}
		})
	}
}

func TestDiffGlobals(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "a.gguf", 64)
	writeModel(t, dir, "b.gguf", 64)
	old := parseIn(t, dir, diffBase)
	src := strings.Replace(diffBase, `budget = "4GiB"`, `budget = "3GiB"`, 1)
	src = strings.Replace(src, `api_keys = ["k1"]`, `api_keys = ["k2"]
  queue_total = 100
  log_level = "debug"
  cors_origins = ["*"]
  allowed_hosts = ["jetson.lan"]`, 1)
	src = strings.Replace(src, `router {`, `router {
  default_model = "bee"`, 1)
	src += `thermal { soft_limit = 70 }`
	nw := parseIn(t, dir, src)
	p := Diff(old, nw)
	want := []string{"server.api_keys", "server.cors_origins", "server.allowed_hosts", "server.queue_total", "server.log_level",
		"memory.budget", "thermal.soft_limit", "router.default_model"}
	if got := fieldNames(p.Live); !reflect.DeepEqual(got, want) {
		t.Errorf("live = %q, want %q", got, want)
	}
	if len(p.NeedsProcessRestart) != 0 || len(p.Updated) != 0 || len(p.Restarted) != 0 {
		t.Errorf("plan %s", p)
	}
	for _, f := range p.Live {
		if strings.Contains(f.Old+f.New, "k1") || strings.Contains(f.Old+f.New, "k2") {
			t.Errorf("API key shown in plan: %+v", f)
		}
		if f.Field == "memory.budget" && (f.Old != "4GiB" || f.New != "3GiB") {
			t.Errorf("memory.budget change = %+v", f)
		}
		if f.Field == "router.default_model" && f.New != `"b"` {
			t.Errorf("default model change = %+v (aliases resolve to names)", f)
		}
	}
	s := p.String()
	for _, frag := range []string{"models: +0 -0 restart 0 update 0 unchanged 2", "live: ", "memory.budget 4GiB→3GiB"} {
		if !strings.Contains(s, frag) {
			t.Errorf("String() = %q, want %q", s, frag)
		}
	}
}

func TestDiffFileReplaced(t *testing.T) {
	dir := t.TempDir()
	p := writeModel(t, dir, "a.gguf", 64)
	writeModel(t, dir, "b.gguf", 64)
	old := parseIn(t, dir, diffBase)
	writeModel(t, dir, "a.gguf", 128) // same path, new file
	os.Chtimes(p, time.Now(), time.Now().Add(time.Hour))
	nw := parseIn(t, dir, diffBase)
	plan := Diff(old, nw)
	if got := changeNames(plan.Restarted); !reflect.DeepEqual(got, []string{"a:file"}) {
		t.Errorf("restarted = %q", got)
	}
}

// TestDiffFileGoneOrBack: a model file that went away is an update (a
// running runner has it open and serves on; the pool finds the problem at
// the next load); one that appeared restarts the model (it takes the file).
func TestDiffFileGoneOrBack(t *testing.T) {
	dir := t.TempDir()
	p := writeModel(t, dir, "a.gguf", 64)
	writeModel(t, dir, "b.gguf", 64)
	present := parseIn(t, dir, diffBase)
	os.Remove(p)
	gone := parseIn(t, dir, diffBase)
	if len(gone.Warnings) != 1 || !strings.Contains(gone.Warnings[0].Message, "does not exist") {
		t.Fatalf("warnings %v", gone.Warnings)
	}
	plan := Diff(present, gone)
	if got := changeNames(plan.Updated); len(plan.Restarted) != 0 || !reflect.DeepEqual(got, []string{"a:file"}) {
		t.Errorf("file gone: restarted %q updated %q", changeNames(plan.Restarted), got)
	}
	if f := plan.Updated[0].Fields[0]; f.New != "unavailable" || f.Restart {
		t.Errorf("file gone: change %+v", f)
	}
	if p2 := Diff(gone, parseIn(t, dir, diffBase)); !p2.Empty() {
		t.Errorf("still gone: %s", p2)
	}
	writeModel(t, dir, "a.gguf", 64)
	plan = Diff(gone, parseIn(t, dir, diffBase))
	if got := changeNames(plan.Restarted); !reflect.DeepEqual(got, []string{"a:file"}) {
		t.Errorf("file back: restarted %q updated %q", got, changeNames(plan.Updated))
	}
}

func TestDiffFirstStartAndJSON(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "a.gguf", 64)
	writeModel(t, dir, "b.gguf", 64)
	c := parseIn(t, dir, diffBase)
	p := Diff(nil, c)
	if !reflect.DeepEqual(p.Added, []string{"a", "b"}) || p.NewHash != c.Hash || p.OldHash != "" {
		t.Errorf("first start plan = %+v", p)
	}
	if e := Diff(c, c); !e.Empty() || e.String() != "no changes" {
		t.Errorf("Diff(c, c) = %s", e)
	}
	nw := parseIn(t, dir, strings.Replace(diffBase, "context = 1024", "context = 2048", 1))
	b, err := json.Marshal(Diff(c, nw))
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"restarted":[{"name":"a","fields":[{"field":"context","old":"1024","new":"2048","restart":true}]}]`, `"unchanged":["b"]`, `"needs_process_restart":null`} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("JSON %s\nwant %s", b, frag)
		}
	}
	if s := Diff(c, nw).String(); s != "models: +0 -0 restart 1 (a: context) update 0 unchanged 1" {
		t.Errorf("String() = %q", s)
	}
}
