package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"time"
)

// Config is a decoded, defaulted and validated configuration file. A Config
// returned by Load or Parse is never modified afterwards; a reload builds a
// new one and Diff compares the two.
type Config struct {
	// Path is the file name as given to Load or Parse; diagnostics use it.
	Path string `json:"path"`
	// Dir is the absolute directory that relative paths resolve against.
	Dir string `json:"dir"`
	// Hash is the hex sha256 of the file's bytes, or, when drop-ins were
	// read, of the file and every drop-in (see contentHash).
	Hash string `json:"hash"`
	// DropInDir is the absolute drop-in directory (DropInDir of Path), and
	// DropIns the drop-in files read, in the order read. Both are empty
	// for a config from Parse, which reads no drop-ins.
	DropInDir string   `json:"drop_in_dir,omitempty"`
	DropIns   []string `json:"drop_ins,omitempty"`

	Server  Server  `json:"server"`
	Memory  Memory  `json:"memory"`
	Cache   Cache   `json:"cache"`
	Thermal Thermal `json:"thermal"`
	Router  Router  `json:"router"`
	Pull    Pull    `json:"pull"` // pull.go
	GPU     GPU     `json:"gpu"`
	// Models are the model blocks in file order.
	Models []Model `json:"models"`
	// Experiments are the experiment blocks in file order (experiment.go).
	Experiments []Experiment `json:"experiments,omitempty"`

	// Warnings are problems that do not stop the file from being used.
	Warnings Diagnostics `json:"warnings,omitempty"`

	byName map[string]int // model name or alias -> index in Models
}

// Server is the server block: listeners, access and request limits.
type Server struct {
	Listen      string   `json:"listen"`
	AdminSocket string   `json:"admin_socket"`
	AdminGroup  string   `json:"admin_group"`
	APIKeys     []string `json:"-"` // secrets stay out of /status
	CORSOrigins []string `json:"cors_origins"`
	// AllowedHosts are Host header values the REST API answers besides
	// loopback names and this machine's addresses: host names, "*.domain"
	// for a domain's subdomains, IP addresses, or "*" for any.
	AllowedHosts   []string      `json:"allowed_hosts"`
	MaxBody        Size          `json:"max_body"`
	RequestTimeout time.Duration `json:"request_timeout"` // 0: no limit
	QueuePerModel  int           `json:"queue_per_model"`
	QueueTotal     int           `json:"queue_total"`
	MaxConnections int           `json:"max_connections"` // REST connections open at once
	LogLevel       string        `json:"log_level"`       // debug, info, warn, error
	// AllowPull lets clients of the Ollama API download and delete
	// models (/api/pull, /api/delete); off, they get 403.
	AllowPull bool   `json:"allow_pull"`
	LogFormat string `json:"log_format"` // text or json, off the journal (logformat.go)
	// FetchImages lets requests give images as http(s) URLs for the
	// daemon to download; off, only inline data: URLs and base64 are taken.
	FetchImages bool `json:"fetch_images"`
	// MaxImagePixels bounds an input image's width × height, read from its
	// header before it is decoded (decompression bombs).
	MaxImagePixels int64 `json:"max_image_pixels"`
}

// Memory is the memory block: the budget shared by all loaded models.
type Memory struct {
	Budget  Size `json:"budget"`
	Reserve Size `json:"reserve"`
	// KVCache is the KV cache type of a model that does not set its own.
	KVCache string `json:"kv_cache"`
	// GPUBudget is the device memory loaded models may hold on a discrete
	// GPU; 0 leaves device memory to what the devices report free.
	GPUBudget Size `json:"gpu_budget"`
	// WarmSpare keeps one runner process started, its engine initialised,
	// for the next load to take (daemon/pool/spare.go).
	WarmSpare bool `json:"warm_spare"`
}

// Cache is the cache block: a disposable directory on fast storage.
type Cache struct {
	Dir     string `json:"dir"` // absolute
	MaxSize Size   `json:"max_size"`
	// Responses bounds the response cache's memory; 0 turns it off
	// (responses.go).
	Responses Size `json:"responses"`
	// ResponseTTL drops a cached answer this long after it was stored;
	// 0 keeps it until evicted.
	ResponseTTL time.Duration `json:"response_ttl"`
	// ResponsesDisk bounds the response cache's disk tier in
	// Dir/responses; 0 keeps answers in memory only.
	ResponsesDisk Size `json:"responses_disk"`
}

// Thermal is the thermal block. Temperatures are °C.
type Thermal struct {
	Zones        []string      `json:"zones"`
	SoftLimit    float64       `json:"soft_limit"`
	HardLimit    float64       `json:"hard_limit"`
	PollInterval time.Duration `json:"poll_interval"`
	Hysteresis   float64       `json:"hysteresis"`
}

