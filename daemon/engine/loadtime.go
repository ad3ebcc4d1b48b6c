package engine

import (
	"strings"
	"sync"
	"time"
)

// LoadTimings are the steps of one Load, in the order llama.cpp takes
// them. The boundaries inside llama.cpp are read from its own progress
// callback and log, so no llama.cpp code is changed to see them.
type LoadTimings struct {
	// Check: the file and its GGUF header checked in Go.
	Check time.Duration
	// Metadata: llama.cpp reads the GGUF metadata, the hyperparameters and
	// the vocabulary (up to its "load_tensors" line).
	Metadata time.Duration
	// Mmap: the tensors are created and the file is mapped. llama.cpp maps
	// with MAP_POPULATE, so the weights' pages are faulted in here, by one
	// thread in the kernel.
	Mmap time.Duration
	// Weights: the tensors are bound to the mapping (or read into memory
	// without mmap), from the first progress step to the last.
	Weights time.Duration
	// Info: the model's facts and token tables read into Go.
	Info time.Duration
}

// loadClock records the moments of a load that llama.cpp reveals: its
// "load_tensors" log line and its first progress step.
type loadClock struct {
	mu          sync.Mutex
	active      bool
	tensors     time.Time // first "load_tensors:" line
	firstStep   time.Time // first progress callback
	lastStepped time.Time // last progress callback
}

var clock loadClock

func (c *loadClock) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = true
	c.tensors, c.firstStep, c.lastStepped = time.Time{}, time.Time{}, time.Time{}
}

// stop ends the recording and returns the moments seen (zero when not).
func (c *loadClock) stop() (tensors, firstStep, lastStep time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = false
	return c.tensors, c.firstStep, c.lastStepped
}

func (c *loadClock) line(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active && c.tensors.IsZero() && strings.HasPrefix(text, "load_tensors:") {
		c.tensors = time.Now()
	}
}

func (c *loadClock) step() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		return
	}
	if c.firstStep.IsZero() {
		c.firstStep = now
	}
	c.lastStepped = now
}

// split turns the moments of a llama.cpp load that ran from begin to end
// into its three steps. A moment not seen (another llama.cpp's log) leaves
// its time in the step before it.
func split(begin, tensors, firstStep, end time.Time) (metadata, mmap, weights time.Duration) {
	if firstStep.IsZero() || firstStep.Before(begin) || firstStep.After(end) {
		firstStep = end
	}
	if tensors.IsZero() || tensors.Before(begin) || tensors.After(firstStep) {
		tensors = firstStep
	}
	return tensors.Sub(begin), firstStep.Sub(tensors), end.Sub(firstStep)
}
