package ctl

import (
	"context"
	"fmt"
	"strings"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/internal/bytesize"
)

// The experiments command: A/B tests between models.

func init() {
	cmd := &Command{Name: "experiments", Args: "[NAME]", Summary: "show A/B experiments: per-variant figures and whether differences are real", MaxArgs: 1,
		Help: "Without NAME, one line per variant of every experiment. With NAME, each variant's figures as\n" +
			"mean ± the half-width of its 95% confidence interval, then each metric of every variant against\n" +
			"the first: Welch's t-test for speed, time to first token, latency and score, the two-proportion\n" +
			"z-test for error and thumbs-up rates. A verdict says \"not enough data yet\" until the data allow\n" +
			"a call at the 5% level. Feedback comes from POST /feedback.",
		Run: runExperiments}
	n := len(commands)
	if n > 0 && commands[n-1].Name == "help" {
		commands = append(commands[:n-1], cmd, commands[n-1])
	} else {
		commands = append(commands, cmd)
	}
}

func runExperiments(ctx context.Context, e *Env, args []string) error {
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	rs, err := e.Client.Experiments(ctx, name)
	if err != nil {
		return err
	}
	if e.JSON {
		return printJSON(e.Stdout, rs)
	}
	if len(rs) == 0 {
		fmt.Fprintln(e.Stdout, "no experiments are configured (see the experiment block in docs/config.md)")
		return nil
	}
	if name == "" {
		printExperimentList(e, rs)
		return nil
	}
	printExperiment(e, rs[0])
	return nil
}

// fig renders a metric's mean, or "-".
func fig(m admin.ExperimentMetric, digits int) string {
	if m.Mean == nil {
		return "-"
	}
	return fmt.Sprintf("%.*f", digits, *m.Mean)
}

// meanCI renders "mean ± ci (n)".
func meanCI(m admin.ExperimentMetric, digits int) string {
	if m.Mean == nil {
		return "-"
	}
	s := fmt.Sprintf("%.*f", digits, *m.Mean)
	if m.CI95 != nil {
		s += fmt.Sprintf(" ± %.*f", digits, *m.CI95)
	}
	return s + fmt.Sprintf(" (n=%d)", m.N)
}

func pcts(m admin.ExperimentMetric) string {
	if m.P50 == nil || m.P95 == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f", *m.P50, *m.P95)
}

func printExperimentList(e *Env, rs []admin.ExperimentReport) {
	t := newTable(e.Stdout)
	t.row("EXPERIMENT", "MODE", "VARIANT", "MODEL", "WEIGHT", "REQUESTS", "ERRORS", "TOK/S", "TTFT MS", "LATENCY P50/P95 MS", "THUMBS +/-")
	for _, r := range rs {
		for _, v := range r.Variants {
			reqs := fmt.Sprint(v.Requests)
			if r.Mode == "shadow" && v.ShadowRuns > 0 {
				reqs = fmt.Sprintf("%d (shadow)", v.ShadowRuns)
			}
			t.row(r.Name, r.Mode, v.Name, v.Model, fmt.Sprint(v.Weight), reqs, fmt.Sprint(v.Errors+v.ShadowErrors),
				fig(v.TokensPerSecond, 1), fig(v.TTFTMS, 0), pcts(v.LatencyMS), fmt.Sprintf("%d/%d", v.ThumbsUp, v.ThumbsDown))
		}
	}
	t.flush()
}

func printExperiment(e *Env, r admin.ExperimentReport) {
	fmt.Fprintf(e.Stdout, "experiment %s: mode %s, sticky %s, since %s\n", r.Name, r.Mode, r.Sticky, r.Since.Local().Format("2006-01-02 15:04"))
	if r.ShadowDropped+r.ShadowSkipped > 0 {
		fmt.Fprintf(e.Stdout, "shadow copies: %d dropped (queue full), %d skipped (throttled, short of memory or no free slot)\n", r.ShadowDropped, r.ShadowSkipped)
	}
	t := newTable(e.Stdout)
	t.row("VARIANT", "MODEL", "SHARE", "REQUESTS", "ERRORS", "FELL BACK", "TOKENS IN/OUT", "MEMORY")
	for _, v := range r.Variants {
		reqs, errs := v.Requests, v.Errors
		if r.Mode == "shadow" && v.ShadowRuns > 0 {
			reqs, errs = v.ShadowRuns, v.ShadowErrors
		}
		t.row(v.Name, v.Model, fmt.Sprintf("%.0f%%", 100*v.Share), fmt.Sprint(reqs), fmt.Sprint(errs), fmt.Sprint(v.FellBack),
			fmt.Sprintf("%d/%d", v.PromptTokens, v.GeneratedTokens), bytesize.IEC(v.MemoryChargedBytes))
	}
	t.flush()
	fmt.Fprintln(e.Stdout)
	t = newTable(e.Stdout)
	t.row("VARIANT", "TOK/S", "TTFT MS", "LATENCY MS", "LATENCY P50/P95", "SCORE", "THUMBS +/-")
	for _, v := range r.Variants {
		t.row(v.Name, meanCI(v.TokensPerSecond, 1), meanCI(v.TTFTMS, 1), meanCI(v.LatencyMS, 1), pcts(v.LatencyMS), meanCI(v.Score, 2),
			fmt.Sprintf("%d/%d", v.ThumbsUp, v.ThumbsDown))
	}
	t.flush()
	if len(r.Comparisons) == 0 {
		return
	}
	fmt.Fprintln(e.Stdout)
	t = newTable(e.Stdout)
	t.row("METRIC", "VARIANTS", "TEST", "P", "VERDICT")
	for _, c := range r.Comparisons {
		p := "-"
		if c.P != nil {
			p = fmt.Sprintf("%.3g", *c.P)
		}
		test := strings.ReplaceAll(c.Test, "_", "-")
		t.row(c.Metric, c.A+" vs "+c.B, test, p, c.Verdict)
	}
	t.flush()
}
