package pool

import (
	"math"
	"slices"
	"time"
)

// PerfWindow is how far back the rolling performance figures reach.
const PerfWindow = 5 * time.Minute

// maxSamples caps each model's rolling window.
const maxSamples = 4096

// Performance is what /performance answers: figures per model and overall.
type Performance struct {
	WindowSeconds float64            `json:"window_seconds"`
	Overall       PerfFigures        `json:"overall"`
	Models        []ModelPerformance `json:"models"`
	// Timeline is the window cut into TimelineStep buckets, oldest first,
	// the last one still filling: what the dashboard charts.
	Timeline []PerfBucket `json:"timeline"`
}

// TimelineStep is the width of a Timeline bucket.
const TimelineStep = 10 * time.Second

// PerfBucket holds the requests (all models) that finished in
// [Start, Start+TimelineStep).
type PerfBucket struct {
	Start    time.Time `json:"start"`
	Requests int       `json:"requests"`
	Tokens   int       `json:"tokens"`
	// TokensPerSecond is Tokens over the bucket's width.
	TokensPerSecond float64 `json:"tokens_per_second"`
	// TTFTMeanMS and TTFTMaxMS are over the bucket's requests that
	// produced a first token; 0 when none did.
	TTFTMeanMS float64 `json:"ttft_mean_ms"`
	TTFTMaxMS  float64 `json:"ttft_max_ms"`
}

// timeline buckets reqs (any order) over the window ending at now.
func timeline(reqs []sample, now time.Time) []PerfBucket {
	n := int(PerfWindow / TimelineStep)
	last := now.Truncate(TimelineStep)
	first := last.Add(-time.Duration(n-1) * TimelineStep)
	out := make([]PerfBucket, n)
	ttftN := make([]int, n)
	for i := range out {
		out[i].Start = first.Add(time.Duration(i) * TimelineStep).UTC()
	}
	for _, s := range reqs {
		i := int(s.at.Sub(first) / TimelineStep)
		if s.at.Before(first) || s.at.After(now) || i >= n {
			continue
		}
		b := &out[i]
		b.Requests++
		b.Tokens += s.tokens
		if !math.IsNaN(s.ttft) {
			ttftN[i]++
			b.TTFTMeanMS += s.ttft
			b.TTFTMaxMS = max(b.TTFTMaxMS, s.ttft)
		}
	}
	for i := range out {
		out[i].TokensPerSecond = float64(out[i].Tokens) / TimelineStep.Seconds()
		if ttftN[i] > 0 {
			out[i].TTFTMeanMS /= float64(ttftN[i])
		}
	}
	return out
}

// PerfFigures are counters since start plus rolling-window distributions.
type PerfFigures struct {
	Requests  uint64 `json:"requests"`
	Failures  uint64 `json:"failures"`
	Rejected  uint64 `json:"rejected"` // queue full or no room
	Tokens    uint64 `json:"tokens"`
	Loads     uint64 `json:"loads"`
	Evictions uint64 `json:"evictions"`
	// Outcomes counts finished and refused requests by outcome (see
	// Outcomes); PromptTokens the prompt tokens of completions. The
	// metrics' jetai_requests_total and jetai_prompt_tokens_total are these.
	Outcomes     map[string]uint64 `json:"outcomes"`
	PromptTokens uint64            `json:"prompt_tokens"`
	// Speculative decoding since start (see speculative.go).
	SpeculativeFigures
	// WindowRequests are the finished requests inside the window;
	// WindowTokensPerSecond is their generated tokens over the window.
	WindowRequests        int     `json:"window_requests"`
	WindowTokensPerSecond float64 `json:"window_tokens_per_second"`
	// TokensPerSecond is each request's generation speed.
	TokensPerSecond Percentiles `json:"tokens_per_second"`
	// TimeToFirstTokenMS runs from the pool's Complete call to the first
	// text, so it includes queueing and any load.
	TimeToFirstTokenMS Percentiles `json:"time_to_first_token_ms"`
	// QueueWaitMS is the time requests waited for a load or a slot.
	QueueWaitMS Percentiles `json:"queue_wait_ms"`
	LoadSeconds Percentiles `json:"load_seconds"`
}

