package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/modelgen"
)

// OllamaConfig sets up the Ollama API's figure: streamed /api/chat against
// streamed /v1/chat/completions (and /api/generate against
// /v1/completions) on one jetaid and one model, side by side.
type OllamaConfig struct {
	Jetaid    string // jetaid binary
	Model     string // stories260K.gguf
	Cache     string // directory for the model's copy with a chat template
	Threads   int
	GenTokens int
	Streams   int // concurrency of the aggregate figure
	Repeats   int
	Out, Log  io.Writer
}

// OllamaRow is one pair: tokens/s through /v1 and through /api.
type OllamaRow struct {
	Name    string
	V1, API float64
}

// Ratio is /api over /v1.
func (r OllamaRow) Ratio() float64 { return r.API / r.V1 }

// set keeps the best figure of side i (0: /v1, 1: /api).
func (r *OllamaRow) set(i int, v float64) {
	if i == 0 {
		r.V1 = max(r.V1, v)
	} else {
		r.API = max(r.API, v)
	}
}

// sides alternates which side goes first in repeat rep: the second finds
// the first's prompt in a slot's cache.
func sides(rep int) []int {
	if rep%2 == 1 {
		return []int{1, 0}
	}
	return []int{0, 1}
}

// ChatCopy writes (once) a copy of the GGUF model src into dir with
// modelgen.ChatML as its chat template; the weights are the same bytes.
// stories260K has no template, and chat needs one.
func ChatCopy(src, dir string) (string, error) {
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(src), ".gguf")+"-chatml.gguf")
	if st, err := os.Stat(out); err == nil {
		if sst, err := os.Stat(src); err == nil && st.ModTime().After(sst.ModTime()) {
			return out, nil
		}
	}
	g, err := gguf.Open(src)
	if err != nil {
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	w := gguf.NewWriter(f)
	for _, kv := range g.KVs {
		if kv.Key == gguf.KeyChatTemplate {
			continue
		}
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			f.Close()
			return "", err
		}
	}
	if err := w.AddKV(gguf.KeyChatTemplate, modelgen.ChatML); err != nil {
		f.Close()
		return "", err
	}
	for _, t := range g.Tensors {
		if err := w.AddTensor(t.Name, t.Shape, t.Type); err != nil {
			f.Close()
			return "", err
		}
	}
	for _, t := range g.Tensors {
		sec := io.NewSectionReader(in, int64(g.DataOffset+t.Offset), int64(t.Size))
		if err := w.WriteTensor(t.Name, func(dst io.Writer) error { _, err := io.Copy(dst, sec); return err }); err != nil {
			f.Close()
			return "", err
		}
	}
	if err := w.Close(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// RunOllama measures and prints the pairs. Each repeat runs the /v1 side
// and the /api side back to back; the best of each side counts.
func RunOllama(ctx context.Context, cfg OllamaConfig) ([]OllamaRow, error) {
	chat, err := ChatCopy(cfg.Model, cfg.Cache)
	if err != nil {
		return nil, fmt.Errorf("chat copy of %s: %w", cfg.Model, err)
	}
	dir, err := os.MkdirTemp("", "jetai-bench-ollama-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	logf(cfg.Log, "Ollama API vs /v1: %s", filepath.Base(cfg.Model))
	models := ""
	for _, m := range []struct{ name, path string }{{"story", cfg.Model}, {"chat", chat}} {
		models += fmt.Sprintf("model %q {\n  path = %q\n  context = %d\n  parallel = %d\n  threads = %d\n  preload = true\n  keep_alive = \"forever\"\n}\n",
			m.name, m.path, cfg.GenTokens+64, cfg.Streams, cfg.Threads)
	}
	d, err := startDaemon(ctx, HTTPConfig{Jetaid: cfg.Jetaid, Log: cfg.Log}, dir, "ollama", models, "2GiB")
	if err != nil {
		return nil, err
	}
	defer d.stop()

	pairs := []struct {
		name string
		fs   [2]streamFunc // /v1, /api
	}{
		{"chat", [2]streamFunc{d.v1Stream("chat", true, cfg.GenTokens), d.ollamaStream("chat", true, cfg.GenTokens)}},
		{"completion", [2]streamFunc{d.v1Stream("story", false, cfg.GenTokens), d.ollamaStream("story", false, cfg.GenTokens)}},
	}
	var rows []OllamaRow
	for _, p := range pairs {
		single := OllamaRow{Name: p.name + ", 1 stream"}
		agg := OllamaRow{Name: fmt.Sprintf("%s, %d streams", p.name, cfg.Streams)}
		// A warm-up of each side first: the slots' prompt caches fill.
		for _, f := range p.fs {
			if _, err := f(ctx, shortPrompt(1, 0), func() {}); err != nil {
				return nil, err
			}
		}
		// Every single stream first, then every aggregate: once several
		// slots hold long cached conversations, one stream's decode
		// attends over all of the context's cells and slows down.
		for rep := range cfg.Repeats {
			for _, i := range sides(rep) {
				r, err := oneStream(ctx, p.fs[i], shortPrompt(1, rep+1))
				if err != nil {
					return nil, err
				}
				single.set(i, r)
			}
		}
		for rep := range cfg.Repeats {
			for _, i := range sides(rep) {
				r, err := manyStreams(ctx, p.fs[i], cfg.Streams, rep)
				if err != nil {
					return nil, err
				}
				agg.set(i, r)
			}
		}
		rows = append(rows, single, agg)
	}
	if cfg.Out != nil {
		fmt.Fprintf(cfg.Out, "\nOllama API vs OpenAI API, streamed, one jetaid (%s; chat on a copy with a ChatML template; threads=%d, up to %d tokens, greedy, best of %d)\n",
			filepath.Base(cfg.Model), cfg.Threads, cfg.GenTokens, cfg.Repeats)
		for _, r := range rows {
			mark := "ok"
			if r.Ratio() < 0.95 {
				mark = "MISS"
			}
			fmt.Fprintf(cfg.Out, "  %-22s /v1 %8.1f tok/s   /api %8.1f tok/s   /api÷/v1 %.3f  (≥0.95 %s)\n", r.Name, r.V1, r.API, r.Ratio(), mark)
		}
	}
	return rows, nil
}

// oneStream is the rate of one whole streamed request: its tokens over
// its time. (The runner sends tokens in frames every few milliseconds, so
// the time after the first frame would depend on how many tokens it held.)
func oneStream(ctx context.Context, f streamFunc, prompt string) (float64, error) {
	start := time.Now()
	n, err := f(ctx, prompt, func() {})
	if err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// manyStreams is the aggregate rate of n streams at once.
func manyStreams(ctx context.Context, f streamFunc, n, rep int) (float64, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	var firstErr error
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := f(ctx, shortPrompt(n, i)+strings.Repeat(" ", rep), func() {})
			mu.Lock()
			defer mu.Unlock()
			total += k
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return float64(total) / time.Since(start).Seconds(), firstErr
}

// v1Stream and ollamaStream send benchSampling under each API's names
// (greedy, every filter off), so both sides generate the same tokens; each
// returns the generated token count the API reports.
func (d *daemonProc) v1Stream(model string, chat bool, maxTokens int) streamFunc {
	return func(ctx context.Context, prompt string, onFirst func()) (int, error) {
		body := map[string]any{"model": model, "max_tokens": maxTokens, "stream": true, "stream_options": map[string]bool{"include_usage": true},
			"temperature": 0, "top_k": 0, "top_p": 1, "min_p": 0, "repeat_penalty": 1}
		path := "/v1/completions"
		if chat {
			path = "/v1/chat/completions"
			body["messages"] = []map[string]string{{"role": "user", "content": prompt}}
		} else {
			body["prompt"] = prompt
		}
		var n int
		err := d.lines(ctx, path, body, func(line []byte) bool {
			data, ok := bytes.CutPrefix(line, []byte("data: "))
			if !ok || bytes.HasPrefix(data, []byte("[DONE]")) {
				return true
			}
			if bytes.Contains(data, []byte(`"usage":{`)) {
				var u struct {
					Usage struct {
						CompletionTokens int `json:"completion_tokens"`
					} `json:"usage"`
				}
				json.Unmarshal(data, &u)
				n = u.Usage.CompletionTokens
				return false
			}
			onFirst()
			onFirst = func() {}
			return true
		})
		return n, err
	}
}

func (d *daemonProc) ollamaStream(model string, chat bool, maxTokens int) streamFunc {
	return func(ctx context.Context, prompt string, onFirst func()) (int, error) {
		body := map[string]any{"model": model, "options": map[string]any{"num_predict": maxTokens,
			"temperature": 0, "top_k": 0, "top_p": 1, "min_p": 0, "repeat_penalty": 1}}
		path := "/api/generate"
		if chat {
			path = "/api/chat"
			body["messages"] = []map[string]string{{"role": "user", "content": prompt}}
		} else {
			body["prompt"], body["raw"] = prompt, true
		}
		var n int
		err := d.lines(ctx, path, body, func(line []byte) bool {
			if !bytes.Contains(line, []byte(`"done":true`)) {
				onFirst()
				onFirst = func() {}
				return true
			}
			var f struct {
				EvalCount int    `json:"eval_count"`
				Error     string `json:"error"`
			}
			json.Unmarshal(line, &f)
			n = f.EvalCount
			return false
		})
		return n, err
	}
}

// lines posts body to path and hands each line of the answer to each
// until it returns false.
func (d *daemonProc) lines(ctx context.Context, path string, body any, each func([]byte) bool) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", path, resp.Status, msg)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadSlice('\n')
		if len(bytes.TrimSpace(line)) > 0 && !each(line) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: the stream ended early: %w", path, err)
		}
	}
}
