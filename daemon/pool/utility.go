package pool

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jetai/jetai/daemon/runner"
)

// The llama-server utility calls (tokenize, detokenize, chat template)
// need the loaded model: they enter through admission like a request, so
// they load the model when needed and wait their turn behind the same
// bounded queue.

// utilityRunner is a Runner that answers the utility calls
// (*runner.Process does).
type utilityRunner interface {
	Tokenize(ctx context.Context, req runner.TokenizeRequest) (runner.TokenizeResult, error)
	Detokenize(ctx context.Context, req runner.DetokenizeRequest) (runner.DetokenizeResult, error)
	ApplyTemplate(ctx context.Context, req runner.TemplateRequest) (runner.TemplateResult, error)
}

// Tokenize returns the tokens of req.Content in model.
func (p *Pool) Tokenize(ctx context.Context, model string, req runner.TokenizeRequest) (runner.TokenizeResult, error) {
	return utility(ctx, p, model, "tokenize", func(u utilityRunner) (runner.TokenizeResult, error) { return u.Tokenize(ctx, req) })
}

// Detokenize returns the text of req.Tokens in model.
func (p *Pool) Detokenize(ctx context.Context, model string, req runner.DetokenizeRequest) (runner.DetokenizeResult, error) {
	return utility(ctx, p, model, "detokenize", func(u utilityRunner) (runner.DetokenizeResult, error) { return u.Detokenize(ctx, req) })
}

// ApplyTemplate formats req.Messages with model's chat template.
func (p *Pool) ApplyTemplate(ctx context.Context, model string, req runner.TemplateRequest) (runner.TemplateResult, error) {
	return utility(ctx, p, model, "apply-template", func(u utilityRunner) (runner.TemplateResult, error) { return u.ApplyTemplate(ctx, req) })
}

func utility[T any](ctx context.Context, p *Pool, model, kind string, f func(utilityRunner) (T, error)) (T, error) {
	var zero T
	m, err := p.lookup(model)
	if err != nil {
		return zero, err
	}
	proc, waited, err := p.admit(ctx, m, kind)
	if err != nil {
		return zero, err
	}
	began := time.Now()
	var out T
	if u, ok := proc.(utilityRunner); ok {
		out, err = f(u)
	} else {
		err = fmt.Errorf("model %q: its runner does not answer %s", model, kind)
	}
	err = p.runnerErr(m, proc, err)
	p.release(ctx, m, proc, err, sample{at: time.Now(), tps: math.NaN(), ttft: math.NaN(), queue: runner.Ms(waited), dur: time.Since(began).Seconds()})
	return out, err
}
