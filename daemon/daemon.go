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
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/daemon/pool"
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
	// Listener, when set, serves the REST API instead of listening on
	// server.listen (tests, and later systemd socket activation).
	Listener net.Listener
	// RunnerCommand starts a runner; default: this executable, "runner".
	RunnerCommand []string
	RunnerEnv     []string
	// SocketDir holds the runners' sockets; default: the pool's choice.
	SocketDir string
	// Log receives the daemon's log; default: text on stderr at the
	// config's log level.
	Log *slog.Logger
	// RunnerLog receives the runners' stderr; default: stderr.
	RunnerLog io.Writer
	// ShutdownTimeout bounds the graceful shutdown; default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Ready, when set, is called with the API's address once it serves.
	Ready func(addr net.Addr)
}

// Run runs the daemon until ctx ends, then shuts it down gracefully. It
// returns nil after a clean shutdown.
func Run(ctx context.Context, opts Options) error {
	started := time.Now()
	if opts.ConfigPath == "" {
		opts.ConfigPath = DefaultConfigPath
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level(cfg.Server.LogLevel)}))
	}
	for _, w := range cfg.Warnings {
		log.Warn("config", "warning", w.String())
	}
	runnerLog := opts.RunnerLog
	if runnerLog == nil {
		runnerLog = os.Stderr
	}
	p, err := pool.New(pool.Options{
		Config: cfg, RunnerCommand: opts.RunnerCommand, RunnerEnv: opts.RunnerEnv,
		SocketDir: opts.SocketDir, Log: log, RunnerLog: runnerLog,
	})
	if err != nil {
		return fmt.Errorf("model pool: %w", err)
	}
	shutdownTimeout := opts.ShutdownTimeout
	if shutdownTimeout <= 0 {
		shutdownTimeout = DefaultShutdownTimeout
	}
	closePool := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return p.Close(cctx)
	}

	ln := opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Server.Listen)
		if err != nil {
			closePool()
			return fmt.Errorf("listen on %s (server.listen): %w", cfg.Server.Listen, err)
		}
	}
	srv := api.New(api.Options{Pool: p, Config: cfg, Version: version.Version, Log: log, Started: started})
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// No WriteTimeout: streams last as long as generation does;
		// server.request_timeout bounds each request instead.
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	p.Start(ctx)
	srv.SetState(api.StateServing)
	log.Info("jetaid serving", "version", version.Version, "listen", ln.Addr().String(), "config", cfg.Path,
		"models", strings.Join(cfg.ModelNames(), ","))
	if opts.Ready != nil {
		opts.Ready(ln.Addr())
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		srv.SetState(api.StateStopping)
		closePool()
		return fmt.Errorf("REST server: %w", err)
	}
	log.Info("jetaid stopping", "deadline", shutdownTimeout.String())
	srv.SetState(api.StateStopping)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the shutdown deadline; closing them", "error", err)
		hs.Close()
	}
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
