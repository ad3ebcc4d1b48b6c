package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"sync"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/systemd"
)

// statusEvery is how often the STATUS= line and the throughput figures
// are refreshed.
const statusEvery = 2 * time.Second

// preloadExtend is how much more start time each EXTEND_TIMEOUT_USEC asks
// for while preloads make progress.
const preloadExtend = 30 * time.Second

// waitPreloads holds READY=1 back until every preloaded model is ready or
// has failed, so that `systemctl start jetaid` returns with the models
// serving. While a load makes progress the start timeout is extended; a
// load that stalls for longer than preloadExtend lets the manager's
// timeout decide. Outside systemd it returns at once.
func (d *Daemon) waitPreloads(ctx context.Context) {
	if !d.underSystemd {
		return
	}
	cfg := d.Config()
	var pre []string
	for _, m := range cfg.Models {
		if m.Preload {
			pre = append(pre, m.Name)
		}
	}
	if len(pre) == 0 {
		return
	}
	lastProgress, lastExtend := time.Now(), time.Time{}
	var last float32 = -1
	for ctx.Err() == nil {
		var pending []string
		var progress float32
		for _, name := range pre {
			m, _ := d.pool.Model(name)
			if m.State == pool.StateLoading || (m.State == pool.StateUnloaded && m.LastError == "") {
				pending = append(pending, name)
				progress += m.LoadProgress
			}
		}
		if len(pending) == 0 {
			return
		}
		if progress != last {
			last, lastProgress = progress, time.Now()
		}
		if time.Since(lastProgress) < preloadExtend && time.Since(lastExtend) > preloadExtend/3 {
			line := summary(adminBackend{d}.Status(ctx)) + "; waiting for preloads: " + strings.Join(pending, ", ")
			d.notify(systemd.ExtendTimeout(preloadExtend), systemd.Status(line))
			lastExtend = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// statusLoop keeps STATUS= and the throughput figures current.
func (d *Daemon) statusLoop(ctx context.Context) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		d.tick()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick updates the tokens/s figures from the pool's counters and sends
// STATUS= when the line changed.
func (d *Daemon) tick() {
	now := time.Now()
	perf := d.pool.Performance()
	d.sys.mu.Lock()
	if d.sys.lastTokens == nil {
		d.sys.lastTokens = map[string]uint64{}
	}
	secs := now.Sub(d.sys.lastTick).Seconds()
	rates := map[string]float64{}
	var total float64
	for _, m := range perf.Models {
		if prev, ok := d.sys.lastTokens[m.Name]; ok && secs > 0 && m.Tokens >= prev {
			rates[m.Name] = float64(m.Tokens-prev) / secs
			total += rates[m.Name]
		}
		d.sys.lastTokens[m.Name] = m.Tokens
	}
	d.sys.modelRates, d.sys.rate, d.sys.lastTick = rates, total, now
	d.sys.mu.Unlock()

	line := summary(adminBackend{d}.Status(context.Background()))
	d.sys.mu.Lock()
	changed := line != d.sys.summary
	d.sys.summary = line
	d.sys.mu.Unlock()
	if changed {
		d.notify(systemd.Status(line))
	}
}

// ping asks the main loop to answer; it fails when the loop is stuck.
func (d *Daemon) ping(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case d.pings <- reply:
	case <-ctx.Done():
		return errors.New("main loop does not answer")
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return errors.New("main loop does not answer")
	}
}

// healthy is the watchdog's check: the main loop answers and a status
// request over the admin socket (which takes the pool's lock) succeeds.
func (d *Daemon) healthy(adminAddr net.Addr) func(context.Context) error {
	return func(ctx context.Context) error {
		// A new client each time: a kept-alive connection would hide a
		// socket that no longer accepts.
		var client *admin.Client
		if adminAddr != nil {
			client = admin.NewClient(adminAddr.String())
			defer client.Close()
		}
		if err := d.ping(ctx); err != nil {
			return err
		}
		if client == nil {
			// No admin socket: the pool's lock must still be free.
			done := make(chan struct{})
			go func() { d.pool.Status(); close(done) }()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return errors.New("model pool does not answer")
			}
		}
		if _, err := client.Status(ctx); err != nil {
			return fmt.Errorf("admin socket does not answer: %w", err)
		}
		return nil
	}
}

// startAdmin opens the admin socket and serves it until ctx ends. Without
// one (no permission on its directory, say) the daemon runs on and says
// why in its log and status.
func (d *Daemon) startAdmin(ctx context.Context, cfg *config.Config, wg *sync.WaitGroup) {
	ln, acc, err := d.openAdmin(cfg)
	if err != nil {
		d.log.Error("no admin socket; jetai-ctl cannot reach this daemon", "err", err)
		d.sys.mu.Lock()
		d.sys.adminErr = err.Error()
		d.sys.mu.Unlock()
		return
	}
	d.sys.mu.Lock()
	d.sys.adminSocket = ln.Addr().String()
	d.sys.mu.Unlock()
	d.adminAddr = ln.Addr()
	srv := admin.NewServer(admin.Options{Backend: adminBackend{d}, Access: acc, Log: d.log})
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil {
			d.log.Error("admin socket", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	d.log.Info("admin socket", "path", ln.Addr().String(), "group", acc.GroupName)
}

// startWatchdog pings systemd's watchdog while the daemon is healthy.
func (d *Daemon) startWatchdog(ctx context.Context, wg *sync.WaitGroup) {
	iv := systemd.WatchdogInterval()
	if iv <= 0 {
		return
	}
	d.sys.mu.Lock()
	d.sys.watchdog = iv
	d.sys.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		systemd.Watchdog(ctx, iv, d.healthy(d.adminAddr), func(err error) {
			d.log.Error("watchdog: not healthy; not pinging", "err", err)
		})
	}()
}

func (s *sysState) summaryLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summary
}
