package admin

import (
	"context"
	"net/http"
)

// Local model files and drop-ins (`jetai-ctl ls`, `rm`, `import --add`):
// an optional part of the Backend. The endpoints, under /v1:
//
//	GET  /v1/files          LocalFiles: the model files the daemon knows
//	POST /v1/files/remove   RemoveRequest → RemoveResult
//
// `import --add NAME` is ImportRequest.Add; its answer carries the
// drop-in (FileResult.DropIn). A Backend without LocalModels answers the
// endpoints 501.

// LocalModels is implemented by a Backend that lists and removes local
// model files.
type LocalModels interface {
	LocalFiles(ctx context.Context) (LocalFiles, error)
	RemoveModel(ctx context.Context, req RemoveRequest) (RemoveResult, error)
}

// LocalFiles are the model files in the model cache and the files the
// config's models name.
type LocalFiles struct {
	CacheDir  string      `json:"cache_dir"`
	DropInDir string      `json:"drop_in_dir"`
	Files     []LocalFile `json:"files"`
}

// LocalFile is one model file and what uses it.
type LocalFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// From the GGUF header; empty or 0 when it cannot be read (Error).
	Architecture string `json:"architecture"`
	Quant        string `json:"quant"`
	Parameters   uint64 `json:"parameters"`
	ContextTrain int    `json:"context_train"`
	// SHA256 is the cache's record ("" for a file outside the cache or not
	// yet hashed); Source where it came from (a pull reference or the path
	// it was imported from; "" when not recorded); Origin how it came:
	// imported, quantized, pulled, or "config" for a file outside the
	// cache that the config names.
	SHA256  string `json:"sha256,omitempty"`
	Source  string `json:"source,omitempty"`
	Origin  string `json:"origin"`
	InCache bool   `json:"in_cache"`
	// Models are the config's models that use the file.
	Models []FileModel `json:"models"`
	Error  string      `json:"error,omitempty"`
}

// FileModel is a config model that uses a file.
type FileModel struct {
	Name      string `json:"name"`
	DefinedAt string `json:"defined_at"` // file:line:col
	DropIn    bool   `json:"drop_in"`    // defined in a drop-in file
	State     string `json:"state"`
}

// RemoveRequest removes a model and its file: Target is a model name or
// alias, a model file's path, or a cached file's name.
type RemoveRequest struct {
	Target string `json:"target"`
}

// RemoveResult says what a remove did.
type RemoveResult struct {
	// Models are the config models removed with their drop-ins (each was
	// unloaded first, after its requests finished).
	Models  []string `json:"models"`
	DropIns []string `json:"drop_ins"`
	// Files were deleted; Kept are files left in place, with why.
	Files  []string      `json:"files"`
	Kept   []string      `json:"kept"`
	Reload *ReloadResult `json:"reload,omitempty"`
}

// DropInResult is a drop-in written by --add.
type DropInResult struct {
	File           string `json:"file"`
	Model          string `json:"model"`
	Context        int    `json:"context"`
	Parallel       int    `json:"parallel"`
	TrainedContext int    `json:"trained_context"`
	EstimateBytes  uint64 `json:"estimate_bytes"`
	BudgetBytes    uint64 `json:"budget_bytes"`
	// Reason says where the context comes from.
	Reason  string `json:"reason"`
	Content string `json:"content"`
	// Generation is the config generation that put it in force.
	Generation uint64 `json:"generation"`
}

// routeLocalModels adds the local-model endpoints.
func (s *Server) routeLocalModels(m *http.ServeMux) {
	lm, ok := s.opts.Backend.(LocalModels)
	if !ok {
		no := func(w http.ResponseWriter, r *http.Request) {
			writeError(w, Errorf(http.StatusNotImplemented, CodeNotSupported, "this daemon does not manage local model files"))
		}
		m.HandleFunc("GET /v1/files", no)
		m.HandleFunc("POST /v1/files/remove", no)
		return
	}
	m.HandleFunc("GET /v1/files", func(w http.ResponseWriter, r *http.Request) {
		res, err := lm.LocalFiles(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	m.HandleFunc("POST /v1/files/remove", func(w http.ResponseWriter, r *http.Request) {
		var req RemoveRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		if req.Target == "" {
			writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, `give what to remove: {"target": "NAME or FILE"}`))
			return
		}
		res, err := lm.RemoveModel(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// LocalFiles lists the local model files.
func (c *Client) LocalFiles(ctx context.Context) (LocalFiles, error) {
	var res LocalFiles
	_, err := c.do(ctx, "GET", "/v1/files", nil, &res)
	return res, err
}

// RemoveModel removes a model's drop-in and file (see RemoveRequest).
func (c *Client) RemoveModel(ctx context.Context, req RemoveRequest) (RemoveResult, error) {
	var res RemoveResult
	_, err := c.do(ctx, "POST", "/v1/files/remove", req, &res)
	return res, err
}
