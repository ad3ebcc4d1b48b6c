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
	"sort"
	"strings"
	"time"

	"github.com/jetai/jetai/modelgen"
)

// ToolsConfig configures RunTools: a jetaid serving a generated model that
// carries a real family's chat template (TemplatePath), measured side by
// side in one run.
type ToolsConfig struct {
	Jetaid       string
	Cache        string // directory for the generated models
	TemplatePath string // a Jinja chat template with tool support (Qwen 2.5's)
	Presets      []string
	Repeats      int // requests per figure; the median counts
	Tokens       int // generated tokens of the per-token figures
	Threads      int
	Out, Log     io.Writer
}

// ToolsRow is one model's figures.
type ToolsRow struct {
	Model        string        `json:"model"`
	PromptTokens int           `json:"prompt_tokens"`       // the tools request's
	PlainPrompt  int           `json:"plain_prompt_tokens"` // the plain request's, padded to match
	PlainTTFT    time.Duration `json:"plain_ttft"`          // first content delta, plain chat
	ToolTTFT     time.Duration `json:"tool_ttft"`           // first tool_calls delta, tool_choice required
	ToolFirstTok time.Duration `json:"tool_first_tok"`      // the same request's first generated token (runner timings)
	PlainPerTok  time.Duration `json:"plain_per_tok"`       // decode time a token, plain chat
	ToolPerTok   time.Duration `json:"tool_per_tok"`        // the same under the call grammar (required)
	AutoPerTok   time.Duration `json:"auto_per_tok"`        // tools offered, auto, no call started (the lazy watch)
}

// toolsBenchTool has one free-text argument, so a call under the grammar
// runs as long as the figure needs.
const toolsBenchTool = `{"type": "function", "function": {"name": "note", "description": "Write a note", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}`

// RunTools measures what tool calling costs: the time to the first
// tool_calls delta against the first token of a plain chat whose prompt
// has the same number of tokens, and the decode time per token with the
// call grammar, with tools offered under auto, and without tools.
func RunTools(ctx context.Context, cfg ToolsConfig) ([]ToolsRow, error) {
	tmpl, err := os.ReadFile(cfg.TemplatePath)
	if err != nil {
		return nil, err
	}
	if cfg.Repeats <= 0 {
		cfg.Repeats = 5
	}
	if cfg.Tokens <= 0 {
		cfg.Tokens = 128
	}
	dir, err := os.MkdirTemp("", "jetai-bench-tools-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var rows []ToolsRow
	printToolsHead(cfg.Out, cfg)
	for _, preset := range cfg.Presets {
		spec, err := modelgen.Preset(preset)
		if err != nil {
			return nil, err
		}
		spec.ChatTemplate = string(tmpl)
		path, err := modelgen.Cached(cfg.Cache, spec)
		if err != nil {
			return nil, err
		}
		models := fmt.Sprintf("model \"m\" {\n  path = %q\n  context = 2048\n  parallel = 1\n  threads = %d\n  preload = true\n}\n", path, cfg.Threads)
		d, err := startDaemon(ctx, HTTPConfig{Jetaid: cfg.Jetaid, Log: cfg.Log}, dir, "tools-"+preset, models, "8GiB")
		if err != nil {
			return nil, err
		}
		row, err := toolsFigures(ctx, d, cfg)
		d.stop()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", preset, err)
		}
		row.Model = fmt.Sprintf("%s (%.1fM parameters, vocab %d)", preset, float64(spec.ParamCount())/1e6, spec.Vocab)
		rows = append(rows, row)
		printToolsRow(cfg.Out, row)
	}
	return rows, nil
}