// Router is the router block: the default model and the tiers that automatic
// selection maps requests onto.
type Router struct {
	// DefaultModel is the canonical name of the model used when a request
	// names none and does not ask for automatic selection. Always set when
	// the config has at least one model (see defaults.go).
	DefaultModel string `json:"default_model"`
	// Tiers are in file order, which is from small to large.
	Tiers []Tier `json:"tiers"`
}

// Tier is one router tier. A request fits a tier when its prompt and its
// requested length are within the tier's limits and, if the request holds
// code or structured content, the tier says Structured. See Router.Select.
type Tier struct {
	Name string `json:"name"`
	// Models are canonical model names in order of preference: the tier's
	// own models list, then models whose tier attribute names this tier, in
	// file order, without repeats.
	Models []string `json:"models"`
	// MaxPromptTokens is the longest prompt the tier takes; 0 is no limit.
	MaxPromptTokens int `json:"max_prompt_tokens"`
	// MaxTokens is the longest requested generation; 0 is no limit.
	MaxTokens int `json:"max_tokens"`
	// Structured says the tier handles code and structured output (JSON
	// schema, grammar) well.
	Structured bool `json:"structured"`
}

// Model is one model "name" block.
type Model struct {
	Name string `json:"name"`
	// File is the config file that defines the model (the main file or a
	// drop-in), and DefinedAt its name's position, "file:line:col".
	File      string   `json:"file,omitempty"`
	DefinedAt string   `json:"defined_at,omitempty"`
	Path      string   `json:"path"` // absolute
	Aliases   []string `json:"aliases"`
	// Priority 0..100: higher wins; eviction takes the lowest first.
	Priority int `json:"priority"`
	// MemoryBudget caps this model's memory; 0 means only the global budget.
	MemoryBudget Size `json:"memory_budget"`
	// Context is the per-slot context in tokens; the runner's llama context
	// holds Context × Parallel tokens.
	Context  int `json:"context"`
	Parallel int `json:"parallel"`
	// Threads 0 lets the runner choose.
	Threads int `json:"threads"`
	// GPULayers is the number of layers offloaded to the GPU; -1 means all,
	// GPULayersAuto (the default) as many as fit, none without a GPU.
	GPULayers int `json:"gpu_layers"`
	// KeepAlive unloads the model when idle this long; 0 unloads as soon as
	// it is idle; Forever (negative) never unloads it for idleness.
	KeepAlive      time.Duration `json:"keep_alive"`
	Preload        bool          `json:"preload"`
	Pinned         bool          `json:"pinned"`
	Tier           string        `json:"tier,omitempty"`
	FlashAttention bool          `json:"flash_attention"`
	// KVCache is the KV cache element type: "f16", "q8_0" or "q4_0" (the
	// quantized types need FlashAttention).
	KVCache string `json:"kv_cache"`
	// Cache lets the model use the cache directory: its file is staged
	// there (copied from slower storage and loaded from the copy) and its
	// slots' KV state is parked there when it is unloaded. false opts out.
	Cache bool `json:"cache"`
	// CacheResponses lets the response cache keep this model's answers
	// (when cache.responses is on); false opts out.
	CacheResponses bool     `json:"cache_responses"`
	Sampling       Sampling `json:"sampling"`
	// Adapters are LoRA adapters applied to the model, in file order.
	Adapters []Adapter `json:"adapters,omitempty"`
	// Speculative is speculative decoding; off without the block.
	Speculative Speculative `json:"speculative"`
	// Mmproj is the multimodal projector (absolute; "" for none): with
	// one, the model takes images (vision.go).
	Mmproj string `json:"mmproj,omitempty"`
	// MmprojOffload lets the projector run on a GPU; false keeps it on
	// the CPU (the default: on a small shared-memory board the GPU copy
	// is what runs out of memory).
	MmprojOffload bool `json:"mmproj_offload"`
	// MmprojFileSize and MmprojFileModTime identify the projector's file;
	// a change restarts the model.
	MmprojFileSize    Size      `json:"mmproj_file_size,omitempty"`
	MmprojFileModTime time.Time `json:"mmproj_file_mod_time,omitzero"`

	// FileSize and FileModTime are the model file's, read at validation.
	// A change of either restarts the model on reload.
	FileSize    Size      `json:"file_size"`
	FileModTime time.Time `json:"file_mod_time"`
	// FileError says why the model file (or an adapter's) could not be
	// used at validation (missing, unreadable, not GGUF; see
	// CheckModelFile); the model's FileSize is 0 when it is its own file.
	// It is a warning: the config stays valid and the model is unavailable
	// until a good file is there.
	FileError string `json:"file_error,omitempty"`
}

