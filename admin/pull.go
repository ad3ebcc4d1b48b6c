package admin

import (
	"context"
	"net/http"
	"time"
)

// Pulls (downloads of models from the Hugging Face Hub or the Ollama
// registry into the model cache): an optional part of the Backend. The
// endpoints, under /v1:
//
//	POST /v1/pull         PullRequest → NDJSON PullFrames (events…, then result or error)
//	POST /v1/pull/cancel  PullCancelRequest → PullCancelResult
//	GET  /v1/pulls        {"pulls": [PullStatus]}
//
// The download belongs to the daemon, not to the request: a client that
// goes away (Ctrl-C) only stops watching; /v1/pull/cancel stops it. A
// second POST of the same source and add watches the same pull.

// Puller is implemented by a Backend that downloads models.
type Puller interface {
	Pull(ctx context.Context, req PullRequest, events func(PullEvent)) (PullResult, error)
	CancelPull(ctx context.Context, req PullCancelRequest) (PullCancelResult, error)
	Pulls(ctx context.Context) ([]PullStatus, error)
}

// PullRequest pulls Source (hf.co/OWNER/REPO[:QUANT], hf://…,
// OWNER/REPO:QUANT, hf.co/OWNER/REPO/FILE.gguf, ollama:NAME[:TAG]); with
// Add, then writes the drop-in jetai.d/ADD.hcl with a model block for it
// and reloads. HFToken is the client's HF_TOKEN (for gated repos).
type PullRequest struct {
	Source  string `json:"source"`
	Add     string `json:"add,omitempty"`
	HFToken string `json:"hf_token,omitempty"`
}

// Phases of a pull.
const (
	PullResolve  = "resolve"  // asking the hub what the source is
	PullDownload = "download" // bytes coming
	PullVerify   = "verify"   // hashing (an earlier partial file), syncing
	PullAdd      = "add"      // writing the drop-in, reloading
	PullDone     = "done"
	PullError    = "error"
)

// PullEvent is how far a pull has got.
type PullEvent struct {
	Phase   string  `json:"phase"`
	File    string  `json:"file,omitempty"`
	SHA256  string  `json:"sha256,omitempty"` // File's declared sha256
	Done    int64   `json:"done"`             // bytes present, all files
	Total   int64   `json:"total"`            // bytes, all files (0 while resolving)
	Rate    float64 `json:"rate"`             // bytes/s, recent
	Message string  `json:"message,omitempty"`
}

// PulledFile is one file of a pull, in the cache.
type PulledFile struct {
	Name    string `json:"name"`   // cache file name
	Path    string `json:"path"`   // cache path
	Origin  string `json:"origin"` // where it came from
	Role    string `json:"role"`   // model, split or mmproj
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Cached  bool   `json:"cached"`  // it was there already
	Resumed int64  `json:"resumed"` // bytes from an earlier partial download
	Fetched int64  `json:"fetched"` // bytes downloaded now
}

// PullResult is a finished pull.
type PullResult struct {
	Source  string       `json:"source"`
	Note    string       `json:"note,omitempty"` // the quant picked when the one asked for is missing
	Files   []PulledFile `json:"files"`
	Fetched int64        `json:"fetched"`
	Seconds float64      `json:"seconds"`
	// With add: the model, its drop-in file and block, where its context
	// comes from, and the config generation that serves it.
	Model      string `json:"model,omitempty"`
	DropIn     string `json:"drop_in,omitempty"`
	Block      string `json:"block,omitempty"`
	Context    string `json:"context,omitempty"`
	Generation uint64 `json:"generation,omitempty"`
}

// PullFrame is one line of a pull stream.
type PullFrame struct {
	Event  *PullEvent  `json:"event,omitempty"`
	Result *PullResult `json:"result,omitempty"`
	Error  *Error      `json:"error,omitempty"`
}

// PullCancelRequest cancels the pulls of Source; Discard also deletes
// their partial files (kept otherwise, for the next pull to resume).
type PullCancelRequest struct {
	Source  string `json:"source"`
	Discard bool   `json:"discard,omitempty"`
}

// PullCancelResult lists the pulls canceled.
type PullCancelResult struct {
	Canceled []string `json:"canceled"`
}

// PullStatus is a running pull.
type PullStatus struct {
	Key     string    `json:"key"`
	Source  string    `json:"source"`
	Started time.Time `json:"started"`
	PullEvent
}

func (s *Server) routePull(m *http.ServeMux) {
	pl, ok := s.opts.Backend.(Puller)
	if !ok {
		no := func(w http.ResponseWriter, r *http.Request) {
			writeError(w, Errorf(http.StatusNotImplemented, CodeNotSupported, "this daemon does not pull models"))
		}
		m.HandleFunc("POST /v1/pull", no)
		m.HandleFunc("POST /v1/pull/cancel", no)
		m.HandleFunc("GET /v1/pulls", no)
		return
	}
	m.HandleFunc("POST /v1/pull", func(w http.ResponseWriter, r *http.Request) {
		var req PullRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		if req.Source == "" {
			writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, `give the source: {"source": "hf.co/OWNER/REPO:Q4_K_M"}`))
			return
		}
		out := s.newNDJSON(w)
		res, err := pl.Pull(r.Context(), req, func(ev PullEvent) { out.send(PullFrame{Event: &ev}) })
		switch {
		case err != nil && !out.started:
			writeError(w, fileError(err))
		case err != nil:
			out.send(PullFrame{Error: fileError(err)})
		default:
			out.send(PullFrame{Result: &res})
		}
	})
	m.HandleFunc("POST /v1/pull/cancel", func(w http.ResponseWriter, r *http.Request) {
		var req PullCancelRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		res, err := pl.CancelPull(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	m.HandleFunc("GET /v1/pulls", func(w http.ResponseWriter, r *http.Request) {
		ps, err := pl.Pulls(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		if ps == nil {
			ps = []PullStatus{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"pulls": ps})
	})
}

// Pull pulls a model; onEvent (may be nil) gets its progress. Ending ctx
// stops watching, not the download.
func (c *Client) Pull(ctx context.Context, req PullRequest, onEvent func(PullEvent)) (PullResult, error) {
	return readStream[PullEvent, PullResult](ctx, c, "/v1/pull", "event", req, onEvent)
}

// CancelPull cancels the running pulls of a source.
func (c *Client) CancelPull(ctx context.Context, req PullCancelRequest) (PullCancelResult, error) {
	var r PullCancelResult
	_, err := c.do(ctx, "POST", "/v1/pull/cancel", req, &r)
	return r, err
}

// Pulls lists the running pulls.
func (c *Client) Pulls(ctx context.Context) ([]PullStatus, error) {
	var out struct {
		Pulls []PullStatus `json:"pulls"`
	}
	_, err := c.do(ctx, "GET", "/v1/pulls", nil, &out)
	return out.Pulls, err
}
