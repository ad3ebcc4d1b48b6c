package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Experiments (A/B tests between models): an optional part of the
// Backend. The endpoints, under /v1:
//
//	GET /v1/experiments         []ExperimentReport, every experiment in config order
//	GET /v1/experiments/{name}  []ExperimentReport with the one; 404 for an unknown name
//
// A Backend without Experiments answers them 501.

// Experimenter is implemented by a Backend that runs experiments.
type Experimenter interface {
	// Experiments returns the reports (all when name is ""); an unknown
	// name is an error with code not_found.
	Experiments(ctx context.Context, name string) ([]ExperimentReport, error)
}

// ExperimentMetric is a continuous metric of one variant: count, mean, the
// half-width of the mean's 95% confidence interval, p50 and p95 where
// they apply. Absent figures are nil.
type ExperimentMetric struct {
	N    int64    `json:"n"`
	Mean *float64 `json:"mean,omitempty"`
	CI95 *float64 `json:"ci95,omitempty"`
	P50  *float64 `json:"p50,omitempty"`
	P95  *float64 `json:"p95,omitempty"`
}

// VariantReport is one variant's figures.
type VariantReport struct {
	Name               string           `json:"name"`
	Model              string           `json:"model"`
	Weight             int              `json:"weight"`
	Share              float64          `json:"share"`
	Requests           int64            `json:"requests"`
	Errors             int64            `json:"errors"`
	FellBack           int64            `json:"fell_back"`
	ShadowRuns         int64            `json:"shadow_runs,omitempty"`
	ShadowErrors       int64            `json:"shadow_errors,omitempty"`
	PromptTokens       int64            `json:"prompt_tokens"`
	GeneratedTokens    int64            `json:"generated_tokens"`
	TokensPerSecond    ExperimentMetric `json:"tokens_per_second"`
	TTFTMS             ExperimentMetric `json:"ttft_ms"`
	LatencyMS          ExperimentMetric `json:"latency_ms"`
	Score              ExperimentMetric `json:"score"`
	ThumbsUp           int64            `json:"thumbs_up"`
	ThumbsDown         int64            `json:"thumbs_down"`
	MemoryChargedBytes uint64           `json:"memory_charged_bytes"`
}

// Comparison is one metric of variant B against the first variant A:
// Welch's t-test for continuous metrics, the two-proportion z-test for
// rates, and a verdict in words.
type Comparison struct {
	Metric      string   `json:"metric"`
	A           string   `json:"a"`
	B           string   `json:"b"`
	Test        string   `json:"test"`
	Statistic   *float64 `json:"statistic,omitempty"`
	DF          *float64 `json:"df,omitempty"`
	P           *float64 `json:"p,omitempty"`
	Significant bool     `json:"significant"`
	Verdict     string   `json:"verdict"`
}

// ExperimentReport is one experiment's state and figures.
type ExperimentReport struct {
	Name          string          `json:"name"`
	Mode          string          `json:"mode"`
	Sticky        string          `json:"sticky"`
	Since         time.Time       `json:"since"`
	ShadowDropped int64           `json:"shadow_dropped,omitempty"`
	ShadowSkipped int64           `json:"shadow_skipped,omitempty"`
	Variants      []VariantReport `json:"variants"`
	Comparisons   []Comparison    `json:"comparisons"`
}

// routeExperiments adds the experiment endpoints.
func (s *Server) routeExperiments(m *http.ServeMux) {
	ex, ok := s.opts.Backend.(Experimenter)
	handle := func(w http.ResponseWriter, r *http.Request) {
		if !ok {
			writeError(w, Errorf(http.StatusNotImplemented, CodeNotSupported, "this daemon runs no experiments"))
			return
		}
		rs, err := ex.Experiments(r.Context(), r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		if rs == nil {
			rs = []ExperimentReport{}
		}
		writeJSON(w, http.StatusOK, rs)
	}
	m.HandleFunc("GET /v1/experiments", handle)
	m.HandleFunc("GET /v1/experiments/{name}", handle)
}

// Experiments returns the experiments' reports: all of them when name is
// "", else the one (an *Error with code not_found when there is none).
func (c *Client) Experiments(ctx context.Context, name string) ([]ExperimentReport, error) {
	path := "/v1/experiments"
	if name != "" {
		path += "/" + url.PathEscape(name)
	}
	var rs []ExperimentReport
	_, err := c.do(ctx, "GET", path, nil, &rs)
	return rs, err
}
