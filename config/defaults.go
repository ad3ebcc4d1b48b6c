package config

import (
	"time"

	"github.com/jetai/jetai/admin"
)

// Defaults. This file is the one place where the default of every setting is
// written down; packaging/jetai.hcl shows the same values in its comments and
// a test keeps the two in step. A setting left out of the config file takes
// the value below.

// server { ... }
const (
	// DefaultListen is the REST address when systemd does not pass one. Port
	// 8000 is the port of the seed system's examples; loopback only, so a
	// fresh install is not open to the network.
	DefaultListen = "127.0.0.1:8000"
	// DefaultAdminSocket is the admin Unix socket (mode 0660) when systemd
	// does not pass one; jetai-ctl's default, so package admin holds it.
	DefaultAdminSocket = admin.DefaultSocket
	// DefaultAdminGroup owns the admin socket; its members may run jetai-ctl.
	DefaultAdminGroup = admin.DefaultGroup
	// DefaultMaxBody is the largest accepted request body.
	DefaultMaxBody Size = 1 * MiB
	// DefaultMaxImagePixels is the largest image (width × height) a
	// request may send: 4096×4096. A decoded image takes 3 or 4 bytes
	// per pixel, several times over while it is resized.
	DefaultMaxImagePixels int64 = 4096 * 4096
	// DefaultRequestTimeout bounds one inference request from arrival to the
	// last token, queueing included. "0" means no limit.
	DefaultRequestTimeout = 5 * time.Minute
	// DefaultQueuePerModel is how many requests may wait for one model
	// (loading, or all its slots busy) before new ones get 429.
	DefaultQueuePerModel = 16
	// DefaultQueueTotal is how many requests may wait over all models before
	// new ones get 503.
	DefaultQueueTotal = 64
	// DefaultMaxConnections caps the REST connections open at once; at the
	// cap the longest-idle one is closed for a new one (daemon/connlimit).
	// One file descriptor and about 16 KiB of memory each (6,000 idle
	// connections against this cap: jetaid's RSS 21 -> 112 MB).
	DefaultMaxConnections = 4096
	// DefaultLogLevel is one of debug, info, warn, error.
	DefaultLogLevel = "info"
)

// memory { ... }
const (
	// DefaultMemoryBudget is what all loaded models together may use
	// (estimated or measured, whichever is larger). 6GiB leaves about 2GiB of
	// a Jetson Orin Nano's 8GB to the OS, the daemon and the page cache.
	DefaultMemoryBudget Size = 6 * GiB
	// DefaultMemoryReserve is how much MemAvailable the pool keeps free: a
	// load that would push MemAvailable under it evicts first, or fails.
	DefaultMemoryReserve Size = 512 * MiB
	// DefaultWarmSpare keeps a warm spare runner: about 11 MiB for a
	// faster model swap (docs/benchmarks.md, "Model swaps").
	DefaultWarmSpare = true
	// DefaultKVCache is the KV cache type of a model that sets none: full
	// precision. q8_0 takes 53% of its memory and q4_0 28%, and both need
	// flash_attention.
	DefaultKVCache = "f16"
)

// cache { ... }
const (
	// DefaultCacheDir is the NVMe directory for saved slot state and other
	// disposable files.
	DefaultCacheDir = "/var/cache/jetai"
	// DefaultCacheMaxSize caps the cache directory; oldest files go first.
	DefaultCacheMaxSize Size = 20 * GiB
)

// thermal { ... }
const (
	// DefaultSoftLimit (°C): from it the daemon throttles (fewer runner
	// threads and parallel decodes; low-priority requests wait).
	DefaultSoftLimit = 80.0
	// DefaultHardLimit (°C): from it the daemon sheds (low-priority requests
	// refused, idle low-priority models unloaded, no new loads) until the
	// temperature falls below HardLimit - Hysteresis.
	DefaultHardLimit = 90.0
	// DefaultPollInterval is how often the zones are read.
	DefaultPollInterval = 2 * time.Second
	// DefaultHysteresis (°C): a limit is left only when the temperature is this
	// far below it, so the state does not flap.
	DefaultHysteresis = 5.0
)

// DefaultThermalZones are the Jetson Orin thermal zone types
// (/sys/class/thermal/thermal_zone*/type) that are watched; the hottest wins.
// Zones that a machine does not have are skipped.
func DefaultThermalZones() []string { return []string{"cpu-thermal", "gpu-thermal", "tj-thermal"} }

// router { ... }: no tiers and no default model by default. Without
// default_model the default is the first model of the first tier, or, with no
// tiers, the first model block in the file.

// model "name" { ... }
const (
	// DefaultPriority (0..100): higher wins; eviction takes the lowest first.
	DefaultPriority = 50
	// DefaultContext is the context of each slot, in tokens. The runner's
	// llama context holds Context × Parallel tokens.
	DefaultContext = 2048
	// DefaultParallel is the number of slots (concurrent sequences).
	DefaultParallel = 4
	// DefaultThreads: 0 lets the runner pick (the number of performance cores).
	DefaultThreads = 0
	// DefaultGPULayers offloads as many layers as fit when the runner finds
	// a GPU device and none otherwise; 0 runs on the CPU, -1 offloads every
	// layer.
	DefaultGPULayers = GPULayersAuto
	// DefaultKeepAlive unloads a model idle this long. "0" unloads as soon as
	// it is idle; "forever" (or "-1", or any negative duration) never unloads
	// for idleness (the model can still be evicted unless pinned).
	DefaultKeepAlive = 10 * time.Minute
	// DefaultPreload: load at daemon start.
	DefaultPreload = false
	// DefaultPinned: never evicted.
	DefaultPinned = false
	// DefaultFlashAttention enables llama.cpp's flash attention.
	DefaultFlashAttention = false
	// DefaultCache: the model file is staged into cache.dir and its
	// conversations are parked there when it is unloaded.
	DefaultCache = true
)

// model "name" { sampling { ... } }: the defaults of a request that does not
// say otherwise. These are llama.cpp's own defaults, except MaxTokens.
const (
	DefaultTemperature   = 0.8
	DefaultTopK          = 40
	DefaultTopP          = 0.95
	DefaultMinP          = 0.05
	DefaultRepeatPenalty = 1.0
	// DefaultSeed -1 draws a random seed per request.
	DefaultSeed = -1
	// DefaultMaxTokens is the generation length when a request gives none.
	DefaultMaxTokens = 256
)
