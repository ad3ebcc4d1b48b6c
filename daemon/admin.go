package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/systemd"
	"github.com/jetai/jetai/internal/bytesize"
	"github.com/jetai/jetai/version"
)

// sysState is what the systemd and admin side of the daemon keeps: where
// it listens and the live throughput figures.
type sysState struct {
	mu          sync.Mutex
	listen      string
	activated   bool
	adminSocket string
	adminErr    string // why there is no admin socket, if there is none
	watchdog    time.Duration
	state       string // starting, serving, reloading, stopping
	summary     string // the STATUS= line last sent
	// rates: generated tokens per second over the last status tick,
	// overall and per model.
	rate       float64
	modelRates map[string]float64
	lastTokens map[string]uint64
	lastTick   time.Time
}

// adminBackend implements admin.Backend over the daemon.
type adminBackend struct{ d *Daemon }

var _ admin.Backend = adminBackend{}

func (d *Daemon) setState(s string) {
	d.sys.mu.Lock()
	d.sys.state = s
	d.sys.mu.Unlock()
}

// openAdmin opens the admin socket: systemd's "admin" descriptor, or
// server.admin_socket. A daemon without one still serves the REST API.
func (d *Daemon) openAdmin(cfg *config.Config) (net.Listener, admin.Access, error) {
	acc := admin.Access{Uid: os.Geteuid(), Gid: -1, GroupName: cfg.Server.AdminGroup}
	gid, gerr := admin.LookupGroup(cfg.Server.AdminGroup)
	if gerr == nil {
		acc.Gid = gid
	} else {
		d.log.Warn("admin socket: only root and the daemon's user may use it", "err", gerr)
	}
	ls, err := systemd.Activated(systemd.FDNameAdmin)
	if err != nil {
		return nil, acc, err
	}
	if len(ls) > 0 {
		for _, l := range ls[1:] {
			l.Close()
		}
		return ls[0], acc, nil
	}
	ln, err := admin.Listen(cfg.Server.AdminSocket, acc.Gid)
	if err != nil {
		return nil, acc, err
	}
	return ln, acc, nil
}

// Status implements admin.Backend.
func (b adminBackend) Status(ctx context.Context) admin.Status {
	d := b.d
	cfg := d.Config()
	s := admin.Status{
		APIVersion: admin.APIVersion, Version: version.Version, Pid: os.Getpid(),
		StartedAt: d.started.UTC(), UptimeSeconds: time.Since(d.started).Seconds(),
		LogLevel: systemd.LevelName(d.level.Level()),
		Config:   configStatus(cfg, d.ReloadStatus()),
		Pool:     wirePool(d.pool.Status()),
		Models:   b.Models(ctx),
	}
	if u, err := user.Current(); err == nil {
		s.User = u.Username
	}
	s.Performance = wirePerf(d.pool.Performance().Overall)
	d.sys.mu.Lock()
	s.State, s.Listen, s.Activated, s.AdminSocket = d.sys.state, d.sys.listen, d.sys.activated, d.sys.adminSocket
	s.WatchdogSeconds = d.sys.watchdog.Seconds()
	s.Summary = d.sys.summary
	s.Performance.WindowTokensPerSecond = d.sys.rate
	d.sys.mu.Unlock()
	s.Platform = d.adminPlatform() // platform.go
	if d.cache != nil {
		st := d.cache.Stats()
		s.Cache = &admin.CacheUsage{Dir: d.cache.Dir(), MaxBytes: st.MaxBytes, UsedBytes: st.ModelBytes + st.ParkedBytes,
			ModelFiles: st.ModelFiles, ParkedModels: st.ParkedModels, ParkedBytes: st.ParkedBytes}
	}
	if s.Summary == "" {
		s.Summary = summary(s)
	}
	return s
}

// Models implements admin.Backend.
func (b adminBackend) Models(ctx context.Context) []admin.Model {
	d := b.d
	cfg := d.Config()
	ms := d.pool.Models()
	out := make([]admin.Model, 0, len(ms))
	d.sys.mu.Lock()
	rates := d.sys.modelRates
	d.sys.mu.Unlock()
	for _, m := range ms {
		am := wireModel(m)
		am.TokensPerSecond = rates[m.Name]
		if c, ok := cfg.Lookup(m.Name); ok {
			am.Path, am.Context, am.Parallel, am.Threads = c.Path, c.Context, c.Parallel, c.Threads
		}
		out = append(out, am)
	}
	return out
}

