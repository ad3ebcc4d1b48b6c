package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Plan is what a reload from one Config to another must do, as data. Model
// lists are in the new file's order (Removed: the old file's order).
type Plan struct {
	// OldHash and NewHash are the Config hashes.
	OldHash string `json:"old_hash"`
	NewHash string `json:"new_hash"`
	// Added models are new: start them as configured (preload, or on demand).
	Added []string `json:"added"`
	// Removed models are gone: finish their in-flight requests, then unload.
	Removed []string `json:"removed"`
	// Restarted models changed a field that needs a new runner process.
	// Their Fields list every change, restart or not.
	Restarted []ModelChange `json:"restarted"`
	// Updated models changed only fields that apply to the running runner.
	Updated []ModelChange `json:"updated"`
	// Unchanged models are left alone.
	Unchanged []string `json:"unchanged"`
	// Live are global settings that the daemon applies without a restart.
	Live []FieldChange `json:"live"`
	// NeedsProcessRestart are global settings that take effect only when
	// jetaid restarts (for example the listen address); until then the old
	// value stays in force. The daemon must report them, not ignore them.
	NeedsProcessRestart []FieldChange `json:"needs_process_restart"`
}

// ModelChange is one changed model.
type ModelChange struct {
	Name   string        `json:"name"`
	Fields []FieldChange `json:"fields"`
}

