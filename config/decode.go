package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/jetai/jetai/gguf"
)

// ggufMagic starts every GGUF file.
const ggufMagic = "GGUF"

// decoder builds a Config from the raw schema and collects diagnostics.
type decoder struct {
	file  string
	dir   string
	diags Diagnostics
	// bad holds the start of every range HCL already complained about, so a
	// value with a type error is not reported a second time. Keyed by file
	// too: the main file and its drop-ins share positions.
	bad map[badKey]bool
	// kvCache is memory.kv_cache, the default of every model; kvCacheAt is
	// where it is set (nil when left out).
	kvCache   string
	kvCacheAt *hcl.Range
}

func decode(src []byte, filename string) (*Config, Diagnostics) {
	return decodeFiles(src, filename, nil)
}

// decodeFiles decodes the main file src (named filename) and its drop-ins
// (dropin.go) as one config: the drop-ins' blocks follow the main file's,
// and every diagnostic names the file it is in.
func decodeFiles(src []byte, filename string, dropIns []source) (*Config, Diagnostics) {
	d := &decoder{file: filename, bad: map[badKey]bool{}}
	dir := filepath.Dir(filename)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	d.dir = dir

	f, hd := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	var syntax Diagnostics
	if hd.HasErrors() {
		syntax = fromHCL(filename, hd)
	}
	var extra []*hclsyntax.Block
	for _, di := range dropIns {
		db, ds := parseDropIn(di, filename) // dropin.go
		if db == nil {
			syntax = append(syntax, ds...)
			continue
		}
		d.diags = append(d.diags, ds...)
		extra = append(extra, db.Blocks...)
	}
	if syntax != nil {
		// Syntax errors: the structure is unknown, so semantic checks would
		// only add noise. HCL reports every syntax error it can recover from.
		syntax.sort()
		return nil, syntax
	}
	body := f.Body.(*hclsyntax.Body)
	if len(extra) > 0 {
		merged := *body
		merged.Blocks = append(append([]*hclsyntax.Block{}, body.Blocks...), extra...)
		body = &merged
	}
	if ds := checkBlockCount(body, filename); ds != nil { // limits.go
		return nil, ds
	}
	if hd := checkNumbers(body); hd.HasErrors() {
		ds := fromHCL(filename, hd)
		ds.sort()
		return nil, ds
	}
	var raw fileSchema
	hd = gohcl.DecodeBody(body, nil, &raw)
	for _, h := range hd {
		if h.Subject != nil {
			d.bad[at(*h.Subject)] = true
		}
		if h.Context != nil {
			d.bad[at(*h.Context)] = true
		}
	}
	d.diags = append(d.diags, fromHCL(filename, renameTypeErrors(body, hd))...)

	c := &Config{Path: filename, Dir: dir}
	d.server(&c.Server, raw.Server)
	d.memory(&c.Memory, raw.Memory)
	d.cache(&c.Cache, raw.Cache)
	d.responses(&c.Cache, raw.Cache) // responses.go
	d.thermal(&c.Thermal, raw.Thermal)
	d.pull(&c.Pull, raw.Pull) // pull.go
	d.gpu(&c.GPU, raw.GPU)
	d.gpuBudget(&c.Memory, raw.Memory)
	d.models(c, raw.Models)
	d.router(c, raw.Router, raw.Models)
	d.budgets(c, raw.Memory, raw.Models)
	d.experiments(c, raw.Experiments) // experiment.go
	d.diags.sort()
	return c, d.diags
}

// --- diagnostics helpers ---

// badKey is where a range starts: its file and position.
type badKey struct {
	file string
	pos  hcl.Pos
}

func at(r hcl.Range) badKey { return badKey{r.Filename, r.Start} }

// errf reports an error at r, at most one per position: a value that already
// has an error (from HCL or from an earlier check) gets no second one.
func (d *decoder) errf(r hcl.Range, format string, args ...any) {
	if d.bad[at(r)] {
		return
	}
	d.bad[at(r)] = true
	d.diags = append(d.diags, newDiag(Error, d.file, &r, fmt.Sprintf(format, args...)))
}

func (d *decoder) warnf(r hcl.Range, format string, args ...any) {
	d.diags = append(d.diags, newDiag(Warning, d.file, &r, fmt.Sprintf(format, args...)))
}

func (d *decoder) pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// valueRange is the range of attribute name's value in body, or fallback
// when the attribute is not there (the default was used).
func valueRange(body hcl.Body, name string, fallback hcl.Range) hcl.Range {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[name]; ok {
			return a.Expr.Range()
		}
	}
	return fallback
}

// elemRange is the range of element i of a list attribute, or of the whole
// value when it is not a literal list.
func elemRange(body hcl.Body, name string, i int, fallback hcl.Range) hcl.Range {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[name]; ok {
			if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && i < len(t.Exprs) {
				return t.Exprs[i].Range()
			}
			return a.Expr.Range()
		}
	}
	return fallback
}

