package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
)

// Selection says which way the model was chosen and why.
type Selection struct {
	// Mode is "manual" (the request named the model), "auto" (automatic
	// selection), "hybrid" (a preferred model with a fallback) or "default"
	// (the request named none: router.default_model).
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
	// Experiment and Variant name the experiment the request named and
	// the variant that answered (mode "experiment"); FellBack says the
	// assigned variant could not serve and another one did.
	Experiment string `json:"experiment,omitempty"`
	Variant    string `json:"variant,omitempty"`
	FellBack   bool   `json:"fell_back,omitempty"`
}

// selectSpec is what a request says about its model.
type selectSpec struct {
	Model     string // name or alias; "auto" means automatic
	Auto      bool
	Preferred string
	Fallback  string // "auto", a model name, or "" (none)
}

func (sp selectSpec) validate() *Error {
	switch {
	case sp.Auto && sp.Model != "" && sp.Model != "auto":
		return badRequest("auto_select", "give either \"model\" or \"auto_select\": true, not both")
	case sp.Preferred != "" && (sp.Model != "" || sp.Auto):
		return badRequest("preferred_model", "\"preferred_model\" (with \"fallback\") is a mode of its own; leave out \"model\" and \"auto_select\"")
	case sp.Fallback != "" && sp.Preferred == "":
		return badRequest("fallback", "\"fallback\" goes with \"preferred_model\"")
	}
	return nil
}

// estimate is what automatic selection knows about a request.
type estimate struct {
	PromptTokens int  // ≈ bytes / 4
	MaxTokens    int  // requested; 0 when left out
	Structured   bool // code fences, braces, a grammar or a JSON schema
	why          string
}

// estimateFor looks at a prompt (or the chat messages' text) and the
// request's settings. It is deliberately simple so that its answers can be
// explained: about four bytes per token; code or structured content when
// the text holds a ``` fence or a {…} pair, or the request constrains the
// output with a grammar or a JSON schema.
func estimateFor(text string, f *sampleFields, extraStructured bool) estimate {
	e := estimate{PromptTokens: (len(text) + 3) / 4}
	if f.MaxTokens != nil {
		e.MaxTokens = *f.MaxTokens
	}
	switch {
	case f.structured() || extraStructured:
		e.Structured, e.why = true, "structured output requested"
	case strings.Contains(text, "```"):
		e.Structured, e.why = true, "code fence in the prompt"
	case strings.Contains(text, "{") && strings.Contains(text, "}"):
		e.Structured, e.why = true, "braces in the prompt"
	}
	return e
}

func (e estimate) String() string {
	mt := "default"
	if e.MaxTokens > 0 {
		mt = fmt.Sprint(e.MaxTokens)
	}
	st := "no"
	if e.Structured {
		st = "yes (" + e.why + ")"
	}
	return fmt.Sprintf("prompt ≈%d tokens, max_tokens %s, structured %s", e.PromptTokens, mt, st)
}

func fits(t *config.Tier, e estimate) bool {
	return (t.MaxPromptTokens == 0 || e.PromptTokens <= t.MaxPromptTokens) &&
		(t.MaxTokens == 0 || e.MaxTokens <= t.MaxTokens) &&
		(!e.Structured || t.Structured)
}

// resident are the models that can answer without a load (ready, or
// already loading).
func (s *Server) resident() map[string]bool {
	out := map[string]bool{}
	for _, m := range s.pool.Models() {
		if m.State == "ready" || m.State == "loading" {
			out[m.Name] = true
		}
	}
	return out
}

