package pool

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// Throttle is what the platform monitor asks of the pool at a thermal
// level. The zero value is "normal": nothing held back.
//
// Low priority means a priority below the highest configured one: the
// most important models keep being served while the others give way.
type Throttle struct {
	Level  string `json:"level"` // "normal", "throttle", "shed"
	Reason string `json:"reason,omitempty"`
	// Threads caps each runner's CPU threads; 0: as configured.
	Threads int `json:"threads"`
	// SlotShare caps the requests a model runs at once at this share of
	// its parallel (rounded up, at least 1); 0: all of them.
	SlotShare float64 `json:"slot_share"`
	// Delay holds each new low-priority request this long before it
	// queues.
	Delay time.Duration `json:"-"`
	// Shed refuses new low-priority requests (ThrottledError), unloads
	// idle low-priority models and starts no loads.
	Shed bool `json:"shed"`
	// RetryAfter is what refused requests are told; default 30s.
	RetryAfter time.Duration `json:"-"`
}

// ThrottleStatus is the throttle in force and its effect on the runners.
type ThrottleStatus struct {
	Throttle
	// Threads is each loaded model's runner thread count as the runner
	// reported it after the last change; models never changed are absent
	// (they run with their configured threads).
	RunnerThreads map[string]int `json:"runner_threads"`
	// Slots is how many requests each configured model may run at once
	// now.
	Slots map[string]int `json:"slots"`
	// LowPriority are the models that give way.
	LowPriority []string `json:"low_priority"`
	// Delay and RetryAfter in seconds.
	DelaySeconds      float64 `json:"delay_seconds"`
	RetryAfterSeconds float64 `json:"retry_after_seconds"`
}

// ThrottledError is a request or load refused while the device sheds
// load for heat.
type ThrottledError struct {
	Model  string        `json:"model"`
	Level  string        `json:"level"`
	Reason string        `json:"reason"`
	Retry  time.Duration `json:"retry_after"`
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("model %q: %s (thermal state %s); retry in %s", e.Model, e.Reason, e.Level, roundRetry(e.Retry))
}

// throttleState is the pool's part of the throttle; guarded by Pool.mu,
// except sync.
type throttleState struct {
	cur     Throttle
	threads map[*model]appliedThreads
	// sync makes syncThreads calls one at a time, so the last one computes
	// from the latest config and throttle.
	sync sync.Mutex
}

// appliedThreads is a thread count set on a runner.
type appliedThreads struct {
	proc  Runner
	asked int // what the pool asked for
	n     int // as the runner reported it (it caps at its thread pool's size)
}

// cpuThreads is what a threads setting means on this machine (0: all CPUs).
func cpuThreads(n int) int {
	if n <= 0 {
		return runtime.NumCPU()
	}
	return n
}

// wantThreadsLocked is the thread count m's runner should run with: its
// configured threads, capped by the throttle in force.
func (p *Pool) wantThreadsLocked(m *model) int {
	want := cpuThreads(m.cfg.Threads)
	if t := p.thr.cur.Threads; t > 0 {
		want = min(want, t)
	}
	return want
}

// runnerThreadsLocked is the thread count m's runner runs with: as it
// reported after the last change, else as it was started. 0 when m has no
// runner.
func (p *Pool) runnerThreadsLocked(m *model) int {
	if m.proc == nil {
		return 0
	}
	if a, ok := p.thr.threads[m]; ok && a.proc == m.proc {
		return a.n
	}
	return cpuThreads(m.proc.StartThreads())
}

// slots is how many requests m may run at once under the throttle.
func (m *model) slots() int {
	n := max(m.cfg.Parallel, 1)
	if m.slotShare > 0 && m.slotShare < 1 {
		n = max(1, int(math.Ceil(float64(n)*m.slotShare)))
	}
	return n
}

// lowPriorityLocked says whether m gives way under the throttle.
func (p *Pool) lowPriorityLocked(m *model) bool {
	top := math.MinInt
	for _, o := range p.order {
		top = max(top, o.cfg.Priority)
	}
	return m.cfg.Priority < top
}

// SetThrottle puts t into force: it caps the models' slots, sets the
// runners' threads, and when shedding unloads idle low-priority models.
// The platform monitor calls it after every reading, so models loaded
// since the last change are covered too; it only talks to runners whose
// thread count must change.
func (p *Pool) SetThrottle(ctx context.Context, t Throttle) {
	if t.RetryAfter <= 0 {
		t.RetryAfter = 30 * time.Second
	}
	p.mu.Lock()
	changed := p.thr.cur != t
	if changed && p.thr.cur.Level != t.Level {
		// The monitor logs the transition and its reason; this is detail.
		p.log.Debug("throttle", "level", t.Level, "threads", t.Threads, "slot_share", t.SlotShare, "delay", t.Delay, "shed", t.Shed)
	}
	p.thr.cur = t
	// Every call, not only on a change: a model added by a reload since
	// the last change must be capped too.
	for _, m := range p.order {
		if m.slotShare != t.SlotShare {
			m.slotShare, changed = t.SlotShare, true
		}
	}
	if changed {
		p.broadcastLocked() // slots may have grown
	}
	if t.Shed && !p.closing {
		for _, c := range p.idleCandidatesLocked(nil) {
			if p.lowPriorityLocked(c) {
				c.evictions++
				p.beginUnloadLocked(c, "thermal shed: "+t.Reason)
			}
		}
	}
	p.mu.Unlock()
	p.syncThreads(ctx)
}