func has(body hcl.Body, name string) bool {
	if sb, ok := body.(*hclsyntax.Body); ok {
		_, ok := sb.Attributes[name]
		return ok
	}
	return false
}

// --- value helpers: take the default when absent, validate when present ---

func str(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func num[T int | int64 | float64](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func boolean(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func list(p *[]string, def []string) []string {
	if p == nil {
		return def
	}
	return *p
}

// scalarString evaluates a size or duration attribute: nil when absent, the
// string, or a whole number rendered in decimal. ok is false after an error.
func (d *decoder) scalarString(expr hcl.Expression, name string) (s *string, ok bool) {
	if expr == nil {
		return nil, true
	}
	v, hd := expr.Value(nil)
	if hd.HasErrors() {
		d.diags = append(d.diags, fromHCL(d.file, hd)...)
		for _, h := range hd {
			if h.Subject != nil {
				d.bad[at(*h.Subject)] = true
			}
		}
		d.bad[at(expr.Range())] = true
		return nil, false
	}
	if v.IsNull() {
		return nil, true
	}
	if !v.IsKnown() {
		d.errf(expr.Range(), "%s must be a constant string", name)
		return nil, false
	}
	switch v.Type() {
	case cty.String:
		str := v.AsString()
		return &str, true
	case cty.Number:
		bf := v.AsBigFloat()
		if i, acc := bf.Int64(); acc == big.Exact {
			str := strconv.FormatInt(i, 10)
			return &str, true
		}
		d.errf(expr.Range(), "%s is a number that is not a whole number of bytes or seconds in range; write it as a string with a unit, such as \"6GiB\" or \"10m\"", name)
		return nil, false
	}
	d.errf(expr.Range(), "%s has the wrong type: it must be a string such as \"6GiB\" or \"10m\", not %s", name, v.Type().FriendlyName())
	return nil, false
}

func (d *decoder) size(body hcl.Body, fallback hcl.Range, name string, expr hcl.Expression, def Size) Size {
	p, ok := d.scalarString(expr, name)
	if p == nil || !ok {
		return def
	}
	s, err := ParseSize(*p)
	if err != nil {
		d.errf(valueRange(body, name, fallback), "%s: %v", name, err)
		return def
	}
	return s
}

func (d *decoder) duration(body hcl.Body, fallback hcl.Range, name string, expr hcl.Expression, def time.Duration) time.Duration {
	p, ok := d.scalarString(expr, name)
	if p == nil || !ok {
		return def
	}
	v, err := ParseDuration(*p)
	if err != nil {
		d.errf(valueRange(body, name, fallback), "%s: %v", name, err)
		return def
	}
	return v
}

// intRange checks lo <= v <= hi for a present attribute.
func (d *decoder) intRange(body hcl.Body, fallback hcl.Range, name string, v, lo, hi int, what string) {
	if v < lo || v > hi {
		d.errf(valueRange(body, name, fallback), "%s is %d; %s", name, v, what)
	}
}

func (d *decoder) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.dir, p)
}

// --- blocks ---

var logLevels = []string{"debug", "info", "warn", "error"}

func (d *decoder) server(s *Server, b *serverBlock) {
	if b == nil {
		b = &serverBlock{}
	}
	body, def := b.Body, b.DefRange
	s.Listen = str(b.Listen, DefaultListen)
	s.AdminSocket = str(b.AdminSocket, DefaultAdminSocket)
	s.AdminGroup = str(b.AdminGroup, DefaultAdminGroup)
	s.APIKeys = list(b.APIKeys, nil)
	s.CORSOrigins = list(b.CORSOrigins, nil)
	s.AllowedHosts = list(b.AllowedHosts, nil)
	s.MaxBody = d.size(body, def, "max_body", b.MaxBody, DefaultMaxBody)
	s.RequestTimeout = d.duration(body, def, "request_timeout", b.RequestTimeout, DefaultRequestTimeout)
	s.QueuePerModel = num(b.QueuePerModel, DefaultQueuePerModel)
	s.QueueTotal = num(b.QueueTotal, DefaultQueueTotal)
	s.MaxConnections = num(b.MaxConnections, DefaultMaxConnections)
	s.LogLevel = str(b.LogLevel, DefaultLogLevel)
	s.AllowPull = b.AllowPull != nil && *b.AllowPull
	s.FetchImages = b.FetchImages != nil && *b.FetchImages
	s.MaxImagePixels = num(b.MaxImagePixels, DefaultMaxImagePixels)
	if s.MaxImagePixels < 1 {
		d.errf(valueRange(body, "max_image_pixels", def), "max_image_pixels is %d; it must be at least 1 (width × height of the largest image taken)", s.MaxImagePixels)
	}
	d.logFormat(s, b) // logformat.go

	loopback := true
	if host, port, err := net.SplitHostPort(s.Listen); err != nil {
		d.errf(valueRange(body, "listen", def), "listen address %q is not host:port (for example \"127.0.0.1:8000\" or \":8000\")", s.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		d.errf(valueRange(body, "listen", def), "listen address %q has port %q; the port must be a number from 1 to 65535", s.Listen, port)
	} else {
		ip := net.ParseIP(host)
		loopback = host == "localhost" || (ip != nil && ip.IsLoopback())
	}
	if len(s.APIKeys) == 0 && !loopback {
		d.warnf(valueRange(body, "listen", def), "the API listens on %q beyond loopback and no api_keys are set: anyone who can reach it can use it", s.Listen)
	}
	if !filepath.IsAbs(s.AdminSocket) {
		d.errf(valueRange(body, "admin_socket", def), "admin_socket %q must be an absolute path", s.AdminSocket)
	}
	if strings.TrimSpace(s.AdminGroup) == "" {
		d.errf(valueRange(body, "admin_group", def), "admin_group must name a group")
	}
	for i, k := range s.APIKeys {
		if k == "" || strings.IndexFunc(k, unicode.IsSpace) >= 0 {
			d.errf(elemRange(body, "api_keys", i, def), "api key %d is empty or holds white space; clients send it as \"Authorization: Bearer KEY\"", i+1)
		}
	}
	for i, o := range s.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			d.errf(elemRange(body, "cors_origins", i, def), "CORS origin %q is not \"*\" or scheme://host[:port] (for example \"http://localhost:3000\")", o)
		}
	}
	for i, h := range s.AllowedHosts {
		if !validAllowedHost(h) {
			d.errf(elemRange(body, "allowed_hosts", i, def), "allowed host %q is not \"*\", a host name, \"*.\" and a domain, or an IP address, without scheme or port (for example \"jetson.lan\", \"*.lan\" or \"192.168.1.20\")", h)
		}
	}
	if s.MaxBody <= 0 && has(body, "max_body") {
		d.errf(valueRange(body, "max_body", def), "max_body must be more than 0 bytes")
	}
	if s.QueuePerModel < 0 {
		d.errf(valueRange(body, "queue_per_model", def), "queue_per_model is %d; it must be 0 or more", s.QueuePerModel)
	}
	if s.QueueTotal < 0 {
		d.errf(valueRange(body, "queue_total", def), "queue_total is %d; it must be 0 or more", s.QueueTotal)
	} else if s.QueuePerModel > s.QueueTotal {
		d.errf(valueRange(body, "queue_per_model", def), "queue_per_model (%d) is larger than queue_total (%d); one model's queue cannot be longer than all queues together", s.QueuePerModel, s.QueueTotal)
	}
	if s.MaxConnections < 1 {
		d.errf(valueRange(body, "max_connections", def), "max_connections is %d; it must be 1 or more", s.MaxConnections)
	}
	ok := false
	for _, l := range logLevels {
		ok = ok || s.LogLevel == l
	}
	if !ok {
		d.errf(valueRange(body, "log_level", def), "log_level %q is not one of %s", s.LogLevel, strings.Join(logLevels, ", "))
	}
}

