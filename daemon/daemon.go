package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/connlimit"
	"github.com/jetai/jetai/daemon/experiment"
	"github.com/jetai/jetai/daemon/ingest"
	"github.com/jetai/jetai/daemon/metrics"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/pull"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/daemon/systemd"
	"github.com/jetai/jetai/version"
)

// DefaultConfigPath is where jetaid looks for its config by default.
const DefaultConfigPath = "/etc/jetai/jetai.hcl"

// DefaultShutdownTimeout is how long in-flight requests may run on after
// shutdown begins.
const DefaultShutdownTimeout = 30 * time.Second

// Options configure Run. Only ConfigPath is required.
type Options struct {
	ConfigPath string
	// Listener, when set, serves the REST API instead of systemd's "api"
	// socket or server.listen (tests hand in a loopback listener).
	Listener net.Listener
	// RunnerCommand starts a runner; default: this executable, "runner".
	RunnerCommand []string
	RunnerEnv     []string
	// ToolCommand runs `jetaid tool` (import checks, quantizing); default:
	// this executable, "tool".
	ToolCommand []string
	ToolEnv     []string
	// SocketDir holds the runners' sockets; default: the pool's choice.
	SocketDir string
	// Log receives the daemon's log; default: native journal entries
	// under systemd, text or JSON lines (server.log_format) on LogOutput
	// otherwise, at the config's log level
	// (changeable at run time with jetai-ctl log-level).
	Log *slog.Logger
	// RunnerLog receives the runners' stderr; default: LogOutput, as log
	// records with log_format json (logs.go).
	RunnerLog io.Writer
	// LogOutput is where the default logger writes off the journal, in
	// server.log_format; default stderr.
	LogOutput io.Writer
	// ShutdownTimeout bounds the graceful shutdown; default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Ready, when set, is called with the API's address once it serves.
	Ready func(addr net.Addr)
	// PlatformRoot stands for "/" when reading /sys, /proc and /etc
	// (thermal zones, memory, power); default "/". Tests point it at a
	// fake tree.
	PlatformRoot string
	// Watch tunes the config file watch; NoWatch turns it off (SIGHUP and
	// Reload still reload). See reload.go.
	Watch   config.WatchOptions
	NoWatch bool
}

// Daemon is one running jetaid: its config, model pool and REST API. Each
// concern beyond those (reload, admin socket, systemd, platform readings)
// lives in its own file of this package and is started from Run.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	pool    *pool.Pool
	api     *api.Server
	cache   *cache.Cache                      // nil when cache.dir is unusable (modelcache.go)
	probed  atomic.Pointer[runner.DeviceList] // devices listed at start (platform.go)
	ingest  *ingest.Ingester
	puller  *pull.Manager // pull.go; nil without a cache
	// dropIns serialises the writers of drop-in files and model files
	// (AddModelDropIn, RemoveModel; localmodels.go).
	dropIns sync.Mutex

	mu     sync.Mutex
	cfg    *config.Config // the config in force
	reload reloadState    // see reload.go

	// notify sends service-manager state lines ("READY=1", "STATUS=…"); a
	// no-op unless the systemd integration sets it.
	notify func(states ...string)

	// systemd and admin socket (admin.go, service.go)
	level        *slog.LevelVar // the default logger's level
	underSystemd bool           // NOTIFY_SOCKET was set at start
	pings        chan chan struct{}
	sys          sysState
	adminAddr    net.Addr // the admin socket; nil without one

	platformState // platform.go: monitor and metrics

	conns atomic.Pointer[connlimit.Listener] // the REST listener, once Run made it
}

// Connections returns the REST port's connection counters (zero before
// Run has started listening).
func (d *Daemon) Connections() connlimit.Stats {
	if l := d.conns.Load(); l != nil {
		return l.Stats()
	}
	return connlimit.Stats{}
}

