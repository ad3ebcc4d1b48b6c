package daemon

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/metrics"
	"github.com/jetai/jetai/daemon/platform"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
)

// platformState is the Daemon's part for platform awareness: the monitor
// that reads the machine and throttles the pool, and the metrics.
type platformState struct {
	mon     *platform.Monitor
	metrics *metrics.Registry
}

// ShedRetryAfter is what requests refused for heat are told: a hot board
// takes tens of seconds to cool by the hysteresis.
const ShedRetryAfter = 30 * time.Second

// PlatformStatus is the platform section of /status: the monitor's state
// and readings, and the throttle in force in the pool.
type PlatformStatus struct {
	platform.Status
	Throttle pool.ThrottleStatus `json:"throttle"`
	// Devices are the ggml devices the last runner to load reported.
	Devices []runner.Device `json:"devices"`
}

func (d *Daemon) platformRoot() string {
	if d.opts.PlatformRoot == "" {
		return "/"
	}
	return d.opts.PlatformRoot
}

// memAvailable is the pool's MemAvailable reader, under the platform root.
func (d *Daemon) memAvailable() (uint64, bool) {
	mi, err := platform.ReadMemInfo(d.platformRoot())
	return mi.Available, err == nil
}

// initPlatform builds the monitor over the pool and attaches the metrics'
// scrape-time sources. New calls it after the pool exists.
func (d *Daemon) initPlatform(cfg *config.Config) {
	d.mon = platform.New(platform.Options{
		Root: d.platformRoot(), Thermal: cfg.Thermal, Reserve: uint64(cfg.Memory.Reserve),
		Act: poolActuator{d}, Log: d.log.With("component", "platform"),
	})
	d.metrics.Attach(d.pool, d.mon.Status)
	d.metrics.AttachDevices(d.devices)
	b := d.mon.Board()
	d.log.Info("platform", "board", b.Model, "l4t", b.L4T, "root", d.platformRoot())
}

// startPlatform runs the monitor until ctx ends.
func (d *Daemon) startPlatform(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.mon.Run(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.probeDevices(ctx)
	}()
}

// shedding is GET /ready's view of the thermal policy: shedding at the
// hard limit, left only below it less the hysteresis, so readiness does
// not flap with a temperature that hovers at the limit.
func (d *Daemon) shedding() (bool, string) {
	if d.mon.Level() != platform.Shed {
		return false, ""
	}
	return true, d.mon.Status().Reason
}

// Platform is the daemon's platform monitor.
func (d *Daemon) Platform() *platform.Monitor { return d.mon }

// PlatformStatus is what /status shows under "platform".
func (d *Daemon) PlatformStatus() PlatformStatus {
	devs := d.devices()
	if devs == nil {
		devs = []runner.Device{}
	}
	return PlatformStatus{Status: d.mon.Status(), Throttle: d.pool.ThrottleStatus(), Devices: devs}
}

// poolActuator carries the monitor's decisions to the pool.
type poolActuator struct{ d *Daemon }

func (a poolActuator) Apply(ctx context.Context, level platform.Level, reason string) {
	a.d.pool.SetThrottle(ctx, ThrottleFor(level, reason, a.d.Config().Thermal.PollInterval))
	a.d.pauseQuantize(level != platform.Normal) // modelcache.go
}

func (a poolActuator) RelieveMemory(_ context.Context, reason string) (string, error) {
	return a.d.pool.RelieveMemory(reason), nil
}

// ThrottleFor is what each thermal level asks of the pool: throttle halves
// the runners' threads and the requests each model runs at once, and
// holds low-priority requests for one poll interval; shed also cuts the
// runners to one thread, refuses low-priority requests and loads, and
// unloads idle low-priority models.
func ThrottleFor(level platform.Level, reason string, poll time.Duration) pool.Throttle {
	switch level {
	case platform.Throttle:
		return pool.Throttle{Level: level.String(), Reason: reason, Threads: max(1, runtime.NumCPU()/2),
			SlotShare: 0.5, Delay: poll, RetryAfter: ShedRetryAfter}
	case platform.Shed:
		return pool.Throttle{Level: level.String(), Reason: reason, Threads: 1, SlotShare: 0.5,
			Delay: poll, Shed: true, RetryAfter: ShedRetryAfter}
	}
	return pool.Throttle{Level: platform.Normal.String(), Reason: reason}
}

// adminPlatform is the platform part of jetai-ctl status/top and of the
// STATUS= line.
func (d *Daemon) adminPlatform() *admin.Platform {
	s := d.mon.Status()
	p := &admin.Platform{Throttle: s.State.String(), ThrottleReason: s.Reason}
	if s.State == platform.Normal {
		p.Throttle, p.ThrottleReason = "none", ""
	}
	for _, z := range s.Reading.Zones {
		if z.Valid {
			p.Temperatures = append(p.Temperatures, admin.Temperature{Zone: z.Type, Celsius: z.Celsius})
		}
	}
	if m := s.Reading.Memory; m != nil {
		p.MemTotal, p.MemAvailable = m.Total, m.Available
	}
	// VDD_IN is the board's whole input on Jetsons; other rails are parts.
	for i, r := range s.Reading.Rails {
		if r.Err == "" && (i == 0 || r.Name == "VDD_IN") {
			p.PowerWatts = r.Watts
		}
	}
	for _, dv := range d.devices() {
		p.Devices = append(p.Devices, admin.Device{Name: dv.Name, Description: dv.Description, Type: dv.Type, FreeBytes: dv.FreeBytes, TotalBytes: dv.TotalBytes})
	}
	for _, g := range s.Reading.GPUs {
		if g.LoadKnown {
			p.GPUPercent = g.Load * 100
			break
		}
	}
	return p
}

// unifiedMemory says whether GPU buffers come out of RAM (a Jetson); the
// pool then charges them to memory.budget.
func (d *Daemon) unifiedMemory() bool { return platform.UnifiedMemory(d.platformRoot()) }

// probeDevices lists the ggml devices through a runner process at start, so
// that /status, jetai-ctl status and /metrics show the GPUs (or why a
// backend did not load) before any model loads.
func (d *Daemon) probeDevices(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	l, err := runner.ListDevices(ctx, d.opts.RunnerCommand, d.opts.RunnerEnv, d.Config().GPU.BackendsDir)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("listing the GPU devices", "err", err)
		}
		return
	}
	for _, w := range l.BackendWarnings {
		d.log.Warn(w + "; models run on the CPU")
	}
	d.probed.Store(&l)
}

// devices are the ggml devices as the most recently loaded runner reported
// them, else as listed at start; nil before either.
func (d *Daemon) devices() []runner.Device {
	if devs, _ := pool.Devices(d.pool.Models()); devs != nil {
		return devs
	}
	if l := d.probed.Load(); l != nil {
		return l.Devices
	}
	return nil
}
