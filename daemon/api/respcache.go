package api

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/respcache"
	"github.com/jetai/jetai/daemon/runner"
)

// The response cache on the request path: after the model is chosen and
// its runner request built, before the pool. See package respcache.

// CacheHeader says how the answer was served: hit, miss or bypass (sent
// when cache.responses is on).
const CacheHeader = "X-Jetai-Cache"

// cacheNote carries what the cache did for one request from the attempt
// to the handler's encoding.
type cacheNote struct {
	// header is the response's header map; the outcome goes in before any
	// byte of the answer is written.
	header http.Header
	out    respcache.Outcome
	reason string // why bypassed
}

func (n *cacheNote) set(out respcache.Outcome, reason string) {
	if n == nil {
		return
	}
	n.out, n.reason = out, reason
	if n.header != nil {
		n.header.Set(CacheHeader, string(out))
	}
}

// hit reports whether the answer came from the cache.
func (n *cacheNote) hit() bool { return n != nil && n.out == respcache.Hit }

// noteFor makes the cache note of request r: nil when the cache is off.
func (s *Server) noteFor(w http.ResponseWriter, r *http.Request) *cacheNote {
	if s.cfg().Cache.Responses <= 0 {
		return nil
	}
	n := &cacheNote{header: w.Header()}
	for _, v := range r.Header.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(d)) {
			case "no-cache":
				n.reason = "Cache-Control: no-cache"
			case "no-store":
				n.reason = "Cache-Control: no-store"
			}
		}
	}
	return n
}

// ResponseCache returns the response cache's counters.
func (s *Server) ResponseCache() respcache.Stats { return s.rc().Stats() }

// rc is the response cache in force.
func (s *Server) rc() *respcache.Cache { return s.respCache.Load() }

// applyCacheConfig takes the cache block's response settings and starts
// hashing the model files the cache will key on. A cache is made anew
// (empty in memory, its disk files kept) when the disk tier is turned on
// or off or cache.dir changed; otherwise its bounds change in place.
func (s *Server) applyCacheConfig(cfg *config.Config) {
	dir := ""
	if cfg.Cache.ResponsesDisk > 0 && cfg.Cache.Responses > 0 {
		dir = filepath.Join(cfg.Cache.Dir, "responses")
	}
	if s.rc() == nil || dir != s.respDisk {
		c, err := respcache.New(respcache.Options{MaxBytes: int64(cfg.Cache.Responses), TTL: cfg.Cache.ResponseTTL, Dir: dir, DiskBytes: int64(cfg.Cache.ResponsesDisk)})
		if err != nil && s.log != nil {
			s.log.Error("response cache: the disk tier is unusable; answers are kept in memory only", "dir", dir, "err", err)
		}
		s.respCache.Store(c)
		s.respDisk = dir
	}
	s.rc().SetLimits(int64(cfg.Cache.Responses), cfg.Cache.ResponseTTL)
	s.rc().SetDiskBytes(int64(cfg.Cache.ResponsesDisk))
	if cfg.Cache.Responses <= 0 {
		return
	}
	var paths []string
	for _, m := range cfg.Models {
		if !m.CacheResponses {
			continue
		}
		paths = append(paths, m.Path)
		for _, a := range m.Adapters {
			paths = append(paths, a.Path)
		}
		if m.Mmproj != "" {
			paths = append(paths, m.Mmproj)
		}
	}
	s.hashes.Prime(paths)
}

// cacheKey is req's key for model m, or why it is not looked up.
func (s *Server) cacheKey(m *config.Model, req runner.Request, n *cacheNote) (respcache.Key, string) {
	if n == nil {
		return respcache.Key{}, "off"
	}
	if n.reason != "" {
		return respcache.Key{}, n.reason
	}
	if !m.CacheResponses {
		return respcache.Key{}, "model " + quote(m.Name) + " has cache_responses = false"
	}
	if ok, why := respcache.Cacheable(req); !ok {
		return respcache.Key{}, why
	}
	sum, ok := s.hashes.Sum(m.Path)
	if !ok {
		return respcache.Key{}, "the model file's sha256 is not known yet"
	}
	var ads []respcache.Adapter
	for _, a := range m.Adapters {
		as, ok := s.hashes.Sum(a.Path)
		if !ok {
			return respcache.Key{}, "an adapter's sha256 is not known yet"
		}
		ads = append(ads, respcache.Adapter{SHA256: as, Scale: a.Scale})
	}
	var proj string
	if m.Mmproj != "" {
		if proj, ok = s.hashes.Sum(m.Mmproj); !ok {
			return respcache.Key{}, "the projector's sha256 is not known yet"
		}
	}
	k, err := respcache.MakeKeyWithProjector(m, sum, ads, proj, req)
	if err != nil {
		return respcache.Key{}, err.Error()
	}
	return k, ""
}

// complete runs req on model m through the response cache.
func (s *Server) complete(ctx context.Context, m *config.Model, req runner.Request, n *cacheNote, onText func(string)) (runner.Result, error) {
	key, why := s.cacheKey(m, req, n)
	if why != "" {
		if n == nil {
			return s.pool.Complete(ctx, m.Name, req, onText)
		}
		n.set(respcache.Bypass, why)
		s.rc().Skipped()
		if why != "Cache-Control: no-cache" || !m.CacheResponses {
			return s.pool.Complete(ctx, m.Name, req, onText)
		}
		// no-cache asks for a fresh answer, which then refreshes the
		// stored one (no-store stores nothing).
		if k, w := s.cacheKey(m, req, &cacheNote{}); w == "" {
			return s.refresh(ctx, m, req, k, onText)
		}
		return s.pool.Complete(ctx, m.Name, req, onText)
	}
	res, out, err := s.rc().Do(ctx, key, func(o respcache.Outcome) { n.set(o, "") }, onText, func(ctx context.Context, on func(string)) (runner.Result, error) {
		return s.pool.Complete(ctx, m.Name, req, on)
	})
	n.set(out, "")
	if err == nil && out == respcache.Hit {
		res.Timings = hitTimings(res.Timings)
	}
	return res, err
}

// refresh generates afresh and stores the answer under k.
func (s *Server) refresh(ctx context.Context, m *config.Model, req runner.Request, k respcache.Key, onText func(string)) (runner.Result, error) {
	var chunks []string
	res, err := s.pool.Complete(ctx, m.Name, req, func(t string) {
		chunks = append(chunks, t)
		if onText != nil {
			onText(t)
		}
	})
	if err == nil && (res.FinishReason == runner.FinishStop || res.FinishReason == runner.FinishLength) {
		s.rc().Put(k, &respcache.Answer{Result: res, Chunks: chunks})
	}
	return res, err
}

// hitTimings are a cached answer's timings: its token counts, every
// prompt token counted as cached, no time spent in a runner, and slot -1
// (no runner slot), which is how usage knows to say cached.
func hitTimings(t runner.Timings) runner.Timings {
	return runner.Timings{PromptTokens: t.PromptTokens, CachedTokens: t.PromptTokens, GeneratedTokens: t.GeneratedTokens, Slot: -1}
}
