package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/gguf"
)

// KVConfig sets up the KV cache type figures (RunKV).
type KVConfig struct {
	Tiny  string // stories260K.gguf; "" skips its rows
	Large string // the generated 0.8B Q4_K_M; "" skips its rows
	// Text is the fixed text whose mean negative log-likelihood each type
	// is measured on (testdata/kvcache/stories-greedy.txt).
	Text string
	// TinyTokens and LargeTokens bound the tokens of Text scored per model
	// (the 0.8B decodes slowly on a small CPU).
	TinyTokens, LargeTokens int
	Budget                  uint64 // memory budget of the fit table (1.5 GiB)
	SlotContext             int    // per-slot context of the speed figures
	Streams                 int    // sequences of the aggregate figure (8)
	GenTokens               int    // tokens generated per stream
	Threads                 int
	Repeats                 int // the best counts
	Out                     io.Writer
	Log                     io.Writer
}

// KVSetting is one KV cache configuration measured: f16 as configs default
// to it (no flash attention), and each type with flash attention.
type KVSetting struct {
	Type  string `json:"type"`
	Flash bool   `json:"flash_attention"`
}

func (s KVSetting) String() string {
	if s.Flash {
		return s.Type + " +fa"
	}
	return s.Type
}

// KVSettings are the settings measured, the baseline first.
var KVSettings = []KVSetting{{"f16", false}, {"f16", true}, {"q8_0", true}, {"q4_0", true}}

// KVRow is one model and setting's figures. Err says why the setting
// cannot be measured (llama.cpp refuses it for this model).
type KVRow struct {
	Model   string    `json:"model"`
	Setting KVSetting `json:"setting"`
	Err     string    `json:"error,omitempty"`
	// FormulaPerToken is the KV bytes of one token by the estimate's
	// formula; MeasuredPerToken the process RSS a context's creation adds,
	// over its cells.
	FormulaPerToken  uint64  `json:"formula_bytes_per_token"`
	MeasuredPerToken float64 `json:"measured_bytes_per_token"`
	// Fit is the largest per-slot context (a multiple of 256) that fits
	// the budget by the pool's estimate, per parallel in FitParallel.
	Fit []int `json:"fit_context"`
	// Decode is single-stream decode tok/s; Aggregate the tok/s of Streams
	// sequences decoded together.
	Decode    float64 `json:"decode_tps"`
	Aggregate float64 `json:"aggregate_tps"`
	// DecodeLong is single-stream decode after a prompt that fills most of
	// the slot, where attention reads the whole cache each token.
	DecodeLong float64 `json:"decode_long_tps"`
	// NLL is the mean negative log-likelihood (nats a token) of the fixed
	// text; KL the mean Kullback-Leibler divergence (nats) of the next-token
	// distribution from the baseline's (llama-perplexity's
	// --kl-divergence); Agree the share of positions whose most likely next
	// token is the baseline's; Scored the tokens scored.
	NLL    float64 `json:"nll"`
	KL     float64 `json:"kl_divergence"`
	Agree  float64 `json:"top1_agreement"`
	Scored int     `json:"scored_tokens"`
}

// FitParallel are the slot counts of the fit table.
var FitParallel = []int{1, 2, 4, 8}

// nllWindow is the tokens of one scored window (one decode): BOS and 511
// tokens of text, each scored from the logits of the one before.
const nllWindow = 512

// RunKV measures every KVSetting on each model: KV bytes a token by the
// formula and by RSS, the largest context × parallel under Budget, decode
// and aggregate tok/s, and the mean NLL of Text against the f16 baseline.
func RunKV(ctx context.Context, cfg KVConfig) ([]KVRow, error) {
	text, err := os.ReadFile(cfg.Text)
	if err != nil {
		return nil, fmt.Errorf("kv bench: %w", err)
	}
	var rows []KVRow
	for _, m := range []struct {
		name, path string
		tokens     int
	}{{"stories260K", cfg.Tiny, cfg.TinyTokens}, {"llama-0.8B-Q4_K_M", cfg.Large, cfg.LargeTokens}} {
		if m.path == "" {
			continue
		}
		rs, err := kvModel(ctx, cfg, m.name, m.path, string(text), m.tokens)
		if err != nil {
			return rows, fmt.Errorf("kv bench %s: %w", m.name, err)
		}
		rows = append(rows, rs...)
	}
	PrintKV(cfg.Out, rows, cfg)
	return rows, nil
}

