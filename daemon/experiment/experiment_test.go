package experiment

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jetai/jetai/config"
)

func exp(weights ...int) *config.Experiment {
	e := &config.Experiment{Name: "assistant", Mode: "split", Sticky: "user"}
	for i, w := range weights {
		e.Variants = append(e.Variants, config.Variant{Name: string(rune('a' + i)), Model: fmt.Sprint("m", i), Weight: w})
	}
	return e
}

// TestSplit: 10,000 fixed keys split 90/10, 50/30/20 and 1/1 within a
// chi-square bound. The critical values are chi-square's 0.999 quantiles
// (1 df: 10.83; 2 df: 13.82; from any table), so a correct split fails
// one run in a thousand at most, and these keys are fixed: the test is
// deterministic.
func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		crit    float64
	}{
		{[]int{90, 10}, 10.83},
		{[]int{50, 30, 20}, 13.82},
		{[]int{1, 1}, 10.83},
	} {
		e := exp(tc.weights...)
		counts := make([]int, len(tc.weights))
		const n = 10000
		for i := range n {
			counts[Assign(e, fmt.Sprintf("user-%d", i))[0]]++
		}
		total := 0
		for _, w := range tc.weights {
			total += w
		}
		chi := 0.0
		for i, w := range tc.weights {
			want := float64(n) * float64(w) / float64(total)
			chi += (float64(counts[i]) - want) * (float64(counts[i]) - want) / want
		}
		if chi > tc.crit {
			t.Errorf("weights %v: counts %v, chi-square %.2f > %.2f", tc.weights, counts, chi, tc.crit)
		}
	}
}

// TestSticky: a key keeps its variant, across calls and across a reload
// that keeps the weights; a 90/10 → 80/20 change moves only keys from a to
// b, about 10% of them.
func TestSticky(t *testing.T) {
	e := exp(90, 10)
	moved, backwards := 0, 0
	e2 := exp(80, 20)
	for i := range 10000 {
		k := fmt.Sprintf("user-%d", i)
		v := Assign(e, k)[0]
		for range 3 {
			if Assign(e, k)[0] != v {
				t.Fatalf("key %s changed variant", k)
			}
		}
		if Assign(exp(90, 10), k)[0] != v {
			t.Fatalf("key %s changed variant under equal weights", k)
		}
		switch w := Assign(e2, k)[0]; {
		case w != v && v == 0:
			moved++
		case w != v:
			backwards++
		}
	}
	if backwards != 0 || moved < 800 || moved > 1200 {
		t.Errorf("90/10 → 80/20 moved %d keys a→b and %d b→a; want about 1,000 and 0", moved, backwards)
	}
}

func TestFallbackOrder(t *testing.T) {
	e := exp(10, 60, 30)
	for i := range 100 {
		o := Assign(e, fmt.Sprint(i))
		if len(o) != 3 {
			t.Fatal(o)
		}
		// After the assigned one, the heaviest of the others first.
		rest := o[1:]
		if o[0] != 1 && rest[0] != 1 {
			t.Fatalf("order %v: b (weight 60) should come first among the others", o)
		}
	}
}

// TestWelchKnownData checks Welch's test against the first example of
// Wikipedia's "Welch's t-test" article (values there: t = -2.46,
// df ≈ 25.0, p = 0.021); the digits below were computed independently
// with Python's statistics module and a numerical integration of
// Student's t density (not this package's incomplete beta).
func TestWelchKnownData(t *testing.T) {
	a1 := []float64{27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4}
	a2 := []float64{27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4}
	var w1, w2 Welford
	for i := range a1 {
		w1.Add(a1[i])
		w2.Add(a2[i])
	}
	w := WelchTest(w1, w2)
	near := func(name string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.6f, want %.6f", name, got, want)
		}
	}
	near("t", w.T, -2.455356, 1e-5)
	near("df", w.DF, 24.988529, 1e-5)
	near("p", w.P, 0.021378, 1e-5)
	// Mean 20.82 and its 95% interval: t(0.975, 14) = 2.1448 (tables:
	// 2.145) times the standard error 0.724220.
	near("mean", w1.Mean, 20.82, 1e-9)
	near("t quantile", TQuantile(0.975, 14), 2.144787, 1e-5)
	near("ci95", w1.CI95(), 2.144787*0.724220, 1e-4)
	// Large df tends to the normal: 1.959964.
	near("t quantile df 1e6", TQuantile(0.975, 1e6), 1.959964, 1e-4)
}

// TestTwoProportionKnownData: 60 of 200 against 40 of 200. By hand: pooled
// p = 100/400 = 0.25, SE = sqrt(0.25·0.75·(1/200 + 1/200)) = 0.0433013,
// z = 0.1/0.0433013 = 2.309401, two-sided p = erfc(z/√2) = 0.020921.
func TestTwoProportionKnownData(t *testing.T) {
	z := TwoProportion(60, 200, 40, 200)
	if math.Abs(z.Z-2.309401) > 1e-5 || math.Abs(z.P-0.020921) > 1e-5 {
		t.Errorf("z = %.6f p = %.6f", z.Z, z.P)
	}
	_, v := verdictRates("a", "b", 60, 200, 40, 200, "errors", "requests")
	if v != "a has a higher rate of errors than b (30.0% vs 20.0%, z = 2.31, p = 0.0209)" {
		t.Errorf("verdict %q", v)
	}
	_, v = verdictRates("a", "b", 2, 20, 1, 20, "errors", "requests")
	if v != "not enough data yet: 3 errors of 40 requests (a 20, b 20)" {
		t.Errorf("3 errors in 40: %q", v)
	}
}

