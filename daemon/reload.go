package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/systemd"
)

// reloadState is the daemon's reload bookkeeping, guarded by Daemon.mu
// (except run, which serialises reloads).
type reloadState struct {
	run        sync.Mutex
	generation uint64
	loadedAt   time.Time
	last       *time.Time
	trigger    string
	lastError  string
	reloads    uint64
	rejected   uint64
	watching   bool
	// first is the config jetaid started with: settings that need a
	// process restart are in force as it has them.
	first *config.Config
	// parts take a new config, in this order (reloadParts).
	parts []reloadPart
}

// reloadPart is one part of the daemon that takes a new config. A reload
// has parsed, validated and planned the new config before any part sees
// it; then it swaps the parts one after the other, in the order of the
// list. A part lets go of what the old config held as it swaps (the pool
// drains removed models in the background).
type reloadPart struct {
	name string
	// swap puts r.next in force for the part. An error rejects the
	// reload, so only the first part's swap may fail, and only before it
	// has changed anything: the parts swapped before a later one could
	// not be put back.
	swap func(r *reloadRun) error
}

// reloadRun is one applied reload as the parts see it.
type reloadRun struct {
	old, next *config.Config
	plan      config.Plan
	res       *admin.ReloadResult
	start     time.Time
	// What the pool reports: models evicted to fit a new budget, notes
	// for the operator.
	evicted, notes []string
}

// reloadParts is the ordered list of the parts a reload swaps. The pool
// goes first: its Apply is the one swap that may refuse (a closing pool, a
// plan from a config it does not run), and it does so before it changes
// anything. The daemon's own config goes before the platform monitor,
// whose actions read it.
func (d *Daemon) reloadParts() []reloadPart {
	return []reloadPart{
		{name: "pool", swap: func(r *reloadRun) error {
			rep, err := d.pool.Apply(r.next, r.plan)
			if err != nil {
				return err
			}
			r.evicted, r.notes = rep.Evicted, rep.Notes
			return nil
		}},
		{name: "api", swap: func(r *reloadRun) error {
			d.api.SetConfig(r.next)
			return nil
		}},
		{name: "model cache", swap: func(r *reloadRun) error {
			d.applyCacheConfig(r.next) // modelcache.go
			return nil
		}},
		{name: "log level", swap: func(r *reloadRun) error {
			// Only a changed log_level: jetai-ctl log-level may have set
			// another level since the last reload.
			for _, f := range r.plan.Live {
				if f.Field == "server.log_level" {
					d.level.Set(level(r.next.Server.LogLevel))
				}
			}
			return nil
		}},
		{name: "config", swap: func(r *reloadRun) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.cfg = r.next
			d.reload.generation++
			d.reload.loadedAt = time.Now()
			r.res.Generation = d.reload.generation
			r.res.OK, r.res.Changed = true, true
			// The new generation and its reload record become visible
			// together: a /status read between them would show generation
			// N with the previous reload's time and count.
			d.recordLocked(*r.res, r.start)
			return nil
		}},
		{name: "platform", swap: func(r *reloadRun) error {
			d.mon.Configure(r.next.Thermal, uint64(r.next.Memory.Reserve))
			return nil
		}},
	}
}

// ReloadStatus is the config generation in force and the last reload, for
// /status and the admin status command.
func (d *Daemon) ReloadStatus() admin.ReloadStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &d.reload
	st := admin.ReloadStatus{
		Generation: r.generation, LoadedAt: r.loadedAt.UTC(), LastReload: r.last, LastTrigger: r.trigger,
		LastError: r.lastError, Reloads: r.reloads, Rejected: r.rejected, Watching: r.watching,
		NeedsRestart: []string{},
	}
	if r.first != nil && r.first != d.cfg {
		for _, f := range config.Diff(r.first, d.cfg).NeedsProcessRestart {
			st.NeedsRestart = append(st.NeedsRestart, fmt.Sprintf("%s: %s → %s", f.Field, f.Old, f.New))
		}
	}
	return st
}