func kvModel(ctx context.Context, cfg KVConfig, name, path, text string, maxTokens int) ([]KVRow, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	params, err := f.Params()
	if err != nil {
		return nil, err
	}
	m, err := engine.Load(ctx, path, engine.LoadOptions{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	toks, err := m.Tokenize(text, false)
	if err != nil {
		return nil, err
	}
	if maxTokens > 0 && len(toks) > maxTokens {
		toks = toks[:maxTokens]
	}
	var rows []KVRow
	var base *scores
	var speed []int // rows whose speed is measured
	for _, s := range KVSettings {
		row := KVRow{Model: name, Setting: s}
		mc := config.Model{Context: cfg.SlotContext, Parallel: 1, KVCache: s.Type, FlashAttention: s.Flash}
		row.FormulaPerToken = pool.EstimateParams(params, mc, 0).KVPerToken
		for _, par := range FitParallel {
			row.Fit = append(row.Fit, fitContext(params, s, par, cfg.Budget))
		}
		if err := gguf.KVCacheCheck(params, s.Type, s.Flash); err != nil {
			row.Err = err.Error()
			rows = append(rows, row)
			continue
		}
		logf(cfg.Log, "kv bench: %s %s: memory and NLL", name, s)
		if row.MeasuredPerToken, err = kvMeasureRSS(m, cfg, s); err != nil {
			return rows, err
		}
		sc, err := kvNLL(m, cfg, s, toks, base)
		if err != nil {
			return rows, err
		}
		if base == nil {
			base = sc
		}
		row.NLL, row.KL, row.Agree, row.Scored = sc.nll, sc.kl, sc.agree, len(sc.top)
		speed = append(speed, len(rows))
		rows = append(rows, row)
	}
	// Speed: every setting once per round, so a busy spell of a shared
	// machine falls on all of them; the best round counts.
	engines := make([]*rawEngine, len(speed))
	defer func() {
		for _, r := range engines {
			if r != nil {
				r.lctx.Close()
				r.b.Free()
			}
		}
	}()
	for i, ri := range speed {
		if engines[i], err = kvEngine(m, cfg, rows[ri].Setting); err != nil {
			return rows, err
		}
	}
	for round := range max(cfg.Repeats, 1) {
		for i, ri := range speed {
			if err := ctx.Err(); err != nil {
				return rows, err
			}
			logf(cfg.Log, "kv bench: %s %s: speed, round %d", name, rows[ri].Setting, round+1)
			_, d, err := engines[i].single(cfg.GenTokens)
			if err != nil {
				return rows, err
			}
			a, err := engines[i].batched(cfg.Streams, cfg.GenTokens)
			if err != nil {
				return rows, err
			}
			short := engines[i].toks
			engines[i].toks = engines[i].long
			_, dl, err := engines[i].single(cfg.GenTokens)
			engines[i].toks = short
			if err != nil {
				return rows, err
			}
			rows[ri].Decode, rows[ri].Aggregate = max(rows[ri].Decode, d), max(rows[ri].Aggregate, a)
			rows[ri].DecodeLong = max(rows[ri].DecodeLong, dl)
		}
	}
	return rows, nil
}

// fitContext is the largest per-slot context, a multiple of 256, whose
// estimate with parallel slots fits budget; 0 when none does.
func fitContext(p gguf.Params, s KVSetting, parallel int, budget uint64) int {
	fits := func(c int) bool {
		mc := config.Model{Context: c, Parallel: parallel, KVCache: s.Type, FlashAttention: s.Flash}
		return pool.EstimateParams(p, mc, pool.DefaultRunnerOverhead).Total <= budget
	}
	lo, hi := 0, 1<<20/256 // in units of 256 tokens
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(mid * 256) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo * 256
}

// kvMeasureRSS returns the RSS a context adds per cell: the difference
// between contexts of 16384 and 8192 cells, over 8192, so what does not
// grow with the context (output buffer, thread pool) cancels out.
// llama.cpp clears the KV buffer at creation, so its pages are resident at
// once; the compute buffers are not touched until a decode.
func kvMeasureRSS(m *engine.Model, cfg KVConfig, s KVSetting) (float64, error) {
	grow := func(cells int) (int64, error) {
		before, err := selfRSS()
		if err != nil {
			return 0, err
		}
		c, err := m.NewContext(engine.ContextOptions{SlotContext: cells, Slots: 1, Threads: cfg.Threads, FlashAttention: s.Flash, KVType: s.Type})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		after, err := selfRSS()
		return int64(after) - int64(before), err
	}
	small, err := grow(8192)
	if err != nil {
		return 0, err
	}
	large, err := grow(16384)
	if err != nil {
		return 0, err
	}
	return float64(large-small) / 8192, nil
}

// selfRSS is this process's resident set in bytes.
func selfRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, errors.New("/proc/self/statm: unexpected format")
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * uint64(os.Getpagesize()), nil
}

// kvEngine is a raw engine loop over a context with the setting, with
// cfg.Streams slots of cfg.SlotContext, warmed up.
func kvEngine(m *engine.Model, cfg KVConfig, s KVSetting) (*rawEngine, error) {
	r := &rawEngine{m: m, eog: m.EOGTokens()}
	var err error
	opts := engine.ContextOptions{SlotContext: cfg.SlotContext, Slots: cfg.Streams, Threads: cfg.Threads, FlashAttention: s.Flash, KVType: s.Type}
	if r.lctx, err = m.NewContext(opts); err != nil {
		return nil, err
	}
	if r.b, err = engine.NewBatch(512); err != nil {
		r.lctx.Close()
		return nil, err
	}
	long := max(cfg.SlotContext-cfg.GenTokens-8, 64)
	toks, err := m.Tokenize(promptText(long), true)
	if err == nil {
		r.toks = toks[:min(len(toks), 64)]
		r.long = toks[:min(len(toks), long)]
		err = r.warmUp()
	}
	if err != nil {
		r.lctx.Close()
		r.b.Free()
		return nil, err
	}
	return r, nil
}

// scores are one setting's figures on the fixed text; logp (the baseline's
// only) holds each position's log-probabilities, for the others' KL.
type scores struct {
	top   []int
	logp  [][]float32
	nll   float64
	kl    float64
	agree float64
}

// kvNLL scores toks in windows of nllWindow (each BOS and the next tokens
// of the text, decoded at once): the mean negative log-likelihood of the
// text's own next tokens and, against base (nil for the baseline itself),
// the mean KL divergence and the top-1 agreement.
func kvNLL(m *engine.Model, cfg KVConfig, s KVSetting, toks []int, base *scores) (*scores, error) {
	c, err := m.NewContext(engine.ContextOptions{SlotContext: nllWindow, Slots: 1, BatchSize: nllWindow, Threads: cfg.Threads, FlashAttention: s.Flash, KVType: s.Type})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	b, err := engine.NewBatch(nllWindow)
	if err != nil {
		return nil, err
	}
	defer b.Free()
	bos := m.Info().BOS
	sc := &scores{}
	var kl float64
	same := 0
	for start := 0; start < len(toks); start += nllWindow - 1 {
		win := append([]int{bos}, toks[start:min(start+nllWindow-1, len(toks))]...)
		if len(win) < 2 {
			break
		}
		b.Clear()
		for i, t := range win {
			b.Add(t, i, 0, i < len(win)-1)
		}
		if err := c.Decode(b); err != nil {
			return nil, err
		}
		for i := 0; i < len(win)-1; i++ {
			lp, best := logSoftmax(c.Logits(i))
			sc.nll -= float64(lp[win[i+1]])
			pos := len(sc.top)
			sc.top = append(sc.top, best)
			if base == nil {
				sc.logp = append(sc.logp, lp)
				same++
				continue
			}
			if pos < len(base.logp) {
				kl += klDiv(base.logp[pos], lp)
				if base.top[pos] == best {
					same++
				}
			}
		}
		c.RemoveFrom(0, 0)
	}
	n := float64(len(sc.top))
	if n == 0 {
		return nil, errors.New("no tokens to score")
	}
	sc.nll /= n
	sc.kl = kl / n
	sc.agree = float64(same) / n
	return sc, nil
}

// logSoftmax returns log softmax(logits) and the argmax.
func logSoftmax(logits []float32) ([]float32, int) {
	mx, best := math.Inf(-1), 0
	for i, l := range logits {
		if float64(l) > mx {
			mx, best = float64(l), i
		}
	}
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l) - mx)
	}
	lz := mx + math.Log(z)
	out := make([]float32, len(logits))
	for i, l := range logits {
		out[i] = float32(float64(l) - lz)
	}
	return out, best
}

