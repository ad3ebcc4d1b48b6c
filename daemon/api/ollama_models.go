package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/gguf"
)

// Ollama's model listings (/api/tags, /api/ps, /api/show) and embeddings
// (/api/embed, /api/embeddings). A model's facts come from its GGUF header,
// read without loading the model and kept while the file is unchanged.

// ggufFacts is what the listings say about a model file.
type ggufFacts struct {
	arch       string
	params     uint64
	fileType   string
	template   string
	ctxTrain   uint64
	scalars    map[string]any // metadata that is not an array
	arrays     map[string]any // arrays, shown with verbose
	digest     string
	modifiedAt time.Time
}

var facts struct {
	sync.Mutex
	m map[string]*ggufFacts // path|size|mtime -> facts
}

// maxFacts bounds the cache: a file rewritten many times leaves entries
// behind.
const maxFacts = 256

func modelFacts(m *config.Model) (*ggufFacts, error) {
	key := fmt.Sprintf("%s|%d|%d", m.Path, m.FileSize, m.FileModTime.UnixNano())
	facts.Lock()
	f, ok := facts.m[key]
	facts.Unlock()
	if ok {
		return f, nil
	}
	g, err := gguf.Open(m.Path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", m.Name, err)
	}
	f = &ggufFacts{arch: g.Architecture(), scalars: map[string]any{}, arrays: map[string]any{}, modifiedAt: m.FileModTime}
	if n, ok := g.Uint("general.parameter_count"); ok {
		f.params = n
	} else {
		for _, t := range g.Tensors {
			f.params += t.Elements()
		}
	}
	if ft, ok := g.FileType(); ok {
		f.fileType = gguf.FileTypeName(ft)
	} else {
		// No general.file_type: the type that holds most of the weights.
		by := map[gguf.GGMLType]uint64{}
		var most gguf.GGMLType
		for _, t := range g.Tensors {
			by[t.Type] += t.Size
			if by[t.Type] > by[most] {
				most = t.Type
			}
		}
		if len(by) > 0 {
			f.fileType = most.String()
		}
	}
	f.template, _ = g.ChatTemplate()
	f.ctxTrain, _ = g.ContextLength()
	for _, kv := range g.KVs {
		if kv.Type == gguf.TypeArray {
			f.arrays[kv.Key] = kv.Value
			continue
		}
		f.scalars[kv.Key] = kv.Value
	}
	f.scalars["general.parameter_count"] = f.params
	// Not a content hash (that would read the whole file): a stable name
	// of this file's version, which is what clients compare digests for.
	sum := sha256.Sum256([]byte(key))
	f.digest = hex.EncodeToString(sum[:])
	facts.Lock()
	if facts.m == nil || len(facts.m) >= maxFacts {
		facts.m = map[string]*ggufFacts{}
	}
	facts.m[key] = f
	facts.Unlock()
	return f, nil
}

// humanCount writes a parameter count as Ollama does: "7.6B", "260.0K".
func humanCount(n uint64) string {
	v := float64(n)
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 1, 64) + "B"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "K"
	}
	return strconv.FormatUint(n, 10)
}

type ollamaDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

func (f *ggufFacts) details() ollamaDetails {
	if f == nil {
		return ollamaDetails{Format: "gguf", Families: []string{}}
	}
	return ollamaDetails{Format: "gguf", Family: f.arch, Families: []string{f.arch}, ParameterSize: humanCount(f.params), QuantizationLevel: f.fileType}
}

type ollamaModelEntry struct {
	Name       string        `json:"name"`
	Model      string        `json:"model"`
	ModifiedAt string        `json:"modified_at,omitempty"`
	Size       int64         `json:"size"`
	Digest     string        `json:"digest"`
	Details    ollamaDetails `json:"details"`
	// /api/ps only.
	ExpiresAt     string `json:"expires_at,omitempty"`
	SizeVRAM      *int64 `json:"size_vram,omitempty"`
	ContextLength int    `json:"context_length,omitempty"`
}

