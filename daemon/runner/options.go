package runner

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Options say how to start a runner. The runner's own settings travel as
// its command-line flags: Args writes them on the daemon's side and
// ParseArgs reads them on the runner's, so the two sides cannot drift
// apart. Name, Command, Env, Dir and Log are the daemon's side only.
type Options struct {
	Name           string // model name, for errors and logs
	Model          string // GGUF path
	SlotContext    int
	Slots          int
	BatchSize      int
	Threads        int
	GPULayers      int
	FlashAttention bool
	KVType         string
	NoMmap         bool
	Queue          int // requests that may wait in the runner for a slot
	Verbose        bool
	// Adapters are LoRA adapters applied to the context, in order.
	Adapters []Adapter
	// GPULayers: 0 CPU only, -1 all, GPULayersAuto as many as fit.
	// BackendsDir holds the ggml backend libraries loaded at start;
	// ListDevices makes the runner print a DeviceList and exit (no model).
	BackendsDir string
	ListDevices bool
	// AwaitModel starts the runner without a model: it initialises the
	// engine, says so on the status pipe and reads the model's flags from
	// stdin (one ModelLine). Every runner the daemon starts does this, so
	// a warm spare and a fresh process load a model the same way.
	AwaitModel bool
	// Speculative decoding: NGram proposes continuations of n-grams
	// found earlier in each sequence; MaxDraft bounds the tokens
	// proposed per slot and step (0: off).
	NGram    bool
	MaxDraft int
	// Draft is the GGUF file of a smaller model with the same vocabulary
	// that drafts tokens, loaded in the runner with its own context.
	Draft string
	// Mmproj is the GGUF file of a multimodal projector: with it the
	// runner takes images. MmprojOffload lets it run on a GPU.
	Mmproj        string
	MmprojOffload bool
	// Checked is the version of Model whose GGUF header the daemon has
	// already checked (as the runner would): the runner does not parse a
	// file of that size and modification time again. Zero: it checks.
	Checked FileVersion

	// Command is the runner's executable and leading arguments; the default
	// is this executable with the argument "runner".
	Command []string
	Env     []string  // extra environment variables
	Dir     string    // directory for the socket; default os.TempDir()
	Log     io.Writer // receives the runner's stderr; nil discards it
}

// Defaults the runner takes for flags that Args leaves out (zero values).
const (
	DefaultSlotContext = 2048
	DefaultSlots       = 4
	DefaultBatchSize   = 512
	DefaultKVType      = "f16"
	DefaultQueue       = 16
)

// MaxDraftLimit bounds max_draft: past it the verification of a rejected
// draft costs more than any acceptance saves on these machines.
const MaxDraftLimit = 32

// Args are the runner's flags for o; zero numbers and an empty KVType are
// left out, so the runner's defaults apply.
func (o Options) Args() []string {
	a := []string{"-model", o.Model}
	add := func(flag string, v int) {
		if v != 0 {
			a = append(a, flag, strconv.Itoa(v))
		}
	}
	add("-ctx", o.SlotContext)
	add("-parallel", o.Slots)
	add("-batch", o.BatchSize)
	add("-threads", o.Threads)
	add("-gpu-layers", o.GPULayers)
	// Always sent: 0 (no queue) is a setting, not "the default".
	a = append(a, "-queue", strconv.Itoa(o.Queue))
	if o.FlashAttention {
		a = append(a, "-flash-attn")
	}
	if o.KVType != "" {
		a = append(a, "-kv-type", o.KVType)
	}
	if o.BackendsDir != "" {
		a = append(a, "-backends-dir", o.BackendsDir)
	}
	if o.NoMmap {
		a = append(a, "-no-mmap")
	}
	if o.Verbose {
		a = append(a, "-verbose")
	}
	for _, ad := range o.Adapters {
		a = append(a, "-lora", ad.Flag())
	}
	if o.NGram {
		a = append(a, "-spec-ngram")
	}
	add("-spec-max-draft", o.MaxDraft)
	if o.Draft != "" {
		a = append(a, "-spec-draft", o.Draft)
	}
	if o.Mmproj != "" {
		a = append(a, "-mmproj", o.Mmproj)
	}
	if o.MmprojOffload {
		a = append(a, "-mmproj-offload")
	}
	if !o.Checked.IsZero() {
		a = append(a, "-checked", o.Checked.String())
	}
	return a
}

// FileVersion identifies a version of a file by its size and modification
// time.
type FileVersion struct {
	Size    int64
	ModTime time.Time
}

// IsZero says whether v names no version.
func (v FileVersion) IsZero() bool { return v.Size == 0 && v.ModTime.IsZero() }

// String is the flag form, SIZE:UNIXNANO.
func (v FileVersion) String() string {
	return strconv.FormatInt(v.Size, 10) + ":" + strconv.FormatInt(v.ModTime.UnixNano(), 10)
}

