package metrics

import (
	"bytes"
	"strings"
	"testing"

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
