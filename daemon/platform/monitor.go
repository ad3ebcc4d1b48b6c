package platform

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/internal/bytesize"
)

// Actuator is what the monitor acts on: the model pool, through the
// daemon.
type Actuator interface {
	// Apply puts level into force. It is called after every poll, not
	// only on transitions, so that it also covers models loaded since;
	// it must be cheap when nothing changes.
	Apply(ctx context.Context, level Level, reason string)
	// RelieveMemory frees memory by evicting one model (the lowest
	// priority idle one, in the pool's order) and returns its name; ""
	// with a nil error when there is nothing to evict or an unload is
	// still under way (the next poll looks again).
	RelieveMemory(ctx context.Context, reason string) (string, error)
}

// Options configure a Monitor.
type Options struct {
	// Root stands for "/": the readers look under Root/sys, Root/proc and
	// Root/etc. Default "/".
	Root    string
	Thermal config.Thermal
	// Reserve is memory.reserve: MemAvailable under it evicts.
	Reserve uint64
	// PSILimit is the PSI some avg10 (0..1) that evicts; 0 means
	// DefaultPSILimit, negative turns the PSI rule off.
	PSILimit float64
	// NoThermalGrace is how many polls in a row without any reading of a
	// watched zone hold the current level before falling back to normal;
	// 0 means 5. A sensor that fails while hot must not end the throttle
	// at once, and one that is gone for good must not hold it forever.
	NoThermalGrace int
	Act            Actuator
	Log            *slog.Logger
}

// Transition is one change of thermal level.
type Transition struct {
	At      time.Time `json:"at"`
	From    Level     `json:"from"`
	To      Level     `json:"to"`
	Reason  string    `json:"reason"`
	Zone    string    `json:"zone,omitempty"`
	Celsius float64   `json:"celsius"`
}

// MemoryEvent is one eviction for memory pressure.
type MemoryEvent struct {
	At     time.Time `json:"at"`
	Model  string    `json:"model"`
	Reason string    `json:"reason"`
}

// keepTransitions bounds the transitions and events Status keeps.
const keepTransitions = 32

// Status is the monitor's view, for /status, jetai-ctl and the metrics.
type Status struct {
	State   Level     `json:"state"`
	Since   time.Time `json:"since"`
	Reason  string    `json:"reason"`
	Limits  Limits    `json:"limits"`
	Watched []string  `json:"watched_zones"`
	// Hottest is the watched zone that decides; nil when none reads.
	Hottest *Zone   `json:"hottest,omitempty"`
	Board   Board   `json:"board"`
	Reading Reading `json:"reading"`

	MemoryPressure bool          `json:"memory_pressure"`
	MemoryReason   string        `json:"memory_reason,omitempty"`
	Reserve        uint64        `json:"reserve"`
	Evictions      []MemoryEvent `json:"memory_evictions"`
	EvictionCount  uint64        `json:"memory_eviction_count"`

	Transitions     []Transition `json:"transitions"`
	TransitionCount uint64       `json:"transition_count"`
	PollInterval    string       `json:"poll_interval"`
	Polls           uint64       `json:"polls"`
	PollSeconds     float64      `json:"poll_seconds"` // total time spent reading
}

// Monitor polls the machine, runs the thermal and memory policies, and
// tells the Actuator. All methods are safe for concurrent use.
type Monitor struct {
	opts  Options
	log   *slog.Logger
	board Board

	mu          sync.Mutex
	lim         Limits
	zones       []string
	interval    time.Duration
	reserve     uint64
	level       Level
	since       time.Time
	reason      string
	last        Reading
	hottest     *Zone
	blind       int             // polls in a row without a watched zone
	badZones    map[string]bool // zones reported bad, so each is logged once
	missingLog  bool
	pressure    bool
	memReason   string
	evictions   []MemoryEvent
	evictCount  uint64
	transitions []Transition
	transCount  uint64
	polls       uint64
	pollTime    time.Duration
	reconf      chan struct{}
}

