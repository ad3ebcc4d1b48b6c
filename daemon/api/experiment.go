package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/experiment"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
)

// Experiments on the request path: a request that names an experiment as
// its model is given a variant (package experiment), runs on the variant's
// model, falls over to the other variants when that one cannot serve, and
// is counted in the variant's figures. In shadow mode the other variants
// get a detached copy.

// expCanFallBack: what makes hybrid selection fall back, and a throttled
// or crashed model too (an experiment's variants are interchangeable by
// design).
func expCanFallBack(err error) bool {
	var (
		te *pool.ThrottledError
		mf *pool.ModelFailedError
	)
	return canFallBack(err) || errors.As(err, &te) || errors.As(err, &mf)
}

// stickyKey is the request's key for e and how it was found.
func stickyKey(e *config.Experiment, j genJob) (key, how string) {
	switch {
	case e.Mode == config.ModeShadow:
		return "", "shadow mode: the first variant answers"
	case e.Sticky == config.StickyNone:
		return "", "assigned per request (sticky = \"none\")"
	case e.Sticky == config.StickyUser:
		if j.user == "" {
			return "", "no \"user\" in the request: assigned at random"
		}
		return "user:" + j.user, "assigned by the request's \"user\""
	}
	h := e.StickyHeader()
	if v := j.header.Get(h); v != "" {
		return "header:" + v, "assigned by the header " + h
	}
	return "", "no " + h + " header: assigned at random"
}

func weightsString(e *config.Experiment) string {
	var ws []string
	for _, v := range e.Variants {
		ws = append(ws, fmt.Sprintf("%s=%d", v.Name, v.Weight))
	}
	return strings.Join(ws, " ")
}

// runExperiment serves j through experiment e.
func (s *Server) runExperiment(ctx context.Context, e *config.Experiment, j genJob) (outcome, error) {
	out := outcome{Selection: Selection{Mode: "experiment", Experiment: e.Name}}
	key, how := stickyKey(e, j)
	var order []int
	if e.Mode == config.ModeShadow {
		for i := range e.Variants {
			order = append(order, i)
		}
	} else {
		order = experiment.Assign(e, key)
		how += " (weights " + weightsString(e) + ")"
	}
	emitted := false
	onText := j.onText
	if onText != nil {
		inner := onText
		onText = func(t string) { emitted = true; inner(t) }
	}
	var skipped []string
	for i, idx := range order {
		v := e.Variants[idx]
		last := i == len(order)-1
		if st, ok := s.pool.Model(v.Model); ok && !last && (st.State == pool.StateFailed || st.State == pool.StateUnavailable) {
			skipped = append(skipped, fmt.Sprintf("variant %q (%s) is %s", v.Name, quote(v.Model), st.State))
			continue
		}
		start := time.Now()
		res, err := s.attempt(ctx, v.Model, j, onText)
		out.Model, out.Result = v.Model, res
		out.Selection.Variant = v.Name
		fell := len(skipped) > 0
		s.recordVariant(ctx, e.Name, v.Name, res, err, fell, start, j.cache.hit())
		if err == nil || emitted || last || ctx.Err() != nil || !expCanFallBack(err) {
			out.Selection.Reason = fmt.Sprintf("experiment %q: variant %q (%s); %s", e.Name, v.Name, quote(v.Model), how)
			if fell {
				out.Selection.FellBack = true
				out.Selection.Reason = fmt.Sprintf("experiment %q: %s; fell back to variant %q (%s); %s", e.Name, strings.Join(skipped, "; "), v.Name, quote(v.Model), how)
			}
			if err == nil && e.Mode == config.ModeShadow && idx == 0 {
				s.shadowCopies(e, j, res)
			}
			if err == nil && j.respID != "" {
				s.exps.Served(j.respID, e.Name, v.Name)
			}
			return out, err
		}
		skipped = append(skipped, fmt.Sprintf("variant %q (%s) could not serve (%s)", v.Name, quote(v.Model), errorFor(ctx, err, 0).Message))
	}
	return out, &Error{Status: http.StatusServiceUnavailable, Code: "no_model", Message: fmt.Sprintf("experiment %q: no variant can serve: %s", e.Name, strings.Join(skipped, "; "))}
}

// recordVariant counts one attempt in its variant's figures. A client that
// went away is nobody's error; a cached answer counts as a request and its
// tokens but says nothing about the model's speed.
func (s *Server) recordVariant(ctx context.Context, exp, variant string, res runner.Result, err error, fell bool, start time.Time, cached bool) {
	if err != nil && ctx.Err() != nil {
		return
	}
	o := experiment.Outcome{Experiment: exp, Variant: variant, OK: err == nil, FellBack: fell,
		PromptTokens: res.Timings.PromptTokens, GeneratedTokens: res.Timings.GeneratedTokens}
	if err == nil && !cached {
		o.Latency = time.Since(start)
		o.TTFT = time.Duration(res.Timings.FirstTokenMS * float64(time.Millisecond))
		if res.Timings.GenerationMS > 0 {
			o.TokensPerSecond = float64(res.Timings.GeneratedTokens) * 1000 / res.Timings.GenerationMS
		}
	}
	s.exps.Record(o)
}

