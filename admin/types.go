package admin

import (
	"time"
)

// APIVersion is the protocol version; it is the /vN path prefix.
const APIVersion = 1

// Defaults of an installed daemon's admin socket (the config's
// server.admin_socket and server.admin_group default to them).
const (
	DefaultSocket = "/run/jetai/admin.sock"
	DefaultGroup  = "jetai"
)

// Model states, as Model.State spells them.
const (
	StateUnloaded    = "unloaded"
	StateLoading     = "loading"
	StateReady       = "ready"
	StateUnloading   = "unloading"
	StateFailed      = "failed"
	StateUnavailable = "unavailable" // its file is missing or unusable
)

// Status is the daemon as a whole. New fields may appear in any version;
// clients ignore what they do not know.
type Status struct {
	APIVersion    int       `json:"api_version"`
	Version       string    `json:"version"`
	State         string    `json:"state"` // starting, serving, stopping
	Pid           int       `json:"pid"`
	User          string    `json:"user"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Listen is the REST API's address; Activated says systemd passed it.
	Listen      string `json:"listen"`
	Activated   bool   `json:"socket_activated"`
	AdminSocket string `json:"admin_socket"`
	LogLevel    string `json:"log_level"`
	// Watchdog is the unit's WatchdogSec in seconds; 0 when off.
	WatchdogSeconds float64      `json:"watchdog_seconds"`
	Config          ConfigStatus `json:"config"`
	Pool            PoolStatus   `json:"pool"`
	Models          []Model      `json:"models"`
	// Performance: counters since start and figures over the daemon's
	// rolling window.
	Performance PerfFigures `json:"performance"`
	// Summary is the one line sent to systemd as STATUS=.
	Summary string `json:"summary"`
	// Platform holds hardware readings; nil where none are available.
	Platform *Platform `json:"platform,omitempty"`
	// Cache is the model cache in brief (GET /v1/cache has the files);
	// nil when cache.dir is unusable.
	Cache *CacheUsage `json:"cache,omitempty"`
}

// PoolStatus is the model pool as a whole: memory and queues.
type PoolStatus struct {
	Budget       uint64 `json:"budget"`
	Reserve      uint64 `json:"reserve"`
	Used         uint64 `json:"used"` // charges of loading, ready and unloading models and the warm spare
	MemAvailable uint64 `json:"mem_available,omitempty"`
	Loaded       int    `json:"loaded"` // ready models
	Loading      int    `json:"loading"`
	Queued       int    `json:"queued"`
	QueueTotal   int    `json:"queue_total"`
	Models       int    `json:"models"`
	// Spare is the warm spare runner (memory.warm_spare), charged in
	// Used; nil when the setting is off.
	Spare *Spare `json:"spare,omitempty"`
}

// Spare is the warm spare runner: a process with its engine initialised
// that the next load takes instead of starting one.
type Spare struct {
	State         string     `json:"state"` // starting, waiting, backoff, none
	Pid           int        `json:"pid,omitempty"`
	MeasuredBytes uint64     `json:"measured_bytes,omitempty"`
	ChargedBytes  uint64     `json:"charged_bytes"`
	Starts        uint64     `json:"starts"`
	Used          uint64     `json:"used"`
	Deaths        uint64     `json:"deaths"`
	RetryAt       *time.Time `json:"retry_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
}

