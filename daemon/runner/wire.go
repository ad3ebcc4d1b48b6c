package runner

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message is one chat turn. An assistant turn may carry the tool calls
// it made; a tool turn answers the call ToolCallID names.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Images is how many of the request's Images belong to this message
	// (they are in message order): they go at the start of its content.
	Images     int        `json:"images,omitempty"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// ToolCall is a call of a declared function; Arguments is JSON text.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolCallDelta is a piece of a call being generated: the first piece of
// a call has Start with ID and Name, the others pieces of its Arguments.
// Index counts the answer's calls from 0.
type ToolCallDelta struct {
	Index     int    `json:"index"`
	Start     bool   `json:"start,omitempty"`
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

// TokenLogprob is a generated token's log probability under the model
// (log-softmax of the raw logits), with the most likely alternatives when
// they were asked for.
type TokenLogprob struct {
	Token   string       `json:"token"`
	Bytes   []byte       `json:"bytes"`
	Logprob float32      `json:"logprob"`
	Top     []TopLogprob `json:"top,omitempty"`
}

// TopLogprob is one of the most likely tokens at a position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Bytes   []byte  `json:"bytes"`
	Logprob float32 `json:"logprob"`
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

	// Tools is the request's tools array (OpenAI's shape) and ToolChoice
	// its tool_choice, both as sent; the runner renders them with the
	// model's chat template, constrains calls with a grammar built from
	// the tools' schemas and parses the output into calls.
	Tools             json.RawMessage `json:"tools,omitempty"`
	ToolChoice        json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls,omitempty"`
	// Logprobs asks for each generated token's log probability, with the
	// TopLogprobs (0 to 20) most likely tokens at each position.
	Logprobs    bool `json:"logprobs,omitempty"`
	TopLogprobs int  `json:"top_logprobs,omitempty"`

	// Observe, when set, receives each frame that carries tool-call
	// deltas or logprobs, as it arrives and before its text is passed on;
	// it stays in the daemon.
	Observe func(Frame) `json:"-"`
	// Speculative false turns speculative decoding off for this request
	// (the output is the same either way; only speed differs).
	Speculative *bool `json:"speculative,omitempty"`
	// Images are encoded image files (JPEG, PNG, …) for a model with a
	// projector: each message's (Message.Images, in order) at the start of
	// its content, the rest (a plain prompt's) after BOS, before the text.
	Images [][]byte `json:"images,omitempty"`
}

// MaxTopLogprobs is the most alternatives a request may ask for.
const MaxTopLogprobs = 20

// Finish reasons.
const (
	FinishStop      = "stop"       // end-of-generation token or a stop string
	FinishLength    = "length"     // max tokens or the slot's context reached
	FinishCancelled = "cancelled"  // the caller went away
	FinishError     = "error"      // the runner failed the request
	FinishToolCalls = "tool_calls" // the answer is one or more tool calls
)

// Timings of one request, in token counts and milliseconds.
type Timings struct {
	PromptTokens    int     `json:"prompt_tokens"`
	ImageTokens     int     `json:"image_tokens,omitempty"` // of PromptTokens, those that are image embeddings
	EncodeMS        float64 `json:"encode_ms,omitempty"`    // encoding the images (0 for images the runner had encoded recently); part of QueueMS
	CachedTokens    int     `json:"cached_tokens"`          // prompt tokens reused from the slot's KV cache
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
	// ToolCalls are pieces of calls, parsed from the output (Text is
	// then only the content outside the calls).
	ToolCalls []ToolCallDelta `json:"tool_calls,omitempty"`
	Logprobs  []TokenLogprob  `json:"logprobs,omitempty"`
}

