package api_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetai/jetai/internal/testmodel"
)

var (
	cacheOnce sync.Once
	cacheEnv  *env
	cacheFile string // the "story" model's file, a copy the tests may replace
)

// cacheServer has the response cache on: "story" is a copy of stories260K
// in a temporary directory, "plain" the same model with cache_responses =
// false.
func cacheServer(t *testing.T) *env {
	t.Helper()
	story := testmodel.Path(t)
	cacheOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jetai-respcache-")
		if err != nil {
			t.Fatal(err)
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		cacheFile = filepath.Join(dir, "story.gguf")
		b, err := os.ReadFile(story)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(cacheFile, b, 0o644)
		cacheEnv = start(t, fmt.Sprintf(`
cache { responses = "1MiB" }
model "story" {
  path     = %q
  context  = 256
  parallel = 4
  threads  = 1
  sampling { max_tokens = 24 }
}
model "plain" {
  path            = %q
  context         = 256
  parallel        = 2
  threads         = 1
  cache_responses = false
}
`, cacheFile, story))
	})
	if cacheEnv == nil {
		t.Fatal("cache server failed to start")
	}
	return cacheEnv
}

func (e *env) requests(t *testing.T, model string) uint64 {
	t.Helper()
	for _, m := range e.pool.Performance().Models {
		if m.Name == model {
			return m.Requests
		}
	}
	return 0
}

// streamTexts returns the text pieces of a /v1/completions stream and of
// /inference's stream, and the raw text events.
func streamTexts(t *testing.T, body []byte, field string) (texts []string, raw []string) {
	t.Helper()
	for _, ev := range sseEvents(t, body) {
		if ev == "[DONE]" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ev), &m); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		if field == "text" {
			if m["done"] == true {
				continue
			}
			texts = append(texts, m["text"].(string))
			raw = append(raw, ev)
			continue
		}
		cs, _ := m["choices"].([]any)
		if len(cs) == 0 {
			continue
		}
		c := cs[0].(map[string]any)
		if c["finish_reason"] != nil {
			continue
		}
		texts = append(texts, c["text"].(string))
	}
	return texts, raw
}

func TestResponseCacheHit(t *testing.T) {
	e := cacheServer(t)
	const body = `{"prompt": "The little dog", "model": "story", "max_tokens": 120, "ignore_eos": true, "temperature": 0, "stream": %v}`
	first := do(t, "POST", e.url+"/inference", fmt.Sprintf(body, false))
	if first.Status != 200 || first.Header.Get("X-Jetai-Cache") != "miss" {
		t.Fatalf("first: %d %q %s", first.Status, first.Header.Get("X-Jetai-Cache"), first.Body)
	}
	before := e.requests(t, "story")
	again := do(t, "POST", e.url+"/inference", fmt.Sprintf(body, false))
	if again.Header.Get("X-Jetai-Cache") != "hit" || str(again.JSON, "response") != str(first.JSON, "response") {
		t.Fatalf("repeat: %q %q vs %q", again.Header.Get("X-Jetai-Cache"), str(again.JSON, "response"), str(first.JSON, "response"))
	}
	if u := again.JSON["usage"].(map[string]any); u["cached"] != true || u["completion_tokens"].(float64) != 120 || u["cached_tokens"] != u["prompt_tokens"] {
		t.Errorf("usage of a hit: %v", u)
	}
	if e.requests(t, "story") != before {
		t.Error("a hit reached the runner")
	}

	// Streams: streaming is not an output setting, so the stored answer
	// serves it; its text events must be those of a generated stream
	// (no-cache forces one), byte for byte.
	fresh := do(t, "POST", e.url+"/inference", fmt.Sprintf(body, true), "Cache-Control", "no-cache")
	if fresh.Header.Get("X-Jetai-Cache") != "bypass" {
		t.Fatalf("no-cache: %q", fresh.Header.Get("X-Jetai-Cache"))
	}
	genTexts, genRaw := streamTexts(t, fresh.Body, "text")
	hit := do(t, "POST", e.url+"/inference", fmt.Sprintf(body, true))
	if hit.Header.Get("X-Jetai-Cache") != "hit" {
		t.Fatalf("stream repeat: %q", hit.Header.Get("X-Jetai-Cache"))
	}
	hitTexts, hitRaw := streamTexts(t, hit.Body, "text")
	if len(genTexts) < 2 || !slices.Equal(genRaw, hitRaw) || strings.Join(hitTexts, "") != str(first.JSON, "response") {
		t.Fatalf("generated stream %q\ncached stream %q", genTexts, hitTexts)
	}

	// OpenAI completions, streamed: the same chunk sequence again.
	const oa = `{"model": "story", "prompt": "A cat sat", "max_tokens": 100, "ignore_eos": true, "temperature": 0, "stream": true}`
	a := do(t, "POST", e.url+"/v1/completions", oa)
	b := do(t, "POST", e.url+"/v1/completions", oa)
	at, _ := streamTexts(t, a.Body, "choices")
	bt, _ := streamTexts(t, b.Body, "choices")
	if a.Header.Get("X-Jetai-Cache") != "miss" || b.Header.Get("X-Jetai-Cache") != "hit" || len(at) < 2 || !slices.Equal(at, bt) {
		t.Fatalf("v1 stream: %s %q / %s %q", a.Header.Get("X-Jetai-Cache"), at, b.Header.Get("X-Jetai-Cache"), bt)
	}
}

