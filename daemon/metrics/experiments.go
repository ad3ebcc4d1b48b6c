package metrics

import "github.com/jetai/jetai/daemon/experiment"

func init() {
	for name, f := range map[string]family{
		"jetai_experiment_requests_total":         {"counter", "Requests an experiment's variant answered or failed (shadow copies not included), by experiment and variant."},
		"jetai_experiment_errors_total":           {"counter", "Requests that failed on the variant."},
		"jetai_experiment_fell_back_total":        {"counter", "Requests the variant served for another variant that could not."},
		"jetai_experiment_shadow_runs_total":      {"counter", "Shadow copies the variant ran (shadow mode)."},
		"jetai_experiment_shadow_errors_total":    {"counter", "Shadow copies that failed on the variant."},
		"jetai_experiment_prompt_tokens_total":    {"counter", "Prompt tokens of the variant's answers."},
		"jetai_experiment_generated_tokens_total": {"counter", "Generated tokens of the variant's answers."},
		"jetai_experiment_tokens_per_second":      {"gauge", "Mean generation speed of the variant's answers."},
		"jetai_experiment_ttft_seconds":           {"gauge", "Time to first token of the variant's answers: mean, and the 0.5 and 0.95 quantiles of the last 1,024."},
		"jetai_experiment_latency_seconds":        {"gauge", "Whole-request latency of the variant's answers: mean, and the 0.5 and 0.95 quantiles of the last 1,024."},
		"jetai_experiment_feedback_total":         {"counter", "Thumbs up and down given to the variant's answers by POST /feedback."},
		"jetai_experiment_score_mean":             {"gauge", "Mean feedback score of the variant's answers."},
		"jetai_experiment_memory_charged_bytes":   {"gauge", "Memory the variant's model counts against the budget now."},
		"jetai_experiment_shadow_not_run_total":   {"counter", "Shadow copies not run, by reason: dropped (queue full) or skipped (throttled, short of memory, no free slot)."},
	} {
		families[name] = f
	}
}

// AttachExperiments adds the experiments' families (labels experiment and
// variant).
func (r *Registry) AttachExperiments(reports func() []experiment.Report) {
	r.AttachWriter(func(o *writer) {
		rs := reports()
		type vsample struct {
			fam    string
			v      float64
			labels []string
		}
		var all []vsample
		for _, e := range rs {
			el := label("experiment", e.Name)
			all = append(all, vsample{"jetai_experiment_shadow_not_run_total", float64(e.ShadowDropped), []string{el, label("reason", "dropped")}},
				vsample{"jetai_experiment_shadow_not_run_total", float64(e.ShadowSkipped), []string{el, label("reason", "skipped")}})
			for _, v := range e.Variants {
				ls := []string{el, label("variant", v.Name)}
				add := func(fam string, x float64, extra ...string) {
					all = append(all, vsample{fam, x, append(append([]string(nil), ls...), extra...)})
				}
				add("jetai_experiment_requests_total", float64(v.Requests))
				add("jetai_experiment_errors_total", float64(v.Errors))
				add("jetai_experiment_fell_back_total", float64(v.FellBack))
				add("jetai_experiment_shadow_runs_total", float64(v.ShadowRuns))
				add("jetai_experiment_shadow_errors_total", float64(v.ShadowErrors))
				add("jetai_experiment_prompt_tokens_total", float64(v.PromptTokens))
				add("jetai_experiment_generated_tokens_total", float64(v.GeneratedTokens))
				if v.TokensPerSecond.Mean != nil {
					add("jetai_experiment_tokens_per_second", *v.TokensPerSecond.Mean)
				}
				for _, m := range []struct {
					fam string
					m   experiment.Metric
				}{{"jetai_experiment_ttft_seconds", v.TTFTMS}, {"jetai_experiment_latency_seconds", v.LatencyMS}} {
					if m.m.Mean != nil {
						add(m.fam, *m.m.Mean/1000, label("stat", "mean"))
					}
					if m.m.P50 != nil {
						add(m.fam, *m.m.P50/1000, label("stat", "p50"))
					}
					if m.m.P95 != nil {
						add(m.fam, *m.m.P95/1000, label("stat", "p95"))
					}
				}
				add("jetai_experiment_feedback_total", float64(v.ThumbsUp), label("thumbs", "up"))
				add("jetai_experiment_feedback_total", float64(v.ThumbsDown), label("thumbs", "down"))
				if v.Score.Mean != nil {
					add("jetai_experiment_score_mean", *v.Score.Mean)
				}
				add("jetai_experiment_memory_charged_bytes", float64(v.MemoryChargedBytes))
			}
		}
		// Each family in one piece, as the exposition format wants.
		seen := map[string]bool{}
		for _, s := range all {
			if seen[s.fam] {
				continue
			}
			seen[s.fam] = true
			for _, t := range all {
				if t.fam == s.fam {
					o.sample(t.fam, t.v, t.labels...)
				}
			}
		}
	})
}