// ModelPerformance is one model's figures.
type ModelPerformance struct {
	Name string `json:"name"`
	PerfFigures
	LastLoadSeconds float64 `json:"last_load_seconds"`
}

// Percentiles summarise samples in the window.
type Percentiles struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// sample is one finished request; NaN marks a figure it does not have.
type sample struct {
	at     time.Time
	tokens int
	tps    float64
	ttft   float64
	queue  float64
	dur    float64 // seconds in the runner
}

type loadSample struct {
	at      time.Time
	seconds float64
}

// window holds a model's recent samples, oldest first.
type window struct {
	reqs  []sample
	loads []loadSample
}

func (w *window) add(s sample) {
	w.reqs = append(w.reqs, s)
	if len(w.reqs) > maxSamples {
		w.reqs = slices.Delete(w.reqs, 0, len(w.reqs)-maxSamples)
	}
}

func (w *window) addLoad(s loadSample) {
	w.loads = append(w.loads, s)
	if len(w.loads) > 256 {
		w.loads = slices.Delete(w.loads, 0, len(w.loads)-256)
	}
}

func (w *window) prune(now time.Time) {
	cut := now.Add(-PerfWindow)
	i := 0
	for i < len(w.reqs) && w.reqs[i].at.Before(cut) {
		i++
	}
	w.reqs = slices.Delete(w.reqs, 0, i)
	j := 0
	for j < len(w.loads) && w.loads[j].at.Before(cut) {
		j++
	}
	w.loads = slices.Delete(w.loads, 0, j)
}

// fill sets the window figures of f from the samples.
func fill(f *PerfFigures, reqs []sample, loads []loadSample) {
	var tps, ttft, queue, ls []float64
	tokens := 0
	for _, s := range reqs {
		tokens += s.tokens
		if !math.IsNaN(s.tps) {
			tps = append(tps, s.tps)
		}
		if !math.IsNaN(s.ttft) {
			ttft = append(ttft, s.ttft)
		}
		if !math.IsNaN(s.queue) {
			queue = append(queue, s.queue)
		}
	}
	for _, l := range loads {
		ls = append(ls, l.seconds)
	}
	f.WindowRequests = len(reqs)
	f.WindowTokensPerSecond = float64(tokens) / PerfWindow.Seconds()
	f.TokensPerSecond = percentiles(tps)
	f.TimeToFirstTokenMS = percentiles(ttft)
	f.QueueWaitMS = percentiles(queue)
	f.LoadSeconds = percentiles(ls)
}

// percentiles uses the nearest-rank method.
func percentiles(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	slices.Sort(v)
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(v)))) - 1
		return v[max(0, min(i, len(v)-1))]
	}
	return Percentiles{Count: len(v), Mean: sum / float64(len(v)), P50: rank(50), P95: rank(95), P99: rank(99), Max: v[len(v)-1]}
}

// Performance returns per-model and overall figures over the last
// PerfWindow, with counters since start.
func (p *Pool) Performance() Performance {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := Performance{WindowSeconds: PerfWindow.Seconds(), Models: make([]ModelPerformance, 0, len(p.order))}
	var allReqs []sample
	var allLoads []loadSample
	o := &out.Overall
	o.Outcomes = map[string]uint64{}
	for _, m := range p.order {
		m.win.prune(now)
		mp := ModelPerformance{Name: m.cfg.Name, LastLoadSeconds: m.loadSeconds}
		mp.Requests, mp.Failures, mp.Rejected, mp.Tokens, mp.Loads, mp.Evictions = m.requests, m.failures, m.rejected, m.tokens, m.loads, m.evictions
		fill(&mp.PerfFigures, m.win.reqs, m.win.loads)
		m.counts.fill(&mp.PerfFigures, o)
		out.Models = append(out.Models, mp)
		o.Requests += m.requests
		o.Failures += m.failures
		o.Rejected += m.rejected
		o.Tokens += m.tokens
		o.Loads += m.loads
		o.Evictions += m.evictions
		allReqs = append(allReqs, m.win.reqs...)
		allLoads = append(allLoads, m.win.loads...)
	}
	fill(o, allReqs, allLoads)
	out.Timeline = timeline(allReqs, now)
	return out
}
