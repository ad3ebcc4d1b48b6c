package api

import (
	"net/http"
	"time"

	"github.com/jetai/jetai/daemon/pool"
)

// readyRetryAfter is what an unready answer suggests to a client that
// reads Retry-After; probes and load balancers keep their own interval.
const readyRetryAfter = 5 * time.Second

// Readiness codes: the reason an unready /ready gives, in its error's code.
const (
	ReadyStarting      = "starting"       // listeners up, preloads or the pool not yet started
	ReadyDraining      = "draining"       // shutting down: requests in flight finish, no new ones
	ReadyShedding      = "shedding"       // the thermal policy is at its hard limit
	ReadyNoModel       = "no_model_ready" // every model is unavailable or failed (or none is configured)
	ReadyModelNotReady = "model_not_ready"
)

// readyAnswer is /ready's 200 body.
type readyAnswer struct {
	Status string `json:"status"` // "ready"
	// Model and State answer ?model=NAME: the canonical name and its state
	// (ready, or one from which a request loads it).
	Model string `json:"model,omitempty"`
	State string `json:"state,omitempty"`
}

// ready is the readiness answer for routers and Kubernetes: unlike
// /health (liveness: the process serves), it says whether new requests
// should be sent here. It is 503 while draining, while the thermal policy
// sheds (whose hysteresis keeps it from flapping), when no model can load,
// and with ?model=NAME when that model can neither serve nor load. Like
// /health it needs no API key and answers any Host; it shows model names
// only as the caller gave them.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	notReady := func(code, msg string) {
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: code, Message: msg, RetryAfter: readyRetryAfter})
	}
	switch st := s.state.Load(); {
	case st == StateStopping:
		notReady(ReadyDraining, "jetaid is shutting down: it finishes the requests in flight and takes no new ones")
		return
	case st == StateStarting || !s.pool.Ready():
		notReady(ReadyStarting, "jetaid is starting")
		return
	}
	if s.shedding != nil {
		if shed, why := s.shedding(); shed {
			msg := "jetaid sheds load for heat (thermal hard limit)"
			if why != "" {
				msg += ": " + why
			}
			notReady(ReadyShedding, msg+"; it is ready again once it has cooled below the hard limit less the hysteresis")
			return
		}
	}
	if name := r.URL.Query().Get("model"); name != "" {
		canon, ok := s.pool.Resolve(name)
		if !ok {
			writeError(w, &Error{Status: http.StatusNotFound, Code: "model_not_found", Param: "model",
				Message: "unknown model " + quote(name)})
			return
		}
		m, _ := s.pool.Model(canon)
		if !loadable(m.State) {
			notReady(ReadyModelNotReady, "model "+quote(name)+" is "+m.State+"; see GET /status")
			return
		}
		writeJSON(w, http.StatusOK, readyAnswer{Status: "ready", Model: canon, State: m.State})
		return
	}
	for _, m := range s.pool.Models() {
		if loadable(m.State) {
			writeJSON(w, http.StatusOK, readyAnswer{Status: "ready"})
			return
		}
	}
	notReady(ReadyNoModel, "no model can serve: every configured model is unavailable or failed (or none is configured); see GET /status")
}

// loadable reports whether a model in state st serves a request now or
// loads for it. A failed model is retried by the next request, but its
// last load failed, so a router does better elsewhere until a load
// (POST /load_model, a reload, the file being fixed) succeeds.
func loadable(st string) bool {
	switch st {
	case pool.StateFailed, pool.StateUnavailable:
		return false
	}
	return true
}
