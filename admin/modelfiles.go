package admin

import (
	"context"
	"net/http"
	"time"
)

// Model files (the model cache, import, quantize): an optional part of the
// Backend. The endpoints, under /v1:
//
//	GET  /v1/cache       CacheStatus
//	POST /v1/cache/verify VerifyResult: every cached model file hashed against its record
//	POST /v1/import      ImportRequest → NDJSON FileFrames (progress…, then result or error)
//	POST /v1/quantize    QuantizeRequest → NDJSON FileFrames; closing the connection cancels
//
// A Backend without ModelFiles answers them 501.

// ModelFiles is implemented by a Backend that manages the model cache.
type ModelFiles interface {
	CacheStatus(ctx context.Context) (CacheStatus, error)
	VerifyCache(ctx context.Context) (VerifyResult, error)
	Import(ctx context.Context, req ImportRequest, progress func(Progress)) (FileResult, error)
	Quantize(ctx context.Context, req QuantizeRequest, progress func(Progress)) (FileResult, error)
}

// CacheStatus is the model cache: its files, parked conversations and
// running quantize jobs.
type CacheStatus struct {
	Dir         string        `json:"dir"`
	MaxSize     int64         `json:"max_size"`
	Used        int64         `json:"used"`
	ParkedBytes int64         `json:"parked_bytes"`
	Files       []CacheFile   `json:"files"`
	Quantizing  []QuantizeJob `json:"quantizing"`
}

// CacheFile is one model file in the cache.
type CacheFile struct {
	Name string `json:"name"` // file name under models/
	// Source is the file it was copied from, with that file's size and
	// modification time when it was copied.
	Source        string    `json:"source"`
	SourceSize    int64     `json:"source_size"`
	SourceModTime time.Time `json:"source_mod_time"`
	Size          int64     `json:"size"`
	SHA256        string    `json:"sha256"` // "" until computed
	Origin        string    `json:"origin"` // staged, imported or quantized
	Created       time.Time `json:"created"`
	CopyMS        float64   `json:"copy_ms,omitempty"`
	LastUsed      time.Time `json:"last_used"`
	Path          string    `json:"path"`
	InUse         int       `json:"in_use"` // models using it now
}

// FileResult is a model file an import or quantize put in the cache: the
// file, what the daemon found in it, and a model block for the config.
type FileResult struct {
	Entry CacheFile  `json:"entry"`
	Facts ModelFacts `json:"facts"`
	Block string     `json:"block"`
	// DropIn is the drop-in written for ImportRequest.Add.
	DropIn *DropInResult `json:"drop_in,omitempty"`
}

// ModelFacts are what the GGUF header and the engine say about a model
// file; Estimate is its memory at Context and Parallel.
type ModelFacts struct {
	Path         string         `json:"path"`
	Architecture string         `json:"architecture"`
	Name         string         `json:"name,omitempty"`
	FileType     string         `json:"file_type"`
	Parameters   uint64         `json:"parameters"`
	FileBytes    int64          `json:"file_bytes"`
	ContextTrain int            `json:"context_train"`
	Layers       int            `json:"layers"`
	ChatTemplate bool           `json:"chat_template"`
	Estimate     MemoryEstimate `json:"estimate"`
	Context      int            `json:"context"`
	Parallel     int            `json:"parallel"`
}

// QuantizeJob is a running quantize job.
type QuantizeJob struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Source string `json:"source"`
	Done   int    `json:"done"`  // tensors
	Total  int    `json:"total"` // tensors
	Paused bool   `json:"paused"`
}

// VerifyResult lists the cached model files checked against their
// recorded sha256. A corrupt file no loaded model uses is removed
// (Removed); one in use stays until its model unloads.
type VerifyResult struct {
	OK      []string      `json:"ok"`
	Corrupt []CorruptFile `json:"corrupt"`
}

// CorruptFile is a cached file that failed verification.
type CorruptFile struct {
	Name    string `json:"name"`
	Error   string `json:"error"`
	Removed bool   `json:"removed"`
}

// ImportRequest imports the GGUF at Path (absolute, readable by the
// daemon) into the cache as Name (default: the file's base name).
type ImportRequest struct {
	Path string `json:"path"`
	Name string `json:"name,omitempty"`
	// Add, when set, also writes a drop-in config file (jetai.d/ADD.hcl)
	// with a model block named Add for the imported file and reloads; the
	// cache file is named after it unless Name says otherwise. A name the
	// config has already is refused before anything is copied.
	Add string `json:"add,omitempty"`
}