// autoPick is automatic selection. config.Router.Select maps the estimate
// onto the smallest tier that fits. Within it, a model that is already
// loaded wins over one that needs a load; failing that, a loaded model of a
// larger tier that also fits wins over a swap; failing that, the tier's
// first model (which the pool loads). exclude is a model that just failed
// (hybrid fallback). Deterministic for a given estimate and pool state.
func (s *Server) autoPick(e estimate, exclude string) (string, string) {
	r := &s.cfg().Router
	if len(r.Tiers) == 0 {
		if d := r.DefaultModel; d != "" && d != exclude {
			return d, e.String() + "; no router tiers are configured, so the default model " + quote(d)
		}
		for _, m := range s.cfg().Models {
			if m.Name != exclude {
				return m.Name, e.String() + "; no router tiers are configured, and the default model is excluded: " + quote(m.Name)
			}
		}
		return "", "no model to select"
	}
	t := r.Select(config.Request{PromptTokens: e.PromptTokens, MaxTokens: e.MaxTokens, Structured: e.Structured})
	idx := 0
	for i := range r.Tiers {
		if &r.Tiers[i] == t {
			idx = i
		}
	}
	head := e.String() + " → tier " + quote(t.Name)
	if !fits(t, e) {
		head += " (no tier fits; the largest)"
	}
	loaded := s.resident()
	for _, m := range t.Models {
		if m != exclude && loaded[m] {
			return m, head + "; " + quote(m) + " is loaded"
		}
	}
	for i := idx + 1; i < len(r.Tiers); i++ {
		if !fits(&r.Tiers[i], e) {
			continue
		}
		for _, m := range r.Tiers[i].Models {
			if m != exclude && loaded[m] {
				return m, head + " has no loaded model; " + quote(m) + " of the larger tier " + quote(r.Tiers[i].Name) + " is loaded and fits, so no swap"
			}
		}
	}
	for i := idx; i < len(r.Tiers); i++ {
		for _, m := range r.Tiers[i].Models {
			if m != exclude {
				if i == idx {
					return m, head + "; " + quote(m) + " (to be loaded)"
				}
				return m, head + "; " + quote(m) + " of tier " + quote(r.Tiers[i].Name) + " (to be loaded)"
			}
		}
	}
	if d := r.DefaultModel; d != "" && d != exclude {
		return d, head + " has no usable model; the default model " + quote(d)
	}
	return "", head + "; no usable model"
}

// outcome is a finished generation.
type outcome struct {
	Model     string
	Selection Selection
	Result    runner.Result
}

// genJob is one completion to run.
type genJob struct {
	spec  selectSpec
	est   estimate
	build func(m *config.Model) (runner.Request, *Error)
	// before is called with the model's name before each attempt; onText
	// receives the text as it is generated.
	before func(model string)
	onText func(string)
	// cache is what the response cache did (nil: the cache is off).
	cache *cacheNote
	// user and header are an experiment's sticky keys; respID is the
	// answer's id, which feedback names.
	user   string
	header http.Header
	respID string
	// images are the request's images as given; generate checks them
	// once (images.go) into imageData, which attempt hands the runner.
	images    []imageRef
	imageData [][]byte
}

