package engine

/*
#include "engine.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ollama/ollama/llama"
)

var initOnce sync.Once

// Init loads the ggml backends (CPU, and CUDA when its libraries are on
// LD_LIBRARY_PATH) and routes llama.cpp's log. Load calls it.
func Init() {
	initOnce.Do(func() {
		llama.BackendInit()
		installLog()
	})
}

// ErrNoChatTemplate is returned for a chat request to a model whose GGUF
// carries no chat template that llama.cpp can apply.
var ErrNoChatTemplate = errors.New("model has no usable chat template")

// LoadOptions say how to load a model.
type LoadOptions struct {
	GPULayers int  // layers to offload to a GPU backend; 0 = CPU only, -1 all, GPULayersAuto as many as fit
	NoMmap    bool // read the file instead of mapping it
	Mlock     bool // lock the weights in RAM
	// Progress, when set, is called with values in [0,1] while loading.
	Progress func(float32)
	// Checked, when set, is the version of the file whose header the
	// caller has already checked as CheckFile does: a file still of that
	// size and modification time is not parsed again (for a 32k-token
	// vocabulary the parse is a tenth of a swap's load).
	Checked *FileVersion
}

// FileVersion identifies a version of a file by its size and modification
// time, as the pool does for reloads and crash limits.
type FileVersion struct {
	Size    int64
	ModTime time.Time
}

// Matches says whether fi is this version of the file.
func (v FileVersion) Matches(fi os.FileInfo) bool {
	return fi.Size() == v.Size && fi.ModTime().Equal(v.ModTime)
}

// Model is a loaded GGUF model.
type Model struct {
	m       *llama.Model
	info    Info
	eog     []int
	tok     *tokenizer
	timings LoadTimings
}

// Info holds the facts of a loaded model.
type Info struct {
	Path          string `json:"path"`
	Architecture  string `json:"architecture"`
	Name          string `json:"name,omitempty"`
	Description   string `json:"description"`
	Parameters    uint64 `json:"parameters"`
	FileType      string `json:"file_type"`
	SizeBytes     uint64 `json:"size_bytes"` // tensor bytes as loaded
	FileBytes     int64  `json:"file_bytes"`
	ContextTrain  int    `json:"context_train"`
	Layers        int    `json:"layers"`
	Embedding     int    `json:"embedding"`
	Heads         int    `json:"heads"`
	HeadsKV       int    `json:"heads_kv"`
	VocabSize     int    `json:"vocab_size"`
	BOS           int    `json:"bos"`
	EOS           int    `json:"eos"`
	AddBOS        bool   `json:"add_bos"`
	ChatTemplate  string `json:"chat_template,omitempty"`
	HasEncoder    bool   `json:"has_encoder,omitempty"`
	ChatSupported bool   `json:"chat_supported"`
}

type loadState struct {
	ctx context.Context
	fn  func(float32)
}

// progress reports and answers whether loading should go on.
func (l *loadState) progress(p float32) bool {
	clock.step()
	if l.ctx.Err() != nil {
		return false
	}
	if l.fn != nil {
		l.fn(p)
	}
	return true
}

// Load loads the GGUF file at path. Cancelling ctx aborts the load at the
// next progress step. The file is checked first, so a file that is not a
// GGUF, or is truncated, fails with a clear error before llama.cpp reads it.
func Load(ctx context.Context, path string, opts LoadOptions) (*Model, error) {
	Init()
	begin := time.Now()
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("load %s: is a directory", path)
	}
	if opts.Checked == nil || !opts.Checked.Matches(st) {
		if err := CheckFile(path); err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}

	gpuLayers := opts.GPULayers
	if gpuLayers == GPULayersAuto {
		gpuLayers = AutoGPULayers(path, uint64(st.Size()), Devices())
	}
	if gpuLayers < 0 {
		// llama.cpp offloads nothing for a negative count; "all" is any
		// count above the model's layers.
		gpuLayers = maxGPULayers
	}
	TakeOffload() // what llama.cpp reports from here on is this model's

	params := C.llama_model_default_params()
	params.n_gpu_layers = C.int32_t(gpuLayers)
	params.use_mmap = C.bool(!opts.NoMmap)
	params.use_mlock = C.bool(opts.Mlock)

	state := &loadState{ctx: ctx, fn: opts.Progress}
	h := cgo.NewHandle(state)
	defer h.Delete()
	ud := (*C.uintptr_t)(C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0)))))
	defer C.free(unsafe.Pointer(ud))
	*ud = C.uintptr_t(h)
	params.progress_callback = C.jetai_progress_trampoline()
	params.progress_callback_user_data = unsafe.Pointer(ud)

	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	engineLog.takeRecent()
	checked := time.Now()
	clock.start()
	p := C.llama_model_load_from_file(cpath, params)
	loaded := time.Now()
	tensors, firstStep, _ := clock.stop()
	recent := engineLog.takeRecent()
	if p == nil {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("load %s: cancelled: %w", path, err)
		}
		return nil, &LogError{Op: "load " + path, Err: errors.New("llama.cpp could not load the model"), Lines: recent}
	}
	m := &Model{m: wrapModel(p)}
	m.info = m.readInfo(path, st.Size())
	m.tok = newTokenizer(m)
	for t := range m.info.VocabSize {
		if m.IsEOG(t) {
			m.eog = append(m.eog, t)
		}
	}
	m.timings.Check = checked.Sub(begin)
	m.timings.Metadata, m.timings.Mmap, m.timings.Weights = split(checked, tensors, firstStep, loaded)
	m.timings.Info = time.Since(loaded)
	return m, nil
}

func formatRecent(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return ": " + strings.Join(lines, "; ")
}

// Close frees the model. The Model must not be used afterwards.
func (m *Model) Close() {
	if m.m != nil {
		C.llama_model_free(rawModel(m.m))
		m.m = nil
	}
}

// Info returns the model's facts.
func (m *Model) Info() Info { return m.info }

// Timings returns how long the steps of the model's Load took.
func (m *Model) Timings() LoadTimings { return m.timings }

func (m *Model) raw() *C.struct_llama_model { return rawModel(m.m) }

func (m *Model) vocab() *C.struct_llama_vocab { return C.llama_model_get_vocab(m.raw()) }

// Meta returns a GGUF metadata value as a string, or "" when absent.
func (m *Model) Meta(key string) string {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	buf := make([]byte, 256)
	for {
		n := int(C.llama_model_meta_val_str(m.raw(), ckey, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))))
		if n < 0 {
			return ""
		}
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, n+1)
	}
}

func (m *Model) readInfo(path string, fileBytes int64) Info {
	raw := m.raw()
	desc := make([]byte, 256)
	n := int(C.llama_model_desc(raw, (*C.char)(unsafe.Pointer(&desc[0])), C.size_t(len(desc))))
	if n < 0 {
		n = 0
	}
	if n > len(desc) {
		n = len(desc)
	}
	info := Info{
		Path:         path,
		Architecture: m.Meta("general.architecture"),
		Name:         m.Meta("general.name"),
		Description:  string(desc[:n]),
		Parameters:   uint64(C.llama_model_n_params(raw)),
		SizeBytes:    uint64(C.llama_model_size(raw)),
		FileBytes:    fileBytes,
		ContextTrain: int(C.llama_model_n_ctx_train(raw)),
		Layers:       int(C.llama_model_n_layer(raw)),
		Embedding:    int(C.llama_model_n_embd(raw)),
		Heads:        int(C.llama_model_n_head(raw)),
		HeadsKV:      int(C.llama_model_n_head_kv(raw)),
		VocabSize:    int(C.llama_vocab_n_tokens(m.vocab())),
		BOS:          int(C.llama_vocab_bos(m.vocab())),
		EOS:          int(C.llama_vocab_eos(m.vocab())),
		AddBOS:       m.m.AddBOSToken(),
		HasEncoder:   bool(C.llama_model_has_encoder(raw)),
	}
	info.FileType = fileTypeName(m.Meta("general.file_type"))
	if t := C.llama_model_chat_template(raw, nil); t != nil {
		info.ChatTemplate = C.GoString(t)
	}
	if info.ChatTemplate != "" {
		_, err := applyTemplate(info.ChatTemplate, []Message{{Role: "user", Content: "x"}}, true)
		info.ChatSupported = err == nil
	}
	return info
}

// fileTypeName names llama.cpp's enum llama_ftype values.
func fileTypeName(v string) string {
	names := map[string]string{
		"0": "F32", "1": "F16", "2": "Q4_0", "3": "Q4_1", "7": "Q8_0", "8": "Q5_0", "9": "Q5_1",
		"10": "Q2_K", "11": "Q3_K_S", "12": "Q3_K_M", "13": "Q3_K_L", "14": "Q4_K_S", "15": "Q4_K_M",
		"16": "Q5_K_S", "17": "Q5_K_M", "18": "Q6_K", "19": "IQ2_XXS", "20": "IQ2_XS", "21": "Q2_K_S",
		"22": "IQ3_XS", "23": "IQ3_XXS", "24": "IQ1_S", "25": "IQ4_NL", "26": "IQ3_S", "27": "IQ3_M",
		"28": "IQ2_S", "29": "IQ2_M", "30": "IQ4_XS", "31": "IQ1_M", "32": "BF16", "36": "TQ1_0", "37": "TQ2_0",
	}
	if v == "" {
		return "unknown"
	}
	if n, ok := names[v]; ok {
		return n
	}
	return "type " + v
}

// Tokenize turns text into tokens. addBOS adds the model's BOS token when the
// model wants one; special tokens written in the text (such as <|im_start|>)
// are parsed, as llama.cpp's server does. It is TokenizeLimit without a
// limit.
func (m *Model) Tokenize(text string, addBOS bool) ([]int, error) {
	return m.TokenizeLimit(context.Background(), text, addBOS, 0)
}

// TokenizeLimit turns text into tokens, token for token as llama.cpp does,
// in time linear in the text. A text of more than limit tokens (limit > 0)
// is refused with a *TooLongError as soon as that is certain, often before
// any of it is tokenized. Cancelling ctx stops it between steps.
func (m *Model) TokenizeLimit(ctx context.Context, text string, addBOS bool, limit int) ([]int, error) {
	return m.tokenize(ctx, text, addBOS, true, limit)
}

func (m *Model) tokenize(ctx context.Context, text string, addBOS, parseSpecial bool, limit int) ([]int, error) {
	if text == "" {
		if addBOS && m.info.AddBOS {
			return []int{m.info.BOS}, nil
		}
		return nil, nil
	}
	return m.tok.tokenize(ctx, text, addBOS, parseSpecial, limit)
}

// Piece returns the bytes of one token (possibly part of a UTF-8 character).
func (m *Model) Piece(token int) string { return m.m.TokenToPiece(token) }

// Detokenize returns the text of a token sequence.
func (m *Model) Detokenize(tokens []int) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteString(m.Piece(t))
	}
	return b.String()
}

// IsEOG reports whether token ends generation (EOS, EOT, <|im_end|>, …).
func (m *Model) IsEOG(token int) bool { return m.m.TokenIsEog(token) }

// EOGTokens lists every token that ends generation (read once at load).
func (m *Model) EOGTokens() []int { return m.eog }

// defaultModelParams is exposed for the layout test.
func defaultModelParams() (gpuLayers, splitMode int32, vocabOnly, mmap, mlock, checkTensors bool, callbackNil bool) {
	p := C.llama_model_default_params()
	return int32(p.n_gpu_layers), int32(p.split_mode), bool(p.vocab_only), bool(p.use_mmap), bool(p.use_mlock), bool(p.check_tensors), p.progress_callback == nil
}
