package experiment

import (
	"math"
	"time"
)

// Metric is a continuous metric of one variant: its count, mean and the
// half-width of the mean's 95% confidence interval; P50 and P95 over the
// last 1,024 samples where they apply. Absent figures are nil (JSON has
// no NaN).
type Metric struct {
	N    int64    `json:"n"`
	Mean *float64 `json:"mean,omitempty"`
	CI95 *float64 `json:"ci95,omitempty"`
	P50  *float64 `json:"p50,omitempty"`
	P95  *float64 `json:"p95,omitempty"`
}

func fnum(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func metricOf(w Welford, r *ring) Metric {
	m := Metric{N: w.N, CI95: fnum(w.CI95())}
	if w.N > 0 {
		m.Mean = fnum(w.Mean)
	}
	if r != nil && r.n > 0 {
		m.P50, m.P95 = fnum(r.quantile(0.5)), fnum(r.quantile(0.95))
	}
	return m
}

// VariantReport is one variant's figures.
type VariantReport struct {
	Name   string `json:"name"`
	Model  string `json:"model"`
	Weight int    `json:"weight"`
	// Share is the weight's share of the experiment's traffic (split mode).
	Share    float64 `json:"share"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	// FellBack counts requests this variant served for another that could
	// not.
	FellBack int64 `json:"fell_back"`
	// ShadowRuns and ShadowErrors count shadow copies (shadow mode).
	ShadowRuns      int64  `json:"shadow_runs,omitempty"`
	ShadowErrors    int64  `json:"shadow_errors,omitempty"`
	PromptTokens    int64  `json:"prompt_tokens"`
	GeneratedTokens int64  `json:"generated_tokens"`
	TokensPerSecond Metric `json:"tokens_per_second"`
	TTFTMS          Metric `json:"ttft_ms"`
	LatencyMS       Metric `json:"latency_ms"`
	Score           Metric `json:"score"`
	ThumbsUp        int64  `json:"thumbs_up"`
	ThumbsDown      int64  `json:"thumbs_down"`
	// MemoryChargedBytes is what the variant's model counts against the
	// memory budget now.
	MemoryChargedBytes uint64 `json:"memory_charged_bytes"`
}

// Comparison is one metric of a variant against the first variant.
type Comparison struct {
	Metric string `json:"metric"`
	A      string `json:"a"`
	B      string `json:"b"`
	// Test is "welch" (continuous metrics) or "two_proportion" (rates).
	Test      string   `json:"test"`
	Statistic *float64 `json:"statistic,omitempty"` // t or z
	DF        *float64 `json:"df,omitempty"`
	P         *float64 `json:"p,omitempty"`
	// Significant is true when the data allow a call at the 5% level.
	Significant bool `json:"significant"`
	// Verdict says in words what the numbers support.
	Verdict string `json:"verdict"`
}

// Report is one experiment's state and figures.
type Report struct {
	Name          string          `json:"name"`
	Mode          string          `json:"mode"`
	Sticky        string          `json:"sticky"`
	Since         time.Time       `json:"since"`
	ShadowDropped int64           `json:"shadow_dropped,omitempty"`
	ShadowSkipped int64           `json:"shadow_skipped,omitempty"`
	Variants      []VariantReport `json:"variants"`
	Comparisons   []Comparison    `json:"comparisons"`
}

// Reports returns every experiment's report, in config order; memory
// gives a model's charged bytes (nil: 0).
func (s *Set) Reports(order []string, memory func(model string) uint64) []Report {
	out := []Report{}
	for _, name := range order {
		if r, ok := s.Report(name, memory); ok {
			out = append(out, r)
		}
	}
	return out
}

// Report returns one experiment's report.
func (s *Set) Report(name string, memory func(model string) uint64) (Report, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.exps[name]
	if !ok {
		return Report{}, false
	}
	r := Report{Name: name, Mode: e.cfg.Mode, Sticky: e.cfg.Sticky, Since: e.started, ShadowDropped: e.shadowDropped, ShadowSkipped: e.shadowSkipped,
		Variants: []VariantReport{}, Comparisons: []Comparison{}}
	total := 0
	for _, v := range e.cfg.Variants {
		total += v.Weight
	}
	var stats []*variantStats
	for _, v := range e.cfg.Variants {
		vs := e.variants[v.Name]
		stats = append(stats, vs)
		vr := VariantReport{Name: v.Name, Model: v.Model, Weight: v.Weight, Share: float64(v.Weight) / float64(max(total, 1)),
			Requests: vs.requests, Errors: vs.errors, FellBack: vs.fellBack, ShadowRuns: vs.shadowRuns, ShadowErrors: vs.shadowErrors,
			PromptTokens: vs.promptTokens, GeneratedTokens: vs.generatedTokens,
			TokensPerSecond: metricOf(vs.tps, nil), TTFTMS: metricOf(vs.ttft, &vs.ttftRing), LatencyMS: metricOf(vs.latency, &vs.latencyRing),
			Score: metricOf(vs.score, nil), ThumbsUp: vs.thumbsUp, ThumbsDown: vs.thumbsDown}
		if memory != nil {
			vr.MemoryChargedBytes = memory(v.Model)
		}
		r.Variants = append(r.Variants, vr)
	}
	a, an := stats[0], e.cfg.Variants[0].Name
	shadow := e.cfg.Mode == "shadow"
	for i := 1; i < len(stats); i++ {
		b, bn := stats[i], e.cfg.Variants[i].Name
		means := func(metric string, x, y Welford, unit, better string) {
			w, verdict := verdictMeans(an, bn, x, y, unit, better)
			r.Comparisons = append(r.Comparisons, Comparison{Metric: metric, A: an, B: bn, Test: "welch",
				Statistic: fnum(w.T), DF: fnum(w.DF), P: fnum(w.P), Significant: x.N >= MinSamples && y.N >= MinSamples && w.P < Alpha, Verdict: verdict})
		}
		rates := func(metric string, x1, n1, x2, n2 int64, what, unit string) {
			z, verdict := verdictRates(an, bn, x1, n1, x2, n2, what, unit)
			x, n := x1+x2, n1+n2
			enough := n1 > 0 && n2 > 0 && x >= MinEvents && n-x >= MinEvents
			r.Comparisons = append(r.Comparisons, Comparison{Metric: metric, A: an, B: bn, Test: "two_proportion",
				Statistic: fnum(z.Z), P: fnum(z.P), Significant: enough && z.P < Alpha, Verdict: verdict})
		}
		means("tokens_per_second", a.tps, b.tps, "tok/s", "higher")
		means("ttft_ms", a.ttft, b.ttft, "ms", "lower")
		means("latency_ms", a.latency, b.latency, "ms", "lower")
		means("score", a.score, b.score, "points", "higher")
		if shadow {
			rates("error_rate", a.errors, a.requests, b.shadowErrors, b.shadowRuns, "errors", "requests")
		} else {
			rates("error_rate", a.errors, a.requests, b.errors, b.requests, "errors", "requests")
		}
		rates("thumbs_up_rate", a.thumbsUp, a.thumbsUp+a.thumbsDown, b.thumbsUp, b.thumbsUp+b.thumbsDown, "thumbs up", "ratings")
	}
	return r, true
}
