package config

import "time"

// cache { responses = "64MiB"  response_ttl = "10m" } and model
// { cache_responses = false }: the response cache (daemon/respcache).

const (
	// DefaultResponses is the response cache's memory: off. A cache makes
	// every repeat of a deterministic request an instant answer, which is
	// what an appliance with repeating traffic wants but not what someone
	// measuring a model expects (a benchmark's repeated prompt would time
	// the cache); turning it on is the operator's call. 64MiB, the value
	// the sample config suggests, holds about ten thousand answers of a few
	// hundred tokens for under 1% of a Jetson Orin Nano's memory.
	DefaultResponses Size = 0
	// DefaultResponseTTL keeps cached answers until evicted: a key names
	// the model file's bytes, so an answer cannot go stale by itself.
	DefaultResponseTTL time.Duration = 0
	// DefaultResponsesDisk: the disk tier is off; the cache starts empty
	// at each start.
	DefaultResponsesDisk Size = 0
	// DefaultCacheResponses: every model's answers may be cached.
	DefaultCacheResponses = true
	// MaxResponses bounds cache.responses.
	MaxResponses = 64 * GiB
)

func (d *decoder) responses(c *Cache, b *cacheBlock) {
	if b == nil {
		b = &cacheBlock{}
	}
	c.Responses = d.size(b.Body, b.DefRange, "responses", b.Responses, DefaultResponses)
	c.ResponseTTL = d.duration(b.Body, b.DefRange, "response_ttl", b.ResponseTTL, DefaultResponseTTL)
	c.ResponsesDisk = d.size(b.Body, b.DefRange, "responses_disk", b.ResponsesDisk, DefaultResponsesDisk)
	if c.ResponsesDisk > MaxResponses {
		d.errf(valueRange(b.Body, "responses_disk", b.DefRange), "cache responses_disk %s is more than %s", c.ResponsesDisk, MaxResponses)
	}
	if c.ResponsesDisk > 0 && c.Responses == 0 {
		d.warnf(valueRange(b.Body, "responses_disk", b.DefRange), "cache responses_disk is set but cache responses is 0 (off): nothing is cached")
	}
	if c.Responses > MaxResponses {
		d.errf(valueRange(b.Body, "responses", b.DefRange), "cache responses %s is more than %s", c.Responses, MaxResponses)
	}
	if c.ResponseTTL < 0 {
		d.errf(valueRange(b.Body, "response_ttl", b.DefRange), "cache response_ttl must not be negative")
	}
	if c.ResponseTTL > 0 && c.Responses == 0 {
		d.warnf(valueRange(b.Body, "response_ttl", b.DefRange), "cache response_ttl is set but cache responses is 0 (off): nothing is cached")
	}
}

// Reloads: the response cache's bound and TTL apply live; so does a
// model's cache_responses (the next request reads it).
func init() {
	globalFields = append(globalFields,
		field[*Config]{"cache.responses", false, func(c *Config) string { return c.Cache.Responses.String() }},
		field[*Config]{"cache.response_ttl", false, func(c *Config) string { return formatDuration(c.Cache.ResponseTTL) }},
		field[*Config]{"cache.responses_disk", false, func(c *Config) string { return c.Cache.ResponsesDisk.String() }},
	)
	modelFields = append(modelFields,
		field[*Model]{"cache_responses", false, func(m *Model) string { return boolString(m.CacheResponses) }},
	)
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
