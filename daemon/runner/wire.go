package runner

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Sampling holds one request's sampling settings. Temperature 0 is greedy.
// Zero values of TopK/TopP/MinP/RepeatPenalty mean "off".
type Sampling struct {
	Temperature      float32 `json:"temperature"`
	TopK             int     `json:"top_k,omitempty"`
	TopP             float32 `json:"top_p,omitempty"`
	MinP             float32 `json:"min_p,omitempty"`
	RepeatPenalty    float32 `json:"repeat_penalty,omitempty"`
	RepeatLastN      int     `json:"repeat_last_n,omitempty"`
	FrequencyPenalty float32 `json:"frequency_penalty,omitempty"`
	PresencePenalty  float32 `json:"presence_penalty,omitempty"`
	Seed             *uint32 `json:"seed,omitempty"`
	Grammar          string  `json:"grammar,omitempty"`
	JSONSchema       string  `json:"json_schema,omitempty"`
}

// Request is a completion: either a prompt or chat messages (formatted with
// the model's chat template).
type Request struct {
	Prompt    string    `json:"prompt,omitempty"`
	Messages  []Message `json:"messages,omitempty"`
	Sampling  Sampling  `json:"sampling"`
	MaxTokens int       `json:"max_tokens,omitempty"` // 0 = until the slot's context is full
	Stop      []string  `json:"stop,omitempty"`
	// IgnoreEOS keeps generating past end-of-generation tokens (benchmarks).
	IgnoreEOS bool `json:"ignore_eos,omitempty"`
	// Speculative false turns speculative decoding off for this request
	// (the output is the same either way; only speed differs).
	Speculative *bool `json:"speculative,omitempty"`
}

// Finish reasons.
const (
	FinishStop      = "stop"      // end-of-generation token or a stop string
	FinishLength    = "length"    // max tokens or the slot's context reached
	FinishCancelled = "cancelled" // the caller went away
	FinishError     = "error"     // the runner failed the request
)

// Timings of one request, in token counts and milliseconds.
type Timings struct {
	PromptTokens    int     `json:"prompt_tokens"`
	CachedTokens    int     `json:"cached_tokens"` // prompt tokens reused from the slot's KV cache
	PromptMS        float64 `json:"prompt_ms"`
	GeneratedTokens int     `json:"generated_tokens"`
	GenerationMS    float64 `json:"generation_ms"`
	QueueMS         float64 `json:"queue_ms"` // waiting for a free slot
	FirstTokenMS    float64 `json:"first_token_ms"`
	Slot            int     `json:"slot"`
	// Speculative decoding: tokens proposed for verification, and those
	// of them the sampler drew (each one a decode step saved).
	DraftedTokens  int `json:"drafted_tokens,omitempty"`
	AcceptedTokens int `json:"accepted_tokens,omitempty"`
}

// Frame is one line of a completion stream. Text frames carry Text; the
// last frame has Done set.
type Frame struct {
	Text         string `json:"text,omitempty"`
	Done         bool   `json:"done,omitempty"`
	FinishReason string `json:"finish_reason,omitempty"`
	Error        string `json:"error,omitempty"`
	// Code is set with Error when the request itself caused the failure
	// (CodeInvalidGrammar: its grammar cannot be continued); the daemon
	// answers it as a client error.
	Code    string   `json:"code,omitempty"`
	Timings *Timings `json:"timings,omitempty"`
}

// Result is a finished completion.
type Result struct {
	Text         string  `json:"text"`
	FinishReason string  `json:"finish_reason"`
	Timings      Timings `json:"timings"`
}

// ErrorBody is the JSON body of a refused runner request.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Error codes of refused requests.
const (
	CodeInvalid         = "invalid_request"
	CodeContextOverflow = "context_overflow"
	CodeNoChatTemplate  = "no_chat_template"
	CodeInvalidGrammar  = "invalid_grammar"
	CodeBusy            = "busy"
	CodeStopping        = "stopping"
)

// EmbedRequest asks for the embedding of Input.
type EmbedRequest struct {
	Input string `json:"input"`
}

// EmbedResult is an L2-normalised embedding.
type EmbedResult struct {
	Embedding []float32 `json:"embedding"`
	Tokens    int       `json:"tokens"`
}