func toolsFigures(ctx context.Context, d *daemonProc, cfg ToolsConfig) (ToolsRow, error) {
	var row ToolsRow
	tools := json.RawMessage("[" + toolsBenchTool + "]")
	// Each request opens with a session line of its own, so no request
	// reuses another's cached prompt.
	session := 0
	msgs := func(user string) []map[string]string {
		session++
		return []map[string]string{{"role": "system", "content": fmt.Sprintf("Session %d.", session)}, {"role": "user", "content": user}}
	}
	toolReq := func(choice string, max int) map[string]any {
		return map[string]any{"model": "m", "messages": msgs("Write a note."), "tools": tools, "tool_choice": choice,
			"parallel_tool_calls": false, "max_tokens": max, "temperature": 0}
	}
	// The tools' prompt length, and a plain prompt padded to it.
	probe, err := d.chat(ctx, toolReq("required", 1))
	if err != nil {
		return row, err
	}
	row.PromptTokens = probe.PromptTokens
	plainTokens := func(pad int) (int, error) {
		r, err := d.chat(ctx, map[string]any{"model": "m", "messages": msgs("Write a note." + strings.Repeat(" note", pad)), "max_tokens": 1})
		return r.PromptTokens, err
	}
	base, err := plainTokens(0)
	if err != nil {
		return row, err
	}
	with100, err := plainTokens(100)
	if err != nil {
		return row, err
	}
	per := float64(with100-base) / 100
	pad := max(0, int(float64(row.PromptTokens-base)/per))
	for range 6 {
		n, err := plainTokens(pad)
		if err != nil {
			return row, err
		}
		row.PlainPrompt = n
		switch {
		case n < row.PromptTokens:
			pad++
		case n > row.PromptTokens+int(per) && pad > 0:
			pad--
		default:
			goto padded
		}
	}
padded:
	var plainTTFT, toolTTFT, toolFirst, plainTok, toolTok, autoTok []time.Duration
	for range cfg.Repeats {
		t, err := d.firstDelta(ctx, map[string]any{"model": "m", "messages": msgs("Write a note." + strings.Repeat(" note", pad)),
			"max_tokens": 16, "temperature": 0, "stream": true, "ignore_eos": true, "stream_options": map[string]bool{"include_usage": true}}, `"content":`)
		if err != nil {
			return row, err
		}
		plainTTFT = append(plainTTFT, t)
		req := toolReq("required", 64)
		req["stream"] = true
		t, err = d.firstDelta(ctx, req, `"tool_calls":`)
		if err != nil {
			return row, err
		}
		toolTTFT = append(toolTTFT, t)
		r, err := d.chat(ctx, toolReq("required", 64))
		if err != nil {
			return row, err
		}
		toolFirst = append(toolFirst, time.Duration(r.FirstTokenMS*float64(time.Millisecond)))

		perTok := func(req map[string]any) (time.Duration, error) {
			r, err := d.chat(ctx, req)
			if err != nil {
				return 0, err
			}
			if r.Generated < 2 {
				return 0, fmt.Errorf("only %d tokens generated", r.Generated)
			}
			return time.Duration(r.GenerationMS * float64(time.Millisecond) / float64(r.Generated-1)), nil
		}
		p, err := perTok(map[string]any{"model": "m", "messages": msgs("Write a note."), "max_tokens": cfg.Tokens, "temperature": 0, "ignore_eos": true})
		if err != nil {
			return row, err
		}
		plainTok = append(plainTok, p)
		p, err = perTok(toolReq("required", cfg.Tokens))
		if err != nil {
			return row, err
		}
		toolTok = append(toolTok, p)
		a := toolReq("auto", cfg.Tokens)
		a["ignore_eos"] = true
		p, err = perTok(a)
		if err != nil {
			return row, err
		}
		autoTok = append(autoTok, p)
	}
	row.PlainTTFT, row.ToolTTFT, row.ToolFirstTok = medianDur(plainTTFT), medianDur(toolTTFT), medianDur(toolFirst)
	row.PlainPerTok, row.ToolPerTok, row.AutoPerTok = medianDur(plainTok), medianDur(toolTok), medianDur(autoTok)
	return row, nil
}

func medianDur(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

type chatFigures struct {
	PromptTokens int
	Generated    int
	GenerationMS float64
	FirstTokenMS float64
}

// chat sends a non-streamed chat completion and returns its figures.
func (d *daemonProc) chat(ctx context.Context, req map[string]any) (chatFigures, error) {
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/v1/chat/completions", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(hr)
	if err != nil {
		return chatFigures{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return chatFigures{}, fmt.Errorf("/v1/chat/completions: %s: %s", resp.Status, b)
	}
	var out struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
		Timings struct {
			Generated    int     `json:"generated_tokens"`
			GenerationMS float64 `json:"generation_ms"`
			FirstTokenMS float64 `json:"first_token_ms"`
		} `json:"timings"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return chatFigures{}, err
	}
	return chatFigures{PromptTokens: out.Usage.PromptTokens, Generated: out.Timings.Generated,
		GenerationMS: out.Timings.GenerationMS, FirstTokenMS: out.Timings.FirstTokenMS}, nil
}

// firstDelta streams req and returns the time to the first event whose
// data holds mark, reading the stream to its end.
func (d *daemonProc) firstDelta(ctx context.Context, req map[string]any, mark string) (time.Duration, error) {
	body, _ := json.Marshal(req)
	start := time.Now()
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/v1/chat/completions", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(hr)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("/v1/chat/completions: %s: %s", resp.Status, b)
	}
	var first time.Duration
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if first == 0 && strings.HasPrefix(line, "data: ") && strings.Contains(line, mark) {
			first = time.Since(start)
		}
		// A prompt served from a slot's cache would not be comparable.
		var u struct {
			Usage *struct {
				Details struct {
					Cached int `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(data, `"usage"`) && json.Unmarshal([]byte(data), &u) == nil && u.Usage != nil && u.Usage.Details.Cached > 64 {
			return 0, fmt.Errorf("%d prompt tokens came from the cache", u.Usage.Details.Cached)
		}
	}
	if first == 0 {
		return 0, fmt.Errorf("no event with %s in the stream", mark)
	}
	return first, sc.Err()
}

// printToolsHead and printToolsRow print the table a row at a time, as
// each model's figures are in.
func printToolsHead(w io.Writer, cfg ToolsConfig) {
	fmt.Fprintf(w, "\n## Tool calling (%s's template, median of %d, %d-token decode figures)\n\n", cfg.TemplatePath, cfg.Repeats, cfg.Tokens)
	fmt.Fprintln(w, "| model | prompt tokens, tools / plain | first content delta, plain chat | first tool_calls delta (its first token) | decode ms/token: plain / tools auto / call grammar | grammar ratio |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
}

func printToolsRow(w io.Writer, r ToolsRow) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(w, "| %s | %d / %d | %s | %s (%s) | %s / %s / %s | %.2f× |\n", r.Model, r.PromptTokens, r.PlainPrompt, ms(r.PlainTTFT), ms(r.ToolTTFT), ms(r.ToolFirstTok),
		ms(r.PlainPerTok), ms(r.AutoPerTok), ms(r.ToolPerTok), float64(r.ToolPerTok)/float64(r.PlainPerTok))
}