func (d *decoder) memory(m *Memory, b *memoryBlock) {
	if b == nil {
		b = &memoryBlock{}
	}
	m.Budget = d.size(b.Body, b.DefRange, "budget", b.Budget, DefaultMemoryBudget)
	m.Reserve = d.size(b.Body, b.DefRange, "reserve", b.Reserve, DefaultMemoryReserve)
	m.KVCache = str(b.KVCache, DefaultKVCache)
	m.WarmSpare = DefaultWarmSpare
	if b.WarmSpare != nil {
		m.WarmSpare = *b.WarmSpare
	}
	if _, ok := gguf.KVCacheGGMLType(m.KVCache); !ok || m.KVCache == "" {
		d.errf(valueRange(b.Body, "kv_cache", b.DefRange), "memory kv_cache %q is not one of %s", m.KVCache, strings.Join(gguf.KVCacheTypes, ", "))
		m.KVCache = DefaultKVCache
	}
	d.kvCache = m.KVCache
	if has(b.Body, "kv_cache") {
		r := valueRange(b.Body, "kv_cache", b.DefRange)
		d.kvCacheAt = &r
	}
	if m.Budget <= 0 {
		d.errf(valueRange(b.Body, "budget", b.DefRange), "memory budget must be more than 0 bytes")
	} else if m.Reserve >= m.Budget {
		r := valueRange(b.Body, "reserve", b.DefRange)
		if !has(b.Body, "reserve") {
			r = valueRange(b.Body, "budget", b.DefRange)
		}
		d.errf(r, "memory reserve (%s) must be smaller than the memory budget (%s)", humanSize(m.Reserve), humanSize(m.Budget))
	}
}

func (d *decoder) cache(c *Cache, b *cacheBlock) {
	if b == nil {
		b = &cacheBlock{}
	}
	c.Dir = d.path(str(b.Dir, DefaultCacheDir))
	c.MaxSize = d.size(b.Body, b.DefRange, "max_size", b.MaxSize, DefaultCacheMaxSize)
	if b.Dir != nil && strings.TrimSpace(*b.Dir) == "" {
		d.errf(valueRange(b.Body, "dir", b.DefRange), "cache dir must name a directory")
	}
}

