package metrics

import "github.com/jetai/jetai/daemon/respcache"

func init() {
	for name, f := range map[string]family{
		"jetai_response_cache_hits_total":      {"counter", "Answers served from the response cache, collapsed ones included."},
		"jetai_response_cache_misses_total":    {"counter", "Deterministic requests that were generated (and stored when they finished)."},
		"jetai_response_cache_bypasses_total":  {"counter", "Requests that did not use the response cache: sampled without a seed, opted out, or Cache-Control."},
		"jetai_response_cache_collapsed_total": {"counter", "Requests that joined an identical generation in flight instead of starting their own."},
		"jetai_response_cache_evictions_total": {"counter", "Answers evicted from the response cache to make room."},
		"jetai_response_cache_expired_total":   {"counter", "Answers dropped from the response cache at the end of cache.response_ttl."},
		"jetai_response_cache_entries":         {"gauge", "Answers held by the response cache."},
		"jetai_response_cache_bytes":           {"gauge", "Accounted size of the answers held by the response cache."},
		"jetai_response_cache_max_bytes":       {"gauge", "cache.responses: the response cache's bound (0: off)."},
		"jetai_response_cache_disk_hits_total": {"counter", "Hits read from the response cache's disk tier (cache.responses_disk)."},
		"jetai_response_cache_disk_entries":    {"gauge", "Answers held by the response cache's disk tier."},
		"jetai_response_cache_disk_bytes":      {"gauge", "Bytes of the response cache's disk tier files."},
	} {
		families[name] = f
	}
}

// AttachResponses adds the response cache's families.
func (r *Registry) AttachResponses(stats func() respcache.Stats) {
	r.AttachWriter(func(o *writer) {
		s := stats()
		o.sample("jetai_response_cache_hits_total", float64(s.Hits))
		o.sample("jetai_response_cache_misses_total", float64(s.Misses))
		o.sample("jetai_response_cache_bypasses_total", float64(s.Bypasses))
		o.sample("jetai_response_cache_collapsed_total", float64(s.Collapsed))
		o.sample("jetai_response_cache_evictions_total", float64(s.Evictions))
		o.sample("jetai_response_cache_expired_total", float64(s.Expired))
		o.sample("jetai_response_cache_entries", float64(s.Entries))
		o.sample("jetai_response_cache_bytes", float64(s.Bytes))
		o.sample("jetai_response_cache_max_bytes", float64(s.MaxBytes))
		o.sample("jetai_response_cache_disk_hits_total", float64(s.DiskHits))
		o.sample("jetai_response_cache_disk_entries", float64(s.DiskEntries))
		o.sample("jetai_response_cache_disk_bytes", float64(s.DiskBytes))
	})
}

// AttachWriter adds a scrape-time writer of families registered in
// families.
func (r *Registry) AttachWriter(f func(*writer)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra = append(r.extra, f)
}
