package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/gguf"
)

// Timing defaults.
const (
	// MeasureEvery is the least time between two RSS readings of a runner
	// after requests.
	MeasureEvery = 2 * time.Second
	// ReapEvery is how often idle models are checked against keep-alive.
	ReapEvery = 250 * time.Millisecond
	// StopGrace is how long an unloaded runner gets to exit before it is
	// killed.
	StopGrace = 10 * time.Second
)

// Options configure a Pool.
type Options struct {
	Config *config.Config
	// RunnerCommand is the runner executable and leading arguments; nil
	// runs this executable with the argument "runner".
	RunnerCommand []string
	RunnerEnv     []string
	// SocketDir holds the runners' socket directories; default os.TempDir().
	SocketDir string
	Log       *slog.Logger // nil: slog.Default()
	RunnerLog io.Writer    // the runners' stderr; nil discards it
	// RunnerOverhead is the estimate's runner overhead until a runner has
	// been measured; 0 means DefaultRunnerOverhead.
	RunnerOverhead uint64
	// Cache, when set, stages model files and parks conversations (see
	// stage.go and park.go).
	Cache *cache.Cache
	// Observer receives requests, loads and unloads for metrics; nil: none.
	Observer Observer
	// MemAvailable reads the system's available memory; nil reads
	// /proc/meminfo (the platform monitor passes its own reader).
	MemAvailable func() (uint64, bool)
	// UnifiedMemory says the GPU shares RAM (a Jetson): models' GPU buffers
	// count against memory.budget, not memory.gpu_budget (gpu.go).
	UnifiedMemory bool
	// StartRunner starts a model's runner; nil starts a runner.Process.
	StartRunner StartRunner
	// CrashBurst crashes of a model's runner within CrashInterval make it
	// failed (crash.go); 0 means DefaultCrashBurst and
	// DefaultCrashInterval, a negative CrashBurst no limit.
	CrashBurst    int
	CrashInterval time.Duration
}

// ModelStatus is one configured model as /models shows it.
type ModelStatus struct {
	Name           string   `json:"name"`
	Aliases        []string `json:"aliases"`
	State          string   `json:"state"` // unloaded, loading, ready, unloading, failed, unavailable
	Priority       int      `json:"priority"`
	Pinned         bool     `json:"pinned"`
	Preload        bool     `json:"preload"`
	Tier           string   `json:"tier,omitempty"`
	EstimatedBytes uint64   `json:"estimated_bytes"`
	Estimate       Estimate `json:"estimate"`
	MeasuredBytes  uint64   `json:"measured_bytes"` // runner RSS; 0 when not loaded
	ChargedBytes   uint64   `json:"charged_bytes"`  // what counts against the budget now
	// GPUChargedBytes is what counts against memory.gpu_budget (a discrete
	// GPU's buffers); GPUShareBytes the GPU buffers included in
	// ChargedBytes on unified memory. See gpu.go.
	GPUChargedBytes uint64  `json:"gpu_charged_bytes,omitempty"`
	GPUShareBytes   uint64  `json:"gpu_share_bytes,omitempty"`
	BudgetBytes     uint64  `json:"budget_bytes"` // memory_budget; 0: only the global one
	LoadProgress    float32 `json:"load_progress"`
	// StageProgress is the copy into the model cache before the load, in
	// [0,1], while it runs (stage.go).
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
	// LoadPhases are where the last load's time went, in order, from the
	// eviction that made room for it to its first prompt (swap.go).
	LoadPhases []runner.Phase `json:"load_phases,omitempty"`
	// LoadSpare says the last load ran in the warm spare (spare.go): its
	// process_start and engine_init were done before the load began.
	LoadSpare bool              `json:"load_spare,omitempty"`
	LastError string            `json:"last_error,omitempty"`
	Reload    string            `json:"reload,omitempty"` // a config reload's phase; see apply.go
	Pid       int               `json:"pid,omitempty"`
	Threads   int               `json:"threads,omitempty"` // the runner's CPU threads now (config, reload, throttle)
	Info      *runner.ModelInfo `json:"info,omitempty"`
	// Speculative is the model's speculative decoding: its settings and
	// tokens drafted and accepted since start; nil when it is off.
	Speculative *SpeculativeStatus `json:"speculative,omitempty"`
}