func (d *decoder) thermal(t *Thermal, b *thermalBlock) {
	if b == nil {
		b = &thermalBlock{}
	}
	body, def := b.Body, b.DefRange
	t.Zones = list(b.Zones, DefaultThermalZones())
	t.SoftLimit = num(b.SoftLimit, DefaultSoftLimit)
	t.HardLimit = num(b.HardLimit, DefaultHardLimit)
	t.PollInterval = d.duration(body, def, "poll_interval", b.PollInterval, DefaultPollInterval)
	t.Hysteresis = num(b.Hysteresis, DefaultHysteresis)
	for i, z := range t.Zones {
		if strings.TrimSpace(z) == "" || strings.ContainsRune(z, '/') {
			d.errf(elemRange(body, "zones", i, def), "thermal zone %q is not a zone type (the contents of /sys/class/thermal/thermal_zone*/type, such as \"cpu-thermal\")", z)
		}
	}
	limitOK := true
	for _, l := range []struct {
		name string
		v    float64
	}{{"soft_limit", t.SoftLimit}, {"hard_limit", t.HardLimit}} {
		if l.v <= 0 || l.v > 150 {
			d.errf(valueRange(body, l.name, def), "thermal %s is %g °C; it must be above 0 and at most 150", l.name, l.v)
			limitOK = false
		}
	}
	if limitOK && t.SoftLimit >= t.HardLimit {
		r := valueRange(body, "soft_limit", def)
		if !has(body, "soft_limit") {
			r = valueRange(body, "hard_limit", def)
		}
		d.errf(r, "thermal soft_limit (%g °C) must be below hard_limit (%g °C)", t.SoftLimit, t.HardLimit)
	}
	if t.PollInterval <= 0 && has(body, "poll_interval") {
		d.errf(valueRange(body, "poll_interval", def), "thermal poll_interval must be more than 0")
	}
	if t.Hysteresis < 0 {
		d.errf(valueRange(body, "hysteresis", def), "thermal hysteresis is %g °C; it must be 0 or more", t.Hysteresis)
	}
}

// checkName reports names that requests could not use.
func (d *decoder) checkName(r hcl.Range, kind, name string) bool {
	switch {
	case name == "":
		d.errf(r, "%s must not be empty", kind)
	case strings.IndexFunc(name, func(c rune) bool { return unicode.IsSpace(c) || !unicode.IsPrint(c) }) >= 0:
		d.errf(r, "%s %q holds white space or control characters", kind, name)
	case name == "auto":
		d.errf(r, "%s \"auto\" is reserved: requests use it to ask for automatic selection", kind)
	default:
		return true
	}
	return false
}

func (d *decoder) models(c *Config, bs []modelBlock) {
	c.byName = map[string]int{}
	defined := map[string]hcl.Range{} // name or alias -> where
	// Names first, so an alias that equals a later model's name is caught.
	for i := range bs {
		b := &bs[i]
		if !d.checkName(b.NameRange, "model name", b.Name) {
			continue
		}
		if prev, ok := defined[b.Name]; ok {
			d.errf(b.NameRange, "model %q is defined twice; the first definition is at %s", b.Name, d.pos(prev))
			if prev.Filename != b.NameRange.Filename {
				// Across files (a drop-in): either file may be the one to
				// change, so both say so.
				d.errf(prev, "model %q is defined again at %s; a model name belongs to one file", b.Name, d.pos(b.NameRange))
			}
			continue
		}
		defined[b.Name] = b.NameRange
		c.byName[b.Name] = len(c.Models)
		m := d.model(b)
		m.File, m.DefinedAt = b.NameRange.Filename, d.pos(b.NameRange)
		c.Models = append(c.Models, m)
	}
	blocks := blocksByName(bs)
	for i := range c.Models {
		m := &c.Models[i]
		b := blocks[m.Name]
		for j, a := range m.Aliases {
			r := elemRange(b.Body, "aliases", j, b.DefRange)
			if !d.checkName(r, "alias", a) {
				continue
			}
			if a == m.Name {
				d.warnf(r, "alias %q repeats the model's own name", a)
				continue
			}
			if prev, ok := defined[a]; ok {
				if idx, isModel := c.byName[a]; isModel && c.Models[idx].Name == a {
					d.errf(r, "alias %q of model %q is the name of another model (defined at %s)", a, m.Name, d.pos(prev))
				} else {
					d.errf(r, "alias %q of model %q is already used at %s; each name and alias must point at one model", a, m.Name, d.pos(prev))
				}
				continue
			}
			defined[a] = r
			c.byName[a] = i
		}
	}
	d.speculativeDrafts(c, bs)
}

