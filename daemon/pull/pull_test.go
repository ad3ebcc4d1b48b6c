package pull

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/internal/testhub"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// tiny returns a generated ~3 MB model; seeds give different files.
func tiny(t *testing.T, seed uint64) string {
	s := modelgen.Tiny()
	s.Seed = seed
	return testmodel.Gen(t, s)
}

type rig struct {
	hub   *testhub.Hub
	cache *cache.Cache
	m     *Manager
	o     Options
	dir   string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{hub: testhub.New(t), dir: t.TempDir()}
	var err error
	r.cache, err = cache.Open(cache.Options{Dir: r.dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cache.Close)
	r.m = New(Config{Store: r.cache, Backoff: 10 * time.Millisecond})
	t.Cleanup(r.m.Close)
	r.o = Options{HFEndpoint: r.hub.URL, OllamaRegistry: r.hub.URL}
	return r
}

func (r *rig) pull(t *testing.T, source string) (Result, error) {
	t.Helper()
	src, err := ParseSource(source)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := r.m.Start(src.String(), src, r.o, nil)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return p.Result(ctx)
}

func partials(t *testing.T, dir string) []string {
	ents, _ := os.ReadDir(filepath.Join(dir, "downloads"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestPullQuantsSplitsProjector(t *testing.T) {
	r := newRig(t)
	a, b, c, d := tiny(t, 11), tiny(t, 12), tiny(t, 13), tiny(t, 14)
	r.hub.AddRepo(t, "org/Model-GGUF", map[string]string{
		"Model-Q4_K_M.gguf":                   a,
		"Model-Q8_0.gguf":                     b,
		"Q6_K/Model-Q6_K-00001-of-00002.gguf": c,
		"Q6_K/Model-Q6_K-00002-of-00002.gguf": d,
		"mmproj-Model-f16.gguf":               b,
	}, false)
	r.hub.AddRepo(t, "org/Other-GGUF", map[string]string{"Other-Q5_K_M.gguf": a, "Other-Q8_0.gguf": b}, false)

	res, err := r.pull(t, "hf.co/org/Model-GGUF")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 2 || res.Files[0].Path != "Model-Q4_K_M.gguf" || res.Files[1].Role != "mmproj" || res.Note != "" {
		t.Fatalf("default pull: %+v", res)
	}
	e, ok := r.cache.Lookup(res.Files[0].Name)
	if !ok || e.SHA256 != r.hub.SHA256("Model-Q4_K_M.gguf") || e.Origin != "pulled" || e.Source != "hf.co/org/Model-GGUF/Model-Q4_K_M.gguf" {
		t.Fatalf("cache entry: %+v %v", e, ok)
	}

	res, err = r.pull(t, "org/Model-GGUF:q6_k")
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, f := range res.Files {
		parts = append(parts, f.Role+":"+f.Path)
		if _, ok := r.cache.Lookup(f.Name); !ok {
			t.Errorf("%s not in the cache", f.Name)
		}
	}
	if got := strings.Join(parts, " "); got != "model:Q6_K/Model-Q6_K-00001-of-00002.gguf split:Q6_K/Model-Q6_K-00002-of-00002.gguf mmproj:mmproj-Model-f16.gguf" {
		t.Errorf("split pull: %s", got)
	}
	if !strings.HasSuffix(res.Files[0].Name, "-00001-of-00002.gguf") || !strings.HasSuffix(res.Files[1].Name, "-00002-of-00002.gguf") ||
		strings.TrimSuffix(res.Files[0].Name, "-00001-of-00002.gguf") != strings.TrimSuffix(res.Files[1].Name, "-00002-of-00002.gguf") {
		t.Errorf("split parts must keep one prefix and their suffixes (llama.cpp finds the parts by name): %s, %s", res.Files[0].Name, res.Files[1].Name)
	}
	// The projector is in the cache already: not fetched again.
	if !res.Files[2].Cached || res.Files[2].Fetched != 0 {
		t.Errorf("mmproj fetched twice: %+v", res.Files[2])
	}

	// No Q4_K_M: the closest is picked, and said.
	res, err = r.pull(t, "hf.co/org/Other-GGUF")
	if err != nil {
		t.Fatal(err)
	}
	if res.Files[0].Path != "Other-Q5_K_M.gguf" || !strings.Contains(res.Note, "picked Q5_K_M") {
		t.Errorf("fallback: %s, note %q", res.Files[0].Path, res.Note)
	}

	// One file by name.
	res, err = r.pull(t, "hf.co/org/Other-GGUF/Other-Q8_0.gguf")
	if err != nil || len(res.Files) != 1 || res.Files[0].Path != "Other-Q8_0.gguf" {
		t.Fatalf("file pull: %+v, %v", res, err)
	}
}

func TestPullNotFoundSuggests(t *testing.T) {
	r := newRig(t)
	r.hub.AddRepo(t, "org/Model-GGUF", map[string]string{"Model-Q4_K_M.gguf": tiny(t, 11), "Model-Q8_0.gguf": tiny(t, 12)}, false)
	for _, c := range []struct {
		src  string
		want []string
	}{
		{"hf.co/org/Model-GGUF:Q5_K_M", []string{"has no Q5_K_M", "closest quants: Q4_K_M, Q8_0"}},
		{"hf.co/org/Model-GGUF/Model-Q4_K_S.gguf", []string{"has no file Model-Q4_K_S.gguf", "closest files: Model-Q4_K_M.gguf"}},
		{"hf.co/org/Model:Q4_K_M", []string{"no repo org/Model", "closest repos: org/Model-GGUF"}},
		{"ollama:nosuch:1b", []string{"has no ollama:nosuch:1b"}},
	} {
		_, err := r.pull(t, c.src)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code() != CodeNotFound || pe.HTTPStatus() != 404 {
			t.Errorf("%s: %v, want a 404 not_found", c.src, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", c.src, err, w)
			}
		}
	}
	if p := partials(t, r.dir); len(p) != 0 {
		t.Errorf("left behind: %v", p)
	}
}

func TestPullGated(t *testing.T) {
	r := newRig(t)
	r.hub.AddRepo(t, "meta/Gated-GGUF", map[string]string{"Gated-Q4_K_M.gguf": tiny(t, 11)}, true)
	_, err := r.pull(t, "hf.co/meta/Gated-GGUF")
	var pe *Error
	if !errors.As(err, &pe) || pe.Code() != CodeGated || pe.HTTPStatus() != 403 {
		t.Fatalf("without a token: %v", err)
	}
	for _, w := range []string{"meta/Gated-GGUF", "gated", "HF_TOKEN", "hf_token_file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	r.o.HFToken, r.o.TokenFrom = "wrong", "HF_TOKEN"
	if _, err := r.pull(t, "hf.co/meta/Gated-GGUF"); err == nil || !strings.Contains(err.Error(), "was refused") {
		t.Errorf("with a wrong token: %v", err)
	}
	r.o.HFToken = r.hub.Token
	if _, err := r.pull(t, "hf.co/meta/Gated-GGUF"); err != nil {
		t.Errorf("with the token: %v", err)
	}
}

func TestPullOllama(t *testing.T) {
	r := newRig(t)
	model, proj := tiny(t, 21), tiny(t, 22)
	r.hub.AddOllama(t, "llama3.2:1b", model, proj)
	res, err := r.pull(t, "ollama:llama3.2:1b")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 2 || res.Files[0].Role != "model" || res.Files[1].Role != "mmproj" {
		t.Fatalf("%+v", res.Files)
	}
	e, ok := r.cache.Lookup(res.Files[0].Name)
	if !ok || e.SHA256 != r.hub.SHA256("llama3.2:1b/model") {
		t.Fatalf("model layer: %+v", e)
	}
	if st := r.hub.Stats("llama3.2:1b/template"); st.Gets != 0 {
		t.Errorf("the template layer is Ollama's own and was fetched")
	}
}

func TestPullResumesAfterCut(t *testing.T) {
	r := newRig(t)
	small := testmodel.Gen(t, modelgen.Small())
	r.hub.AddRepo(t, "org/Small-GGUF", map[string]string{"Small-F16.gguf": small}, false)
	st, _ := os.Stat(small)
	cut := st.Size() * 40 / 100
	r.hub.SetFault("Small-F16.gguf", &testhub.Fault{CutAt: cut})
	res, err := r.pull(t, "hf.co/org/Small-GGUF:F16")
	if err != nil {
		t.Fatal(err)
	}
	s := r.hub.Stats("Small-F16.gguf")
	twice := s.Served - s.Size
	t.Logf("size %d, served %d (twice %d) in %d requests, %d with a Range", s.Size, s.Served, twice, s.Gets, s.Ranged)
	if s.Ranged < 1 || twice > 1<<20 || twice < 0 {
		t.Errorf("a cut at 40%% cost %d bytes fetched twice (%d requests, %d ranged); want a Range resume, ≤ 1 MiB again", twice, s.Gets, s.Ranged)
	}
	if res.Files[0].Fetched != s.Size {
		t.Errorf("fetched %d, want %d", res.Files[0].Fetched, s.Size)
	}
	if p := partials(t, r.dir); len(p) != 0 {
		t.Errorf("left behind: %v", p)
	}
}

func TestPullChecksumMismatch(t *testing.T) {
	r := newRig(t)
	r.hub.AddRepo(t, "org/Bad-GGUF", map[string]string{"Bad-Q4_K_M.gguf": tiny(t, 31)}, false)
	r.hub.SetFault("Bad-Q4_K_M.gguf", &testhub.Fault{Corrupt: true})
	_, err := r.pull(t, "hf.co/org/Bad-GGUF")
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Want != r.hub.SHA256("Bad-Q4_K_M.gguf") || ce.Got == ce.Want || len(ce.Got) != 64 {
		t.Fatalf("got %v, want a checksum error with both digests", err)
	}
	if !strings.Contains(err.Error(), ce.Want) || !strings.Contains(err.Error(), ce.Got) {
		t.Errorf("%q does not name both digests", err)
	}
	if p := partials(t, r.dir); len(p) != 0 {
		t.Errorf("left behind: %v", p)
	}
	if n := len(r.cache.Entries()); n != 0 {
		t.Errorf("%d files registered", n)
	}
}

func TestPullNoSpace(t *testing.T) {
	r := newRig(t)
	r.m.cfg.FreeSpace = func(string) (int64, error) { return 1 << 20, nil }
	r.hub.AddRepo(t, "org/Big-GGUF", map[string]string{"Big-Q4_K_M.gguf": tiny(t, 41)}, false)
	_, err := r.pull(t, "hf.co/org/Big-GGUF")
	var pe *Error
	if !errors.As(err, &pe) || pe.Code() != CodeNoSpace || pe.HTTPStatus() != 507 || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("%v", err)
	}
	if s := r.hub.Stats("Big-Q4_K_M.gguf"); s.Gets != 0 {
		t.Errorf("%d downloads started", s.Gets)
	}
	if p := partials(t, r.dir); len(p) != 0 {
		t.Errorf("written: %v", p)
	}
}

func TestPullSharedDownload(t *testing.T) {
	r := newRig(t)
	small := testmodel.Gen(t, modelgen.Small())
	r.hub.AddRepo(t, "org/Small-GGUF", map[string]string{"Small-F16.gguf": small}, false)
	r.hub.SetFault("Small-F16.gguf", &testhub.Fault{StallAt: 1 << 20})
	var wg sync.WaitGroup
	var errs [3]error
	// Two names of one file, and one name twice.
	for i, s := range []string{"hf.co/org/Small-GGUF:F16", "hf.co/org/Small-GGUF/Small-F16.gguf", "hf.co/org/Small-GGUF:F16"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.pull(t, s)
		}()
	}
	<-r.hub.Stalled()
	time.Sleep(300 * time.Millisecond) // every pull has joined
	r.hub.Release()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := r.hub.Stats("Small-F16.gguf"); s.Gets != 1 || s.Served != s.Size {
		t.Errorf("three pulls of one file: %d downloads, %d bytes of %d", s.Gets, s.Served, s.Size)
	}
}

func TestPullCancelKeepsPartialAndResumes(t *testing.T) {
	r := newRig(t)
	small := testmodel.Gen(t, modelgen.Small())
	r.hub.AddRepo(t, "org/Small-GGUF", map[string]string{"Small-F16.gguf": small}, false)
	st, _ := os.Stat(small)
	half := st.Size() / 2
	r.hub.SetFault("Small-F16.gguf", &testhub.Fault{StallAt: half})
	src, _ := ParseSource("hf.co/org/Small-GGUF:F16")
	p, _, err := r.m.Start(src.String(), src, r.o, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-r.hub.Stalled()
	time.Sleep(200 * time.Millisecond)
	if keys := r.m.Cancel(src, false); len(keys) != 1 {
		t.Fatalf("canceled %v", keys)
	}
	if _, err := p.Result(context.Background()); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("canceled pull: %v", err)
	}
	// A new manager, as after a restart, resumes from the partial file.
	r.m.Close()
	r.hub.SetFault("Small-F16.gguf", nil)
	before := r.hub.Stats("Small-F16.gguf").Served
	r.m = New(Config{Store: r.cache, Backoff: 10 * time.Millisecond})
	res, err := r.pull(t, "hf.co/org/Small-GGUF:F16")
	if err != nil {
		t.Fatal(err)
	}
	again := r.hub.Stats("Small-F16.gguf").Served - before
	// What was in flight when the pull was canceled is lost; the rest
	// comes from the partial file.
	resumed := res.Files[0].Resumed
	if resumed > half || resumed < half-4<<20 || again != st.Size()-resumed {
		t.Errorf("resumed %d (the hub sent %d), fetched %d after the restart (want %d)", resumed, half, again, st.Size()-resumed)
	}

	// --cancel --discard deletes the partial.
	r.hub.AddRepo(t, "org/Other-GGUF", map[string]string{"Other-F16.gguf": small}, false)
	r.hub.SetFault("Other-F16.gguf", &testhub.Fault{StallAt: half})
	src2, _ := ParseSource("hf.co/org/Other-GGUF:F16")
	if _, _, err := r.m.Start(src2.String(), src2, r.o, nil); err != nil {
		t.Fatal(err)
	}
	<-r.hub.Stalled()
	// The repo's name alone cancels it.
	repoOnly, _ := ParseSource("hf.co/org/Other-GGUF")
	if keys := r.m.Cancel(repoOnly, true); len(keys) != 1 {
		t.Errorf("cancel by repo: %v", keys)
	}
	if p := partials(t, r.dir); len(p) != 0 {
		t.Errorf("discard left %v", p)
	}
}

// TestPullResumesAfterSilentLink: a connection that stays open but sends
// nothing (a dropped Wi-Fi link) is ended after StallTimeout and the
// download resumes with a Range request; nothing is fetched twice.
func TestPullResumesAfterSilentLink(t *testing.T) {
	r := newRig(t)
	r.m.cfg.StallTimeout = 200 * time.Millisecond
	small := testmodel.Gen(t, modelgen.Small())
	r.hub.AddRepo(t, "org/Small-GGUF", map[string]string{"Small-F16.gguf": small}, false)
	st, _ := os.Stat(small)
	r.hub.SetFault("Small-F16.gguf", &testhub.Fault{StallAt: st.Size() / 3})
	done := make(chan error, 1)
	go func() { _, err := r.pull(t, "hf.co/org/Small-GGUF:F16"); done <- err }()
	<-r.hub.Stalled()
	select {
	case <-r.hub.Stalled(): // the retry, after the first request was given up
	case <-time.After(20 * time.Second):
		r.hub.Release()
		t.Fatal("a silent connection was not given up")
	}
	r.hub.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := r.hub.Stats("Small-F16.gguf")
	if s.Ranged < 1 || s.Served != s.Size {
		t.Errorf("%d requests, %d ranged, %d bytes served of %d", s.Gets, s.Ranged, s.Served, s.Size)
	}
}

// TestPullNewerFileInUse: a repo's file changed upstream while a loaded
// model uses the old one: the new download is kept (verified, complete)
// and finished by the pull after the unload, without fetching it again.
func TestPullNewerFileInUse(t *testing.T) {
	r := newRig(t)
	r.hub.AddRepo(t, "org/M-GGUF", map[string]string{"M-Q4_K_M.gguf": tiny(t, 61)}, false)
	res, err := r.pull(t, "hf.co/org/M-GGUF")
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.cache.Stage(context.Background(), res.Files[0].CachePath, nil)
	if err != nil || !h.Staged {
		t.Fatalf("stage: %+v %v", h, err)
	}
	r.hub.AddRepo(t, "org/M-GGUF", map[string]string{"M-Q4_K_M.gguf": tiny(t, 62)}, false)
	_, err = r.pull(t, "hf.co/org/M-GGUF")
	var pe *Error
	if !errors.As(err, &pe) || pe.Code() != "conflict" || !strings.Contains(err.Error(), "unload it and pull again") {
		t.Fatalf("pull over a file in use: %v", err)
	}
	if p := partials(t, r.dir); len(p) != 2 {
		t.Fatalf("the verified download was not kept: %v", p)
	}
	h.Release()
	before := r.hub.Stats("M-Q4_K_M.gguf").Served
	res, err = r.pull(t, "hf.co/org/M-GGUF")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := r.cache.Lookup(res.Files[0].Name)
	if e.SHA256 != r.hub.SHA256("org/M-GGUF/M-Q4_K_M.gguf") || r.hub.Stats("M-Q4_K_M.gguf").Served != before {
		t.Errorf("after the unload: sha256 %s, fetched again %d bytes", e.SHA256, r.hub.Stats("M-Q4_K_M.gguf").Served-before)
	}
}
