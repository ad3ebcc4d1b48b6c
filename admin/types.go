package admin

import (
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
)

// APIVersion is the protocol version; it is the /vN path prefix.
const APIVersion = 1

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
	Pool            pool.Status  `json:"pool"`
	Models          []Model      `json:"models"`
	// Performance: counters since start and figures over pool.PerfWindow.
	Performance pool.PerfFigures `json:"performance"`
	// Summary is the one line sent to systemd as STATUS=.
	Summary string `json:"summary"`
	// Platform holds hardware readings; nil where none are available.
	Platform *Platform `json:"platform,omitempty"`
	// Cache is the model cache in brief (GET /v1/cache has the files);
	// nil when cache.dir is unusable.
	Cache *CacheUsage `json:"cache,omitempty"`
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
	// Generation counts configs put in force: 1 is the one jetaid started
	// with; each applied reload that changed something adds 1.
	Generation uint64    `json:"generation"`
	AppliedAt  time.Time `json:"applied_at"`
	// The last reload attempt (applied or not): when, what asked for it,
	// and why it was rejected (empty when applied).
	LastReloadAt *time.Time `json:"last_reload_at,omitempty"`
	LastTrigger  string     `json:"last_trigger,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
	Reloads      uint64     `json:"reloads"`
	Rejected     uint64     `json:"rejected"`
	// Watching says the file is watched for changes.
	Watching bool `json:"watching"`
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
}

// Temperature is one thermal zone's reading.
type Temperature struct {
	Zone    string  `json:"zone"`
	Celsius float64 `json:"celsius"`
}

// Model is one configured model: the pool's view plus the settings a
// client needs (the benchmark loads the same file with the same shape).
type Model struct {
	pool.ModelStatus
	Path     string `json:"path"`
	Context  int    `json:"context"`
	Parallel int    `json:"parallel"`
	Threads  int    `json:"threads"`
	// TokensPerSecond is the model's generated tokens over the window.
	TokensPerSecond float64 `json:"tokens_per_second"`
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

// ReloadResult is one reload attempt. OK means the file's config is in
// force (also when it had not changed); otherwise Error and Diagnostics say
// why it was rejected, and the old config stays.
type ReloadResult struct {
	OK         bool    `json:"ok"`
	Trigger    string  `json:"trigger"` // admin, SIGHUP, file
	Generation uint64  `json:"generation"`
	Hash       string  `json:"hash"`
	Changed    bool    `json:"changed"`
	Seconds    float64 `json:"seconds"`
	// Plan is the diff that was applied; nil when nothing changed.
	Plan *config.Plan `json:"plan,omitempty"`
	// Diagnostics are "file:line:col: message" lines: the errors of a
	// rejected file or the warnings of an applied one.
	Diagnostics []string `json:"diagnostics"`
	Error       string   `json:"error,omitempty"`
	// Notes are what the operator should know about an applied reload
	// (settings that wait for a restart, models over a new budget).
	Notes []string `json:"notes"`
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
	OK          bool         `json:"ok"`
	Path        string       `json:"path"`
	Hash        string       `json:"hash,omitempty"`
	Summary     string       `json:"summary"`
	Diagnostics []string     `json:"diagnostics"`
	Plan        *config.Plan `json:"plan,omitempty"` // what a reload to it would do
}

// LogLevel is the body of the log-level endpoints.
type LogLevel struct {
	Level string `json:"level"`
}

// CompleteRequest runs one completion through the pool, as a REST request
// would, but without the REST API's auth and limits (benchmarks).
type CompleteRequest struct {
	Model string `json:"model"`
	runner.Request
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error Error `json:"error"`
}