// blocksByName maps each model name to its first block. (A scan per model
// made 100,000 model blocks take 43 s to check.)
func blocksByName(bs []modelBlock) map[string]*modelBlock {
	m := make(map[string]*modelBlock, len(bs))
	for i := range bs {
		if _, dup := m[bs[i].Name]; !dup {
			m[bs[i].Name] = &bs[i]
		}
	}
	return m
}

func (d *decoder) model(b *modelBlock) Model {
	body, def := b.Body, b.DefRange
	m := Model{
		Name:           b.Name,
		Path:           d.path(b.Path),
		Aliases:        list(b.Aliases, nil),
		Priority:       num(b.Priority, DefaultPriority),
		MemoryBudget:   d.size(body, def, "memory_budget", b.MemoryBudget, 0),
		Context:        num(b.Context, DefaultContext),
		Parallel:       num(b.Parallel, DefaultParallel),
		Threads:        num(b.Threads, DefaultThreads),
		GPULayers:      num(b.GPULayers, DefaultGPULayers),
		KeepAlive:      DefaultKeepAlive,
		Preload:        boolean(b.Preload, DefaultPreload),
		Pinned:         boolean(b.Pinned, DefaultPinned),
		Tier:           str(b.Tier, ""),
		FlashAttention: boolean(b.FlashAttention, DefaultFlashAttention),
		KVCache:        str(b.KVCache, d.kvCache),
		Cache:          boolean(b.Cache, DefaultCache),
		CacheResponses: boolean(b.CacheResponses, DefaultCacheResponses),
	}
	if p, _ := d.scalarString(b.KeepAlive, "keep_alive"); p != nil {
		ka, err := ParseKeepAlive(*p)
		if err != nil {
			d.errf(valueRange(body, "keep_alive", def), "keep_alive: %v", err)
		} else {
			m.KeepAlive = ka
		}
	}
	d.intRange(body, def, "priority", m.Priority, 0, 100, "priority must be from 0 to 100 (higher wins)")
	d.intRange(body, def, "context", m.Context, 1, 1<<20, "context is the per-slot context in tokens and must be from 1 to 1048576")
	d.intRange(body, def, "parallel", m.Parallel, 1, 256, "parallel is the number of slots and must be from 1 to 256")
	d.intRange(body, def, "threads", m.Threads, 0, 1024, "threads must be from 0 (automatic) to 1024")
	if has(body, "gpu_layers") {
		d.intRange(body, def, "gpu_layers", m.GPULayers, -1, 100000, "gpu_layers must be 0 (CPU only), a number of layers, or -1 (all layers)")
	}
	if m.MemoryBudget == 0 && has(body, "memory_budget") {
		d.errf(valueRange(body, "memory_budget", def), "memory_budget of model %q is 0; leave it out to use only the global budget", m.Name)
	}
	if m.Preload && m.KeepAlive == 0 {
		d.warnf(valueRange(body, "keep_alive", def), "model %q is preloaded but keep_alive is 0, so it is unloaded again as soon as it is idle", m.Name)
	}

	d.modelFile(&m, body, def)
	d.kvCacheType(&m, body, def)
	d.adapters(&m, b.Adapters)
	d.speculative(&m, b.Speculative)
	d.mmproj(&m, b)

	s := b.Sampling
	if s == nil {
		s = &samplingBlock{DefRange: def}
	}
	sb, sd := s.Body, s.DefRange
	m.Sampling = Sampling{
		Temperature:   num(s.Temperature, DefaultTemperature),
		TopK:          num(s.TopK, DefaultTopK),
		TopP:          num(s.TopP, DefaultTopP),
		MinP:          num(s.MinP, DefaultMinP),
		RepeatPenalty: num(s.RepeatPenalty, DefaultRepeatPenalty),
		Seed:          num(s.Seed, DefaultSeed),
		MaxTokens:     num(s.MaxTokens, DefaultMaxTokens),
		Stop:          list(s.Stop, nil),
	}
	sp := m.Sampling
	if sp.Temperature < 0 || sp.Temperature > 10 {
		d.errf(valueRange(sb, "temperature", sd), "temperature is %g; it must be from 0 (greedy) to 10", sp.Temperature)
	}
	if sp.TopK < 0 {
		d.errf(valueRange(sb, "top_k", sd), "top_k is %d; it must be 0 (off) or more", sp.TopK)
	}
	if sp.TopP <= 0 || sp.TopP > 1 {
		d.errf(valueRange(sb, "top_p", sd), "top_p is %g; it must be above 0 and at most 1 (1 is off)", sp.TopP)
	}
	if sp.MinP < 0 || sp.MinP > 1 {
		d.errf(valueRange(sb, "min_p", sd), "min_p is %g; it must be from 0 (off) to 1", sp.MinP)
	}
	if sp.RepeatPenalty <= 0 {
		d.errf(valueRange(sb, "repeat_penalty", sd), "repeat_penalty is %g; it must be above 0 (1 is off)", sp.RepeatPenalty)
	}
	if sp.Seed < -1 || sp.Seed > 0xFFFFFFFE {
		d.errf(valueRange(sb, "seed", sd), "seed is %d; it must be -1 (random) or from 0 to 4294967294", sp.Seed)
	}
	if sp.MaxTokens < 1 {
		d.errf(valueRange(sb, "max_tokens", sd), "max_tokens is %d; it must be 1 or more", sp.MaxTokens)
	} else if m.Context >= 1 && sp.MaxTokens > m.Context {
		r := valueRange(sb, "max_tokens", sd)
		if !has(sb, "max_tokens") {
			r = valueRange(body, "context", def)
		}
		d.errf(r, "default max_tokens (%d) of model %q is larger than its per-slot context (%d tokens)", sp.MaxTokens, m.Name, m.Context)
	}
	for i, st := range sp.Stop {
		if st == "" {
			d.errf(elemRange(sb, "stop", i, sd), "stop string %d is empty", i+1)
		}
	}
	return m
}

