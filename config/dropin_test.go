package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dropInEnv lays out a main config and its drop-in directory.
func dropInEnv(t *testing.T, main string, dropIns map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeModel(t, dir, "m.gguf", 100)
	writeModel(t, dir, "n.gguf", 200)
	p := filepath.Join(dir, "jetai.hcl")
	must(t, os.WriteFile(p, []byte(main), 0o644))
	if dropIns != nil {
		must(t, os.Mkdir(DropInDir(p), 0o755))
	}
	for name, src := range dropIns {
		if strings.HasSuffix(name, "/") {
			must(t, os.Mkdir(filepath.Join(DropInDir(p), name), 0o755))
			continue
		}
		must(t, os.WriteFile(filepath.Join(DropInDir(p), name), []byte(src), 0o644))
	}
	return p
}

func TestDropInLoad(t *testing.T) {
	const mainM = `memory { budget = "1GiB" }
model "m" { path = "m.gguf" }
`
	tests := []struct {
		name    string
		main    string
		dropIns map[string]string
		models  []string // the models, in order, when valid
		err     []string // fragments of the diagnostics: "FILE:line:col: message"
	}{
		{name: "no directory", main: mainM, models: []string{"m"}},
		{name: "empty directory", main: mainM, dropIns: map[string]string{}, models: []string{"m"}},
		{name: "lexical order after the main file", main: mainM, dropIns: map[string]string{
			"20-b.hcl": `model "b" { path = "n.gguf" }`,
			"10-a.hcl": `model "a" { path = "m.gguf" }
model "a2" { path = "m.gguf" }`,
		}, models: []string{"m", "a", "a2", "b"}},
		{name: "editor files, other names and directories are not read", main: mainM, dropIns: map[string]string{
			".#x.hcl":     `model "lock" { path = "m.gguf" }`,
			"x.hcl~":      `model "backup" { path = "m.gguf" }`,
			".x.hcl.swp":  `garbage {`,
			"4913":        ``,
			"notes.txt":   `not hcl {`,
			"sub.hcl/":    ``,
			"x.hcl":       `model "x" { path = "m.gguf" }`,
			"empty.hcl":   "\n",
			"comment.hcl": "# nothing yet\n",
		}, models: []string{"m", "x"}},
		{name: "a drop-in may refer to a model of the main file", main: `model "m" { path = "m.gguf" }
router {
  tier "small" { models = ["d"] }
}`, dropIns: map[string]string{"d.hcl": `model "d" {
  path = "n.gguf"
  tier = "small"
}`}, models: []string{"m", "d"}},
		{name: "duplicate across files names both places", main: mainM, dropIns: map[string]string{
			"m.hcl": "\nmodel \"m\" { path = \"n.gguf\" }\n",
		}, err: []string{`jetai.d/m.hcl:2:7: model "m" is defined twice; the first definition is at `, `jetai.hcl:2:7: model "m" is defined again at `, `jetai.d/m.hcl:2:7; a model name belongs to one file`}},
		{name: "alias of a drop-in model that is a main model's name", main: mainM, dropIns: map[string]string{
			"a.hcl": `model "a" {
  path    = "m.gguf"
  aliases = ["m"]
}`,
		}, err: []string{`jetai.d/a.hcl:3:14: alias "m" of model "a" is the name of another model (defined at `, `jetai.hcl:2:7)`}},
		{name: "an error in a drop-in names it", main: mainM, dropIns: map[string]string{
			"a.hcl": `model "a" {
  path    = "m.gguf"
  context = -1
}`,
		}, err: []string{`jetai.d/a.hcl:3:13: context is -1; context is the per-slot context`}},
		{name: "the same error at the same position in two files: both reported", main: mainM, dropIns: map[string]string{
			"a.hcl": "model \"a\" {\n  path    = \"m.gguf\"\n  context = -1\n}\n",
			"b.hcl": "model \"b\" {\n  path    = \"m.gguf\"\n  context = -1\n}\n",
		}, err: []string{`jetai.d/a.hcl:3:13: context is -1`, `jetai.d/b.hcl:3:13: context is -1`}},
		{name: "a type error names its own attribute, not one at the same position in another file", main: "model \"m\" {\n  path     = \"m.gguf\"\n  parallel = \"x\"\n}\n", dropIns: map[string]string{
			"a.hcl": "model \"a\" {\n  path     = \"m.gguf\"\n  priority = 1\n}\n",
		}, err: []string{`jetai.hcl:3:15: parallel has the wrong type`}},
		{name: "a syntax error in a drop-in names it", main: mainM, dropIns: map[string]string{
			"ok.hcl":  `model "ok" { path = "m.gguf" }`,
			"bad.hcl": "model \"a\" {\n  path = \n}\n",
		}, err: []string{`jetai.d/bad.hcl:2:`}},
		{name: "a server block in a drop-in is refused", main: mainM, dropIns: map[string]string{
			"s.hcl": "server {\n  listen = \"0.0.0.0:9\"\n}\n",
		}, err: []string{`jetai.d/s.hcl:1:1: a drop-in file holds only model blocks; the server block belongs in the main config file `}},
		{name: "memory and router blocks too", main: mainM, dropIns: map[string]string{
			"r.hcl": "memory { budget = \"9GiB\" }\nrouter { default_model = \"m\" }\n",
		}, err: []string{`jetai.d/r.hcl:1:1: a drop-in file holds only model blocks; the memory block`, `jetai.d/r.hcl:2:1: a drop-in file holds only model blocks; the router block`}},
		{name: "a setting outside a block", main: mainM, dropIns: map[string]string{
			"a.hcl": `budget = "1GiB"`,
		}, err: []string{`jetai.d/a.hcl:1:1: a drop-in file holds only model blocks; the setting "budget" belongs in a block of the main config file`}},
		{name: "a GGUF file named .hcl", main: mainM, dropIns: map[string]string{
			"model.hcl": "GGUF\x03\x00\x00\x00",
		}, err: []string{`jetai.d/model.hcl:1:1: this is a GGUF model file, not a config`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := dropInEnv(t, tc.main, tc.dropIns)
			cfg, err := Load(p)
			// Check (jetaid --check-config), CheckSource (the admin
			// validate command) and Load agree.
			rep, srcRep := Check(p), CheckSource([]byte(tc.main), p)
			if rep.OK != (err == nil) || srcRep.OK != (err == nil) || strings.Join(rep.Diagnostics, "\n") != strings.Join(srcRep.Diagnostics, "\n") {
				t.Errorf("Check and CheckSource disagree with Load (%v):\n%v\n%v", err, rep.Diagnostics, srcRep.Diagnostics)
			}
			if tc.err != nil {
				if err == nil {
					t.Fatalf("loaded; want errors %q", tc.err)
				}
				for _, f := range tc.err {
					if !strings.Contains(err.Error(), filepath.Dir(p)+"/"+strings.SplitN(f, ":", 2)[0]) || !strings.Contains(err.Error(), f) {
						t.Errorf("diagnostics lack %q (with the full file name):\n%v", f, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cfg.ModelNames(), " "); got != strings.Join(tc.models, " ") {
				t.Errorf("models %q, want %q", got, tc.models)
			}
			for _, m := range cfg.Models {
				if m.Path != filepath.Join(filepath.Dir(p), "m.gguf") && m.Path != filepath.Join(filepath.Dir(p), "n.gguf") {
					t.Errorf("model %s: path %s does not resolve against the main file's directory", m.Name, m.Path)
				}
				if !strings.HasPrefix(m.DefinedAt, m.File+":") {
					t.Errorf("model %s: defined at %q, file %q", m.Name, m.DefinedAt, m.File)
				}
			}
			if cfg.DropInDir != DropInDir(p) {
				t.Errorf("DropInDir %q", cfg.DropInDir)
			}
		})
	}
}

func TestDropInDefinedAt(t *testing.T) {
	p := dropInEnv(t, "model \"m\" { path = \"m.gguf\" }\n", map[string]string{"chat.hcl": "# added\nmodel \"chat\" { path = \"n.gguf\" }\n"})
	cfg, err := Load(p)
	must(t, err)
	m, _ := cfg.Lookup("m")
	c, _ := cfg.Lookup("chat")
	dropIn := filepath.Join(DropInDir(p), "chat.hcl")
	if m.File != p || m.DefinedAt != p+":1:7" || c.File != dropIn || c.DefinedAt != dropIn+":2:7" {
		t.Errorf("m in %s at %s; chat in %s at %s", m.File, m.DefinedAt, c.File, c.DefinedAt)
	}
	if len(cfg.DropIns) != 1 || cfg.DropIns[0] != dropIn {
		t.Errorf("DropIns %q", cfg.DropIns)
	}
}

// The hash covers the drop-ins: a config without any hashes as its file
// does; adding, changing or removing a drop-in changes it.
func TestDropInHash(t *testing.T) {
	const main = "model \"m\" { path = \"m.gguf\" }\n"
	p := dropInEnv(t, main, map[string]string{})
	hash := func() string {
		t.Helper()
		cfg, err := Load(p)
		must(t, err)
		return cfg.Hash
	}
	h0 := hash()
	if h0 != hashOf(main) {
		t.Errorf("no drop-ins: hash %s, want the file's sha256", h0)
	}
	d := filepath.Join(DropInDir(p), "a.hcl")
	must(t, os.WriteFile(d, []byte(`model "a" { path = "m.gguf" }`), 0o644))
	h1 := hash()
	must(t, os.WriteFile(d, []byte(`model "a" { path = "n.gguf" }`), 0o644))
	h2 := hash()
	must(t, os.Rename(d, filepath.Join(DropInDir(p), "b.hcl")))
	h3 := hash()
	must(t, os.Remove(filepath.Join(DropInDir(p), "b.hcl")))
	if h0 == h1 || h1 == h2 || h2 == h3 || hash() != h0 {
		t.Errorf("hashes %.8s %.8s %.8s %.8s %.8s", h0, h1, h2, h3, hash())
	}
}

func TestDropInUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	p := dropInEnv(t, "model \"m\" { path = \"m.gguf\" }\n", map[string]string{"a.hcl": `model "a" { path = "m.gguf" }`})
	must(t, os.Chmod(filepath.Join(DropInDir(p), "a.hcl"), 0))
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "jetai.d/a.hcl: cannot read the drop-in file: permission denied") {
		t.Fatalf("err %v", err)
	}
	// Not "the config file does not exist": a reload keeps the old config
	// with this message rather than treating the config as deleted.
	if errors.Is(err, os.ErrNotExist) {
		t.Error("an unreadable drop-in reads as a missing config")
	}
}

// The watcher sees the drop-in directory: a drop-in added (also when the
// directory itself is created after the watch began), changed and removed
// is one change each, with the hash Load computes; editor files in the
// directory are no change.
func TestWatchDropIns(t *testing.T) {
	const main = "model \"m\" { path = \"m.gguf\" }\n"
	e := startWatch(t, WatchOptions{Debounce: 150 * time.Millisecond, Poll: -1}, plainFile(main))
	loaded := func() string {
		t.Helper()
		writeModel(t, e.dir, "m.gguf", 100)
		cfg, err := Load(e.path)
		must(t, err)
		return cfg.Hash
	}
	dir := DropInDir(e.path)
	must(t, os.Mkdir(dir, 0o755))
	e.none(400 * time.Millisecond) // an empty directory changes nothing

	d := filepath.Join(dir, "chat.hcl")
	tmp := filepath.Join(dir, ".chat.hcl.tmp")
	must(t, os.WriteFile(tmp, []byte(`model "chat" { path = "m.gguf" }`), 0o644))
	must(t, os.Rename(tmp, d))
	if c := e.next(3 * time.Second); c.Hash != loaded() {
		t.Errorf("added: hash %.12s, Load says %.12s", c.Hash, loaded())
	}
	must(t, os.WriteFile(filepath.Join(dir, ".chat.hcl.swp"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "chat.hcl~"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "4913"), nil, 0o644))
	e.none(500 * time.Millisecond)

	must(t, os.WriteFile(d, []byte(`model "chat" { path = "m.gguf" }
model "two" { path = "m.gguf" }`), 0o644))
	if c := e.next(3 * time.Second); c.Hash != loaded() {
		t.Errorf("changed: hash %.12s, Load says %.12s", c.Hash, loaded())
	}
	must(t, os.Remove(d))
	if c := e.next(3 * time.Second); c.Hash != hashOf(main) || c.Deleted {
		t.Errorf("removed: %+v, want the main file's hash", c)
	}
	e.none(300 * time.Millisecond)
}

// A drop-in directory made after the watch began is watched from then on.
func TestWatchDropInDirCreatedLater(t *testing.T) {
	e := startWatch(t, WatchOptions{Debounce: 100 * time.Millisecond, Poll: -1}, plainFile("model \"m\" { path = \"m.gguf\" }\n"))
	dir := DropInDir(e.path)
	must(t, os.Mkdir(dir, 0o755))
	time.Sleep(300 * time.Millisecond) // the check after the mkdir adds the watch
	must(t, os.WriteFile(filepath.Join(dir, "a.hcl"), []byte(`model "a" { path = "m.gguf" }`), 0o644))
	if c := e.next(3 * time.Second); c.Deleted || c.Hash == "" {
		t.Errorf("change %+v", c)
	}
}

// BenchmarkLoadDropIns: Load of a config whose models are spread over N
// drop-ins, against the same models in the main file (N=0).
func BenchmarkLoadDropIns(b *testing.B) {
	for _, n := range []int{0, 10, 100} {
		b.Run(fmt.Sprintf("dropins=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			b0 := make([]byte, 100)
			copy(b0, ggufMagic)
			if err := os.WriteFile(filepath.Join(dir, "m.gguf"), b0, 0o644); err != nil {
				b.Fatal(err)
			}
			var main strings.Builder
			main.WriteString("memory { budget = \"1GiB\" }\n")
			if n > 0 {
				if err := os.Mkdir(filepath.Join(dir, DropInDirName), 0o755); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 100 {
				block := fmt.Sprintf("model \"m%d\" {\n  path = \"m.gguf\"\n  context = 512\n}\n", i)
				if n == 0 {
					main.WriteString(block)
					continue
				}
				f, err := os.OpenFile(filepath.Join(dir, DropInDirName, fmt.Sprintf("%03d.hcl", i%n)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				f.WriteString(block)
				f.Close()
			}
			p := filepath.Join(dir, "jetai.hcl")
			if err := os.WriteFile(p, []byte(main.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := Load(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// LoadDropIn checks a drop-in's new content with everything else the
// config reads: in place of the file on disk, or as a new file in order.
func TestLoadDropIn(t *testing.T) {
	p := dropInEnv(t, "model \"m\" { path = \"m.gguf\" }\n", map[string]string{
		"a.hcl": `model "a" { path = "m.gguf" }`,
		"c.hcl": `model "c" { path = "m.gguf" }`,
	})
	dir := DropInDir(p)
	cfg, err := LoadDropIn(p, filepath.Join(dir, "a.hcl"), []byte(`model "a2" { path = "n.gguf" }`))
	if err != nil || strings.Join(cfg.ModelNames(), " ") != "m a2 c" {
		t.Fatalf("a.hcl replaced: %v %v", cfg, err)
	}
	cfg, err = LoadDropIn(p, filepath.Join(dir, "b.hcl"), []byte(`model "b" { path = "n.gguf" }`))
	if err != nil || strings.Join(cfg.ModelNames(), " ") != "m a b c" {
		t.Fatalf("b.hcl added: %v %v", cfg, err)
	}
	_, err = LoadDropIn(p, filepath.Join(dir, "b.hcl"), []byte("\nmodel \"c\" { path = \"n.gguf\" }"))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "c.hcl")+`:1:7: model "c" is defined twice; the first definition is at `+filepath.Join(dir, "b.hcl")+":2:7") {
		t.Fatalf("b.hcl repeating c: %v", err)
	}
	if rep := CheckDropIn(p, filepath.Join(dir, "b.hcl"), []byte("server {}")); rep.OK || rep.Path != filepath.Join(dir, "b.hcl") {
		t.Fatalf("CheckDropIn of a server block: %+v", rep)
	}
}