func TestVerdictMeans(t *testing.T) {
	var a, b Welford
	for i := range 10 {
		a.Add(float64(i))
		b.Add(float64(i) + 100)
	}
	if _, v := verdictMeans("a", "b", a, b, "ms", "lower"); v[:len(NotEnough)] != NotEnough {
		t.Errorf("10 samples each: %q", v)
	}
	for i := range 40 {
		a.Add(float64(i % 10))
		b.Add(float64(i%10) + 100)
	}
	if w, v := verdictMeans("a", "b", a, b, "ms", "lower"); w.P > 1e-6 || v[:1] != "b" {
		t.Errorf("clear difference: p %g %q", w.P, v)
	}
}

func TestRecordAndReport(t *testing.T) {
	s := New()
	cfg := &config.Config{Experiments: []config.Experiment{*exp(50, 50)}}
	s.Apply(cfg)
	for i := range 40 {
		s.Record(Outcome{Experiment: "assistant", Variant: "a", OK: true, GeneratedTokens: 10, PromptTokens: 3,
			TTFT: time.Duration(10+i%5) * time.Millisecond, Latency: time.Duration(100+i%10) * time.Millisecond, TokensPerSecond: 100 + float64(i%7)})
		s.Record(Outcome{Experiment: "assistant", Variant: "b", OK: i%4 != 0,
			TTFT: time.Duration(30+i%5) * time.Millisecond, Latency: time.Duration(300+i%10) * time.Millisecond, TokensPerSecond: 40 + float64(i%7)})
	}
	r, ok := s.Report("assistant", func(string) uint64 { return 42 })
	if !ok || len(r.Variants) != 2 || r.Variants[0].Requests != 40 || r.Variants[1].Errors != 10 || r.Variants[0].GeneratedTokens != 400 ||
		r.Variants[0].MemoryChargedBytes != 42 || *r.Variants[0].LatencyMS.P50 < 100 || *r.Variants[0].LatencyMS.P95 > 110 {
		t.Fatalf("report %+v", r)
	}
	byMetric := map[string]Comparison{}
	for _, c := range r.Comparisons {
		byMetric[c.Metric] = c
	}
	if c := byMetric["latency_ms"]; !c.Significant {
		t.Errorf("latency: %+v", c)
	}
	if c := byMetric["score"]; c.Significant || c.Verdict[:len(NotEnough)] != NotEnough {
		t.Errorf("score without feedback: %+v", c)
	}
	// A weight change keeps the figures; a model change resets them.
	cfg2 := &config.Config{Experiments: []config.Experiment{*exp(80, 20)}}
	s.Apply(cfg2)
	if r, _ := s.Report("assistant", nil); r.Variants[0].Requests != 40 {
		t.Errorf("after a weight change: %+v", r.Variants[0])
	}
	cfg3 := &config.Config{Experiments: []config.Experiment{*exp(80, 20)}}
	cfg3.Experiments[0].Variants[1].Model = "other"
	s.Apply(cfg3)
	if r, _ := s.Report("assistant", nil); r.Variants[1].Requests != 0 || r.Variants[0].Requests != 40 {
		t.Errorf("after a model change: %+v", r.Variants)
	}
}

func TestFeedback(t *testing.T) {
	s := New()
	s.fb = newFeedbackStore(3)
	s.Apply(&config.Config{Experiments: []config.Experiment{*exp(1, 1)}})
	for i := range 4 {
		s.Served(fmt.Sprint("id", i), "assistant", "b")
	}
	var fe *FeedbackError
	if _, _, err := s.Rate(Feedback{ID: "id0", Thumbs: "up"}); !errors.As(err, &fe) || fe.HTTPStatus() != 404 {
		t.Fatalf("evicted id: %v", err)
	}
	score := 4.0
	if _, v, err := s.Rate(Feedback{ID: "id3", Thumbs: "up", Score: &score}); err != nil || v != "b" {
		t.Fatal(v, err)
	}
	if _, _, err := s.Rate(Feedback{ID: "id3", Thumbs: "down"}); !errors.As(err, &fe) || fe.HTTPStatus() != 409 || fe.Code() == "" {
		t.Fatalf("second rating: %v", err)
	}
	if _, _, err := s.Rate(Feedback{ID: "nope"}); !errors.As(err, &fe) || fe.HTTPStatus() != 404 {
		t.Fatalf("unknown: %v", err)
	}
	r, _ := s.Report("assistant", nil)
	if r.Variants[1].ThumbsUp != 1 || r.Variants[1].Score.N != 1 || *r.Variants[1].Score.Mean != 4 {
		t.Errorf("%+v", r.Variants[1])
	}
}

func TestShadowDropsWhenFull(t *testing.T) {
	sh := NewShadow(1, 2)
	defer sh.Close()
	block := make(chan struct{})
	started := make(chan struct{})
	if !sh.Submit(func(context.Context) { close(started); <-block }) {
		t.Fatal("first job refused")
	}
	<-started
	ok1 := sh.Submit(func(context.Context) {})
	ok2 := sh.Submit(func(context.Context) {})
	t0 := time.Now()
	ok3 := sh.Submit(func(context.Context) {})
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("queue of 2: %v %v %v", ok1, ok2, ok3)
	}
	if time.Since(t0) > 100*time.Millisecond {
		t.Error("a full queue made Submit wait")
	}
	close(block)
}