// parseFileVersion reads String's form.
func parseFileVersion(s string) (FileVersion, error) {
	size, nanos, ok := strings.Cut(s, ":")
	n, err1 := strconv.ParseInt(size, 10, 64)
	t, err2 := strconv.ParseInt(nanos, 10, 64)
	if !ok || err1 != nil || err2 != nil || n < 0 {
		return FileVersion{}, fmt.Errorf("%q is not SIZE:UNIXNANO", s)
	}
	return FileVersion{Size: n, ModTime: time.Unix(0, t)}, nil
}

// ProcessArgs are the flags of a runner process that awaits its model:
// the settings of the process itself (backends, logging), none of a model.
func (o Options) ProcessArgs() []string {
	a := []string{"-await-model"}
	if o.BackendsDir != "" {
		a = append(a, "-backends-dir", o.BackendsDir)
	}
	if o.Verbose {
		a = append(a, "-verbose")
	}
	return a
}

// ProcessKey says which processes can take a model for o: those started
// with the same executable, environment, socket directory and process
// flags. A warm spare whose key differs cannot load it.
func (o Options) ProcessKey() string {
	return fmt.Sprintf("%q %q %q %q", o.Command, o.Env, o.Dir, o.ProcessArgs())
}

// ParseArgs reads the flags Args writes (the runner's command line after
// the "runner" word); usage, when not nil, receives the help text on
// -help and on a bad flag.
func ParseArgs(args []string, usage io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("jetaid runner", flag.ContinueOnError)
	if usage != nil {
		fs.SetOutput(usage)
	} else {
		fs.SetOutput(io.Discard)
	}
	fs.StringVar(&o.Model, "model", "", "GGUF model file")
	fs.IntVar(&o.SlotContext, "ctx", DefaultSlotContext, "context per slot, in tokens")
	fs.IntVar(&o.Slots, "parallel", DefaultSlots, "sequence slots (concurrent requests)")
	fs.IntVar(&o.BatchSize, "batch", DefaultBatchSize, "most tokens per decode step")
	fs.IntVar(&o.Threads, "threads", 0, "CPU threads (0 = all)")
	fs.IntVar(&o.GPULayers, "gpu-layers", 0, "layers offloaded to the GPU (-1 all, -2 as many as fit)")
	fs.StringVar(&o.BackendsDir, "backends-dir", "", "directory of ggml backend libraries (CUDA) to load")
	fs.BoolVar(&o.ListDevices, "list-devices", false, "print the devices (with -backends-dir) as JSON and exit")
	fs.BoolVar(&o.AwaitModel, "await-model", false, "initialise the engine, then read the model's flags from stdin (a JSON line {\"args\": [...]})")
	fs.BoolVar(&o.FlashAttention, "flash-attn", false, "use flash attention")
	fs.StringVar(&o.KVType, "kv-type", DefaultKVType, "KV cache type: f16, q8_0, q4_0")
	fs.BoolVar(&o.NoMmap, "no-mmap", false, "read the model instead of mapping it")
	fs.IntVar(&o.Queue, "queue", DefaultQueue, "requests that may wait for a slot")
	fs.BoolVar(&o.Verbose, "verbose", false, "log llama.cpp's info lines")
	fs.Func("lora", "LoRA adapter `SCALE:PATH` (repeatable)", func(s string) error {
		a, err := ParseAdapter(s)
		if err == nil {
			o.Adapters = append(o.Adapters, a)
		}
		return err
	})
	fs.BoolVar(&o.NGram, "spec-ngram", false, "speculative decoding with n-gram (prompt lookup) drafts")
	fs.IntVar(&o.MaxDraft, "spec-max-draft", 0, "most tokens drafted per slot and step (0 = off)")
	fs.StringVar(&o.Draft, "spec-draft", "", "GGUF `file` of a draft model with the target's vocabulary")
	fs.StringVar(&o.Mmproj, "mmproj", "", "GGUF `file` of a multimodal projector (the model then takes images)")
	fs.BoolVar(&o.MmprojOffload, "mmproj-offload", false, "let the projector run on a GPU (default: CPU)")
	fs.Func("checked", "`SIZE:UNIXNANO` of the model file whose header the daemon checked (not parsed again)", func(s string) error {
		v, err := parseFileVersion(s)
		o.Checked = v
		return err
	})
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "jetaid runner serves one model for jetaid; it is started by the daemon, not by hand.\nIt expects a listening Unix socket on fd 3 and a status pipe on fd 4.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("runner flags: %w", err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("runner flags: unexpected argument %q", fs.Arg(0))
	}
	if o.Model == "" && !o.ListDevices && !o.AwaitModel {
		return o, errors.New("runner flags: -model (or -await-model) is required")
	}
	if o.MaxDraft < 0 || o.MaxDraft > MaxDraftLimit {
		return o, fmt.Errorf("runner flags: -spec-max-draft %d out of range [0, %d]", o.MaxDraft, MaxDraftLimit)
	}
	return o, nil
}
