package experiment

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/jetai/jetai/config"
)

// Outcome is one finished (or failed) request on a variant.
type Outcome struct {
	Experiment, Variant string
	// OK is false when the request failed on this variant.
	OK bool
	// FellBack is set on the variant that served a request assigned to
	// another one (which could not serve).
	FellBack bool
	// Shadow marks a shadow copy's outcome.
	Shadow          bool
	PromptTokens    int
	GeneratedTokens int
	TTFT, Latency   time.Duration
	TokensPerSecond float64
}

// ring keeps the last ringSize samples, for percentiles.
const ringSize = 1024

type ring struct {
	xs   [ringSize]float64
	n    int
	next int
}

func (r *ring) add(x float64) {
	if math.IsNaN(x) {
		return
	}
	r.xs[r.next] = x
	r.next = (r.next + 1) % ringSize
	if r.n < ringSize {
		r.n++
	}
}

func (r *ring) quantile(q float64) float64 {
	if r.n == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), r.xs[:r.n]...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// variantStats are one variant's counters since it started (or since its
// model changed).
type variantStats struct {
	model                         string
	requests, errors, fellBack    int64
	shadowRuns, shadowErrors      int64
	promptTokens, generatedTokens int64
	tps, ttft, latency            Welford
	latencyRing, ttftRing         ring
	score                         Welford
	thumbsUp, thumbsDown          int64
}

type expState struct {
	cfg      config.Experiment
	variants map[string]*variantStats
	started  time.Time
	// shadowDropped counts shadow copies dropped (queue full) or skipped.
	shadowDropped, shadowSkipped int64
}

// Set is the experiments in force and their statistics. It is safe for
// concurrent use.
type Set struct {
	mu   sync.Mutex
	exps map[string]*expState
	now  func() time.Time
	fb   *feedbackStore
}

// New returns an empty set; Apply puts experiments in force.
func New() *Set {
	return &Set{exps: map[string]*expState{}, now: time.Now, fb: newFeedbackStore(DefaultFeedbackIDs)}
}

// Apply puts cfg's experiments in force. Statistics of a variant whose
// experiment, name and model stay are kept (a weight change keeps them);
// a variant whose model changed starts afresh; removed experiments go.
func (s *Set) Apply(cfg *config.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]*expState{}
	for _, e := range cfg.Experiments {
		old := s.exps[e.Name]
		st := &expState{cfg: e, variants: map[string]*variantStats{}, started: s.now()}
		if old != nil {
			st.started, st.shadowDropped, st.shadowSkipped = old.started, old.shadowDropped, old.shadowSkipped
		}
		for _, v := range e.Variants {
			if old != nil {
				if vs, ok := old.variants[v.Name]; ok && vs.model == v.Model {
					st.variants[v.Name] = vs
					continue
				}
			}
			st.variants[v.Name] = &variantStats{model: v.Model}
		}
		next[e.Name] = st
	}
	s.exps = next
}

// Record adds a request's outcome to its variant.
func (s *Set) Record(o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.exps[o.Experiment]
	if !ok {
		return
	}
	v, ok := e.variants[o.Variant]
	if !ok {
		return
	}
	if o.Shadow {
		v.shadowRuns++
		if !o.OK {
			v.shadowErrors++
		}
	} else {
		v.requests++
		if !o.OK {
			v.errors++
		}
		if o.FellBack {
			v.fellBack++
		}
	}
	if !o.OK {
		return
	}
	v.promptTokens += int64(o.PromptTokens)
	v.generatedTokens += int64(o.GeneratedTokens)
	if o.TokensPerSecond > 0 {
		v.tps.Add(o.TokensPerSecond)
	}
	if o.TTFT > 0 {
		ms := float64(o.TTFT) / 1e6
		v.ttft.Add(ms)
		v.ttftRing.add(ms)
	}
	ms := float64(o.Latency) / 1e6
	v.latency.Add(ms)
	v.latencyRing.add(ms)
}

// ShadowDropped counts a shadow copy that was not run: dropped (its queue
// was full) or skipped (throttled, short of memory, no free slot).
func (s *Set) ShadowDropped(experiment string, skipped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.exps[experiment]; ok {
		if skipped {
			e.shadowSkipped++
		} else {
			e.shadowDropped++
		}
	}
}