// QuantizeRequest quantizes configured model Model to Type into the cache
// as Name (default MODEL-TYPE).
type QuantizeRequest struct {
	Model string `json:"model"`
	Type  string `json:"type"`
	Name  string `json:"name,omitempty"`
}

// Progress is how far an import (bytes) or quantize (tensors) has got.
type Progress struct {
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
	Unit  string `json:"unit"` // "bytes" or "tensors"
}

// FileFrame is one line of an import or quantize stream.
type FileFrame struct {
	Progress *Progress   `json:"progress,omitempty"`
	Result   *FileResult `json:"result,omitempty"`
	Error    *Error      `json:"error,omitempty"`
}

// routeModelFiles adds the model-file endpoints.
func (s *Server) routeModelFiles(m *http.ServeMux) {
	mf, ok := s.opts.Backend.(ModelFiles)
	if !ok {
		no := func(w http.ResponseWriter, r *http.Request) {
			writeError(w, Errorf(http.StatusNotImplemented, CodeNotSupported, "this daemon has no model cache"))
		}
		m.HandleFunc("GET /v1/cache", no)
		m.HandleFunc("POST /v1/cache/verify", no)
		m.HandleFunc("POST /v1/import", no)
		m.HandleFunc("POST /v1/quantize", no)
		return
	}
	m.HandleFunc("GET /v1/cache", func(w http.ResponseWriter, r *http.Request) {
		st, err := mf.CacheStatus(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	m.HandleFunc("POST /v1/cache/verify", func(w http.ResponseWriter, r *http.Request) {
		res, err := mf.VerifyCache(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	m.HandleFunc("POST /v1/import", func(w http.ResponseWriter, r *http.Request) {
		var req ImportRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		if req.Path == "" {
			writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, `give the file: {"path": "/abs/model.gguf"}`))
			return
		}
		s.streamFile(w, r, func(progress func(Progress)) (FileResult, error) { return mf.Import(r.Context(), req, progress) })
	})
	m.HandleFunc("POST /v1/quantize", func(w http.ResponseWriter, r *http.Request) {
		var req QuantizeRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		if req.Model == "" || req.Type == "" {
			writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, `give the model and type: {"model": "NAME", "type": "q4_k_m"}`))
			return
		}
		s.streamFile(w, r, func(progress func(Progress)) (FileResult, error) { return mf.Quantize(r.Context(), req, progress) })
	})
}

// streamFile runs an import or quantize, streaming its progress as NDJSON
// frames. An error before the first frame is a plain error answer.
func (s *Server) streamFile(w http.ResponseWriter, r *http.Request, run func(func(Progress)) (FileResult, error)) {
	out := s.newNDJSON(w)
	res, err := run(func(p Progress) {
		out.send(FileFrame{Progress: &p})
	})
	switch {
	case err != nil && !out.started:
		writeError(w, fileError(err))
	case err != nil:
		out.send(FileFrame{Error: fileError(err)})
	default:
		out.send(FileFrame{Result: &res})
	}
}

// fileError: a file the daemon could not take is a 422 unless the error
// says otherwise.
func fileError(err error) *Error {
	return asError(err, http.StatusUnprocessableEntity, CodeRejected)
}

// CacheStatus returns the model cache's state.
func (c *Client) CacheStatus(ctx context.Context) (CacheStatus, error) {
	var st CacheStatus
	_, err := c.do(ctx, "GET", "/v1/cache", nil, &st)
	return st, err
}

// VerifyCache hashes every cached model file against its record.
func (c *Client) VerifyCache(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	_, err := c.do(ctx, "POST", "/v1/cache/verify", nil, &res)
	return res, err
}

// Import imports a model file; progress (may be nil) gets copy progress.
func (c *Client) Import(ctx context.Context, req ImportRequest, progress func(Progress)) (FileResult, error) {
	return c.fileStream(ctx, "/v1/import", req, progress)
}

// Quantize quantizes a configured model; cancelling ctx cancels the job.
func (c *Client) Quantize(ctx context.Context, req QuantizeRequest, progress func(Progress)) (FileResult, error) {
	return c.fileStream(ctx, "/v1/quantize", req, progress)
}

func (c *Client) fileStream(ctx context.Context, path string, req any, progress func(Progress)) (FileResult, error) {
	return readStream[Progress, FileResult](ctx, c, path, "progress", req, progress)
}
