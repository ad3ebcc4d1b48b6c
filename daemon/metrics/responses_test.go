package metrics

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jetai/jetai/daemon/experiment"
	"github.com/jetai/jetai/daemon/respcache"
)

func TestResponseCacheFamilies(t *testing.T) {
	r := New()
	r.AttachResponses(func() respcache.Stats {
		return respcache.Stats{Hits: 7, Misses: 3, Evictions: 2, Entries: 5, Bytes: 4096, MaxBytes: 1 << 20}
	})
	var b bytes.Buffer
	r.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE jetai_response_cache_hits_total counter\njetai_response_cache_hits_total 7\n",
		"jetai_response_cache_misses_total 3\n",
		"jetai_response_cache_evictions_total 2\n",
		"# TYPE jetai_response_cache_entries gauge\njetai_response_cache_entries 5\n",
		"jetai_response_cache_bytes 4096\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestExperimentFamilies(t *testing.T) {
	r := New()
	mean, p50 := 250.0, 200.0
	r.AttachExperiments(func() []experiment.Report {
		return []experiment.Report{{Name: "assistant", Variants: []experiment.VariantReport{
			{Name: "a", Requests: 9, ThumbsUp: 2, LatencyMS: experiment.Metric{N: 9, Mean: &mean, P50: &p50}},
			{Name: "b", Requests: 1, Errors: 1},
		}}}
	})
	var b bytes.Buffer
	r.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE jetai_experiment_requests_total counter\n" +
			`jetai_experiment_requests_total{experiment="assistant",variant="a"} 9` + "\n" +
			`jetai_experiment_requests_total{experiment="assistant",variant="b"} 1` + "\n",
		`jetai_experiment_errors_total{experiment="assistant",variant="b"} 1`,
		`jetai_experiment_latency_seconds{experiment="assistant",variant="a",stat="mean"} 0.25`,
		`jetai_experiment_latency_seconds{experiment="assistant",variant="a",stat="p50"} 0.2`,
		`jetai_experiment_feedback_total{experiment="assistant",variant="a",thumbs="up"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
