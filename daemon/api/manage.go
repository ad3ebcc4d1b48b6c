package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/daemon/pool"
)

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	if st == StateServing && !s.pool.Ready() {
		st = StateStarting
	}
	status := http.StatusOK
	if st != StateServing {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]string{"status": stateNames[st]})
}

type statusResponse struct {
	Status        string        `json:"status"`
	Version       string        `json:"version"`
	StartedAt     time.Time     `json:"started_at"`
	UptimeSeconds float64       `json:"uptime_seconds"`
	Config        configSummary `json:"config"`
	Pool          pool.Status   `json:"pool"`
	Models        modelsSummary `json:"models"`
	Platform      any           `json:"platform,omitempty"`
	// Events are the pool's recent loads, unloads, evictions and runner
	// exits (and what else the daemon notes, such as reloads), oldest first.
	Events []pool.Event `json:"events"`
}

type configSummary struct {
	Path string `json:"path"`
	Hash string `json:"hash"`
	// DropIns are the drop-in files (config.DropInDir) read with Path.
	DropIns      []string `json:"drop_ins"`
	DefaultModel string   `json:"default_model"`
	Tiers        int      `json:"tiers"`
	// The config generation and reloads, as the admin socket shows them.
	admin.ReloadStatus
}

type modelsSummary struct {
	Configured int            `json:"configured"`
	ByState    map[string]int `json:"by_state"`
	Loaded     []string       `json:"loaded"`
	// Unavailable maps each model whose file is missing or bad to why
	// (which file, what to do); absent when there is none.
	Unavailable map[string]string `json:"unavailable,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	if st == StateServing && !s.pool.Ready() {
		st = StateStarting
	}
	ms := s.pool.Models()
	sum := modelsSummary{Configured: len(ms), ByState: map[string]int{}, Loaded: []string{}}
	for _, m := range ms {
		sum.ByState[m.State]++
		if m.State == pool.StateReady {
			sum.Loaded = append(sum.Loaded, m.Name)
		}
		if m.State == pool.StateUnavailable {
			if sum.Unavailable == nil {
				sum.Unavailable = map[string]string{}
			}
			sum.Unavailable[m.Name] = m.LastError
		}
	}
	events := s.pool.Events()
	if events == nil {
		events = []pool.Event{}
	}
	writeJSON(w, http.StatusOK, statusResponse{
		Status:        stateNames[st],
		Version:       s.version,
		StartedAt:     s.started.UTC(),
		UptimeSeconds: time.Since(s.started).Seconds(),
		Config:        s.configSummary(),
		Pool:          s.pool.Status(),
		Models:        sum,
		Platform:      s.platformStatus(),
		Events:        events,
	})
}

func (s *Server) platformStatus() any {
	if s.plat == nil {
		return nil
	}
	return s.plat()
}

func (s *Server) configSummary() configSummary {
	cfg := s.cfg()
	sum := configSummary{Path: cfg.Path, Hash: cfg.Hash, DropIns: append([]string{}, cfg.DropIns...), DefaultModel: cfg.Router.DefaultModel, Tiers: len(cfg.Router.Tiers)}
	if s.reload != nil {
		sum.ReloadStatus = s.reload()
	} else {
		sum.Generation, sum.LoadedAt, sum.NeedsRestart = 1, s.started.UTC(), []string{}
	}
	return sum
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	ms := s.pool.Models()
	if ms == nil {
		ms = []pool.ModelStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": ms})
}

// modelRequest is the body of /load_model and /unload_model. "model" is
// accepted as a synonym of the seed's "model_name".
type modelRequest struct {
	ModelName string `json:"model_name"`
	Model     string `json:"model"`
}

func (s *Server) modelArg(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req modelRequest
	if e := decodeBody(r, &req, true); e != nil {
		writeError(w, e)
		return "", false
	}
	name := req.ModelName
	if name == "" {
		name = req.Model
	}
	if name == "" {
		writeError(w, badRequest("model_name", `give the model to act on: {"model_name": "NAME"}`))
		return "", false
	}
	canon, ok := s.pool.Resolve(name)
	if !ok {
		writeError(w, s.unknownModel(name))
		return "", false
	}
	return canon, true
}

func (s *Server) loadModel(w http.ResponseWriter, r *http.Request) {
	name, ok := s.modelArg(w, r)
	if !ok {
		return
	}
	start := time.Now()
	if err := s.pool.Load(r.Context(), name); err != nil {
		writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
		return
	}
	m, _ := s.pool.Model(name)
	writeJSON(w, http.StatusOK, map[string]any{"status": "loaded", "model_name": name, "seconds": time.Since(start).Seconds(), "model": m})
}

func (s *Server) unloadModel(w http.ResponseWriter, r *http.Request) {
	name, ok := s.modelArg(w, r)
	if !ok {
		return
	}
	if err := s.pool.Unload(r.Context(), name); err != nil {
		writeError(w, errorFor(r.Context(), err, s.cfg().Server.RequestTimeout))
		return
	}
	m, _ := s.pool.Model(name)
	writeJSON(w, http.StatusOK, map[string]any{"status": "unloaded", "model_name": name, "model": m})
}

func (s *Server) performance(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.pool.Performance())
}

func (s *Server) optimize(w http.ResponseWriter, r *http.Request) {
	// An empty body is fine; anything else must be a JSON object.
	if r.ContentLength != 0 {
		var empty struct{}
		if e := decodeBody(r, &empty, true); e != nil && e.Message != "the request body is empty; send a JSON object" {
			writeError(w, e)
			return
		}
	}
	rep := s.pool.Optimize(r.Context())
	writeJSON(w, http.StatusOK, optimizeResponse{OptimizeReport: rep, Message: s.optimizeMessage(rep)})
}

// optimizeResponse is the pool's report and a sentence that says what was
// done, or why nothing was.
type optimizeResponse struct {
	pool.OptimizeReport
	Message string `json:"message"`
}

func (s *Server) optimizeMessage(rep pool.OptimizeReport) string {
	if n := len(rep.Unloaded); n > 0 {
		return fmt.Sprintf("unloaded %d model(s) (%s), freed %d bytes", n, strings.Join(rep.Unloaded, ", "), rep.FreedBytes)
	}
	for _, m := range s.pool.Models() {
		if m.State == pool.StateReady {
			return "nothing to unload: no idle model is past its keep_alive and memory is above the reserve (memory.reserve)"
		}
	}
	return "nothing to unload: no model is loaded"
}

func (s *Server) unknownModel(name string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "model_not_found", Param: "model",
		Message: "unknown model " + quote(name) + "; configured models: " + joinNames(s.cfg().ModelNames())}
}