// modelFile checks the model file exists, is readable and is GGUF, and
// records its size and modification time. A file that is missing,
// unreadable or not GGUF is a warning, not an error: the model is recorded
// with FileError and the daemon serves the other models while this one
// answers as unavailable until a good file is there (the pool checks again
// at every load). A path that is a directory is an error: no file can
// appear there without the directory going first.
func (d *decoder) modelFile(m *Model, body hcl.Body, def hcl.Range) {
	if !has(body, "path") {
		return // HCL reports the missing argument
	}
	r := valueRange(body, "path", def)
	if strings.TrimSpace(m.Path) == "" || m.Path == "." {
		d.errf(r, "model %q has an empty path", m.Name)
		return
	}
	fi, err := CheckModelFile(m.Path)
	var fe *FileError
	switch {
	case errors.As(err, &fe) && fe.Problem == FileIsDir:
		d.errf(r, "model path %s of model %q is a directory, not a GGUF file", m.Path, m.Name)
		return
	case errors.As(err, &fe):
		what := strings.Replace(fe.Error(), "model file "+m.Path, fmt.Sprintf("model file %s of model %q", m.Path, m.Name), 1)
		d.warnf(r, "%s; the model is unavailable until it is fixed (%s)", what, fe.Hint())
		m.FileError = fe.Error()
		return
	case err != nil:
		d.errf(r, "model file %s of model %q: %v", m.Path, m.Name, err)
		return
	}
	m.FileSize = Size(fi.Size())
	m.FileModTime = fi.ModTime()
}