// Result is a finished completion.
type Result struct {
	Text         string         `json:"text"`
	FinishReason string         `json:"finish_reason"`
	Timings      Timings        `json:"timings"`
	ToolCalls    []ToolCall     `json:"tool_calls,omitempty"`
	Logprobs     []TokenLogprob `json:"logprobs,omitempty"`
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
	CodeNoVision        = "no_vision"     // images sent to a model without a projector
	CodeInvalidImage    = "invalid_image" // an image the projector cannot decode
	// CodeToolsUnsupported: the model's chat template does not render
	// tools.
	CodeToolsUnsupported = "tools_unsupported"
	CodeBusy             = "busy"
	CodeStopping         = "stopping"
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
	// GPULayers and LayersTotal are the layers llama.cpp offloaded to a GPU
	// device out of those it could; GPUBytes sums the buffers the backend
	// allocated on non-CPU devices (weights, KV cache, compute).
	GPULayers   int    `json:"gpu_layers"`
	LayersTotal int    `json:"layers_offloadable,omitempty"`
	GPUBytes    uint64 `json:"gpu_bytes"`
	// Devices are the runner's ggml devices with their memory after the load.
	Devices []Device `json:"devices,omitempty"`
	// BackendWarnings name each backend library that did not load and why.
	BackendWarnings []string `json:"backend_warnings,omitempty"`
}

// Health is the runner's state.
type Health struct {
	State       string `json:"state"` // "ready" or "stopping"
	Slots       int    `json:"slots"`
	SlotContext int    `json:"slot_context"`
	Active      int    `json:"active"`
	Queued      int    `json:"queued"`
	Threads     int    `json:"threads"`
	// KVUsed is the KV cache cells that running requests hold; the cache
	// holds Slots × SlotContext. A slot's cells kept after its request
	// (for prefix reuse) count as free: a new request may take them.
	KVUsed int `json:"kv_used"`
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
	// MainAt is when the runner's main began (Unix nanoseconds), sent on
	// the ready line: the parent times the process start from it.
	MainAt int64 `json:"main_at,omitempty"`
	// EngineAt is when the engine was initialised (backends loaded,
	// logging set; Unix nanoseconds), on the waiting and ready lines.
	EngineAt int64 `json:"engine_at,omitempty"`
	// Waiting says the runner has initialised its engine and waits for
	// its model on stdin (an -await-model runner: a warm spare).
	Waiting bool `json:"waiting,omitempty"`
	// Phases are the runner's own load steps, in order, on the ready
	// line, from the moment it had both its engine and its model.
	Phases []Phase `json:"phases,omitempty"`
}

// ModelLine is what the daemon writes on an -await-model runner's stdin:
// the flags of the model to load (Options.Args), one JSON line.
type ModelLine struct {
	Args []string `json:"args"`
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

// TokenizeRequest asks for the tokens of Content (the llama-server
// utility /tokenize). Special-token text in Content is parsed; AddSpecial
// adds the model's BOS token when it wants one.
type TokenizeRequest struct {
	Content    string `json:"content"`
	AddSpecial bool   `json:"add_special,omitempty"`
	WithPieces bool   `json:"with_pieces,omitempty"`
}

// TokenizeResult holds the tokens and, with WithPieces, each token's
// bytes (bytes, not strings: a piece may hold part of a UTF-8 character,
// which a JSON string cannot carry).
type TokenizeResult struct {
	Tokens []int    `json:"tokens"`
	Pieces [][]byte `json:"pieces,omitempty"`
}

// DetokenizeRequest asks for the text of Tokens.
type DetokenizeRequest struct {
	Tokens []int `json:"tokens"`
}

// DetokenizeResult is the text of a token sequence.
type DetokenizeResult struct {
	Content string `json:"content"`
}

// TemplateRequest asks for Messages (and Tools) formatted with the model's
// chat template, the assistant's turn opened, as a chat completion formats
// them.
type TemplateRequest struct {
	Messages []Message       `json:"messages"`
	Tools    json.RawMessage `json:"tools,omitempty"`
}

// TemplateResult is the formatted prompt.
type TemplateResult struct {
	Prompt string `json:"prompt"`
}

// addFrame gathers a frame's tool-call pieces and logprobs into r.
func (r *Result) addFrame(f Frame) {
	r.Logprobs = append(r.Logprobs, f.Logprobs...)
	for _, d := range f.ToolCalls {
		if d.Start || d.Index >= len(r.ToolCalls) {
			for len(r.ToolCalls) <= d.Index {
				r.ToolCalls = append(r.ToolCalls, ToolCall{})
			}
			r.ToolCalls[d.Index].ID, r.ToolCalls[d.Index].Name = d.ID, d.Name
		}
		r.ToolCalls[d.Index].Arguments += d.Arguments
	}
}
