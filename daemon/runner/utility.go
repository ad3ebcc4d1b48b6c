package runner

import "context"

// Tokenize asks the runner for the tokens of req.Content.
func (p *Process) Tokenize(ctx context.Context, req TokenizeRequest) (TokenizeResult, error) {
	return call[TokenizeResult](ctx, p, "/tokenize", req)
}

// Detokenize asks the runner for the text of req.Tokens.
func (p *Process) Detokenize(ctx context.Context, req DetokenizeRequest) (DetokenizeResult, error) {
	return call[DetokenizeResult](ctx, p, "/detokenize", req)
}

// ApplyTemplate asks the runner to format req.Messages with the model's
// chat template, as a chat completion does.
func (p *Process) ApplyTemplate(ctx context.Context, req TemplateRequest) (TemplateResult, error) {
	return call[TemplateResult](ctx, p, "/apply-template", req)
}