// klDiv is KL(p || q) of two log-probability vectors.
func klDiv(p, q []float32) float64 {
	var d float64
	for i := range p {
		pp := math.Exp(float64(p[i]))
		d += pp * float64(p[i]-q[i])
	}
	return d
}

// PrintKV prints the KV cache tables.
func PrintKV(w io.Writer, rows []KVRow, cfg KVConfig) {
	if w == nil || len(rows) == 0 {
		return
	}
	base := map[string]KVRow{}
	for _, r := range rows {
		if _, ok := base[r.Model]; !ok && r.Err == "" {
			base[r.Model] = r
		}
	}
	fmt.Fprintf(w, "\nKV cache types (f16 baseline: no flash attention, as configs default; +fa: flash_attention = true)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tkv_cache\tbytes/token formula\tmeasured (RSS)\tKV memory vs f16\t")
	for _, r := range rows {
		if r.Err != "" {
			fmt.Fprintf(tw, "%s\t%s\t%d\t-\t-\t\n", r.Model, r.Setting, r.FormulaPerToken)
			continue
		}
		b := base[r.Model]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.1f%%\t\n", r.Model, r.Setting, r.FormulaPerToken, r.MeasuredPerToken,
			100*float64(r.FormulaPerToken)/float64(max(b.FormulaPerToken, 1)))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nLargest per-slot context that fits a %s budget (pool estimate, multiple of 256)\n", human(cfg.Budget))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := "model\tkv_cache\t"
	for _, p := range FitParallel {
		hdr += fmt.Sprintf("parallel %d\t", p)
	}
	fmt.Fprintln(tw, hdr)
	for _, r := range rows {
		line := r.Model + "\t" + r.Setting.String() + "\t"
		for i, c := range r.Fit {
			line += fmt.Sprintf("%d (%d tok)\t", c, c*FitParallel[i])
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nSpeed and quality (decode of %d tokens, %d streams for the aggregate, context %d a slot; NLL: mean nats a token of the fixed text)\n",
		cfg.GenTokens, cfg.Streams, cfg.SlotContext)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "model\tkv_cache\tdecode tok/s\tvs f16\tdecode at %d tok/s\tvs f16\t%d-stream tok/s\tvs f16\tNLL\tppl ratio vs f16\tKL vs f16\ttop-1 = f16\ttokens\t\n", cfg.SlotContext-cfg.GenTokens-8, cfg.Streams)
	var refused []string
	for _, r := range rows {
		if r.Err != "" {
			fmt.Fprintf(tw, "%s\t%s\trefused\t\t\t\t\t\t\t\t\t\t\t\n", r.Model, r.Setting)
			refused = append(refused, fmt.Sprintf("  %s %s refused: %s", r.Model, r.Setting, r.Err))
			continue
		}
		b := base[r.Model]
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.2f\t%.1f\t%.2f\t%.1f\t%.2f\t%.4f\t%.4f\t%.5f\t%.1f%%\t%d\t\n", r.Model, r.Setting,
			r.Decode, r.Decode/b.Decode, r.DecodeLong, r.DecodeLong/b.DecodeLong, r.Aggregate, r.Aggregate/b.Aggregate, r.NLL, math.Exp(r.NLL-b.NLL), r.KL, 100*r.Agree, r.Scored)
	}
	tw.Flush()
	for _, l := range refused {
		fmt.Fprintln(w, l)
	}
}

