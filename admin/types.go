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
	State         string    `json:"state"` // starting, serving, reloading, stopping
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
}

// ConfigStatus is the config in force.
type ConfigStatus struct {
	Path string `json:"path"`
	Hash string `json:"hash"`
	// Generation counts configs applied since start: 1 for the first.
	Generation int       `json:"generation"`
	AppliedAt  time.Time `json:"applied_at"`
	// LastReload is the most recent reload attempt, applied or not.
	LastReload *ReloadResult `json:"last_reload,omitempty"`
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

// ReloadResult is one reload attempt. OK means the new config is in force
// (or the file had not changed); otherwise Diagnostics or Error say why
// it was rejected and the old config stays.
type ReloadResult struct {
	OK         bool      `json:"ok"`
	Trigger    string    `json:"trigger"` // admin, signal, file
	Generation int       `json:"generation"`
	Hash       string    `json:"hash"`
	Changed    bool      `json:"changed"`
	At         time.Time `json:"at"`
	Seconds    float64   `json:"seconds"`
	// Summary is one line for people.
	Summary     string             `json:"summary"`
	Plan        *config.Plan       `json:"plan,omitempty"`
	Diagnostics config.Diagnostics `json:"diagnostics,omitempty"`
	Error       string             `json:"error,omitempty"`
}

// ValidateRequest asks whether a config file is usable. Content is the
// file's bytes as the client read them (the daemon's user may not be able
// to read it); Path names it in diagnostics and anchors relative paths.
type ValidateRequest struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// ValidateResult is the verdict; Summary is one line for people.
type ValidateResult struct {
	OK          bool               `json:"ok"`
	Path        string             `json:"path"`
	Hash        string             `json:"hash,omitempty"`
	Summary     string             `json:"summary"`
	Diagnostics config.Diagnostics `json:"diagnostics,omitempty"`
	Plan        *config.Plan       `json:"plan,omitempty"` // what a reload to it would do
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