// generate chooses the model and runs the completion. In hybrid mode a
// preferred model that cannot serve (not configured, no room, load failed,
// queue full, runner died, prompt too long, no chat template) gives way to
// the fallback, provided nothing was streamed yet.
func (s *Server) generate(ctx context.Context, j genJob) (outcome, error) {
	var out outcome
	var model string
	if len(j.images) > 0 && j.imageData == nil {
		data, e := s.loadImages(ctx, j.images)
		if e != nil {
			return out, e
		}
		j.imageData = data
	}
	// notFound fails with the name the client asked for as out.Model, so
	// that the failure's log entry (journal field MODEL) names it; param is
	// the field that named it.
	notFound := func(name, param string) (outcome, error) {
		out.Model = name
		e := s.unknownModel(name)
		e.Param = param
		if param == "fallback" {
			e.Message += `; fallback takes a model name or "auto"`
		}
		return out, e
	}
	switch {
	case j.spec.Preferred != "":
		out.Selection.Mode = "hybrid"
		canon, ok := s.pool.Resolve(j.spec.Preferred)
		exclude := canon
		if ok {
			out.Selection.Reason = "preferred model " + asked(j.spec.Preferred, canon)
			emitted := false
			onText := j.onText
			if onText != nil {
				inner := onText
				onText = func(t string) { emitted = true; inner(t) }
			}
			res, err := s.attempt(ctx, canon, j, onText)
			out.Model, out.Result = canon, res
			if err == nil || emitted || j.spec.Fallback == "" || !canFallBack(err) {
				return out, err
			}
			out.Selection.Reason = fmt.Sprintf("preferred model %s could not serve (%s); ", asked(j.spec.Preferred, canon), errorFor(ctx, err, 0).Message)
		} else {
			if j.spec.Fallback == "" {
				return notFound(j.spec.Preferred, "preferred_model")
			}
			out.Selection.Reason = "preferred model " + quote(j.spec.Preferred) + " is not configured; "
		}
		if j.spec.Fallback == "auto" {
			m, why := s.autoPick(j.est, exclude)
			if m == "" {
				return out, &Error{Status: http.StatusServiceUnavailable, Code: "no_model", Message: out.Selection.Reason + why}
			}
			model = m
			out.Selection.Reason += "fallback auto: " + why
		} else {
			fb, ok := s.pool.Resolve(j.spec.Fallback)
			if !ok {
				return notFound(j.spec.Fallback, "fallback")
			}
			model = fb
			out.Selection.Reason += "fallback " + asked(j.spec.Fallback, fb)
		}
	case j.spec.Auto || j.spec.Model == "auto":
		out.Selection.Mode = "auto"
		m, why := s.autoPick(j.est, "")
		if m == "" {
			return out, &Error{Status: http.StatusServiceUnavailable, Code: "no_model", Message: why}
		}
		model, out.Selection.Reason = m, why
	case j.spec.Model != "":
		if e, ok := s.cfg().Experiment(j.spec.Model); ok {
			return s.runExperiment(ctx, e, j) // experiment.go
		}
		out.Selection.Mode = "manual"
		canon, ok := s.pool.Resolve(j.spec.Model)
		if !ok {
			return notFound(j.spec.Model, "model")
		}
		model = canon
		out.Selection.Reason = "requested"
		if canon != j.spec.Model {
			out.Selection.Reason = "requested as alias " + quote(j.spec.Model)
		}
	default:
		out.Selection.Mode = "default"
		model = s.cfg().Router.DefaultModel
		out.Selection.Reason = "no model named; router.default_model"
		if model == "" {
			return out, &Error{Status: http.StatusServiceUnavailable, Code: "no_model", Message: "no models are configured"}
		}
	}
	res, err := s.attempt(ctx, model, j, j.onText)
	out.Model, out.Result = model, res
	return out, err
}

func (s *Server) attempt(ctx context.Context, model string, j genJob, onText func(string)) (runner.Result, error) {
	m, ok := s.cfg().Lookup(model)
	if !ok {
		return runner.Result{}, s.unknownModel(model)
	}
	req, e := j.build(m)
	if e != nil {
		return runner.Result{}, e
	}
	if len(j.imageData) > 0 {
		if m.Mmproj == "" {
			return runner.Result{}, noVision(model)
		}
		req.Images = j.imageData
	}
	if j.before != nil {
		j.before(model)
	}
	return s.complete(ctx, m, req, j.cache, onText) // respcache.go
}

// asked names a model as the request named it, and by its own name when
// that was an alias: `"gpt2" (alias of "story")`.
func asked(name, canon string) string {
	if name == canon {
		return quote(canon)
	}
	return quote(name) + " (alias of " + quote(canon) + ")"
}

func canFallBack(err error) bool {
	var (
		qf *pool.QueueFullError
		nr *pool.NoRoomError
		lf *pool.LoadFailedError
		ue *pool.UnavailableError
		re *runner.RequestError
	)
	switch {
	case errors.Is(err, pool.ErrUnknownModel), errors.As(err, &qf), errors.As(err, &nr), errors.As(err, &lf), errors.As(err, &ue), errors.Is(err, runner.ErrExited):
		return true
	case errors.As(err, &re):
		return re.Reason == runner.CodeContextOverflow || re.Reason == runner.CodeNoChatTemplate || re.Reason == runner.CodeBusy
	}
	return false
}