func (b adminBackend) model(name string) (admin.Model, error) {
	for _, m := range b.Models(context.Background()) {
		if m.Name == name {
			return m, nil
		}
	}
	return admin.Model{}, pool.ErrUnknownModel
}

// Load implements admin.Backend.
func (b adminBackend) Load(ctx context.Context, name string, wait bool) (admin.LoadResult, error) {
	d := b.d
	canon, ok := d.pool.Resolve(name)
	if !ok {
		return admin.LoadResult{}, unknownModel(d.Config(), name)
	}
	start := time.Now()
	if wait {
		if err := d.pool.Load(ctx, canon); err != nil {
			return admin.LoadResult{}, err
		}
	} else {
		// The load outlives this request: it runs until ready, failed or
		// the pool closes.
		errc := make(chan error, 1)
		go func() { errc <- d.pool.Load(context.Background(), canon) }()
		// Answer once the load has begun, so the state shown is "loading"
		// (an unavailable model whose file is still bad stays so; a failed
		// one shows its last failure only if the retry fails as fast). A load
		// refused before it began (thermal shedding, the pool closing) is
		// the answer.
	wait:
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			select {
			case err := <-errc:
				if m, _ := d.pool.Model(canon); err != nil && m.State == pool.StateUnloaded {
					return admin.LoadResult{}, err
				}
				break wait
			default:
			}
			if m, _ := d.pool.Model(canon); m.State != pool.StateUnloaded && m.State != pool.StateUnavailable && m.State != pool.StateFailed {
				break
			}
		}
	}
	m, err := b.model(canon)
	return admin.LoadResult{Model: m, Seconds: time.Since(start).Seconds()}, err
}

// Unload implements admin.Backend.
func (b adminBackend) Unload(ctx context.Context, name string) (admin.LoadResult, error) {
	d := b.d
	canon, ok := d.pool.Resolve(name)
	if !ok {
		return admin.LoadResult{}, unknownModel(d.Config(), name)
	}
	start := time.Now()
	if err := d.pool.Unload(ctx, canon); err != nil {
		return admin.LoadResult{}, err
	}
	m, err := b.model(canon)
	return admin.LoadResult{Model: m, Seconds: time.Since(start).Seconds()}, err
}

// Optimize implements admin.Backend.
func (b adminBackend) Optimize(ctx context.Context) (admin.OptimizeReport, error) {
	return wireOptimize(b.d.pool.Optimize(ctx)), nil
}

// Reload implements admin.Backend: the same Reload as SIGHUP and the file
// watcher, answered when applied or rejected.
func (b adminBackend) Reload(ctx context.Context) (admin.ReloadResult, error) {
	return b.d.Reload(ctx, "admin"), nil
}

// Validate implements admin.Backend: the file is checked as jetaid
// --check-config and a reload check it, and the plan says what a reload to
// it would change. Without content the daemon reads the path itself, as a
// reload of that file would.
func (b adminBackend) Validate(ctx context.Context, req admin.ValidateRequest) admin.ValidateResult {
	var rep config.Report
	cfg := b.d.Config()
	switch {
	case filepath.Dir(req.Path) == cfg.DropInDirOrDefault():
		// A drop-in of the running config: checked with the config file
		// and the other drop-ins, as a reload will read it.
		src := []byte(req.Content)
		if req.Content == "" {
			var err error
			if src, err = os.ReadFile(req.Path); err != nil {
				return admin.ValidateResult{Path: req.Path, Diagnostics: []string{req.Path + ": " + err.Error()}, Summary: req.Path + ": not usable"}
			}
		}
		rep = config.CheckDropIn(cfg.Path, req.Path, src)
	case req.Content == "":
		rep = config.Check(req.Path)
	default:
		rep = config.CheckSource([]byte(req.Content), req.Path)
	}
	res := admin.ValidateResult{OK: rep.OK, Path: req.Path, Hash: rep.Hash, Diagnostics: rep.Diagnostics}
	if !rep.OK {
		res.Summary = fmt.Sprintf("%s: not usable", req.Path)
		return res
	}
	plan := config.Diff(cfg, rep.Config)
	res.Plan = wirePlan(plan)
	res.Summary = fmt.Sprintf("%s: ok (%d models, listen %s, default model %q); a reload to it would change: %s",
		req.Path, rep.Models, rep.Listen, rep.DefaultModel, plan.String())
	return res
}

