package pool

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestTimelineBuckets(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 55, 0, time.UTC) // bucket [3:04:50, 3:05:00)
	at := func(secsAgo float64) time.Time { return now.Add(-time.Duration(secsAgo * float64(time.Second))) }
	reqs := []sample{
		{at: at(1), tokens: 20, ttft: 10},              // current bucket
		{at: at(3), tokens: 30, ttft: 30},              // current bucket
		{at: at(6), tokens: 50, ttft: math.NaN()},      // previous bucket, no first token
		{at: at(290), tokens: 7, ttft: 5},              // first bucket (starts 3:00:00)
		{at: at(296), tokens: 1000, ttft: 1},           // before the window: left out
		{at: now.Add(time.Second), tokens: 1, ttft: 1}, // after now: left out
	}
	tl := timeline(reqs, now)
	n := int(PerfWindow / TimelineStep)
	if len(tl) != n {
		t.Fatalf("%d buckets, want %d", len(tl), n)
	}
	if last := tl[n-1].Start; !last.Equal(time.Date(2026, 1, 2, 3, 4, 50, 0, time.UTC)) {
		t.Fatalf("last bucket starts %v", last)
	}
	for i := 1; i < n; i++ {
		if tl[i].Start.Sub(tl[i-1].Start) != TimelineStep {
			t.Fatalf("bucket %d starts %v after %v", i, tl[i].Start, tl[i-1].Start)
		}
	}
	for _, c := range []struct {
		i                 int
		requests, tokens  int
		tps, mean, maxTTF float64
	}{
		{n - 1, 2, 50, 5, 20, 30},
		{n - 2, 1, 50, 5, 0, 0},
		{0, 1, 7, 0.7, 5, 5},
		{1, 0, 0, 0, 0, 0},
	} {
		b := tl[c.i]
		if b.Requests != c.requests || b.Tokens != c.tokens || b.TokensPerSecond != c.tps || b.TTFTMeanMS != c.mean || b.TTFTMaxMS != c.maxTTF {
			t.Errorf("bucket %d: %+v, want requests %d tokens %d tps %v ttft mean %v max %v", c.i, b, c.requests, c.tokens, c.tps, c.mean, c.maxTTF)
		}
	}
}

func TestEventsKeepTheNewest(t *testing.T) {
	p := &Pool{}
	for i := range maxEvents + 20 {
		p.Note("reload", fmt.Sprint(i))
	}
	ev := p.Events()
	if len(ev) != maxEvents || ev[0].Detail != "20" || ev[len(ev)-1].Detail != fmt.Sprint(maxEvents+19) {
		t.Fatalf("%d events, first %q, last %q", len(ev), ev[0].Detail, ev[len(ev)-1].Detail)
	}
	if ev[0].At.IsZero() || ev[0].At.Location() != time.UTC {
		t.Fatalf("event time %v", ev[0].At)
	}
	ev[0].Detail = "changed"
	if p.Events()[0].Detail == "changed" {
		t.Fatal("Events returned the pool's own slice")
	}
}

func TestUnloadKind(t *testing.T) {
	for reason, want := range map[string]string{
		`evicted to make room for "big"`:                       EventEviction,
		"measured memory is over the budget (1 of 2)":          EventEviction,
		"thermal shed: tj-thermal 83 °C":                       EventEviction,
		"memory pressure: MemAvailable 100 MiB":                EventEviction,
		"its charge 2 GiB is over its new memory_budget 1 GiB": EventEviction,
		"idle past keep_alive 5m0s":                            EventUnload,
		"optimize: keep-alive":                                 EventUnload,
	} {
		if got := unloadKind(reason); got != want {
			t.Errorf("%q: %s, want %s", reason, got, want)
		}
	}
}