// ModelInfo are the facts of the loaded model.
type ModelInfo struct {
	Path          string `json:"path"`
	Architecture  string `json:"architecture"`
	Name          string `json:"name,omitempty"`
	Description   string `json:"description"`
	Parameters    uint64 `json:"parameters"`
	FileType      string `json:"file_type"`
	SizeBytes     uint64 `json:"size_bytes"`
	FileBytes     int64  `json:"file_bytes"`
	ContextTrain  int    `json:"context_train"`
	Layers        int    `json:"layers"`
	Embedding     int    `json:"embedding"`
	Heads         int    `json:"heads"`
	HeadsKV       int    `json:"heads_kv"`
	VocabSize     int    `json:"vocab_size"`
	ChatTemplate  string `json:"chat_template,omitempty"`
	ChatSupported bool   `json:"chat_supported"`
}

// Health is the runner's state.
type Health struct {
	State       string `json:"state"` // "ready" or "stopping"
	Slots       int    `json:"slots"`
	SlotContext int    `json:"slot_context"`
	Active      int    `json:"active"`
	Queued      int    `json:"queued"`
	Threads     int    `json:"threads"`
	// Speculative decoding since the runner started: tokens drafted and
	// accepted, and max_draft in force.
	DraftedTokens  int64 `json:"drafted_tokens"`
	AcceptedTokens int64 `json:"accepted_tokens"`
	MaxDraft       int   `json:"max_draft"`
	NGram          bool  `json:"ngram"`
}

// SpeculativeRequest changes a running runner's speculation: n-gram
// drafts on or off, and max_draft (0: off).
type SpeculativeRequest struct {
	NGram    bool `json:"ngram"`
	MaxDraft int  `json:"max_draft"`
}

// ThreadsRequest changes the runner's CPU thread count.
type ThreadsRequest struct {
	Threads int `json:"threads"`
}

// StatusLine is one line of the child's status pipe (fd 4).
type StatusLine struct {
	Progress *float32   `json:"progress,omitempty"`
	Ready    bool       `json:"ready,omitempty"`
	Info     *ModelInfo `json:"info,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// Adapter is a LoRA adapter file applied at Scale.
type Adapter struct {
	Path  string  `json:"path"`
	Scale float32 `json:"scale"`
}

// Flag renders the adapter as the runner's -lora value, SCALE:PATH (the
// scale first, so a path may hold colons).
func (a Adapter) Flag() string {
	return strconv.FormatFloat(float64(a.Scale), 'g', -1, 32) + ":" + a.Path
}

// ParseAdapter reads a -lora value written by Flag.
func ParseAdapter(s string) (Adapter, error) {
	scale, path, ok := strings.Cut(s, ":")
	if !ok || path == "" {
		return Adapter{}, fmt.Errorf("-lora %q: want SCALE:PATH", s)
	}
	f, err := strconv.ParseFloat(scale, 32)
	if err != nil {
		return Adapter{}, fmt.Errorf("-lora %q: scale: %w", s, err)
	}
	return Adapter{Path: path, Scale: float32(f)}, nil
}

// Ms converts a duration to float milliseconds.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ParkRequest asks the runner to save the KV state of its most recently
// used idle slots into Dir (one file per slot), at most MaxSlots of them
// (0: all), each holding at least MinTokens tokens.
type ParkRequest struct {
	Dir       string `json:"dir"`
	MaxSlots  int    `json:"max_slots,omitempty"`
	MinTokens int    `json:"min_tokens,omitempty"`
}

// ParkedSlot is one saved slot: its state file's name in the park
// directory and the tokens it holds.
type ParkedSlot struct {
	File   string `json:"file"`
	Tokens int    `json:"tokens"`
}

// ParkResult lists the saved slots, most recently used first.
type ParkResult struct {
	Slots []ParkedSlot `json:"slots"`
	Bytes int64        `json:"bytes"`
}

// RestoreRequest asks the runner to load the state files Files (names in
// Dir) into free slots, so that requests continuing those conversations
// reuse the restored tokens as cached prompt.
type RestoreRequest struct {
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
	// KVType is the KV cache type the files were saved with ("" is f16).
	// A runner whose cache has another type refuses them all: llama.cpp's
	// state holds the cache's raw blocks.
	KVType string `json:"kv_type,omitempty"`
}

// RestoreResult says what was restored. A file that does not fit this
// model or context is skipped and named in Failed; that is not an error.
type RestoreResult struct {
	Restored int      `json:"restored"`
	Tokens   int      `json:"tokens"`
	Failed   []string `json:"failed,omitempty"`
}