// shadowCopies queues a copy of j for each shadow variant of e. A copy is
// skipped when the box is throttled, when its model is not loaded and
// would not fit beside the others without evicting, or when its model has
// no free slot (a copy must not take a queue place from real traffic);
// it is dropped when the shadow queue is full. Its answer is discarded.
func (s *Server) shadowCopies(e *config.Experiment, j genJob, primary runner.Result) {
	cfg := s.cfg()
	for _, v := range e.Variants[1:] {
		if why := s.shadowSkip(cfg, v.Model); why != "" {
			s.exps.ShadowDropped(e.Name, true)
			continue
		}
		m, ok := cfg.Lookup(v.Model)
		if !ok {
			continue
		}
		req, bad := j.build(m)
		if bad != nil {
			continue
		}
		exp, name, model := e.Name, v.Name, v.Model
		timeout := cfg.Server.RequestTimeout
		queued := s.shadow.Submit(func(ctx context.Context) {
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			start := time.Now()
			res, err := s.pool.Complete(ctx, model, req, nil)
			o := experiment.Outcome{Experiment: exp, Variant: name, Shadow: true, OK: err == nil,
				PromptTokens: res.Timings.PromptTokens, GeneratedTokens: res.Timings.GeneratedTokens}
			if err == nil {
				o.Latency = time.Since(start)
				o.TTFT = time.Duration(res.Timings.FirstTokenMS * float64(time.Millisecond))
				if res.Timings.GenerationMS > 0 {
					o.TokensPerSecond = float64(res.Timings.GeneratedTokens) * 1000 / res.Timings.GenerationMS
				}
			}
			s.exps.Record(o)
		})
		if !queued {
			s.exps.ShadowDropped(e.Name, false)
		}
	}
}

// throttler is the pool's thermal state, where the pool has one.
type throttler interface{ ThrottleStatus() pool.ThrottleStatus }

func (s *Server) shadowSkip(cfg *config.Config, model string) string {
	if t, ok := s.pool.(throttler); ok {
		if lv := t.ThrottleStatus().Level; lv != "" && lv != "normal" {
			return "throttled"
		}
	}
	st, ok := s.pool.Model(model)
	if !ok {
		return "unknown model"
	}
	ps := s.pool.Status()
	if ps.MemAvailable > 0 && ps.MemAvailable < ps.Reserve {
		return "short of memory"
	}
	if st.State != pool.StateReady {
		if st.State != pool.StateUnloaded || ps.Used+st.EstimatedBytes > ps.Budget {
			return "short of memory"
		}
	}
	if m, ok := cfg.Lookup(model); ok && (st.Queued > 0 || st.Active >= m.Parallel) {
		return "no free slot"
	}
	return ""
}

// feedbackRequest is the body of POST /feedback.
type feedbackRequest struct {
	ID     string   `json:"id"`
	Score  *float64 `json:"score"`
	Thumbs string   `json:"thumbs"`
}

func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	var req feedbackRequest
	if e := decodeBody(r, &req, true); e != nil {
		writeError(w, e)
		return
	}
	switch {
	case req.ID == "":
		writeError(w, badRequest("id", "id is empty: send the \"id\" of an answer of an experiment"))
		return
	case req.Score == nil && req.Thumbs == "":
		writeError(w, badRequest("score", "send a \"score\" (a number), \"thumbs\" (\"up\" or \"down\"), or both"))
		return
	case req.Thumbs != "" && req.Thumbs != "up" && req.Thumbs != "down":
		writeError(w, badRequest("thumbs", "thumbs must be \"up\" or \"down\", not %q", req.Thumbs))
		return
	case req.Score != nil && (math.IsNaN(*req.Score) || math.IsInf(*req.Score, 0) || math.Abs(*req.Score) > 1e9):
		writeError(w, badRequest("score", "score must be a finite number"))
		return
	}
	exp, variant, err := s.exps.Rate(experiment.Feedback{ID: req.ID, Score: req.Score, Thumbs: req.Thumbs})
	if err != nil {
		var fe *experiment.FeedbackError
		if errors.As(err, &fe) {
			writeError(w, &Error{Status: fe.HTTPStatus(), Code: fe.Code(), Message: fe.Error(), Param: "id"})
			return
		}
		writeError(w, errorFor(r.Context(), err, 0))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": req.ID, "experiment": exp, "variant": variant, "recorded": true})
}

// Experiments returns the experiments' reports, in config order (all
// when name is ""); ok is false for an unknown name.
func (s *Server) Experiments(name string) ([]experiment.Report, bool) {
	mem := func(model string) uint64 {
		if st, ok := s.pool.Model(model); ok {
			return st.ChargedBytes
		}
		return 0
	}
	if name != "" {
		r, ok := s.exps.Report(name, mem)
		if !ok {
			return nil, false
		}
		return []experiment.Report{r}, true
	}
	var names []string
	for _, e := range s.cfg().Experiments {
		names = append(names, e.Name)
	}
	return s.exps.Reports(names, mem), true
}
