package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/internal/testrunner"
	"github.com/jetai/jetai/modelgen"
)

// The test binary doubles as `jetaid tool`.
func TestMain(m *testing.M) {
	testrunner.ServeIfRunner()
	os.Exit(m.Run())
}

func newIngester(t *testing.T) (*Ingester, *cache.Cache) {
	t.Helper()
	c, err := cache.Open(cache.Options{Dir: t.TempDir(), StageSameDevice: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Cache: c, Command: testrunner.Command(), Env: testrunner.ToolEnv()})
	if err != nil {
		t.Fatal(err)
	}
	return g, c
}

// pasteable checks that block is a model block the config accepts and
// returns the model it describes.
func pasteable(t *testing.T, block string) config.Model {
	t.Helper()
	cfg, err := config.Parse([]byte(block), filepath.Join(t.TempDir(), "jetai.hcl"))
	if err != nil {
		t.Fatalf("the printed block is not a usable config: %v\n%s", err, block)
	}
	return cfg.Models[0]
}

func TestImport(t *testing.T) {
	g, c := newIngester(t)
	spec := modelgen.Tiny()
	spec.ChatTemplate = modelgen.ChatML
	src := testmodel.Gen(t, spec)
	var last int64
	res, err := g.Import(context.Background(), src, "tiny", func(d, _ int64) { last = d })
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(src)
	f := res.Facts
	if f.Architecture != "llama" || f.FileType != "F16" || f.FileBytes != st.Size() || f.Layers != spec.Layers || !f.ChatTemplate || f.Estimate.Total == 0 {
		t.Fatalf("facts %+v", f)
	}
	if last != st.Size() || res.Entry.Origin != "imported" || !strings.HasPrefix(res.Entry.Path, c.ModelsDir()) {
		t.Fatalf("entry %+v, progress %d", res.Entry, last)
	}
	m := pasteable(t, res.Block)
	if m.Name != "tiny" || m.Path != res.Entry.Path {
		t.Fatalf("block names %q at %s:\n%s", m.Name, m.Path, res.Block)
	}

	dir := t.TempDir()
	notModel := filepath.Join(dir, "x.gguf")
	os.WriteFile(notModel, []byte("not a model at all"), 0o644)
	b, _ := os.ReadFile(src)
	trunc := filepath.Join(dir, "t.gguf")
	os.WriteFile(trunc, b[:len(b)-1000], 0o644)
	lora := filepath.Join(dir, "lora.gguf")
	modelgen.GenerateLoRA(lora, modelgen.LoRA{Base: spec, Rank: 2, StdDev: 0.1})
	for name, tc := range map[string]struct{ path, want string }{
		"missing":   {filepath.Join(dir, "none.gguf"), "no such file"},
		"not gguf":  {notModel, "not a GGUF model"},
		"truncated": {trunc, "truncated"},
		"adapter":   {lora, "not a model"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := g.Import(context.Background(), tc.path, "", nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if n := len(c.Entries()); n != 1 {
		t.Fatalf("%d entries after failed imports", n)
	}
}

func TestQuantize(t *testing.T) {
	g, c := newIngester(t)
	src := testmodel.Gen(t, modelgen.Tiny())
	j, err := g.Quantize(context.Background(), src, "", "q8_0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(src)
	if res.Entry.Size >= st.Size() || res.Facts.FileType != "Q8_0" || res.Entry.Origin != "quantized" {
		t.Fatalf("quantized %d bytes (source %d), facts %+v", res.Entry.Size, st.Size(), res.Facts)
	}
	if d, n := j.Progress(); n == 0 || d != n {
		t.Fatalf("progress %d/%d at the end", d, n)
	}
	m := pasteable(t, res.Block)
	if m.Path != res.Entry.Path || !strings.HasSuffix(m.Name, "-q8_0") {
		t.Fatalf("block:\n%s", res.Block)
	}
	if _, err := g.Quantize(context.Background(), src, "", "q9_9"); err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Fatalf("bad type: %v", err)
	}
	left, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp"))
	if len(left) != 0 {
		t.Fatalf("tmp/ holds %s", left[0].Name())
	}
}

// badArch writes a copy of a generated model whose general.architecture
// names no architecture llama.cpp knows: the GGUF layout is valid, and
// llama.cpp fails on it with "unknown model architecture".
func badArch(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(testmodel.Gen(t, modelgen.Tiny()))
	if err != nil {
		t.Fatal(err)
	}
	k := bytes.Index(b, []byte("general.architecture"))
	i := bytes.Index(b[k:], []byte("llama"))
	if k < 0 || i < 0 {
		t.Fatal("no general.architecture in the generated model")
	}
	copy(b[k+i:], "llamx")
	p := filepath.Join(t.TempDir(), "llamx.gguf")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestToolErrorOnce: when llama.cpp fails in `jetaid tool`, its error line
// is in the tool's output once (its log goes to stderr, so the tool's own
// error must not repeat it), and a failed quantize job's error holds it
// once.
func TestToolErrorOnce(t *testing.T) {
	g, _ := newIngester(t)
	bad := badArch(t)
	const line = "unknown model architecture: 'llamx'"
	for _, args := range [][]string{{"check", bad}, {"quantize", bad, filepath.Join(t.TempDir(), "out.gguf"), "q8_0"}} {
		t.Run(args[0], func(t *testing.T) {
			out, err := g.command(context.Background(), args...).CombinedOutput()
			if err == nil {
				t.Fatalf("tool %s succeeded:\n%s", args[0], out)
			}
			if n := strings.Count(string(out), line); n != 1 {
				t.Fatalf("tool %s output holds %q %d times, want once:\n%s", args[0], line, n, out)
			}
		})
	}
	j, err := g.Quantize(context.Background(), bad, "", "q8_0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Wait(context.Background())
	if err == nil || strings.Count(err.Error(), line) != 1 {
		t.Fatalf("quantize job error holds the llama.cpp line other than once: %v", err)
	}
}

// procState reads the state letter of a process from /proc.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func TestQuantizePauseResumeCancel(t *testing.T) {
	g, c := newIngester(t)
	src := testmodel.Gen(t, modelgen.Small())
	j, err := g.Quantize(context.Background(), src, "small", "q4_k_m")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Pause(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for procState(j.cmd.Process.Pid) != "T" {
		if time.Now().After(deadline) {
			t.Fatalf("paused child is in state %q", procState(j.cmd.Process.Pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := j.Resume(); err != nil {
		t.Fatal(err)
	}
	if s := procState(j.cmd.Process.Pid); s == "T" {
		time.Sleep(50 * time.Millisecond)
		if s = procState(j.cmd.Process.Pid); s == "T" {
			t.Fatal("child still stopped after Resume")
		}
	}
	j.Pause() // cancelling a paused job must work too
	j.Cancel()
	if _, err := j.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job: %v", err)
	}
	if len(c.Entries()) != 0 {
		t.Fatal("a cancelled quantize added a file")
	}
	left, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp"))
	if len(left) != 0 {
		t.Fatalf("tmp/ holds %s after cancel", left[0].Name())
	}
	// A context that ends cancels too.
	ctx, cancel := context.WithCancel(context.Background())
	j, err = g.Quantize(ctx, src, "small2", "q4_k_m")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := j.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("job of an ended context: %v", err)
	}
}