// New loads the config and builds the pool and the API. It starts nothing:
// Run does. An unusable config returns config.Diagnostics.
func New(opts Options) (*Daemon, error) {
	if opts.ConfigPath == "" {
		opts.ConfigPath = DefaultConfigPath
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	d := &Daemon{opts: opts, started: time.Now(), notify: func(...string) {},
		level: new(slog.LevelVar), pings: make(chan chan struct{})}
	d.sys.state = "starting"
	if os.Getenv("NOTIFY_SOCKET") != "" {
		d.underSystemd = true
		d.notify = func(states ...string) {
			if _, err := systemd.Notify(states...); err != nil && d.log != nil {
				d.log.Warn("sd_notify", "err", err)
			}
		}
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	d.cfg = cfg
	d.reload.generation, d.reload.loadedAt, d.reload.first = 1, d.started, cfg
	d.level.Set(level(cfg.Server.LogLevel))
	d.setupLogs(cfg) // logs.go
	for _, w := range cfg.Warnings {
		d.log.Warn("config", "warning", w.String())
	}
	d.initModelCache(cfg) // modelcache.go
	d.metrics = metrics.New()
	if d.cache != nil {
		d.metrics.AttachCache(d.cache.Stats)
	}
	d.pool, err = pool.New(pool.Options{
		Config: cfg, RunnerCommand: opts.RunnerCommand, RunnerEnv: opts.RunnerEnv,
		SocketDir: opts.SocketDir, Log: d.log, RunnerLog: d.opts.RunnerLog, Cache: d.cache,
		Observer: d.metrics, MemAvailable: d.memAvailable,
		UnifiedMemory: d.unifiedMemory(),
	})
	if err != nil {
		return nil, fmt.Errorf("model pool: %w", err)
	}
	d.initPlatform(cfg)
	d.api = api.New(api.Options{Pool: d.pool, Config: cfg, Version: version.Version, Log: d.log, Started: d.started,
		Platform: func() any { return d.PlatformStatus() }, Metrics: d.metrics.Handler(), ReloadStatus: d.ReloadStatus,
		Shedding: d.shedding, Models: ollamaModels{d}})
	d.metrics.AttachResponses(d.api.ResponseCache)
	d.metrics.AttachExperiments(func() []experiment.Report { rs, _ := d.api.Experiments(""); return rs })
	d.reload.parts = d.reloadParts() // reload.go
	return d, nil
}

// Config is the config in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Pool is the daemon's model pool.
func (d *Daemon) Pool() *pool.Pool { return d.pool }

// Run runs the daemon until ctx ends, then shuts it down gracefully. It
// returns nil after a clean shutdown.
func Run(ctx context.Context, opts Options) error {
	d, err := New(opts)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// Run serves until ctx ends, then shuts down gracefully: in-flight requests
// finish up to the shutdown timeout, then the runners stop. It returns nil
// after a clean shutdown. Run may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	cfg, log := d.Config(), d.log
	closePool := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownTimeout)
		defer cancel()
		return d.pool.Close(cctx)
	}

	ln := d.opts.Listener
	if ln == nil {
		var err error
		var activated bool
		ln, activated, err = systemd.Listen(systemd.FDNameAPI, "tcp", cfg.Server.Listen)
		if err != nil {
			closePool()
			return fmt.Errorf("listen on %s (server.listen): %w", cfg.Server.Listen, err)
		}
		d.sys.activated = activated
	}
	d.sys.listen = ln.Addr().String()
	lim := connlimit.New(api.Listener(ln), d.connCap()) // connections.go; api.Listener: net/http's own refusals in JSON
	d.conns.Store(lim)
	d.metrics.AttachConnections(lim.Stats)
	ln = lim
	hs := &http.Server{
		ConnState:         lim.ConnState,
		Handler:           d.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// No WriteTimeout: streams last as long as generation does;
		// server.request_timeout bounds each request instead.
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	// Background services run until svcCtx ends; each is started below.
	svcCtx, stopServices := context.WithCancel(ctx)
	defer stopServices()
	var services sync.WaitGroup
	d.startPull(svcCtx, &services) // pull.go; before the admin socket, which serves it
	d.startAdmin(svcCtx, cfg, &services)
	d.startPlatform(svcCtx, &services)
	d.startReloaders(svcCtx, &services)

	d.pool.Start()
	d.api.SetState(api.StateServing)
	log.Info("jetaid serving", "version", version.Version, "listen", ln.Addr().String(), "config", cfg.Path,
		"models", strings.Join(cfg.ModelNames(), ","), "socket_activated", d.sys.activated)
	d.waitPreloads(ctx)
	d.setState("serving")
	d.tick()
	wdCtx, stopWatchdog := context.WithCancel(svcCtx)
	defer stopWatchdog()
	d.startWatchdog(wdCtx, &services)
	if ctx.Err() == nil { // not when SIGTERM came during the preloads
		d.notify("READY=1", systemd.Status(d.sys.summaryLine()))
	}
	services.Add(1)
	go func() { defer services.Done(); d.statusLoop(svcCtx) }()
	if d.opts.Ready != nil {
		d.opts.Ready(ln.Addr())
	}

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			runErr = fmt.Errorf("REST server: %w", err)
			break loop
		case reply := <-d.pings:
			close(reply)
		}
	}
	d.setState("stopping")
	// Stop accepting at once; requests in flight go on until the deadline.
	// (With socket activation systemd keeps its copy of the socket and
	// queues new connections for the next start.)
	ln.Close()
	d.notify("STOPPING=1", systemd.Status("stopping: finishing requests in flight"))
	d.api.SetState(api.StateStopping)
	stopWatchdog()
	if runErr != nil {
		stopServices()
		services.Wait()
		closePool()
		return runErr
	}
	log.Info("jetaid stopping", "deadline", d.opts.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the shutdown deadline; closing them", "error", err)
		hs.Close()
	}
	// The admin socket answers (state "stopping") until the requests are done.
	stopServices()
	services.Wait()
	if err := closePool(); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("stopping the runners", "error", err)
	}
	log.Info("jetaid stopped")
	return nil
}

func level(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