func configStatus(cfg *config.Config, r admin.ReloadStatus) admin.ConfigStatus {
	return admin.ConfigStatus{Path: cfg.Path, Hash: cfg.Hash, DropInDir: cfg.DropInDir, DropIns: append([]string{}, cfg.DropIns...), ReloadStatus: r}
}

// LogLevel implements admin.Backend.
func (b adminBackend) LogLevel() string { return systemd.LevelName(b.d.level.Level()) }

// SetLogLevel implements admin.Backend.
func (b adminBackend) SetLogLevel(level string) error {
	l, err := systemd.ParseLevel(level)
	if err != nil {
		return admin.Errorf(http.StatusBadRequest, admin.CodeBadRequest, "%v", err)
	}
	old := b.d.level.Level()
	b.d.level.Set(l)
	b.d.log.Warn("log level changed over the admin socket", "from", systemd.LevelName(old), "to", systemd.LevelName(l))
	return nil
}

// Complete implements admin.Backend.
func (b adminBackend) Complete(ctx context.Context, req admin.CompleteRequest, onText func(string)) (admin.CompleteResult, error) {
	canon, ok := b.d.pool.Resolve(req.Model)
	if !ok {
		return admin.CompleteResult{}, unknownModel(b.d.Config(), req.Model)
	}
	res, err := b.d.pool.Complete(ctx, canon, runnerRequest(req), onText)
	return wireResult(res), err
}

// unknownModel is pool.ErrUnknownModel in words that name the config's
// models; the code and status are the pool's.
func unknownModel(cfg *config.Config, name string) error {
	return &unknownModelError{fmt.Sprintf("no model %q in %s (configured: %v)", name, cfg.Path, cfg.ModelNames())}
}

type unknownModelError struct{ msg string }

func (e *unknownModelError) Error() string { return e.msg }
func (e *unknownModelError) Unwrap() error { return pool.ErrUnknownModel }

// summary is the one-line STATUS=: state, models, memory, speed, the model
// cache's use and, with platform readings, temperature and throttling.
func summary(s admin.Status) string {
	var loaded, unavailable []string
	loading := ""
	for _, m := range s.Models {
		switch m.State {
		case admin.StateReady:
			loaded = append(loaded, m.Name)
		case admin.StateUnavailable:
			unavailable = append(unavailable, m.Name)
		case admin.StateLoading:
			loading = fmt.Sprintf("; loading %s %d%%", m.Name, int(m.LoadProgress*100))
		}
	}
	line := fmt.Sprintf("%s: %d/%d models loaded", s.State, len(loaded), len(s.Models))
	if len(loaded) > 0 && len(loaded) <= 4 {
		line += " (" + strings.Join(loaded, ", ") + ")"
	}
	line += loading
	if len(unavailable) > 0 {
		line += "; unavailable: " + strings.Join(unavailable, ", ")
	}
	line += fmt.Sprintf(", memory %s of %s, %.1f tok/s", bytesize.IEC(s.Pool.Used), bytesize.IEC(s.Pool.Budget), s.Performance.WindowTokensPerSecond)
	if c := s.Cache; c != nil {
		line += ", cache " + cacheUse(c)
	}
	if p := s.Platform; p != nil {
		hot := 0.0
		for _, t := range p.Temperatures {
			hot = max(hot, t.Celsius)
		}
		if hot > 0 {
			line += fmt.Sprintf(", %.0f°C", hot)
		}
		if p.Throttle != "" && p.Throttle != "none" {
			line += ", throttled (" + p.Throttle + ")"
		}
	}
	return line
}

// cacheUse is the cache's fill in brief: "1.2 GiB of 8.0 GiB" ("of" the
// bound when there is one).
func cacheUse(c *admin.CacheUsage) string {
	if c.MaxBytes > 0 {
		return fmt.Sprintf("%s of %s", bytesize.IEC(uint64(c.UsedBytes)), bytesize.IEC(uint64(c.MaxBytes)))
	}
	return bytesize.IEC(uint64(c.UsedBytes))
}