// Reload reads the config file again and, when it is valid, puts it in
// force as a diff: parse → validate → plan → apply. An invalid file is
// rejected with its diagnostics and the running config stays; so does a
// deleted or empty file. The plan is logged (one summary line, then one
// line per change) before it is applied. Reloads run one at a time;
// trigger names the caller for logs and status.
func (d *Daemon) Reload(ctx context.Context, trigger string) admin.ReloadResult {
	start := time.Now()
	d.reload.run.Lock()
	defer d.reload.run.Unlock()
	old := d.Config()
	res := admin.ReloadResult{Trigger: trigger, Diagnostics: []string{}, Notes: []string{}}
	d.mu.Lock()
	res.Generation = d.reload.generation
	d.mu.Unlock()
	reject := func(msg string) admin.ReloadResult {
		res.Error, res.Seconds = msg, time.Since(start).Seconds()
		d.log.Error("config reload rejected; the running config stays", "trigger", trigger, "generation", res.Generation, "error", firstLine(msg))
		for _, dg := range res.Diagnostics {
			d.log.Error("config", "diagnostic", dg)
		}
		d.recordReload(res, start)
		return res
	}
	if err := ctx.Err(); err != nil {
		return reject("reload: " + err.Error())
	}
	cfg, err := config.Load(old.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.Diagnostics = append(res.Diagnostics, old.Path+": the config file does not exist")
		res.Error = fmt.Sprintf("%s: the config file is gone; keeping the last good config (generation %d, sha256 %.12s)", old.Path, res.Generation, old.Hash)
		res.Seconds = time.Since(start).Seconds()
		d.log.Warn("config file deleted; the last good config stays in force", "trigger", trigger, "path", old.Path, "generation", res.Generation)
		d.recordReload(res, start)
		return res
	case err != nil:
		var ds config.Diagnostics
		if errors.As(err, &ds) {
			res.Diagnostics = ds.Strings()
		} else {
			res.Diagnostics = []string{old.Path + ": " + err.Error()}
		}
		return reject(strings.Join(res.Diagnostics, "\n"))
	}
	res.Hash = cfg.Hash
	res.Diagnostics = cfg.Warnings.Strings()
	if cfg.Hash == old.Hash {
		res.OK, res.Seconds = true, time.Since(start).Seconds()
		d.log.Info("config reload: file unchanged", "trigger", trigger, "generation", res.Generation)
		d.recordReload(res, start)
		return res
	}

	plan := config.Diff(old, cfg)
	d.mu.Lock()
	first := d.reload.first
	d.mu.Unlock()
	plan.NeedsProcessRestart = againstInForce(first, cfg, plan.NeedsProcessRestart)
	res.Plan = wirePlan(plan)
	d.log.Info("config reload plan", "trigger", trigger, "from", res.Generation, "plan", plan.String())
	d.logPlan(plan)
	d.notify(systemd.Reloading()...)
	run := &reloadRun{old: old, next: cfg, plan: plan, res: &res, start: start}
	for i, p := range d.reload.parts {
		if err := p.swap(run); err != nil {
			d.notify("READY=1")
			if i > 0 {
				d.log.Error("config reload: a part refused the new config after the parts before it took it", "part", p.name, "err", err)
			}
			return reject("apply: " + p.name + ": " + err.Error())
		}
	}
	d.notify("READY=1")

	for _, f := range plan.NeedsProcessRestart {
		res.Notes = append(res.Notes, fmt.Sprintf("%s changed (%s → %s): it takes effect when jetaid restarts; until then %s stays in force", f.Field, f.Old, f.New, f.Old))
	}
	res.Notes = append(res.Notes, run.notes...)
	res.Seconds = time.Since(start).Seconds()
	d.noteReload(res)
	d.log.Info("config reloaded", "trigger", trigger, "generation", res.Generation, "sha256", res.Hash[:12],
		"added", len(plan.Added), "removed", len(plan.Removed), "restarted", len(plan.Restarted),
		"updated", len(plan.Updated), "unchanged", len(plan.Unchanged), "live", len(plan.Live),
		"evicted", strings.Join(run.evicted, ","), "ms", res.Seconds*1000)
	for _, n := range res.Notes {
		d.log.Warn("config reload", "note", n)
	}
	for _, w := range res.Diagnostics {
		d.log.Warn("config", "warning", w)
	}
	return res
}