// entry describes a configured model; a file that cannot be read still
// gets an entry (without details), so that the listing shows every model.
func (s *Server) ollamaEntry(m *config.Model) ollamaModelEntry {
	f, err := modelFacts(m)
	e := ollamaModelEntry{Name: m.Name, Model: m.Name, Size: int64(m.FileSize), Details: f.details()}
	if !m.FileModTime.IsZero() {
		e.ModifiedAt = m.FileModTime.Format(time.RFC3339Nano)
	}
	if err == nil {
		e.Digest = f.digest
	}
	return e
}

func (s *Server) ollamaTags(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg()
	out := []ollamaModelEntry{}
	for i := range cfg.Models {
		out = append(out, s.ollamaEntry(&cfg.Models[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
}

// farFuture is the expiry /api/ps shows for a model that does not unload
// when idle (pinned, or keep_alive "forever").
var farFuture = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

func (s *Server) ollamaPS(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg()
	out := []ollamaModelEntry{}
	for _, st := range s.pool.Models() {
		if st.State != "ready" && st.State != "loading" {
			continue
		}
		m, ok := cfg.Lookup(st.Name)
		if !ok {
			continue
		}
		e := s.ollamaEntry(m)
		e.ModifiedAt = ""
		e.Size = int64(max(st.ChargedBytes, st.EstimatedBytes))
		vram := int64(0)
		e.SizeVRAM = &vram
		e.ContextLength = m.Context
		exp := farFuture
		if st.KeepAliveUntil != nil {
			exp = *st.KeepAliveUntil
		}
		e.ExpiresAt = exp.Format(time.RFC3339Nano)
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
}

type ollamaShowRequest struct {
	Model   string `json:"model"`
	Name    string `json:"name"` // the older name of the field
	Verbose bool   `json:"verbose"`
}

func (s *Server) ollamaShow(w http.ResponseWriter, r *http.Request) {
	var req ollamaShowRequest
	if e := decodeBody(r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	if req.Model == "" {
		req.Model = req.Name
	}
	canon, e := s.resolveOllama(req.Model)
	if e != nil {
		writeError(w, e)
		return
	}
	m, ok := s.cfg().Lookup(canon)
	if !ok {
		writeError(w, s.unknownModel(req.Model))
		return
	}
	f, err := modelFacts(m)
	if err != nil {
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: "model_unavailable", Param: "model", Message: err.Error()})
		return
	}
	info := make(map[string]any, len(f.scalars)+len(f.arrays))
	for k, v := range f.scalars {
		info[k] = v
	}
	for k, v := range f.arrays {
		if req.Verbose {
			info[k] = v
		} else {
			info[k] = []any{}
		}
	}
	params := showParameters(m)
	writeJSON(w, http.StatusOK, map[string]any{
		"modelfile":    "# Modelfile generated by jetai from its config\nFROM " + m.Path + "\n" + prefixLines("PARAMETER ", params),
		"parameters":   params,
		"template":     f.template,
		"details":      f.details(),
		"model_info":   info,
		"capabilities": capabilities(m),
		"modified_at":  m.FileModTime.Format(time.RFC3339Nano),
	})
}

// showParameters lists the model's sampling defaults under Ollama's
// option names, one "name value" a line.
func showParameters(m *config.Model) string {
	d := m.Sampling
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-30s %s\n", k, v) }
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	line("num_ctx", strconv.Itoa(m.Context))
	if d.MaxTokens > 0 {
		line("num_predict", strconv.Itoa(d.MaxTokens))
	}
	line("temperature", num(d.Temperature))
	line("top_k", strconv.Itoa(d.TopK))
	line("top_p", num(d.TopP))
	line("min_p", num(d.MinP))
	line("repeat_penalty", num(d.RepeatPenalty))
	if d.Seed >= 0 {
		line("seed", strconv.FormatInt(d.Seed, 10))
	}
	for _, s := range d.Stop {
		line("stop", strconv.Quote(s))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func prefixLines(p, s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = p + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// --- embeddings ---

type ollamaEmbedRequest struct {
	Model      string          `json:"model"`
	Input      json.RawMessage `json:"input"`
	Truncate   *bool           `json:"truncate"`
	Dimensions *int            `json:"dimensions"`
	KeepAlive  json.RawMessage `json:"keep_alive"`
}

// maxEmbedInputs bounds one request's inputs, as on /v1/embeddings.
const maxEmbedInputs = 256

func (s *Server) ollamaEmbed(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req ollamaEmbedRequest
	if e := decodeBody(r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	canon, e := s.resolveOllama(req.Model)
	if e != nil {
		writeError(w, e)
		return
	}
	ka, e := parseKeepAlive(req.KeepAlive)
	if e != nil {
		writeError(w, e)
		return
	}
	var inputs []string
	raw := bytes.TrimSpace(req.Input)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
	case raw[0] == '"':
		var one string
		json.Unmarshal(raw, &one)
		inputs = []string{one}
	default:
		if err := json.Unmarshal(raw, &inputs); err != nil {
			writeError(w, badRequest("input", "input must be a string or an array of strings"))
			return
		}
	}
	if len(inputs) > maxEmbedInputs {
		writeError(w, badRequest("input", "at most %d inputs per request, not %d", maxEmbedInputs, len(inputs)))
		return
	}
	for i, in := range inputs {
		if in == "" {
			writeError(w, badRequest("input", "input %d is empty", i))
			return
		}
	}
	if d := req.Dimensions; d != nil && *d < 1 {
		writeError(w, badRequest("dimensions", "dimensions must be at least 1"))
		return
	}
	embs := make([][]float32, 0, len(inputs))
	tokens := 0
	for _, in := range inputs {
		res, err := s.pool.Embed(r.Context(), canon, in)
		if err != nil {
			writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
			return
		}
		v := res.Embedding
		if d := req.Dimensions; d != nil {
			if *d > len(v) {
				writeError(w, badRequest("dimensions", "dimensions %d is more than the model's %d", *d, len(v)))
				return
			}
			v = normalized(v[:*d])
		}
		tokens += res.Tokens
		embs = append(embs, v)
	}
	s.afterRequest(canon, ka)
	writeJSON(w, http.StatusOK, map[string]any{
		"model": canon, "embeddings": embs,
		"total_duration": int64(time.Since(start)), "prompt_eval_count": tokens,
	})
}

// normalized scales v to unit length (a truncated embedding, as Ollama
// returns it for dimensions).
func normalized(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if sum == 0 {
		return out
	}
	n := math.Sqrt(sum)
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

type ollamaEmbeddingsRequest struct {
	Model     string          `json:"model"`
	Prompt    string          `json:"prompt"`
	KeepAlive json.RawMessage `json:"keep_alive"`
}

// ollamaEmbeddings is the older embedding endpoint: one prompt, one
// embedding (an empty prompt gives an empty one, as in Ollama).
func (s *Server) ollamaEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req ollamaEmbeddingsRequest
	if e := decodeBody(r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	canon, e := s.resolveOllama(req.Model)
	if e != nil {
		writeError(w, e)
		return
	}
	ka, e := parseKeepAlive(req.KeepAlive)
	if e != nil {
		writeError(w, e)
		return
	}
	if req.Prompt == "" {
		writeJSON(w, http.StatusOK, map[string]any{"embedding": []float32{}})
		return
	}
	res, err := s.pool.Embed(r.Context(), canon, req.Prompt)
	if err != nil {
		writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
		return
	}
	s.afterRequest(canon, ka)
	writeJSON(w, http.StatusOK, map[string]any{"embedding": res.Embedding})
}

// capabilities are Ollama's for a model: completion, and vision with a
// projector.
func capabilities(m *config.Model) []string {
	if m.Mmproj != "" {
		return []string{"completion", "vision"}
	}
	return []string{"completion"}
}