func TestResponseCacheBypass(t *testing.T) {
	e := cacheServer(t)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"sampled without seed", `{"prompt": "Sampled", "model": "story", "temperature": 0.9}`, "bypass"},
		{"opted out", `{"prompt": "Opted out", "model": "plain", "temperature": 0}`, "bypass"},
	} {
		for i := range 3 {
			before := e.requests(t, "story") + e.requests(t, "plain")
			a := post(t, e.url+"/inference", tc.body)
			if a.Status != 200 || a.Header.Get("X-Jetai-Cache") != tc.want {
				t.Fatalf("%s #%d: %d %q %s", tc.name, i, a.Status, a.Header.Get("X-Jetai-Cache"), a.Body)
			}
			if e.requests(t, "story")+e.requests(t, "plain") != before+1 {
				t.Fatalf("%s #%d did not reach a runner", tc.name, i)
			}
		}
	}
	// A fixed seed with the same sampling settings is cached.
	const seeded = `{"prompt": "Seeded", "model": "story", "temperature": 0.9, "seed": 42}`
	if a := post(t, e.url+"/inference", seeded); a.Header.Get("X-Jetai-Cache") != "miss" {
		t.Fatalf("seeded: %q", a.Header.Get("X-Jetai-Cache"))
	}
	if a := post(t, e.url+"/inference", seeded); a.Header.Get("X-Jetai-Cache") != "hit" {
		t.Fatalf("seeded repeat: %q", a.Header.Get("X-Jetai-Cache"))
	}
	// Another seed, another temperature: another key.
	for _, other := range []string{
		`{"prompt": "Seeded", "model": "story", "temperature": 0.9, "seed": 43}`,
		`{"prompt": "Seeded", "model": "story", "temperature": 0.8, "seed": 42}`,
	} {
		if a := post(t, e.url+"/inference", other); a.Header.Get("X-Jetai-Cache") != "miss" {
			t.Fatalf("%s: %q", other, a.Header.Get("X-Jetai-Cache"))
		}
	}
}

// TestResponseCacheCollapse: 50 identical requests sent together make one
// generation in the runner.
func TestResponseCacheCollapse(t *testing.T) {
	e := cacheServer(t)
	const body = `{"model": "story", "prompt": "Fifty at once", "max_tokens": 200, "ignore_eos": true, "temperature": 0}`
	before := e.requests(t, "story")
	var wg sync.WaitGroup
	texts := make([]string, 50)
	states := make([]string, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := post(t, e.url+"/v1/completions", body)
			if a.Status != 200 {
				t.Errorf("request %d: %d %s", i, a.Status, a.Body)
				return
			}
			texts[i] = a.JSON["choices"].([]any)[0].(map[string]any)["text"].(string)
			states[i] = a.Header.Get("X-Jetai-Cache")
		}()
	}
	wg.Wait()
	if n := e.requests(t, "story") - before; n != 1 {
		t.Fatalf("50 identical requests made %d generations", n)
	}
	misses := 0
	for i := range texts {
		if texts[i] != texts[0] {
			t.Fatalf("answer %d differs: %q vs %q", i, texts[i], texts[0])
		}
		if states[i] == "miss" {
			misses++
		}
	}
	if misses != 1 {
		t.Errorf("%d misses, want 1 (%v)", misses, states)
	}
}

// TestResponseCacheModelFileChanged: after the model's file is replaced
// (another model renamed into its path), the same request is a miss.
func TestResponseCacheModelFileChanged(t *testing.T) {
	e := cacheServer(t)
	const body = `{"prompt": "Changed file", "model": "story", "temperature": 0}`
	post(t, e.url+"/inference", body)
	if a := post(t, e.url+"/inference", body); a.Header.Get("X-Jetai-Cache") != "hit" {
		t.Fatalf("repeat: %q", a.Header.Get("X-Jetai-Cache"))
	}
	chat, _ := genModels(t)
	b, err := os.ReadFile(chat)
	if err != nil {
		t.Fatal(err)
	}
	tmp := cacheFile + ".new"
	os.WriteFile(tmp, b, 0o644)
	if err := os.Rename(tmp, cacheFile); err != nil {
		t.Fatal(err)
	}
	if a := post(t, e.url+"/inference", body); a.Header.Get("X-Jetai-Cache") != "miss" {
		t.Fatalf("after the file changed: %q", a.Header.Get("X-Jetai-Cache"))
	}
}

// TestResponseCacheDiskTier: with responses_disk, an answer generated by
// one server is a hit on a new server (a restart) over the same cache.dir.
func TestResponseCacheDiskTier(t *testing.T) {
	story := testmodel.Path(t)
	dir := t.TempDir()
	hcl := fmt.Sprintf(`
cache {
  dir            = %q
  responses      = "1MiB"
  responses_disk = "1MiB"
}
model "story" {
  path     = %q
  context  = 256
  parallel = 1
  threads  = 1
}
`, dir, story)
	const body = `{"prompt": "On disk", "model": "story", "max_tokens": 16, "temperature": 0, "stream": true}`
	first := start(t, hcl)
	a := post(t, first.url+"/inference", body)
	if a.Header.Get("X-Jetai-Cache") != "miss" {
		t.Fatalf("first: %q", a.Header.Get("X-Jetai-Cache"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "responses", "*.json"))
		if len(files) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer file in %s/responses: %v", dir, files)
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := start(t, hcl)
	b := post(t, second.url+"/inference", body)
	at, _ := streamTexts(t, a.Body, "text")
	bt, _ := streamTexts(t, b.Body, "text")
	if b.Header.Get("X-Jetai-Cache") != "hit" || !slices.Equal(at, bt) || second.requests(t, "story") != 0 {
		t.Fatalf("after a restart: %q %q vs %q", b.Header.Get("X-Jetai-Cache"), bt, at)
	}
	if st := second.api.ResponseCache(); st.DiskHits != 1 {
		t.Errorf("stats %+v", st)
	}
}