// PerfFigures are counters since start plus rolling-window distributions.
type PerfFigures struct {
	Requests  uint64 `json:"requests"`
	Failures  uint64 `json:"failures"`
	Rejected  uint64 `json:"rejected"` // queue full or no room
	Tokens    uint64 `json:"tokens"`
	Loads     uint64 `json:"loads"`
	Evictions uint64 `json:"evictions"`
	// Outcomes counts finished and refused requests by outcome;
	// PromptTokens the prompt tokens of completions.
	Outcomes     map[string]uint64 `json:"outcomes"`
	PromptTokens uint64            `json:"prompt_tokens"`
	// WindowSeconds is the window's span; WindowRequests are the
	// finished requests inside it; WindowTokensPerSecond is their
	// generated tokens over it.
	WindowSeconds         float64     `json:"window_seconds,omitempty"`
	WindowRequests        int         `json:"window_requests"`
	WindowTokensPerSecond float64     `json:"window_tokens_per_second"`
	TokensPerSecond       Percentiles `json:"tokens_per_second"`
	// TimeToFirstTokenMS includes queueing and any load.
	TimeToFirstTokenMS Percentiles `json:"time_to_first_token_ms"`
	QueueWaitMS        Percentiles `json:"queue_wait_ms"`
	LoadSeconds        Percentiles `json:"load_seconds"`
}

// Percentiles summarise the samples in the window.
type Percentiles struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// CacheUsage is the model cache's size and what fills it.
type CacheUsage struct {
	Dir       string `json:"dir"`
	MaxBytes  int64  `json:"max_bytes"` // cache.max_size; 0: no bound
	UsedBytes int64  `json:"used_bytes"`
	// ModelFiles are staged, imported and quantized files; ParkedModels
	// the models whose conversations are parked, in ParkedBytes.
	ModelFiles   int   `json:"model_files"`
	ParkedModels int   `json:"parked_models"`
	ParkedBytes  int64 `json:"parked_bytes"`
}

// ConfigStatus is the config in force and the reloads so far.
type ConfigStatus struct {
	Path string `json:"path"`
	Hash string `json:"hash"`
	// DropInDir is the drop-in directory read with Path (jetai.d beside
	// it), and DropIns the drop-in files of the config in force.
	DropInDir string   `json:"drop_in_dir,omitempty"`
	DropIns   []string `json:"drop_ins"`
	ReloadStatus
}

// ReloadStatus is the config generation in force and the last reload
// attempt. The REST API's /status shows the same object under "config".
type ReloadStatus struct {
	// Generation counts the configs put in force: 1 is the one jetaid
	// started with, and each applied reload that changed something adds 1.
	Generation uint64 `json:"generation"`
	// LoadedAt is when the config in force was put in force.
	LoadedAt time.Time `json:"loaded_at"`
	// LastReload is the last reload attempt, applied or not; nil before
	// the first.
	LastReload  *time.Time `json:"last_reload"`
	LastTrigger string     `json:"last_trigger,omitempty"`
	// LastError is why the last reload was rejected (every diagnostic,
	// one per line); empty when the last reload was applied.
	LastError string `json:"last_error"`
	// Reloads counts the attempts; Rejected those that kept the old config.
	Reloads  uint64 `json:"reloads"`
	Rejected uint64 `json:"rejected"`
	// Watching says the file is watched for changes.
	Watching bool `json:"watching"`
	// NeedsRestart are settings changed since jetaid started that take
	// effect only when it restarts ("server.listen: A → B"); the old
	// values are in force until then.
	NeedsRestart []string `json:"needs_restart"`
}

// Platform is what the hardware reports. Every field is optional: a
// machine without a sensor leaves its field out.
type Platform struct {
	Temperatures []Temperature `json:"temperatures,omitempty"`
	// Throttle is the thermal policy's state: "none", "throttle" (soft
	// limit) or "shed" (hard limit).
	Throttle       string  `json:"throttle,omitempty"`
	ThrottleReason string  `json:"throttle_reason,omitempty"`
	MemTotal       uint64  `json:"mem_total,omitempty"`
	MemAvailable   uint64  `json:"mem_available,omitempty"`
	PowerWatts     float64 `json:"power_watts,omitempty"`
	GPUPercent     float64 `json:"gpu_percent,omitempty"`
	// Devices are the ggml devices (CPU, GPUs) the last runner to load
	// reported, with their memory then.
	Devices []Device `json:"devices,omitempty"`
}