// FieldChange is one changed setting, rendered as the config file writes it.
type FieldChange struct {
	Field string `json:"field"` // "memory.budget", "context", "sampling.top_k"
	Old   string `json:"old"`
	New   string `json:"new"`
	// Restart says the change needs a new runner (model fields) or a new
	// jetaid process (global fields).
	Restart bool `json:"restart,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return len(p.Added) == 0 && len(p.Removed) == 0 && len(p.Restarted) == 0 &&
		len(p.Updated) == 0 && len(p.Live) == 0 && len(p.NeedsProcessRestart) == 0
}

// String is a one-line summary for logs, for example
// "models: +1 (c) -1 (a) restart 1 (b: context) update 0 unchanged 2; live: memory.budget; needs process restart: server.listen".
func (p Plan) String() string {
	if p.Empty() {
		return "no changes"
	}
	var b strings.Builder
	names := func(ns []string) string {
		if len(ns) == 0 {
			return ""
		}
		return " (" + strings.Join(ns, ", ") + ")"
	}
	changes := func(cs []ModelChange) string {
		if len(cs) == 0 {
			return ""
		}
		parts := make([]string, len(cs))
		for i, c := range cs {
			fs := make([]string, len(c.Fields))
			for j, f := range c.Fields {
				fs[j] = f.Field
			}
			parts[i] = c.Name + ": " + strings.Join(fs, " ")
		}
		return " (" + strings.Join(parts, "; ") + ")"
	}
	fmt.Fprintf(&b, "models: +%d%s -%d%s restart %d%s update %d%s unchanged %d",
		len(p.Added), names(p.Added), len(p.Removed), names(p.Removed),
		len(p.Restarted), changes(p.Restarted), len(p.Updated), changes(p.Updated), len(p.Unchanged))
	fields := func(fs []FieldChange) string {
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = fmt.Sprintf("%s %s→%s", f.Field, f.Old, f.New)
		}
		return strings.Join(parts, ", ")
	}
	if len(p.Live) > 0 {
		b.WriteString("; live: " + fields(p.Live))
	}
	if len(p.NeedsProcessRestart) > 0 {
		b.WriteString("; needs process restart: " + fields(p.NeedsProcessRestart))
	}
	return b.String()
}

// field is one comparable setting: its name as the file writes it, how to
// render it, and whether a change needs a restart.
type field[T any] struct {
	name    string
	restart bool
	get     func(T) string
}

// modelFields decides, per model field, what a change needs.
//
// A new runner process (restart): path and the file's size or modification
// time (a replaced file, or one that appeared; one that went away or went
// bad is an update: the running runner serves on), context, parallel and
// kv_cache (the llama context is sized from them at creation), gpu_layers and flash_attention (fixed when the model
// and context load), cache (whether the runner loads a staged copy),
// adapters (applied when the context is created), speculative.draft
// (the draft model loads with the runner), mmproj and mmproj_offload (the
// projector loads with the runner).
//
// Applied to the running runner or the pool (in place): threads (the runner
// changes its thread count between two decode steps, as the thermal
// throttle does), priority, keep_alive,
// pinned and preload (pool policy), aliases and tier (routing),
// memory_budget (the pool checks it against the measured figure; a lowered
// budget may evict), and the sampling defaults (each request carries its own
// sampling settings to the runner), speculative.ngram and
// speculative.max_draft (sent to the runner, which applies them between two
// decode steps).
var modelFields = []field[*Model]{
	{"path", true, func(m *Model) string { return m.Path }},
	// "file" is reported only when the path is unchanged (the same path now
	// holds a different file); it must stay right after "path".
	{"file", true, func(m *Model) string {
		if m.FileError != "" {
			return "unavailable"
		}
		return m.FileSize.String() + " " + m.FileModTime.UTC().Format(time.RFC3339Nano)
	}},
	{"context", true, func(m *Model) string { return strconv.Itoa(m.Context) }},
	{"parallel", true, func(m *Model) string { return strconv.Itoa(m.Parallel) }},
	{"threads", false, func(m *Model) string { return strconv.Itoa(m.Threads) }},
	{"gpu_layers", true, func(m *Model) string { return strconv.Itoa(m.GPULayers) }},
	{"flash_attention", true, func(m *Model) string { return strconv.FormatBool(m.FlashAttention) }},
	{"kv_cache", true, func(m *Model) string { return m.KVCache }},
	{"cache", true, func(m *Model) string { return strconv.FormatBool(m.Cache) }},
	{"adapters", true, func(m *Model) string { return adaptersString(m.Adapters) }},
	{"speculative.draft", true, func(m *Model) string { return speculativeDraftString(m.Speculative) }},
	{"speculative.ngram", false, func(m *Model) string { return strconv.FormatBool(m.Speculative.NGram) }},
	{"speculative.max_draft", false, func(m *Model) string { return strconv.Itoa(m.Speculative.MaxDraft) }},
	{"mmproj", true, func(m *Model) string { return mmprojString(m) }},
	{"mmproj_offload", true, func(m *Model) string { return strconv.FormatBool(m.MmprojOffload) }},

	{"aliases", false, func(m *Model) string { return strList(m.Aliases) }},
	{"priority", false, func(m *Model) string { return strconv.Itoa(m.Priority) }},
	{"memory_budget", false, func(m *Model) string { return optSize(m.MemoryBudget) }},
	{"keep_alive", false, func(m *Model) string { return FormatKeepAlive(m.KeepAlive) }},
	{"preload", false, func(m *Model) string { return strconv.FormatBool(m.Preload) }},
	{"pinned", false, func(m *Model) string { return strconv.FormatBool(m.Pinned) }},
	{"tier", false, func(m *Model) string { return strconv.Quote(m.Tier) }},
	{"sampling.temperature", false, func(m *Model) string { return ftoa(m.Sampling.Temperature) }},
	{"sampling.top_k", false, func(m *Model) string { return strconv.Itoa(m.Sampling.TopK) }},
	{"sampling.top_p", false, func(m *Model) string { return ftoa(m.Sampling.TopP) }},
	{"sampling.min_p", false, func(m *Model) string { return ftoa(m.Sampling.MinP) }},
	{"sampling.repeat_penalty", false, func(m *Model) string { return ftoa(m.Sampling.RepeatPenalty) }},
	{"sampling.seed", false, func(m *Model) string { return strconv.FormatInt(m.Sampling.Seed, 10) }},
	{"sampling.max_tokens", false, func(m *Model) string { return strconv.Itoa(m.Sampling.MaxTokens) }},
	{"sampling.stop", false, func(m *Model) string { return strList(m.Sampling.Stop) }},
}

// globalFields decides, per global setting, what a change needs. Only the
// listeners and the admin socket's group need a new jetaid process (systemd
// may hold the sockets; the group is set when the socket is created) and the
// cache directory (files in use there are not moved). Everything else applies
// live; a lowered memory budget evicts per the pool's order.
var globalFields = []field[*Config]{
	{"server.listen", true, func(c *Config) string { return c.Server.Listen }},
	{"server.admin_socket", true, func(c *Config) string { return c.Server.AdminSocket }},
	{"server.admin_group", true, func(c *Config) string { return c.Server.AdminGroup }},
	{"server.log_format", true, func(c *Config) string { return c.Server.LogFormat }},
	{"cache.dir", true, func(c *Config) string { return c.Cache.Dir }},

	// API keys are secrets: compared, but rendered only as a count.
	{"server.api_keys", false, func(c *Config) string {
		return fmt.Sprintf("%d keys (%s)", len(c.Server.APIKeys), fingerprint(c.Server.APIKeys))
	}},
	{"server.cors_origins", false, func(c *Config) string { return strList(c.Server.CORSOrigins) }},
	{"server.allowed_hosts", false, func(c *Config) string { return strList(c.Server.AllowedHosts) }},
	{"server.allow_pull", false, func(c *Config) string { return strconv.FormatBool(c.Server.AllowPull) }},
	{"server.max_body", false, func(c *Config) string { return c.Server.MaxBody.String() }},
	{"server.request_timeout", false, func(c *Config) string { return formatDuration(c.Server.RequestTimeout) }},
	{"server.queue_per_model", false, func(c *Config) string { return strconv.Itoa(c.Server.QueuePerModel) }},
	{"server.queue_total", false, func(c *Config) string { return strconv.Itoa(c.Server.QueueTotal) }},
	{"server.max_connections", false, func(c *Config) string { return strconv.Itoa(c.Server.MaxConnections) }},
	{"server.log_level", false, func(c *Config) string { return c.Server.LogLevel }},
	{"memory.budget", false, func(c *Config) string { return c.Memory.Budget.String() }},
	{"memory.reserve", false, func(c *Config) string { return c.Memory.Reserve.String() }},
	{"memory.warm_spare", false, func(c *Config) string { return strconv.FormatBool(c.Memory.WarmSpare) }},
	{"cache.max_size", false, func(c *Config) string { return c.Cache.MaxSize.String() }},
	{"thermal.zones", false, func(c *Config) string { return strList(c.Thermal.Zones) }},
	{"thermal.soft_limit", false, func(c *Config) string { return ftoa(c.Thermal.SoftLimit) }},
	{"thermal.hard_limit", false, func(c *Config) string { return ftoa(c.Thermal.HardLimit) }},
	{"thermal.poll_interval", false, func(c *Config) string { return formatDuration(c.Thermal.PollInterval) }},
	{"thermal.hysteresis", false, func(c *Config) string { return ftoa(c.Thermal.Hysteresis) }},
	{"router.default_model", false, func(c *Config) string { return strconv.Quote(c.Router.DefaultModel) }},
	{"router.tiers", false, func(c *Config) string { return tiersString(c.Router.Tiers) }},
	{"pull.hf_endpoint", false, func(c *Config) string { return c.Pull.HFEndpoint }},
	{"pull.ollama_registry", false, func(c *Config) string { return c.Pull.OllamaRegistry }},
	{"pull.hf_token_file", false, func(c *Config) string { return c.Pull.HFTokenFile }},
}

func compare[T any](fs []field[T], old, new T) []FieldChange {
	var out []FieldChange
	for _, f := range fs {
		o, n := f.get(old), f.get(new)
		if o != n {
			out = append(out, FieldChange{Field: f.name, Old: o, New: n, Restart: f.restart})
		}
	}
	return out
}

// Diff computes the plan that takes a daemon running old to new. Models are
// matched by name; a renamed model is a removal and an addition. old may be
// nil (first start): every model is added.
func Diff(old, new *Config) Plan {
	var p Plan
	if new == nil {
		new = &Config{}
	}
	p.NewHash = new.Hash
	if old == nil {
		for _, m := range new.Models {
			p.Added = append(p.Added, m.Name)
		}
		return p
	}
	p.OldHash = old.Hash
	oldByName := map[string]*Model{}
	for i := range old.Models {
		oldByName[old.Models[i].Name] = &old.Models[i]
	}
	newNames := map[string]bool{}
	for i := range new.Models {
		m := &new.Models[i]
		newNames[m.Name] = true
		o, ok := oldByName[m.Name]
		if !ok {
			p.Added = append(p.Added, m.Name)
			continue
		}
		fs := compare(modelFields, o, m)
		if len(fs) > 1 && fs[0].Field == "path" && fs[1].Field == "file" {
			fs = append(fs[:1], fs[2:]...) // another file: "file" says nothing more
		} else if len(fs) > 0 && fs[0].Field == "file" && m.FileError != "" {
			// The file went away (or went bad): a new runner could not load
			// it, while a running one has it open and serves on. The pool
			// finds the problem at the model's next load.
			fs[0].Restart = false
		}
		if len(fs) == 0 {
			p.Unchanged = append(p.Unchanged, m.Name)
			continue
		}
		restart := false
		for _, f := range fs {
			restart = restart || f.Restart
		}
		if restart {
			p.Restarted = append(p.Restarted, ModelChange{Name: m.Name, Fields: fs})
		} else {
			p.Updated = append(p.Updated, ModelChange{Name: m.Name, Fields: fs})
		}
	}
	for _, m := range old.Models {
		if !newNames[m.Name] {
			p.Removed = append(p.Removed, m.Name)
		}
	}
	for _, f := range compare(globalFields, old, new) {
		if f.Restart {
			p.NeedsProcessRestart = append(p.NeedsProcessRestart, f)
		} else {
			p.Live = append(p.Live, f)
		}
	}
	return p
}

func strList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func optSize(s Size) string {
	if s == 0 {
		return "none"
	}
	return s.String()
}

func tiersString(ts []Tier) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%s%s prompt≤%d tokens≤%d structured=%t", t.Name, strList(t.Models), t.MaxPromptTokens, t.MaxTokens, t.Structured)
	}
	return strings.Join(parts, "; ")
}