// syncThreads brings every ready runner's thread count to its model's
// configured threads capped by the throttle in force. SetThrottle calls it
// after every reading and Apply after a reload that changed threads; it
// only talks to runners whose count must change.
func (p *Pool) syncThreads(ctx context.Context) {
	p.thr.sync.Lock()
	defer p.thr.sync.Unlock()
	type job struct {
		m    *model
		name string
		proc Runner
		n    int
	}
	var jobs []job
	p.mu.Lock()
	if p.thr.threads == nil {
		p.thr.threads = map[*model]appliedThreads{}
	}
	// Forget the threads of runners that are gone (unloaded, restarted,
	// or their model removed by a reload), so the map does not keep them.
	for m, a := range p.thr.threads {
		if a.proc != m.proc || !slices.Contains(p.order, m) {
			delete(p.thr.threads, m)
		}
	}
	for _, m := range p.order {
		if m.state != stReady || m.proc == nil {
			continue
		}
		want := p.wantThreadsLocked(m)
		if a, ok := p.thr.threads[m]; ok {
			if a.asked == want {
				continue
			}
		} else if cpuThreads(m.proc.StartThreads()) == want {
			continue
		}
		jobs = append(jobs, job{m, m.cfg.Name, m.proc, want})
	}
	p.mu.Unlock()
	for _, j := range jobs {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := j.proc.SetThreads(cctx, j.n)
		var h runner.Health
		if err == nil {
			h, err = j.proc.Health(cctx)
		}
		cancel()
		if err != nil {
			p.log.Warn("setting runner threads", "model", j.name, "threads", j.n, "err", err)
			continue
		}
		p.mu.Lock()
		if h.Threads != j.n {
			p.log.Warn("runner took a different thread count", "model", j.name, "asked", j.n, "got", h.Threads)
		}
		if j.m.proc == j.proc {
			p.thr.threads[j.m] = appliedThreads{proc: j.proc, asked: j.n, n: h.Threads}
		}
		p.mu.Unlock()
	}
}

// ThrottleStatus returns the throttle in force.
func (p *Pool) ThrottleStatus() ThrottleStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := ThrottleStatus{Throttle: p.thr.cur, RunnerThreads: map[string]int{}, Slots: map[string]int{}, LowPriority: []string{},
		DelaySeconds: p.thr.cur.Delay.Seconds(), RetryAfterSeconds: p.thr.cur.RetryAfter.Seconds()}
	if s.Level == "" {
		s.Level = "normal"
	}
	for _, m := range p.order {
		s.Slots[m.cfg.Name] = m.slots()
		if a, ok := p.thr.threads[m]; ok && a.proc == m.proc && m.proc != nil {
			s.RunnerThreads[m.cfg.Name] = a.n
		}
		if p.lowPriorityLocked(m) {
			s.LowPriority = append(s.LowPriority, m.cfg.Name)
		}
	}
	return s
}

// throttleGate holds or refuses a new request for m under the throttle:
// shedding refuses low-priority requests and requests that would need a
// load; throttling delays low-priority requests by Delay.
func (p *Pool) throttleGate(ctx context.Context, m *model) error {
	p.mu.Lock()
	t := p.thr.cur
	low := p.lowPriorityLocked(m)
	loaded := m.state == stReady || m.state == stLoading
	if t.Shed && (low || !loaded) {
		m.rejected++
		p.mu.Unlock()
		why := "low-priority requests are refused while the device is too hot"
		if !low {
			why = "the model is not loaded, and nothing is loaded while the device is too hot"
		}
		return &ThrottledError{Model: m.cfg.Name, Level: t.Level, Reason: why, Retry: t.RetryAfter}
	}
	p.mu.Unlock()
	if t.Delay > 0 && low {
		tm := time.NewTimer(t.Delay)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
			return fmt.Errorf("held back by the thermal throttle for model %q: %w", m.cfg.Name, ctx.Err())
		}
	}
	return nil
}

// loadGate refuses loads while shedding.
func (p *Pool) loadGate(m *model) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.thr.cur; t.Shed && m.state != stReady && m.state != stLoading {
		return &ThrottledError{Model: m.cfg.Name, Level: t.Level, Reason: "nothing is loaded while the device is too hot", Retry: t.RetryAfter}
	}
	return nil
}

// RelieveMemory evicts the first idle model in the eviction order
// (never pinned; lowest priority, then least recently used) and returns
// its name. It returns "" when no model is idle, or when an unload is
// already under way: its memory has not been returned yet, and the next
// reading decides whether more must go.
func (p *Pool) RelieveMemory(reason string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return ""
	}
	for _, m := range p.order {
		if m.state == stUnloading {
			return ""
		}
	}
	c := p.idleCandidatesLocked(nil)
	if len(c) == 0 {
		return ""
	}
	v := c[0]
	v.evictions++
	p.beginUnloadLocked(v, "memory pressure: "+reason)
	return v.cfg.Name
}
