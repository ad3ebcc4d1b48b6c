package admin

import (
	"context"
	"net/http"
)

// The benchmark runs in the daemon, where the engine is: POST /v1/bench
// with a BenchRequest answers an NDJSON stream of BenchFrames (progress
// lines, then the result or an error); closing the connection cancels it.
// A Backend without Benchmarker answers 501.

// Benchmarker is implemented by a Backend that can benchmark its models.
type Benchmarker interface {
	// Bench measures a configured model as the daemon serves it against
	// the raw engine on the same file and shape; onLog gets progress lines.
	Bench(ctx context.Context, req BenchRequest, onLog func(string)) (BenchResult, error)
}

// BenchRequest sizes a benchmark of Model. Zero values take defaults from
// the model's config (see jetai-ctl help bench).
type BenchRequest struct {
	Model        string `json:"model"`
	Streams      []int  `json:"streams,omitempty"` // concurrency levels, each ≤ the model's parallel
	PromptTokens int    `json:"prompt_tokens,omitempty"`
	GenTokens    int    `json:"gen_tokens,omitempty"`
	Threads      int    `json:"threads,omitempty"` // raw engine's threads; 0: the model's
	// Verbose includes llama.cpp's whole log of the raw engine in the
	// progress lines; otherwise only its errors.
	Verbose bool `json:"verbose,omitempty"`
}

// BenchResult is a finished benchmark: its rows and the same rows as the
// table `make bench` prints.
type BenchResult struct {
	Model   string     `json:"model"`
	Path    string     `json:"path"`
	Threads int        `json:"threads"`
	Rows    []BenchRow `json:"rows"`
	Table   string     `json:"table,omitempty"`
}

// BenchRow is one measured figure in tokens per second: the raw engine's,
// the daemon's, their ratio and its target (0: none).
type BenchRow struct {
	Model   string  `json:"model"`
	Metric  string  `json:"metric"`
	Raw     float64 `json:"raw"`
	Runner  float64 `json:"runner"`
	Target  float64 `json:"target"`
	PairMin float64 `json:"pair_min"`
	PairMax float64 `json:"pair_max"`
	// Voluntary context switches per generated token; -1: not counted.
	RawWakeups    float64 `json:"raw_wakeups_per_token"`
	RunnerWakeups float64 `json:"runner_wakeups_per_token"`
	Ratio         float64 `json:"ratio"`
}

// BenchFrame is one line of a bench stream.
type BenchFrame struct {
	Log    string       `json:"log,omitempty"`
	Result *BenchResult `json:"result,omitempty"`
	Error  *Error       `json:"error,omitempty"`
}

// FindModel finds a model by name or alias.
func FindModel(ms []Model, name string) (Model, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
		for _, a := range m.Aliases {
			if a == name {
				return m, true
			}
		}
	}
	return Model{}, false
}

// Sized fills the request's defaults from the model's shape and checks
// that the run fits it (a 400 Error when not): streams up to its parallel
// (higher levels are dropped), prompt plus generated tokens inside its
// context.
func (req BenchRequest) Sized(m Model) (BenchRequest, error) {
	if len(req.Streams) == 0 {
		req.Streams = []int{1, 2, 4, 8}
	}
	var levels []int
	for _, n := range req.Streams {
		if n < 1 {
			return req, Errorf(http.StatusBadRequest, CodeBadRequest, "bad stream level %d: want numbers like 1,2,4,8", n)
		}
		if n <= m.Parallel {
			levels = append(levels, n)
		}
	}
	if len(levels) == 0 {
		return req, Errorf(http.StatusBadRequest, CodeBadRequest, "no stream level fits the model's parallel = %d", m.Parallel)
	}
	req.Streams = levels
	if req.PromptTokens <= 0 {
		req.PromptTokens = min(256, m.Context/4)
	}
	if req.GenTokens <= 0 {
		req.GenTokens = min(512, m.Context/2)
	}
	if req.PromptTokens+req.GenTokens+16 > m.Context {
		return req, Errorf(http.StatusBadRequest, CodeBadRequest, "%d prompt tokens + %d generated tokens do not fit the model's context of %d tokens", req.PromptTokens, req.GenTokens, m.Context)
	}
	if req.Threads <= 0 {
		req.Threads = m.Threads
	}
	return req, nil
}

func (s *Server) routeBench(m *http.ServeMux) {
	b, ok := s.opts.Backend.(Benchmarker)
	if !ok {
		m.HandleFunc("POST /v1/bench", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, Errorf(http.StatusNotImplemented, CodeNotSupported, "this daemon cannot run benchmarks"))
		})
		return
	}
	m.HandleFunc("POST /v1/bench", func(w http.ResponseWriter, r *http.Request) {
		var req BenchRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		if req.Model == "" {
			writeError(w, Errorf(http.StatusBadRequest, CodeBadRequest, `give the model: {"model": "NAME"}`))
			return
		}
		out := s.newNDJSON(w)
		res, err := b.Bench(r.Context(), req, func(line string) { out.send(BenchFrame{Log: line}) })
		switch {
		case err != nil && !out.started:
			writeError(w, err)
		case err != nil:
			out.send(BenchFrame{Error: asError(err, http.StatusInternalServerError, CodeInternal)})
		default:
			out.send(BenchFrame{Result: &res})
		}
	})
}

// Bench runs a benchmark in the daemon; onLog (may be nil) gets its
// progress lines. Cancelling ctx stops it.
func (c *Client) Bench(ctx context.Context, req BenchRequest, onLog func(string)) (BenchResult, error) {
	return readStream[string, BenchResult](ctx, c, "/v1/bench", "log", req, onLog)
}