// kvCacheType checks the model's KV cache type against what llama.cpp can
// create (gguf.KVCacheCheck): a quantized cache needs flash_attention, and
// the model's head size must be whole quantization blocks. The error points
// at the setting to change: the model's kv_cache, or memory.kv_cache when the
// model inherits it.
func (d *decoder) kvCacheType(m *Model, body hcl.Body, def hcl.Range) {
	r := valueRange(body, "kv_cache", def)
	inherited := !has(body, "kv_cache")
	if inherited && d.kvCacheAt != nil {
		r = *d.kvCacheAt
	}
	if m.KVCache == "" {
		m.KVCache = DefaultKVCache
	}
	if _, ok := gguf.KVCacheGGMLType(m.KVCache); !ok {
		d.errf(r, "kv_cache %q of model %q is not one of %s", m.KVCache, m.Name, strings.Join(gguf.KVCacheTypes, ", "))
		return
	}
	if !gguf.KVCacheQuantized(m.KVCache) {
		return
	}
	from := ""
	if inherited {
		from = " (from memory.kv_cache)"
	}
	if !m.FlashAttention {
		if has(body, "flash_attention") {
			r = valueRange(body, "flash_attention", def)
		}
		d.errf(r, "model %q has kv_cache = %q%s without flash_attention = true: llama.cpp reads a quantized V cache only in its flash-attention kernels; set flash_attention = true or kv_cache = \"f16\"", m.Name, m.KVCache, from)
		return
	}
	if m.FileSize == 0 && m.FileModTime.IsZero() {
		return // no readable file: the pool checks the header again at load
	}
	f, err := gguf.Open(m.Path)
	if err != nil {
		return // the pool reports an unreadable header at load
	}
	p, err := f.Params()
	if err != nil {
		return
	}
	if err := gguf.KVCacheCheck(p, m.KVCache, m.FlashAttention); err != nil {
		d.errf(r, "model %q%s: %v", m.Name, from, err)
		return
	}
	if m.GPULayers != 0 && m.GPULayers != GPULayersAuto && p.KeyLength != 128 {
		// ggml-cuda's flash-attention kernels take q8_0/q4_0 K and V only
		// for head size 128 (ggml_backend_cuda_device_supports_op); other
		// sizes run that op on the CPU, copying the cache each step.
		d.warnf(r, "model %q: on a CUDA GPU, llama.cpp's flash attention reads a %s cache only for head size 128; this model's heads have %d, so attention would run on the CPU (use kv_cache = \"f16\" with gpu_layers)", m.Name, m.KVCache, p.KeyLength)
	}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (d *decoder) router(c *Config, b *routerBlock, models []modelBlock) {
	if b == nil {
		b = &routerBlock{}
	}
	known := func() string {
		names := c.ModelNames()
		if len(names) == 0 {
			return "no model blocks are defined"
		}
		return "the models are " + strings.Join(names, ", ")
	}
	tierAt := map[string]hcl.Range{}
	for i := range b.Tiers {
		tb := &b.Tiers[i]
		if !d.checkName(tb.NameRange, "tier name", tb.Name) {
			continue
		}
		if prev, ok := tierAt[tb.Name]; ok {
			d.errf(tb.NameRange, "router tier %q is defined twice; the first definition is at %s", tb.Name, d.pos(prev))
			continue
		}
		tierAt[tb.Name] = tb.NameRange
		t := Tier{
			Name:            tb.Name,
			MaxPromptTokens: num(tb.MaxPromptTokens, 0),
			MaxTokens:       num(tb.MaxTokens, 0),
			Structured:      boolean(tb.Structured, false),
		}
		seen := map[string]bool{}
		for j, name := range list(tb.Models, nil) {
			m, ok := c.Lookup(name)
			if !ok {
				d.errf(elemRange(tb.Body, "models", j, tb.DefRange), "router tier %q names model %q, which no model block defines (%s)", tb.Name, name, known())
				continue
			}
			if !seen[m.Name] {
				seen[m.Name] = true
				t.Models = append(t.Models, m.Name)
			}
		}
		for _, m := range c.Models {
			if m.Tier == tb.Name && !seen[m.Name] {
				seen[m.Name] = true
				t.Models = append(t.Models, m.Name)
			}
		}
		for _, l := range []struct {
			name string
			v    int
		}{{"max_prompt_tokens", t.MaxPromptTokens}, {"max_tokens", t.MaxTokens}} {
			if l.v < 0 {
				d.errf(valueRange(tb.Body, l.name, tb.DefRange), "router tier %q: %s is %d; it must be 0 (no limit) or more", tb.Name, l.name, l.v)
			}
		}
		if len(t.Models) == 0 {
			d.errf(tb.DefRange, "router tier %q has no models: list them in its models attribute or set tier = %q in model blocks", tb.Name, tb.Name)
		}
		if n := len(c.Router.Tiers); n > 0 {
			prev := c.Router.Tiers[n-1]
			for _, l := range []struct {
				name      string
				prev, cur int
			}{{"max_prompt_tokens", prev.MaxPromptTokens, t.MaxPromptTokens}, {"max_tokens", prev.MaxTokens, t.MaxTokens}} {
				if l.cur > 0 && (l.prev == 0 || l.cur < l.prev) {
					pv := "no limit"
					if l.prev > 0 {
						pv = strconv.Itoa(l.prev)
					}
					d.errf(valueRange(tb.Body, l.name, tb.DefRange), "router tier %q has %s %d, less than the tier %q before it (%s); tiers go from small to large", tb.Name, l.name, l.cur, prev.Name, pv)
				}
			}
		}
		c.Router.Tiers = append(c.Router.Tiers, t)
	}
	for _, mb := range models {
		if mb.Tier == nil || *mb.Tier == "" {
			continue
		}
		if _, ok := tierAt[*mb.Tier]; !ok {
			names := make([]string, 0, len(c.Router.Tiers))
			for _, t := range c.Router.Tiers {
				names = append(names, t.Name)
			}
			have := "the router block defines no tiers"
			if len(names) > 0 {
				have = "the tiers are " + strings.Join(names, ", ")
			}
			d.errf(valueRange(mb.Body, "tier", mb.DefRange), "model %q is in tier %q, which the router block does not define (%s)", mb.Name, *mb.Tier, have)
		}
	}
	if b.DefaultModel != nil {
		if m, ok := c.Lookup(*b.DefaultModel); ok {
			c.Router.DefaultModel = m.Name
		} else {
			d.errf(valueRange(b.Body, "default_model", b.DefRange), "router default_model %q is not a model name or alias (%s)", *b.DefaultModel, known())
		}
	} else if len(c.Router.Tiers) > 0 && len(c.Router.Tiers[0].Models) > 0 {
		c.Router.DefaultModel = c.Router.Tiers[0].Models[0]
	} else if len(c.Models) > 0 {
		c.Router.DefaultModel = c.Models[0].Name
	}
}

// budgets checks that the memory budgets can hold what they must.
func (d *decoder) budgets(c *Config, mb *memoryBlock, models []modelBlock) {
	if mb == nil {
		mb = &memoryBlock{}
	}
	budgetRange := valueRange(mb.Body, "budget", mb.DefRange)
	var smallest *Model
	var pinned Size
	blocks := blocksByName(models)
	for i := range c.Models {
		m := &c.Models[i]
		b := blocks[m.Name]
		if m.MemoryBudget > 0 {
			r := valueRange(b.Body, "memory_budget", b.DefRange)
			if m.MemoryBudget > c.Memory.Budget {
				d.errf(r, "memory_budget of model %q (%s) is larger than the global memory budget (%s)", m.Name, humanSize(m.MemoryBudget), humanSize(c.Memory.Budget))
			} else if m.FileSize > 0 && m.MemoryBudget < m.FileSize {
				d.errf(r, "memory_budget of model %q (%s) cannot hold the model: its file alone is %s", m.Name, humanSize(m.MemoryBudget), humanSize(m.FileSize))
			}
		}
		if m.FileSize == 0 {
			continue // file problem already reported
		}
		if smallest == nil || m.FileSize < smallest.FileSize {
			smallest = m
		}
		if m.Pinned {
			pinned += m.FileSize
		}
	}
	if smallest == nil || c.Memory.Budget <= 0 {
		return
	}
	if c.Memory.Budget < smallest.FileSize {
		if !has(mb.Body, "budget") {
			b := blocks[smallest.Name]
			budgetRange = valueRange(b.Body, "path", b.DefRange)
		}
		d.errf(budgetRange, "memory budget (%s) cannot hold even one model: the smallest, %q, is %s on disk alone", humanSize(c.Memory.Budget), smallest.Name, humanSize(smallest.FileSize))
	} else if pinned > c.Memory.Budget {
		d.warnf(budgetRange, "the files of the pinned models add up to %s, more than the memory budget (%s); they cannot all be loaded at once", humanSize(pinned), humanSize(c.Memory.Budget))
	}
}

// humanSize renders a size for a message: exact when it is a whole number of
// a unit, otherwise to two decimals in IEC units.
func humanSize(s Size) string {
	for _, u := range sizeUnits[:4] {
		if s >= u.mult {
			if s%u.mult == 0 {
				return s.String()
			}
			return strconv.FormatFloat(float64(s)/float64(u.mult), 'f', 2, 64) + u.name
		}
	}
	return s.String()
}

// renameTypeErrors rewrites gohcl's type errors ("Unsuitable value type;
// Unsuitable value: a number is required") to name the attribute:
// "context has the wrong type: a number is required".
func renameTypeErrors(body *hclsyntax.Body, hd hcl.Diagnostics) hcl.Diagnostics {
	names := map[badKey]string{} // by file too: drop-ins share positions
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for name, a := range b.Attributes {
			names[at(a.Expr.Range())] = name
			if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
				for _, e := range t.Exprs {
					names[at(e.Range())] = name
				}
			}
		}
		for _, blk := range b.Blocks {
			walk(blk.Body)
		}
	}
	walk(body)
	out := make(hcl.Diagnostics, len(hd))
	for i, h := range hd {
		out[i] = h
		if h.Subject == nil || (h.Summary != "Unsuitable value type" && h.Summary != "Incorrect attribute value type") {
			continue
		}
		r := h.Subject
		if h.Context != nil {
			r = h.Context
		}
		name, ok := names[at(*r)]
		if !ok {
			continue
		}
		c := *h
		c.Summary = name + " has the wrong type"
		c.Detail = strings.TrimPrefix(h.Detail, "Unsuitable value: ")
		if strings.Contains(c.Detail, "value must be between") {
			c.Detail = "the number is out of range" // not 300-digit bounds
		}
		out[i] = &c
	}
	return out
}