// Status is the pool as a whole.
type Status struct {
	Budget       uint64 `json:"budget"`
	Reserve      uint64 `json:"reserve"`
	Used         uint64 `json:"used"` // charges of loading, ready and unloading models and the warm spare
	MemAvailable uint64 `json:"mem_available,omitempty"`
	Loaded       int    `json:"loaded"` // ready models
	Loading      int    `json:"loading"`
	Failed       int    `json:"failed"` // models whose last load failed or that crashed too often
	Queued       int    `json:"queued"`
	QueueTotal   int    `json:"queue_total"`
	Models       int    `json:"models"`
	// Spare is the warm spare runner (spare.go), charged in Used; nil
	// when memory.warm_spare is off.
	Spare *SpareStatus `json:"spare,omitempty"`
}

// OptimizeReport says what Optimize did.
type OptimizeReport struct {
	Unloaded   []string          `json:"unloaded"`
	Reasons    map[string]string `json:"reasons"`
	FreedBytes uint64            `json:"freed_bytes"`
}

// loadOp is one load of a model; done closes when it has finished.
type loadOp struct {
	done chan struct{}
	err  error
}

// model is a configured model's state; every field is guarded by Pool.mu.
type model struct {
	cfg    config.Model
	params gguf.Params
	estErr error

	state     modelState
	proc      Runner
	load      *loadOp
	active    int // requests running in the runner
	queued    int // requests waiting for a load or a slot
	waiters   int // Load calls waiting
	draining  int // loads waiting for this model to go idle
	grace     int // while draining: requests queued before it began, still to admit
	charge    uint64
	measured  uint64
	peak      uint64
	measuring bool
	staging   float32 // copy into the model cache, [0,1]; 0 when none runs
	lastMeas  time.Time
	lastUsed  time.Time
	loadedAt  time.Time
	lastError string
	// unavailable is the last UnavailableError logged (modelfile.go);
	// empty once the model has loaded.
	unavailable string
	// loadedSize and loadedMod are the model file's as the running
	// runner's load found it (modelfile.go: runsAlready).
	loadedSize config.Size
	loadedMod  time.Time
	info       *runner.ModelInfo
	gpu        gpuState // see gpu.go
	crashes    crashLog // see crash.go

	requests, failures, rejected, tokens, loads, evictions uint64
	loadSeconds                                            float64
	win                                                    window
	slotShare                                              float64     // thermal throttle's cap; see slots
	rl                                                     reloadState // see apply.go
	swap                                                   swapState   // see swap.go
	counts                                                 counts      // outcomes and prompt tokens; see observe.go
}

// Pool owns the models' runners. All methods are safe for concurrent use.
type Pool struct {
	opts   Options
	cfg    *config.Config
	log    *slog.Logger
	runLog io.Writer

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// memAvailable reads MemAvailable; ok false when unknown. A test hook,
	// like the intervals below.
	memAvailable                       func() (uint64, bool)
	newRunner                          StartRunner
	crashBurst                         int
	crashInterval                      time.Duration
	measureEvery, reapEvery, stopGrace time.Duration
	drainTimeout                       time.Duration // 0: drainTimeoutLocked decides
	spareBackoff                       time.Duration

	mu       sync.Mutex
	wake     chan struct{} // closed and replaced on every state change
	models   map[string]*model
	order    []*model
	queued   int
	overhead uint64
	started  bool
	closing  bool
	thr      throttleState // see throttle.go
	spare    spareState    // see spare.go
	events   []Event       // recent, oldest first; see Events
	applyGen uint64        // counts Apply calls
	// badTransitions counts state changes the life cycle does not allow
	// (state.go); tests require none.
	badTransitions int
}