// StoryPrompts open the stories GreedyText continues: stories260K's own
// domain (children's stories from TinyStories).
var StoryPrompts = []string{
	"Once upon a time", "One day, a little girl named Lily", "Tom had a big red ball", "There was a small cat who",
	"Sam and his mom went to the park", "The sun was shining and", "A little bird lived in a tree", "Once there was a boy named Tim",
	"Sue found a shiny box", "The dog was very happy because", "Mia wanted to bake a cake", "In a big forest there lived a bear",
	"Ben liked to play with his truck", "It was a rainy day and", "Anna saw a big fish in the pond", "The little car could not go fast",
}

// GreedyText continues each prompt greedily (temperature 0) for at most n
// tokens or to the end of the story (end of text, or the start of another), and returns the prompts and their
// continuations, one a paragraph. It made testdata/kvcache's text.
func GreedyText(ctx context.Context, path string, prompts []string, n int) (string, error) {
	m, err := engine.Load(ctx, path, engine.LoadOptions{})
	if err != nil {
		return "", err
	}
	defer m.Close()
	c, err := m.NewContext(engine.ContextOptions{SlotContext: n + 64, Slots: 1})
	if err != nil {
		return "", err
	}
	defer c.Close()
	b, err := engine.NewBatch(n + 64)
	if err != nil {
		return "", err
	}
	defer b.Free()
	var out []string
	for _, p := range prompts {
		toks, err := m.Tokenize(p, true)
		if err != nil {
			return "", err
		}
		s, err := m.NewSampler(engine.SamplingParams{Temperature: 0})
		if err != nil {
			return "", err
		}
		b.Clear()
		for i, t := range toks {
			b.Add(t, i, 0, i == len(toks)-1)
		}
		var gen []int
		for pos := len(toks); len(gen) < n; pos++ {
			if err := c.Decode(b); err != nil {
				s.Close()
				return "", err
			}
			tok, err := s.Sample(c, b.Len()-1)
			if err != nil {
				s.Close()
				return "", err
			}
			if m.IsEOG(tok) || tok == m.Info().BOS { // the story ended
				break
			}
			gen = append(gen, tok)
			b.Clear()
			b.Add(tok, pos, 0, true)
		}
		s.Close()
		c.RemoveFrom(0, 0)
		out = append(out, strings.TrimSpace(p+m.Detokenize(gen)))
	}
	return strings.Join(out, "\n\n") + "\n", nil
}