// Sampling holds a model's default sampling settings; a request may override
// each of them.
type Sampling struct {
	Temperature   float64  `json:"temperature"`
	TopK          int      `json:"top_k"`
	TopP          float64  `json:"top_p"`
	MinP          float64  `json:"min_p"`
	RepeatPenalty float64  `json:"repeat_penalty"`
	Seed          int64    `json:"seed"` // -1: random per request
	MaxTokens     int      `json:"max_tokens"`
	Stop          []string `json:"stop"`
}

// Load reads and parses the config file at path and the drop-in files
// beside it (dropin.go) as one config. jetaid's start, a
// reload, jetaid --check-config and the admin socket's validate command
// all read a file through it, so what one refuses the others refuse with
// the same diagnostic. A file that cannot be read is one diagnostic that
// wraps the cause (errors.Is(err, fs.ErrNotExist) for a missing file).
// See Parse.
func Load(path string) (*Config, error) {
	src, err := readLimited(path) // limits.go
	if err != nil {
		msg := "cannot read the config file: " + err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg = "the config file does not exist"
		} else if errors.Is(err, fs.ErrPermission) {
			msg = "the config file cannot be read: permission denied"
		}
		return nil, Diagnostics{{Severity: Error, Filename: path, Message: msg, Err: err}}
	}
	return loadWithDropIns(src, path) // dropin.go
}

// LoadSource is Load with the main file's contents given (the admin
// validate command sends them): the drop-ins are read from DropInDir(path)
// on disk, as Load reads them.
func LoadSource(src []byte, path string) (*Config, error) {
	return loadWithDropIns(src, path)
}

// Parse decodes, defaults and validates a config file's contents (an empty
// file is refused: it would mean no models at all), without drop-ins
// (Load and LoadSource read those). filename
// names the file in diagnostics, and its directory is where relative paths
// resolve. On any error it returns a nil Config and a Diagnostics listing
// every problem found.
func Parse(src []byte, filename string) (*Config, error) {
	if ds := checkText(src, filename); ds != nil { // limits.go
		return nil, ds
	}
	sum := sha256.Sum256(src)
	c, diags := decode(src, filename)
	if diags.HasErrors() {
		return nil, capped(diags.errorsOnly(), filename, "errors")
	}
	c.Hash = hex.EncodeToString(sum[:])
	c.Warnings = capped(diags, filename, "warnings")
	return c, nil
}

// Lookup finds a model by name or alias. It also works on a Config built
// by hand (in other packages' tests), by a scan.
func (c *Config) Lookup(nameOrAlias string) (*Model, bool) {
	if c.byName == nil {
		for i := range c.Models {
			m := &c.Models[i]
			if m.Name == nameOrAlias {
				return m, true
			}
			for _, a := range m.Aliases {
				if a == nameOrAlias {
					return m, true
				}
			}
		}
		return nil, false
	}
	i, ok := c.byName[nameOrAlias]
	if !ok {
		return nil, false
	}
	return &c.Models[i], true
}

// ModelNames returns the canonical model names in file order.
func (c *Config) ModelNames() []string {
	names := make([]string, len(c.Models))
	for i := range c.Models {
		names[i] = c.Models[i].Name
	}
	return names
}

// Request describes an inference request for automatic model selection.
type Request struct {
	PromptTokens int // tokens in the prompt (an estimate is fine)
	MaxTokens    int // requested generation length; 0: the model's default
	Structured   bool
}

// Select returns the smallest tier that fits the request: the first tier, in
// order, whose limits the request is within (a limit of 0 is no limit) and,
// when the request is structured, that says Structured. When none fits it
// returns the last (largest) tier. It returns nil when there are no tiers.
// Select is deterministic and depends only on its inputs.
func (r *Router) Select(req Request) *Tier {
	if len(r.Tiers) == 0 {
		return nil
	}
	for i := range r.Tiers {
		t := &r.Tiers[i]
		if t.MaxPromptTokens > 0 && req.PromptTokens > t.MaxPromptTokens {
			continue
		}
		if t.MaxTokens > 0 && req.MaxTokens > t.MaxTokens {
			continue
		}
		if req.Structured && !t.Structured {
			continue
		}
		return t
	}
	return &r.Tiers[len(r.Tiers)-1]
}

// Tier returns the tier with the given name.
func (r *Router) Tier(name string) (*Tier, bool) {
	for i := range r.Tiers {
		if r.Tiers[i].Name == name {
			return &r.Tiers[i], true
		}
	}
	return nil, false
}

// fingerprint identifies a set of secrets without revealing them: the first
// eight hex digits of the sha256 of the keys joined by newlines.
func fingerprint(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:8]
}