// New builds a pool for opts.Config. It starts nothing; see Start.
func New(opts Options) (*Pool, error) {
	if opts.Config == nil {
		return nil, fmt.Errorf("pool: no config")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	p := &Pool{
		opts: opts, cfg: opts.Config, log: opts.Log,
		wake: make(chan struct{}), models: map[string]*model{},
		overhead: DefaultRunnerOverhead, memAvailable: readMemAvailable,
		measureEvery: MeasureEvery, reapEvery: ReapEvery, stopGrace: StopGrace, spareBackoff: SpareBackoff,
	}
	if opts.RunnerOverhead > 0 {
		p.overhead = opts.RunnerOverhead
	}
	if opts.MemAvailable != nil {
		p.memAvailable = opts.MemAvailable
	}
	p.crashBurst, p.crashInterval = opts.CrashBurst, opts.CrashInterval
	if p.crashBurst == 0 {
		p.crashBurst = DefaultCrashBurst
	}
	if p.crashInterval <= 0 {
		p.crashInterval = DefaultCrashInterval
	}
	p.newRunner = opts.StartRunner
	if p.newRunner == nil {
		p.newRunner = startProcess
	}
	if opts.RunnerLog != nil {
		p.runLog = &lockedWriter{w: opts.RunnerLog}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, mc := range opts.Config.Models {
		if _, dup := p.models[mc.Name]; dup {
			return nil, fmt.Errorf("pool: model %q is configured twice", mc.Name)
		}
		m := &model{cfg: mc, state: stUnloaded}
		if mc.FileError != "" {
			// The config check warned about the file already (and the
			// daemon logged it): unavailable, quietly, unless the file
			// has turned up since.
			if _, err := checkFile(mc); err != nil {
				p.setUnavailableLocked(m, err.(*UnavailableError), true)
			}
		}
		if m.state != stUnavailable {
			m.params, m.estErr = estimateFile(mc)
			if m.estErr != nil {
				p.warnHeader(mc.Name, m.estErr)
			}
		}
		p.models[mc.Name] = m
		p.order = append(p.order, m)
	}
	return p, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Start preloads the models that say so (in the background) and starts
// the keep-alive reaper. They run until Close.
func (p *Pool) Start() {
	p.mu.Lock()
	if p.started || p.closing {
		p.mu.Unlock()
		return
	}
	p.started = true
	var pre []string
	for _, m := range p.order {
		if m.cfg.Preload {
			pre = append(pre, m.cfg.Name)
		}
	}
	p.wg.Add(3)
	p.mu.Unlock()
	go p.reaper()
	go p.keepSpare()
	// Preloads go one at a time in priority order, so that the most
	// important models get the memory first.
	sort.SliceStable(pre, func(i, j int) bool { return p.models[pre[i]].cfg.Priority > p.models[pre[j]].cfg.Priority })
	go func() {
		defer p.wg.Done()
		for _, name := range pre {
			if p.ctx.Err() != nil {
				return
			}
			if err := p.Load(p.ctx, name); err != nil && p.ctx.Err() == nil {
				var ue *UnavailableError
				if errors.As(err, &ue) {
					// Logged as a config warning, or by the load when
					// new; the other preloads go on.
					p.log.Warn("preload skipped: model unavailable", "model", name)
					continue
				}
				p.log.Error("preload failed", "model", name, "err", err)
			}
		}
	}()
}

// Ready reports whether the pool has started and is not closing.
func (p *Pool) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started && !p.closing
}

// Close parks the ready models' conversations (park.go), then stops every
// runner: gracefully (requests still running fail), and killed at ctx's
// end. Loads in progress are abandoned and waiting requests get ErrClosed.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closing = true
	p.cancel()
	var procs []Runner
	var ready []parking
	for _, m := range p.order {
		if m.proc != nil && m.state != stLoading {
			procs = append(procs, m.proc)
		}
		if m.proc != nil && m.state == stReady {
			ready = append(ready, parking{m.cfg, m.proc})
		}
	}
	p.stopSpareLocked("closing")
	p.broadcastLocked()
	p.mu.Unlock()
	// Conversations survive a restart (an upgrade, a reboot): park them
	// as an eviction would (park.go).
	p.parkAll(ctx, ready)
	var wg sync.WaitGroup
	for _, pr := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.Stop(ctx)
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Runners are killed by now; give the bookkeeping goroutines a
		// moment.
		select {
		case <-done:
			return nil
		case <-time.After(p.stopGrace):
			return fmt.Errorf("pool: close: goroutines still running: %w", ctx.Err())
		}
	}
}

// broadcastLocked wakes everyone waiting for a state change.
func (p *Pool) broadcastLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// Resolve maps a model name or alias onto the canonical name.
func (p *Pool) Resolve(nameOrAlias string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resolveLocked(nameOrAlias)
}

