package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
)

// sampleFields are the generation settings every completion endpoint takes.
// A field left out takes the model's configured default (its sampling
// block), so the same request means the same thing to every model.
type sampleFields struct {
	MaxTokens        *int            `json:"max_tokens"`
	Temperature      *float64        `json:"temperature"`
	TopK             *int            `json:"top_k"`
	TopP             *float64        `json:"top_p"`
	MinP             *float64        `json:"min_p"`
	RepeatPenalty    *float64        `json:"repeat_penalty"`
	RepeatLastN      *int            `json:"repeat_last_n"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	Seed             *int64          `json:"seed"`
	Stop             stopList        `json:"stop"`
	Grammar          string          `json:"grammar"`
	JSONSchema       json.RawMessage `json:"json_schema"`
	// IgnoreEOS generates exactly max_tokens (benchmarks).
	IgnoreEOS bool `json:"ignore_eos"`
	// Speculative false turns the model's speculative decoding off for
	// this request; the output is the same either way.
	Speculative *bool `json:"speculative"`
}

// stopList is a string or an array of strings.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return badRequest("stop", "field \"stop\" must be a string or an array of strings")
	}
	*s = many
	return nil
}

// schemaText turns json_schema (an object, or a string holding one) into
// the schema's text.
func schemaText(raw json.RawMessage, param string) (string, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badRequest(param, "field %q: %v", param, err)
		}
		raw = json.RawMessage(s)
	}
	var probe map[string]any
	if err := json.Unmarshal(raw, &probe); err != nil {
		return "", badRequest(param, "field %q must be a JSON schema object", param)
	}
	return string(raw), nil
}

// checked settings before a model is chosen: ranges that do not depend on
// the model.
func (f *sampleFields) validate() *Error {
	rng := func(name string, v *float64, lo, hi float64) *Error {
		if v != nil && (math.IsNaN(*v) || *v < lo || *v > hi) {
			return badRequest(name, "%s %v is out of range [%v, %v]", name, *v, lo, hi)
		}
		return nil
	}
	for _, e := range []*Error{
		rng("temperature", f.Temperature, 0, 100),
		rng("top_p", f.TopP, 0, 1),
		rng("min_p", f.MinP, 0, 1),
		rng("repeat_penalty", f.RepeatPenalty, 0, 10),
		rng("frequency_penalty", f.FrequencyPenalty, -2, 2),
		rng("presence_penalty", f.PresencePenalty, -2, 2),
	} {
		if e != nil {
			return e
		}
	}
	switch {
	case f.MaxTokens != nil && *f.MaxTokens < 1:
		return badRequest("max_tokens", "max_tokens must be at least 1, not %d (leave it out for the model's default)", *f.MaxTokens)
	case f.TopK != nil && *f.TopK < 0:
		return badRequest("top_k", "top_k must not be negative")
	case f.RepeatLastN != nil && *f.RepeatLastN < -1:
		return badRequest("repeat_last_n", "repeat_last_n must be -1 (the whole context), 0 (off) or more")
	case f.Seed != nil && (*f.Seed < -1 || *f.Seed > math.MaxUint32):
		return badRequest("seed", "seed must be -1 (random) or in [0, %d]", uint32(math.MaxUint32))
	case f.Grammar != "" && len(bytes.TrimSpace(f.JSONSchema)) > 0 && !bytes.Equal(bytes.TrimSpace(f.JSONSchema), []byte("null")):
		return badRequest("grammar", "give either a grammar or a json_schema, not both")
	case len(f.Stop) > 16:
		return badRequest("stop", "at most 16 stop strings")
	}
	if _, e := schemaText(f.JSONSchema, "json_schema"); e != nil {
		return e
	}
	return nil
}

// structured reports whether the request asks for structured output.
func (f *sampleFields) structured() bool {
	s, _ := schemaText(f.JSONSchema, "json_schema")
	return f.Grammar != "" || s != ""
}

// request builds the runner request for model m: the request's settings
// over the model's defaults, max_tokens capped at the model's context.
func (f *sampleFields) request(m *config.Model) (runner.Request, *Error) {
	d := m.Sampling
	var req runner.Request
	sp := &req.Sampling
	sp.Temperature = float32(pick(f.Temperature, d.Temperature))
	sp.TopK = pickInt(f.TopK, d.TopK)
	sp.TopP = float32(pick(f.TopP, d.TopP))
	sp.MinP = float32(pick(f.MinP, d.MinP))
	sp.RepeatPenalty = float32(pick(f.RepeatPenalty, d.RepeatPenalty))
	if f.RepeatLastN != nil {
		sp.RepeatLastN = *f.RepeatLastN
	}
	if f.FrequencyPenalty != nil {
		sp.FrequencyPenalty = float32(*f.FrequencyPenalty)
	}
	if f.PresencePenalty != nil {
		sp.PresencePenalty = float32(*f.PresencePenalty)
	}
	seed := d.Seed
	if f.Seed != nil {
		seed = *f.Seed
	}
	if seed >= 0 && seed <= math.MaxUint32 {
		v := uint32(seed)
		sp.Seed = &v
	}
	sp.Grammar = f.Grammar
	schema, e := schemaText(f.JSONSchema, "json_schema")
	if e != nil {
		return req, e
	}
	sp.JSONSchema = schema
	req.IgnoreEOS = f.IgnoreEOS
	req.Speculative = f.Speculative
	req.MaxTokens = pickInt(f.MaxTokens, d.MaxTokens)
	if req.MaxTokens <= 0 || req.MaxTokens > m.Context {
		// Absurd requests are capped rather than refused: a model never
		// generates more than its context holds anyway.
		req.MaxTokens = m.Context
	}
	// The model's configured stop strings (chat end markers and the like)
	// always apply; the request's add to them.
	req.Stop = append(append([]string(nil), d.Stop...), f.Stop...)
	return req, nil
}

func pick(v *float64, def float64) float64 {
	if v != nil {
		return *v
	}
	return def
}

func pickInt(v *int, def int) int {
	if v != nil {
		return *v
	}
	return def
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func joinNames(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