// checkNumbers refuses numbers beyond float64's range anywhere in the file.
// cty converts a number to a string by printing every digit, so a literal
// such as 1e99999999 in a string attribute would take minutes and gigabytes
// inside gohcl; no setting needs such a number.
func checkNumbers(body *hclsyntax.Body) hcl.Diagnostics {
	var diags hcl.Diagnostics
	maxF := new(big.Float).SetFloat64(math.MaxFloat64)
	minF := new(big.Float).SetFloat64(math.SmallestNonzeroFloat64)
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for name, a := range b.Attributes {
			v, hd := a.Expr.Value(nil)
			if hd.HasErrors() {
				continue // gohcl reports it
			}
			bad := false
			cty.Walk(v, func(_ cty.Path, v cty.Value) (bool, error) {
				if v.IsKnown() && !v.IsNull() && v.Type() == cty.Number {
					f := new(big.Float).Abs(v.AsBigFloat())
					if f.IsInf() || f.Cmp(maxF) > 0 || (f.Sign() != 0 && f.Cmp(minF) < 0) {
						bad = true
					}
				}
				return !bad, nil
			})
			if bad {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  name + " holds a number out of range",
					Subject:  a.Expr.Range().Ptr(),
				})
			}
		}
		for _, blk := range b.Blocks {
			walk(blk.Body)
		}
	}
	walk(body)
	return diags
}

// validAllowedHost reports whether h is a server.allowed_hosts entry: "*",
// an IP address, or a DNS name (letters, digits, hyphens, dots), which may
// begin with "*." to stand for the name's subdomains.
func validAllowedHost(h string) bool {
	if h == "*" {
		return true
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return true
	}
	name := strings.TrimSuffix(strings.TrimPrefix(h, "*."), ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