func (p *Pool) resolveLocked(nameOrAlias string) (string, bool) {
	m, ok := p.cfg.Lookup(nameOrAlias)
	if !ok {
		return "", false
	}
	return m.Name, true
}

func (p *Pool) lookup(name string) (*model, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	canon, ok := p.resolveLocked(name)
	if !ok {
		names := p.cfg.ModelNames()
		if len(names) == 0 {
			return nil, fmt.Errorf("%w %q: no models are configured", ErrUnknownModel, name)
		}
		return nil, fmt.Errorf("%w %q; configured models: %s", ErrUnknownModel, name, strings.Join(names, ", "))
	}
	return p.models[canon], nil
}

// estimateLocked is m's current estimate.
func (p *Pool) estimateLocked(m *model) Estimate {
	return EstimateParams(m.params, m.cfg, p.overhead)
}

func (p *Pool) usedLocked() uint64 {
	u := p.spare.charge
	for _, m := range p.order {
		u += m.charge + m.extraChargeLocked()
	}
	return u
}

// Models returns every configured model in config order.
func (p *Pool) Models() []ModelStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ModelStatus, 0, len(p.order))
	for _, m := range p.order {
		out = append(out, p.statusLocked(m))
	}
	return out
}

// Model returns one model's status by name or alias.
func (p *Pool) Model(name string) (ModelStatus, bool) {
	m, err := p.lookup(name)
	if err != nil {
		return ModelStatus{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statusLocked(m), true
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (p *Pool) statusLocked(m *model) ModelStatus {
	est := p.estimateLocked(m)
	s := ModelStatus{
		Name: m.cfg.Name, Aliases: append([]string{}, m.cfg.Aliases...), State: m.state.String(),
		Priority: m.cfg.Priority, Pinned: m.cfg.Pinned, Preload: m.cfg.Preload, Tier: m.cfg.Tier,
		EstimatedBytes: est.Total, Estimate: est, MeasuredBytes: m.measured, ChargedBytes: m.charge,
		GPUChargedBytes: m.gpu.device, GPUShareBytes: m.gpu.share,
		BudgetBytes: uint64(max(m.cfg.MemoryBudget, 0)),
		LastUsed:    tp(m.lastUsed), Active: m.active, Queued: m.queued, Draining: m.draining > 0,
		Requests: m.requests, Failures: m.failures, Rejected: m.rejected, Tokens: m.tokens,
		Loads: m.loads, Evictions: m.evictions, LoadSeconds: m.loadSeconds, LastError: m.lastError,
		KeepAlive: "forever", Reload: m.rl.phase, LoadPhases: m.phasesCopy(), LoadSpare: m.swap.spare,
	}
	if m.cfg.KeepAlive >= 0 {
		s.KeepAlive = m.cfg.KeepAlive.String()
	}
	switch m.state {
	case stReady, stUnloading:
		s.LoadedAt = tp(m.loadedAt)
		s.LoadProgress = 1
		s.Info = m.info
		s.Threads = p.runnerThreadsLocked(m)
	case stLoading:
		if m.proc != nil {
			s.LoadProgress = m.proc.Progress()
		}
		s.StageProgress = m.staging
	}
	if m.proc != nil {
		s.Pid = m.proc.Pid()
	}
	s.Speculative = m.speculativeStatus()
	if m.idle() && m.cfg.KeepAlive >= 0 && !m.cfg.Pinned {
		s.KeepAliveUntil = tp(m.lastUsed.Add(m.cfg.KeepAlive))
	}
	return s
}

// Status returns the pool's totals.
func (p *Pool) Status() Status {
	avail, ok := p.memAvailable()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Budget: uint64(p.cfg.Memory.Budget), Reserve: uint64(p.cfg.Memory.Reserve), Used: p.usedLocked(),
		Queued: p.queued, QueueTotal: p.cfg.Server.QueueTotal, Models: len(p.order), Spare: p.spareStatusLocked(),
	}
	if ok {
		s.MemAvailable = avail
	}
	for _, m := range p.order {
		switch m.state {
		case stReady:
			s.Loaded++
		case stLoading:
			s.Loading++
		case stFailed:
			s.Failed++
		}
	}
	return s
}

// readMemAvailable reads MemAvailable from /proc/meminfo.
func readMemAvailable() (uint64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, false
			}
			return kb * 1024, true
		}
	}
	return 0, false
}