// New builds a monitor; it reads the board once. Run polls.
func New(opts Options) *Monitor {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.PSILimit == 0 {
		opts.PSILimit = DefaultPSILimit
	}
	if opts.NoThermalGrace <= 0 {
		opts.NoThermalGrace = 5
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	m := &Monitor{opts: opts, log: opts.Log, board: ReadBoard(opts.Root), since: time.Now(),
		badZones: map[string]bool{}, reconf: make(chan struct{}, 1), reason: "starting"}
	m.configureLocked(opts.Thermal, opts.Reserve)
	return m
}

// Configure takes new limits, zones, poll interval and reserve (after a
// config reload). The level stays; the next poll judges it by the new
// limits.
func (m *Monitor) Configure(t config.Thermal, reserve uint64) {
	m.mu.Lock()
	m.configureLocked(t, reserve)
	m.mu.Unlock()
	select {
	case m.reconf <- struct{}{}:
	default:
	}
}

func (m *Monitor) configureLocked(t config.Thermal, reserve uint64) {
	m.lim = LimitsOf(t)
	m.zones = slices.Clone(t.Zones)
	m.interval = t.PollInterval
	if m.interval <= 0 {
		m.interval = config.DefaultPollInterval
	}
	m.reserve = reserve
}

// Board is what the machine is, read at New.
func (m *Monitor) Board() Board { return m.board }

// Run polls every poll_interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	m.mu.Lock()
	iv := m.interval
	m.mu.Unlock()
	t := time.NewTicker(iv)
	defer t.Stop()
	m.Poll(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.reconf:
			m.mu.Lock()
			iv = m.interval
			m.mu.Unlock()
			t.Reset(iv)
		case <-t.C:
			m.Poll(ctx)
		}
	}
}

// Poll reads the machine once, runs the policies and tells the Actuator.
// Run calls it; tests and benchmarks may call it directly.
func (m *Monitor) Poll(ctx context.Context) {
	r := Read(m.opts.Root)

	m.mu.Lock()
	m.polls++
	m.pollTime += r.Took
	m.last = r
	m.reportZonesLocked(r)
	hot, ok := Hottest(r.Zones, m.zones)
	if ok {
		m.hottest = &hot
		m.blind = 0
		if next, why := m.lim.Next(m.level, hot.Celsius); why != "" {
			m.transitionLocked(next, fmt.Sprintf("%s: %s", hot.Type, why), hot)
		}
	} else {
		m.hottest = nil
		m.blind++
		if m.level != Normal && m.blind == m.opts.NoThermalGrace {
			m.transitionLocked(Normal, fmt.Sprintf("no watched thermal zone (%s) has read for %d polls", strings.Join(m.zones, ", "), m.blind), Zone{})
		}
	}
	level, reason := m.level, m.reason
	press, why := MemoryPressure(r.Memory, r.PSI, m.reserve, m.opts.PSILimit)
	if press != m.pressure {
		if press {
			m.log.Warn("memory pressure", "reason", why)
		} else {
			m.log.Info("memory pressure over", "mem_available", availString(r.Memory))
		}
	}
	m.pressure, m.memReason = press, why
	m.mu.Unlock()

	if m.opts.Act == nil {
		return
	}
	m.opts.Act.Apply(ctx, level, reason)
	if !press {
		return
	}
	name, err := m.opts.Act.RelieveMemory(ctx, why)
	if err != nil {
		m.log.Warn("memory pressure: eviction failed", "reason", why, "err", err)
		return
	}
	if name == "" {
		return
	}
	m.log.Warn("memory pressure: evicted model", "model", name, "reason", why)
	m.mu.Lock()
	m.evictCount++
	m.evictions = appendBounded(m.evictions, MemoryEvent{At: time.Now(), Model: name, Reason: why})
	m.mu.Unlock()
}

func availString(mem *MemInfo) string {
	if mem == nil {
		return "unknown"
	}
	return bytesize.IEC(mem.Available)
}

func appendBounded[T any](s []T, v T) []T {
	s = append(s, v)
	if len(s) > keepTransitions {
		s = slices.Delete(s, 0, len(s)-keepTransitions)
	}
	return s
}

