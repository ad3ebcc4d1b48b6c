package pool

import (
	"strings"
	"time"
)

// maxEvents caps the pool's record of recent events.
const maxEvents = 100

// Event kinds.
const (
	EventLoad       = "load"        // a model finished loading
	EventLoadFailed = "load_failed" // a load failed
	EventUnload     = "unload"      // a model was unloaded (Detail says why)
	EventEviction   = "eviction"    // a model was unloaded to make room
	EventExit       = "exit"        // a runner exited unexpectedly
)

// Event is one thing that happened to the loaded set, newest last in
// Events. Other parts of the daemon (config reloads) add theirs with Note.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Model  string    `json:"model,omitempty"`
	Detail string    `json:"detail,omitempty"`
	// Seconds is how long a load took.
	Seconds float64 `json:"seconds,omitempty"`
}

func (p *Pool) eventLocked(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	p.events = append(p.events, e)
	if len(p.events) > maxEvents {
		p.events = append(p.events[:0], p.events[len(p.events)-maxEvents:]...)
	}
}

// Note records an event from outside the pool, such as a config reload.
func (p *Pool) Note(kind, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.eventLocked(Event{Kind: kind, Detail: detail})
}

// Events returns the most recent events (at most 100), oldest first.
func (p *Pool) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event{}, p.events...)
}

// evictionReasons start the unload reasons that count as evictions: the
// pool took the model away for memory or heat, not for being idle or asked.
var evictionReasons = []string{"evicted", "measured memory", "its charge", "thermal shed", "memory pressure"}

// unloadKind is EventEviction or EventUnload for an unload's reason.
func unloadKind(reason string) string {
	for _, p := range evictionReasons {
		if strings.HasPrefix(reason, p) {
			return EventEviction
		}
	}
	return EventUnload
}