// logPlan logs one line per change of plan.
func (d *Daemon) logPlan(p config.Plan) {
	fields := func(fs []config.FieldChange) string {
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = fmt.Sprintf("%s %s→%s", f.Field, f.Old, f.New)
		}
		return strings.Join(parts, ", ")
	}
	for _, n := range p.Added {
		d.log.Info("reload plan: add model", "model", n)
	}
	for _, n := range p.Removed {
		d.log.Info("reload plan: remove model (after its requests finish)", "model", n)
	}
	for _, c := range p.Restarted {
		d.log.Info("reload plan: restart model", "model", c.Name, "changes", fields(c.Fields))
	}
	for _, c := range p.Updated {
		d.log.Info("reload plan: update model in place", "model", c.Name, "changes", fields(c.Fields))
	}
	for _, f := range p.Live {
		d.log.Info("reload plan: apply setting", "changes", fields([]config.FieldChange{f}))
	}
	for _, f := range p.NeedsProcessRestart {
		d.log.Warn("reload plan: setting needs a jetaid restart; the old value stays in force until then", "changes", fields([]config.FieldChange{f}))
	}
}

// recordReload notes the outcome in the pool's events and the reload
// status.
func (d *Daemon) recordReload(res admin.ReloadResult, at time.Time) {
	d.noteReload(res)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked(res, at)
}

// noteReload adds the reload to the pool's event list, which shows reloads
// beside loads and evictions (GET /status events, the dashboard).
func (d *Daemon) noteReload(res admin.ReloadResult) {
	switch {
	case !res.OK:
		d.pool.Note("reload_rejected", fmt.Sprintf("%s: %s", res.Trigger, firstLine(res.Error)))
	case res.Changed:
		d.pool.Note("reload", fmt.Sprintf("generation %d (%s): %s", res.Generation, res.Trigger, res.Plan.Summary))
	}
}

// recordLocked updates the reload status; d.mu must be held.
func (d *Daemon) recordLocked(res admin.ReloadResult, at time.Time) {
	r := &d.reload
	t := at.UTC()
	r.last, r.trigger = &t, res.Trigger
	r.reloads++
	if res.OK {
		r.lastError = ""
	} else {
		r.rejected++
		r.lastError = res.Error
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + fmt.Sprintf(" (and %d more)", strings.Count(s, "\n"))
	}
	return s
}

// startReloaders starts the reload triggers that run for the daemon's
// life: SIGHUP and the config file watch (unless Options.NoWatch).
func (d *Daemon) startReloaders(ctx context.Context, wg *sync.WaitGroup) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.Reload(ctx, "SIGHUP")
			}
		}
	}()
	if d.opts.NoWatch {
		return
	}
	opts := d.opts.Watch
	opts.Initial = d.Config().Hash
	opts.OnError = func(err error) { d.log.Warn("config watch", "err", err) }
	// Set up before Run goes on, so that no change after start is missed.
	w, err := config.NewWatcher(d.Config().Path, opts)
	if err != nil {
		d.log.Error("config file not watched; reload with SIGHUP or jetai-ctl reload", "err", err)
		return
	}
	d.mu.Lock()
	d.reload.watching = true
	d.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.Run(ctx, func(c config.Change) {
			d.log.Debug("config file changed", "cause", c.Cause, "deleted", c.Deleted)
			d.Reload(ctx, "file")
		})
		d.mu.Lock()
		d.reload.watching = false
		d.mu.Unlock()
	}()
}

// againstInForce restates the settings that wait for a process restart
// against the config jetaid started with, which is what is in force: after
// listen went 8000 → 8001 → 8000, the second change is no change at all,
// and after 8000 → 8001 → 8002 the value still in force is 8000, not 8001.
func againstInForce(first, cfg *config.Config, changed []config.FieldChange) []config.FieldChange {
	if first == nil || len(changed) == 0 {
		return changed
	}
	pending := map[string]config.FieldChange{}
	for _, f := range config.Diff(first, cfg).NeedsProcessRestart {
		pending[f.Field] = f
	}
	var out []config.FieldChange
	for _, f := range changed {
		if p, ok := pending[f.Field]; ok {
			out = append(out, p)
		}
	}
	return out
}