// transitionLocked changes the level and logs it, once.
func (m *Monitor) transitionLocked(next Level, reason string, z Zone) {
	tr := Transition{At: time.Now(), From: m.level, To: next, Reason: reason, Zone: z.Type, Celsius: z.Celsius}
	m.level, m.since, m.reason = next, tr.At, reason
	m.transCount++
	m.transitions = appendBounded(m.transitions, tr)
	log := m.log.Info
	if next > tr.From {
		log = m.log.Warn
	}
	log("thermal state", "from", tr.From.String(), "to", next.String(), "reason", reason)
}

// reportZonesLocked logs a zone once when it goes bad and once when it
// reads again, and once when none of the watched zones exists.
func (m *Monitor) reportZonesLocked(r Reading) {
	for _, z := range r.Zones {
		if !z.Valid && !m.badZones[z.Name] {
			m.badZones[z.Name] = true
			// Orin's powered-off CV zones read −256 °C all the time: only
			// a watched zone's trouble is worth a warning.
			log := m.log.Info
			if slices.ContainsFunc(m.zones, func(w string) bool { return ZoneKey(w) == ZoneKey(z.Type) }) {
				log = m.log.Warn
			}
			log("thermal zone unreadable; ignored", "zone", z.Name, "type", z.Type, "err", z.Err)
		} else if z.Valid && m.badZones[z.Name] {
			delete(m.badZones, z.Name)
			m.log.Info("thermal zone reads again", "zone", z.Name, "type", z.Type, "celsius", z.Celsius)
		}
	}
	for name := range m.badZones { // vanished zones
		if !slices.ContainsFunc(r.Zones, func(z Zone) bool { return z.Name == name }) {
			delete(m.badZones, name)
			m.log.Warn("thermal zone vanished", "zone", name)
		}
	}
	present := slices.ContainsFunc(r.Zones, func(z Zone) bool {
		return slices.ContainsFunc(m.zones, func(w string) bool { return ZoneKey(w) == ZoneKey(z.Type) })
	})
	if !present && !m.missingLog {
		var have []string
		for _, z := range r.Zones {
			have = append(have, z.Type)
		}
		m.log.Info("no watched thermal zone on this machine; thermal throttling is off", "watched", strings.Join(m.zones, ","), "present", strings.Join(have, ","))
	}
	m.missingLog = !present
}

// Level is the current thermal level.
func (m *Monitor) Level() Level {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.level
}

// Status returns the monitor's state and last reading.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{
		State: m.level, Since: m.since, Reason: m.reason, Limits: m.lim, Watched: slices.Clone(m.zones),
		Board: m.board, Reading: m.last, MemoryPressure: m.pressure, MemoryReason: m.memReason,
		Reserve: m.reserve, Evictions: slices.Clone(m.evictions), EvictionCount: m.evictCount,
		Transitions: slices.Clone(m.transitions), TransitionCount: m.transCount,
		PollInterval: m.interval.String(), Polls: m.polls, PollSeconds: m.pollTime.Seconds(),
	}
	if m.hottest != nil {
		h := *m.hottest
		s.Hottest = &h
	}
	if s.Transitions == nil {
		s.Transitions = []Transition{}
	}
	if s.Evictions == nil {
		s.Evictions = []MemoryEvent{}
	}
	return s
}

// Summary is the state in one line, for the sd_notify STATUS= line and
// jetai-ctl: "thermal normal, tj-thermal 52.3 °C; MemAvailable 5.1 GiB;
// VDD_IN 7.2 W".
func (m *Monitor) Summary() string {
	s := m.Status()
	var b strings.Builder
	fmt.Fprintf(&b, "thermal %s", s.State)
	if s.Hottest != nil {
		fmt.Fprintf(&b, ", %s %.1f °C", s.Hottest.Type, s.Hottest.Celsius)
	}
	if s.State != Normal {
		fmt.Fprintf(&b, " (since %s)", s.Since.Format("15:04:05"))
	}
	if mem := s.Reading.Memory; mem != nil {
		fmt.Fprintf(&b, "; MemAvailable %s", bytesize.IEC(mem.Available))
	}
	if s.MemoryPressure {
		b.WriteString(" (pressure)")
	}
	for _, r := range s.Reading.Rails {
		if r.Err == "" {
			fmt.Fprintf(&b, "; %s %.1f W", r.Name, r.Watts)
			break // the first rail is the board's input on Jetson
		}
	}
	return b.String()
}
