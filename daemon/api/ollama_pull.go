package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/jetai/jetai/admin"
)

// Ollama's /api/pull and /api/delete, behind server.allow_pull: the
// daemon's own pull (the admin socket's, jetai-ctl pull --add) and rm,
// passed in as Options.Models, so a model pulled here is a drop-in model
// like any other and `jetai-ctl ls`/`rm` see it.

// Models downloads and removes models for /api/pull and /api/delete. Pull
// with Add adds the model as a drop-in; a model that an earlier pull of
// the same source added is refreshed instead (a second `ollama pull`).
type Models interface {
	Pull(ctx context.Context, req admin.PullRequest, events func(admin.PullEvent)) (admin.PullResult, error)
	RemoveModel(ctx context.Context, req admin.RemoveRequest) (admin.RemoveResult, error)
}

// notManaged answers /api/pull and /api/delete on a server built without
// Models.
var notManaged = &Error{Status: http.StatusNotImplemented, Code: "not_implemented",
	Message: "this server does not download or delete models; use jetai-ctl pull and rm"}

type ollamaPullRequest struct {
	Model  string `json:"model"`
	Name   string `json:"name"` // Ollama's older spelling of model
	Stream *bool  `json:"stream"`
}

// ollamaPullProgress is one line of /api/pull's stream (Ollama's
// docs/api.md): a status, and byte counts while downloading.
type ollamaPullProgress struct {
	Status    string `json:"status"`
	Digest    string `json:"digest,omitempty"`
	Total     int64  `json:"total,omitempty"`
	Completed int64  `json:"completed,omitempty"`
}

// ollamaModelName is the jetai model name an Ollama reference is served
// as: NAME for NAME and NAME:latest, NAME:TAG for another tag, with a
// namespace's '/' made '-' (a model name names its drop-in file).
func ollamaModelName(ref string) string {
	ref = strings.TrimSuffix(ref, ":latest")
	return strings.ReplaceAll(ref, "/", "-")
}

func (s *Server) ollamaPull(w http.ResponseWriter, r *http.Request) {
	if !s.pullGate(w, "downloading models") {
		return
	}
	var req ollamaPullRequest
	if e := decodeBody(r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	if req.Model == "" {
		req.Model = req.Name
	}
	ref := strings.TrimPrefix(req.Model, "ollama:")
	if ref == "" {
		writeError(w, badRequest("model", "model is required: the Ollama registry's NAME[:TAG], e.g. llama3.2:1b"))
		return
	}
	if s.manage == nil {
		writeError(w, notManaged)
		return
	}
	name := ollamaModelName(ref)
	preq := admin.PullRequest{Source: "ollama:" + ref, Add: name}
	stream := req.Stream == nil || *req.Stream
	var nd *ndjson
	if stream {
		nd = newNDJSON(w)
		nd.event(ollamaPullProgress{Status: "pulling manifest"})
	}
	// Byte counts are of all the pull's files (a model and its projector
	// are one download to the client), labelled with the layer in flight.
	sent := map[string]bool{}
	res, err := s.manage.Pull(r.Context(), preq, func(ev admin.PullEvent) {
		if nd == nil {
			return
		}
		digest := ""
		if ev.SHA256 != "" {
			digest = "sha256:" + ev.SHA256
		}
		switch ev.Phase {
		case admin.PullDownload:
			sent["download"] = true
			nd.event(ollamaPullProgress{Status: "downloading " + digest, Digest: digest, Total: ev.Total, Completed: ev.Done})
		case admin.PullAdd:
			sent["add"] = true
			nd.event(ollamaPullProgress{Status: "writing manifest"})
		}
	})
	if err != nil {
		e := manageError(r.Context(), err)
		if nd != nil && nd.started {
			// Ollama's clients read an error line in the stream.
			nd.event(ollamaErrorBody{Error: e.Message, Code: e.Code})
			return
		}
		writeError(w, e)
		return
	}
	s.log.Info("ollama pull", "model", name, "source", res.Source, "drop_in", res.DropIn)
	if nd == nil {
		writeJSON(w, http.StatusOK, ollamaPullProgress{Status: "success"})
		return
	}
	// A download faster than the progress interval (or one in the cache
	// already) still shows its layers complete.
	var total int64
	for _, f := range res.Files {
		total += f.Size
	}
	for _, f := range res.Files {
		digest := "sha256:" + f.SHA256
		if !sent["download"] {
			nd.event(ollamaPullProgress{Status: "downloading " + digest, Digest: digest, Total: total, Completed: total})
		}
		nd.event(ollamaPullProgress{Status: "verifying sha256 digest", Digest: digest})
	}
	if res.DropIn != "" && !sent["add"] {
		nd.event(ollamaPullProgress{Status: "writing manifest"})
	}
	nd.event(ollamaPullProgress{Status: "success"})
}

type ollamaDeleteRequest struct {
	Model string `json:"model"`
	Name  string `json:"name"`
}

// ollamaDelete removes a model as `jetai-ctl rm` does: unloaded, its
// drop-in and its cached file deleted. A model of the main config file is
// refused (it is a person's to change).
func (s *Server) ollamaDelete(w http.ResponseWriter, r *http.Request) {
	if !s.pullGate(w, "deleting models") {
		return
	}
	var req ollamaDeleteRequest
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
	if s.manage == nil {
		writeError(w, notManaged)
		return
	}
	res, err := s.manage.RemoveModel(r.Context(), admin.RemoveRequest{Target: canon})
	if err != nil {
		writeError(w, manageError(r.Context(), err))
		return
	}
	s.log.Info("ollama delete", "model", canon, "drop_ins", strings.Join(res.DropIns, ","), "files", strings.Join(res.Files, ","))
	w.WriteHeader(http.StatusOK)
}

// manageError is errorFor for the daemon's pull and rm, whose errors may
// be the admin socket's (same codes as REST).
func manageError(ctx context.Context, err error) *Error {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return &Error{Status: ae.Status, Code: ae.Code, Message: ae.Message}
	}
	return errorFor(ctx, err, 0)
}
