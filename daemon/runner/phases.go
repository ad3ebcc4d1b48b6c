package runner

import "time"

// Phases of a model swap, as load records name them. The pool times the
// eviction of the model that makes room (drain, park, runner exit), the
// runner times its own steps and reports them with its ready line, and
// the pool adds the restore of parked conversations and the first
// request's prompt.
const (
	PhaseDrain        = "drain"         // busy victims finish their requests
	PhasePark         = "park"          // the victims' conversations saved to the cache
	PhaseRunnerExit   = "runner_exit"   // the victims' runners stop and their memory is released
	PhaseStage        = "stage"         // the file checked again and staged in the model cache (when used)
	PhaseProcessStart = "process_start" // exec of the runner to its main
	PhaseEngineInit   = "engine_init"   // ggml backends loaded, llama.cpp initialised
	PhaseCheck        = "file_check"    // the file and its GGUF header checked in Go
	PhaseMetadata     = "metadata"      // GGUF metadata, hyperparameters, vocabulary
	PhaseMmap         = "model_mmap"    // tensors created, file mapped and its pages populated
	PhaseWeights      = "weights"       // tensors bound to the mapping (read, without mmap)
	PhaseModelInfo    = "model_info"    // facts and token tables read into Go
	PhaseContext      = "context"       // llama context: KV cache, compute buffers, threads
	PhaseAdapters     = "adapters"      // LoRA adapters applied
	PhaseProjector    = "projector"     // the multimodal projector (mmproj) loaded
	PhaseReady        = "ready_report"  // scheduler and server started, ready reported
	PhaseRestore      = "restore"       // parked conversations restored into the new runner
	PhaseFirstPrompt  = "first_prompt"  // the first request's prompt in the new runner
)

// PhaseOrder is the order of the phases in a swap.
var PhaseOrder = []string{PhaseDrain, PhasePark, PhaseRunnerExit, PhaseStage, PhaseProcessStart, PhaseEngineInit,
	PhaseCheck, PhaseMetadata, PhaseMmap, PhaseWeights, PhaseModelInfo, PhaseContext, PhaseAdapters,
	PhaseProjector, PhaseReady, PhaseRestore, PhaseFirstPrompt}

// Phase is one timed step of a load.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// PhaseTimer collects consecutive phases: each Mark ends the phase that
// began at the previous Mark (or at the timer's start).
type PhaseTimer struct {
	last   time.Time
	phases []Phase
}

// NewPhaseTimer starts a timer at start.
func NewPhaseTimer(start time.Time) *PhaseTimer { return &PhaseTimer{last: start} }

// Mark ends phase name now.
func (t *PhaseTimer) Mark(name string) {
	now := time.Now()
	t.phases = append(t.phases, Phase{Name: name, Seconds: now.Sub(t.last).Seconds()})
	t.last = now
}

// Add records phase name with its own duration (a step timed inside),
// moving the timer's start past it.
func (t *PhaseTimer) Add(name string, d time.Duration) {
	t.phases = append(t.phases, Phase{Name: name, Seconds: d.Seconds()})
	t.last = t.last.Add(d)
}

// Phases returns the phases recorded so far.
func (t *PhaseTimer) Phases() []Phase { return append([]Phase(nil), t.phases...) }