// Device is one ggml backend device.
type Device struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Type        string `json:"type"` // "cpu", "gpu" or "accel"
	FreeBytes   uint64 `json:"free_bytes"`
	TotalBytes  uint64 `json:"total_bytes"`
}

// Temperature is one thermal zone's reading.
type Temperature struct {
	Zone    string  `json:"zone"`
	Celsius float64 `json:"celsius"`
}

// Model is one configured model: the pool's view of it plus the settings
// a client needs (the benchmark sizes its run by them).
type Model struct {
	Name           string         `json:"name"`
	Aliases        []string       `json:"aliases"`
	State          string         `json:"state"` // one of the State constants
	Priority       int            `json:"priority"`
	Pinned         bool           `json:"pinned"`
	Preload        bool           `json:"preload"`
	Tier           string         `json:"tier,omitempty"`
	EstimatedBytes uint64         `json:"estimated_bytes"`
	Estimate       MemoryEstimate `json:"estimate"`
	MeasuredBytes  uint64         `json:"measured_bytes"` // runner RSS; 0 when not loaded
	ChargedBytes   uint64         `json:"charged_bytes"`  // what counts against the budget now
	BudgetBytes    uint64         `json:"budget_bytes"`   // memory_budget; 0: only the global one
	LoadProgress   float32        `json:"load_progress"`
	// StageProgress is the copy into the model cache before the load, in
	// [0,1], while it runs.
	StageProgress  float32    `json:"stage_progress,omitempty"`
	LastUsed       *time.Time `json:"last_used"`
	KeepAliveUntil *time.Time `json:"keep_alive_until"`
	LoadedAt       *time.Time `json:"loaded_at"`
	KeepAlive      string     `json:"keep_alive"` // "forever" or a duration
	Active         int        `json:"active"`
	Queued         int        `json:"queued"`
	Draining       bool       `json:"draining"` // a load waits for it to go idle to evict it
	Requests       uint64     `json:"requests"`
	Failures       uint64     `json:"failures"`
	Rejected       uint64     `json:"rejected"`
	Tokens         uint64     `json:"tokens"`
	Loads          uint64     `json:"loads"`
	Evictions      uint64     `json:"evictions"`
	LoadSeconds    float64    `json:"load_seconds"` // last load
	// LoadPhases are where the last load's time went, in order: the
	// eviction that made room (drain, park, runner_exit), the runner's
	// steps, the restore of parked conversations and the first prompt.
	LoadPhases []LoadPhase `json:"load_phases,omitempty"`
	// LoadSpare says the last load ran in the warm spare runner: its
	// process_start and engine_init were done before the load began.
	LoadSpare bool       `json:"load_spare,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	Reload    string     `json:"reload,omitempty"` // a config reload's phase
	Pid       int        `json:"pid,omitempty"`
	Info      *ModelInfo `json:"info,omitempty"`
	// The model's config: its file and shape.
	Path     string `json:"path"`
	Context  int    `json:"context"`
	Parallel int    `json:"parallel"`
	Threads  int    `json:"threads"`
	// TokensPerSecond is the model's generated tokens over the window.
	TokensPerSecond float64 `json:"tokens_per_second"`
}

// MemoryEstimate is a model's memory before it loads, in bytes.
type MemoryEstimate struct {
	Weights uint64 `json:"weights"`
	KV      uint64 `json:"kv"`
	// KVType is the KV cache's element type ("f16", "q8_0", "q4_0") and
	// KVPerToken the bytes one token takes in it (all layers, K and V).
	KVType     string `json:"kv_type,omitempty"`
	KVPerToken uint64 `json:"kv_per_token,omitempty"`
	Compute    uint64 `json:"compute"`
	Draft      uint64 `json:"draft,omitempty"`     // speculative draft model
	Projector  uint64 `json:"projector,omitempty"` // multimodal projector (mmproj)
	Overhead   uint64 `json:"overhead"`
	Total      uint64 `json:"total"`
}

// ModelInfo are the facts of a loaded model.
type ModelInfo struct {
	Path          string `json:"path"`
	Architecture  string `json:"architecture"`
	Name          string `json:"name,omitempty"`
	Description   string `json:"description"`
	Parameters    uint64 `json:"parameters"`
	FileType      string `json:"file_type"`
	SizeBytes     uint64 `json:"size_bytes"`
	FileBytes     int64  `json:"file_bytes"`
	ContextTrain  int    `json:"context_train"`
	Layers        int    `json:"layers"`
	Embedding     int    `json:"embedding"`
	Heads         int    `json:"heads"`
	HeadsKV       int    `json:"heads_kv"`
	VocabSize     int    `json:"vocab_size"`
	ChatTemplate  string `json:"chat_template,omitempty"`
	ChatSupported bool   `json:"chat_supported"`
}

// LoadRequest is the body of POST /v1/models/{name}/load.
type LoadRequest struct {
	Wait bool `json:"wait"`
}

// LoadResult answers load and unload.
type LoadResult struct {
	Model   Model   `json:"model"`
	Seconds float64 `json:"seconds"`
}

// OptimizeReport is what an optimize unloaded and why.
type OptimizeReport struct {
	Unloaded   []string          `json:"unloaded"`
	Reasons    map[string]string `json:"reasons"`
	FreedBytes uint64            `json:"freed_bytes"`
}

// ReloadResult is one reload attempt, whatever asked for it (the admin
// socket, SIGHUP, the file watcher). OK means the file's config is in
// force (also when it had not changed); otherwise Error and Diagnostics
// say why it was rejected, and the old config stays.
type ReloadResult struct {
	OK         bool    `json:"ok"`
	Trigger    string  `json:"trigger"` // admin, SIGHUP, file
	Generation uint64  `json:"generation"`
	Hash       string  `json:"hash"` // sha256 of the file read; empty when unreadable
	Changed    bool    `json:"changed"`
	Seconds    float64 `json:"seconds"` // parse, validate, plan and the immediate part of applying
	// Plan is the diff that was applied; nil when nothing changed or the
	// file was rejected.
	Plan *Plan `json:"plan,omitempty"`
	// Diagnostics are "file:line:col: message" lines: the errors of a
	// rejected file or the warnings of an applied one.
	Diagnostics []string `json:"diagnostics"`
	Error       string   `json:"error,omitempty"`
	// Notes are what the operator should know about an applied reload
	// (settings that wait for a restart, models over a new budget).
	Notes []string `json:"notes"`
}

// Plan is the diff between two configs, as a reload applies it.
type Plan struct {
	OldHash string `json:"old_hash"`
	NewHash string `json:"new_hash"`
	// Added models start as configured; Removed ones finish their
	// requests, then unload.
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	// Restarted models changed a field that needs a new runner; Updated
	// ones only fields the running runner takes.
	Restarted []ModelChange `json:"restarted"`
	Updated   []ModelChange `json:"updated"`
	Unchanged []string      `json:"unchanged"`
	// Live are global settings applied without a restart;
	// NeedsProcessRestart those that wait for jetaid to restart.
	Live                []FieldChange `json:"live"`
	NeedsProcessRestart []FieldChange `json:"needs_process_restart"`
	// Summary is the plan in one line, as the daemon logs it.
	Summary string `json:"summary"`
}

// ModelChange is one changed model.
type ModelChange struct {
	Name   string        `json:"name"`
	Fields []FieldChange `json:"fields"`
}

// FieldChange is one changed setting, rendered as the config file writes it.
type FieldChange struct {
	Field   string `json:"field"`
	Old     string `json:"old"`
	New     string `json:"new"`
	Restart bool   `json:"restart,omitempty"`
}

// ValidateRequest asks whether a config file is usable. Content is the
// file's bytes as the client read them (the daemon's user may not be able
// to read it); Path names it in diagnostics and anchors relative paths.
type ValidateRequest struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// ValidateResult is the verdict of the same check jetaid --check-config
// and a reload make; Summary is one line for people.
type ValidateResult struct {
	OK          bool     `json:"ok"`
	Path        string   `json:"path"`
	Hash        string   `json:"hash,omitempty"`
	Summary     string   `json:"summary"`
	Diagnostics []string `json:"diagnostics"`
	Plan        *Plan    `json:"plan,omitempty"` // what a reload to it would do
}

// LogLevel is the body of the log-level endpoints.
type LogLevel struct {
	Level string `json:"level"`
}

// CompleteRequest runs one completion through the pool, as a REST request
// would, but without the REST API's auth and limits (benchmarks).
type CompleteRequest struct {
	Model     string    `json:"model"`
	Prompt    string    `json:"prompt,omitempty"`
	Messages  []Message `json:"messages,omitempty"`
	Sampling  Sampling  `json:"sampling"`
	MaxTokens int       `json:"max_tokens,omitempty"` // 0: until the slot's context is full
	Stop      []string  `json:"stop,omitempty"`
	// IgnoreEOS keeps generating past end-of-generation tokens.
	IgnoreEOS bool `json:"ignore_eos,omitempty"`
}

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Sampling holds a completion's sampling settings. Temperature 0 is
// greedy; zero values of the others mean "off".
type Sampling struct {
	Temperature      float32 `json:"temperature"`
	TopK             int     `json:"top_k,omitempty"`
	TopP             float32 `json:"top_p,omitempty"`
	MinP             float32 `json:"min_p,omitempty"`
	RepeatPenalty    float32 `json:"repeat_penalty,omitempty"`
	RepeatLastN      int     `json:"repeat_last_n,omitempty"`
	FrequencyPenalty float32 `json:"frequency_penalty,omitempty"`
	PresencePenalty  float32 `json:"presence_penalty,omitempty"`
	Seed             *uint32 `json:"seed,omitempty"`
	Grammar          string  `json:"grammar,omitempty"`
	JSONSchema       string  `json:"json_schema,omitempty"`
}

// CompleteFrame is one line of a /v1/complete stream: text frames, then
// one frame with Done set (and Error when the completion failed).
type CompleteFrame struct {
	Text         string   `json:"text,omitempty"`
	Done         bool     `json:"done,omitempty"`
	FinishReason string   `json:"finish_reason,omitempty"`
	Error        string   `json:"error,omitempty"`
	Code         string   `json:"code,omitempty"`
	Timings      *Timings `json:"timings,omitempty"`
}

// FinishError is the finish reason of a failed completion.
const FinishError = "error"

// CompleteResult is a finished completion.
type CompleteResult struct {
	Text         string  `json:"text"`
	FinishReason string  `json:"finish_reason"` // stop, length, cancelled, error
	Timings      Timings `json:"timings"`
}

// Timings of one completion, in token counts and milliseconds.
type Timings struct {
	PromptTokens    int     `json:"prompt_tokens"`
	ImageTokens     int     `json:"image_tokens,omitempty"` // of PromptTokens, those that are image embeddings
	EncodeMS        float64 `json:"encode_ms,omitempty"`    // encoding the images (0 for images the runner had encoded recently); part of QueueMS
	CachedTokens    int     `json:"cached_tokens"`          // prompt tokens reused from the slot's KV cache
	PromptMS        float64 `json:"prompt_ms"`
	GeneratedTokens int     `json:"generated_tokens"`
	GenerationMS    float64 `json:"generation_ms"`
	QueueMS         float64 `json:"queue_ms"` // waiting for a free slot
	FirstTokenMS    float64 `json:"first_token_ms"`
	Slot            int     `json:"slot"`
	// Speculative decoding: tokens drafted, and those accepted.
	DraftedTokens  int `json:"drafted_tokens,omitempty"`
	AcceptedTokens int `json:"accepted_tokens,omitempty"`
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error Error `json:"error"`
}

// LoadPhase is one timed step of a model's load.
type LoadPhase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}
