package engine

/*
#include "engine.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/ollama/ollama/llama"
)

// SamplingParams are one request's sampling settings. Temperature <= 0 is
// greedy.
type SamplingParams struct {
	Temperature      float32 `json:"temperature"`
	TopK             int     `json:"top_k"`
	TopP             float32 `json:"top_p"`
	MinP             float32 `json:"min_p"`
	TypicalP         float32 `json:"typical_p,omitempty"`
	RepeatPenalty    float32 `json:"repeat_penalty"`
	RepeatLastN      int     `json:"repeat_last_n"`
	FrequencyPenalty float32 `json:"frequency_penalty,omitempty"`
	PresencePenalty  float32 `json:"presence_penalty,omitempty"`
	Seed             *uint32 `json:"seed,omitempty"` // nil = random
	Grammar          string  `json:"grammar,omitempty"`
	JSONSchema       string  `json:"json_schema,omitempty"`
}

// ErrInvalidGrammar marks a grammar or JSON schema that cannot be used.
var ErrInvalidGrammar = errors.New("invalid grammar")

// Validate checks ranges; it does not need a model.
func (p SamplingParams) Validate() error {
	switch {
	case p.Temperature < 0 || p.Temperature > 100:
		return fmt.Errorf("temperature %v out of range [0, 100]", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("top_k %d must not be negative", p.TopK)
	case p.TopP < 0 || p.TopP > 1:
		return fmt.Errorf("top_p %v out of range [0, 1]", p.TopP)
	case p.MinP < 0 || p.MinP > 1:
		return fmt.Errorf("min_p %v out of range [0, 1]", p.MinP)
	case p.RepeatPenalty < 0 || p.RepeatPenalty > 10:
		return fmt.Errorf("repeat_penalty %v out of range [0, 10]", p.RepeatPenalty)
	case p.RepeatLastN < -1:
		return fmt.Errorf("repeat_last_n %d out of range", p.RepeatLastN)
	case p.FrequencyPenalty < -2 || p.FrequencyPenalty > 2:
		return fmt.Errorf("frequency_penalty %v out of range [-2, 2]", p.FrequencyPenalty)
	case p.PresencePenalty < -2 || p.PresencePenalty > 2:
		return fmt.Errorf("presence_penalty %v out of range [-2, 2]", p.PresencePenalty)
	case p.Grammar != "" && p.JSONSchema != "":
		return errors.New("give either a grammar or a JSON schema, not both")
	}
	return nil
}

// Sampler picks tokens for one sequence.
type Sampler struct {
	c *C.struct_common_sampler
	// guard is a second instance of the grammar, kept in step with the
	// sampled tokens, that Sample asks before each step whether any token
	// can follow; nil without a grammar.
	guard *C.struct_llama_sampler
	eog   []int
	// greedy: the chain would pick the highest logit (temperature 0,
	// nothing before it that can drop or move that token), so Sample
	// takes it without the chain, which sorts the whole vocabulary (its
	// top_k step) for every token: a millisecond at 32k tokens, paid once
	// per verified draft under speculation.
	greedy bool
}

// A grammar that no token can continue makes llama.cpp abort the process
// at the next sample; Sample returns one of these instead.
var (
	// ErrGrammarComplete: the grammar allows only end-of-generation, and
	// the caller banned it (ignore_eos). The structured output is whole.
	ErrGrammarComplete = errors.New("the grammar is complete: only end-of-generation may follow")
	// ErrGrammarStuck: the grammar allows no token of this model's
	// vocabulary (for example a character no token holds, or a JSON
	// schema whose constraints contradict each other).
	ErrGrammarStuck = fmt.Errorf("%w: no token of the model's vocabulary can continue it", ErrInvalidGrammar)
)

// SchemaToGrammar converts a JSON schema to a GBNF grammar.
func SchemaToGrammar(schema string) (string, error) {
	g := llama.SchemaToGrammar([]byte(schema))
	if g == nil {
		return "", fmt.Errorf("%w: JSON schema could not be converted", ErrInvalidGrammar)
	}
	return string(g), nil
}

// NewSampler builds a sampler for p. A grammar is checked by llama.cpp's
// parser first: an invalid grammar would otherwise crash the process at the
// first sample.
func (m *Model) NewSampler(p SamplingParams) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	grammar := p.Grammar
	if p.JSONSchema != "" {
		g, err := SchemaToGrammar(p.JSONSchema)
		if err != nil {
			return nil, err
		}
		grammar = g
	}
	var guard *C.struct_llama_sampler
	if grammar != "" {
		var err error
		if guard, err = m.checkGrammar(grammar); err != nil {
			return nil, err
		}
	}
	var cp C.struct_jetai_sampler_cparams
	cp.top_k = C.int32_t(p.TopK)
	cp.top_p = C.float(p.TopP)
	cp.min_p = C.float(p.MinP)
	cp.typical_p = C.float(orOne(p.TypicalP))
	cp.temp = C.float(p.Temperature)
	cp.penalty_last_n = C.int32_t(p.RepeatLastN)
	cp.penalty_repeat = C.float(orOne(p.RepeatPenalty))
	cp.penalty_freq = C.float(p.FrequencyPenalty)
	cp.penalty_present = C.float(p.PresencePenalty)
	cp.mirostat_tau = 5
	cp.mirostat_eta = 0.1
	cp.seed = C.uint32_t(0xFFFFFFFF) // LLAMA_DEFAULT_SEED: random
	if p.Seed != nil {
		cp.seed = C.uint32_t(*p.Seed)
	}
	cg := C.CString(grammar)
	defer C.free(unsafe.Pointer(cg))
	cp.grammar = cg
	s := C.common_sampler_cinit(m.raw(), &cp)
	if s == nil {
		if guard != nil {
			C.llama_sampler_free(guard)
		}
		return nil, errors.New("llama.cpp could not create the sampler")
	}
	greedy := p.Temperature <= 0 && grammar == "" && orOne(p.RepeatPenalty) == 1 && p.FrequencyPenalty == 0 && p.PresencePenalty == 0 && orOne(p.TypicalP) == 1
	return &Sampler{c: s, guard: guard, eog: m.EOGTokens(), greedy: greedy}, nil
}

// argmaxLogit is the lowest token id with the highest logit.
func argmaxLogit(l []float32) int {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return best
}

func orOne(v float32) float32 {
	if v == 0 {
		return 1
	}
	return v
}

// checkGrammar parses g with llama.cpp and returns the grammar sampler,
// which the Sampler keeps as its guard.
func (m *Model) checkGrammar(g string) (*C.struct_llama_sampler, error) {
	if strings.HasPrefix(g, "%llguidance") {
		return nil, fmt.Errorf("%w: llguidance grammars are not supported", ErrInvalidGrammar)
	}
	cg := C.CString(g)
	defer C.free(unsafe.Pointer(cg))
	root := C.CString("root")
	defer C.free(unsafe.Pointer(root))
	engineLog.takeRecent()
	s := C.llama_sampler_init_grammar(m.vocab(), cg, root)
	recent := engineLog.takeRecent()
	if s == nil {
		return nil, fmt.Errorf("%w%s", ErrInvalidGrammar, formatRecent(recent))
	}
	if !C.jetai_grammar_parsed(unsafe.Pointer(s)) {
		C.llama_sampler_free(s)
		return nil, fmt.Errorf("%w: llama.cpp could not parse it (GBNF syntax error or unsupported rule)%s", ErrInvalidGrammar, formatRecent(recent))
	}
	return s, nil
}

// Sample picks the next token from the logits at batch index idx (as Ban
// left them) and accepts it into the sampler's history (and grammar). With
// a grammar that no token with a finite logit can continue it returns
// ErrGrammarComplete or ErrGrammarStuck and samples nothing.
func (s *Sampler) Sample(c *Context, idx int) (int, error) {
	if s.guard != nil {
		if err := s.canContinue(c.Logits(idx)); err != nil {
			return -1, err
		}
	}
	var t int
	if s.greedy {
		l := c.Logits(idx)
		if len(l) == 0 {
			return -1, errors.New("no logits to sample from")
		}
		t = argmaxLogit(l)
	} else {
		t = int(C.common_sampler_csample(s.c, c.raw(), C.int(idx)))
	}
	C.common_sampler_caccept(s.c, C.int32_t(t), true)
	if s.guard != nil {
		C.llama_sampler_accept(s.guard, C.int32_t(t))
	}
	return t, nil
}

// canContinue says whether the grammar allows a token whose logit in l is
// not -inf. End-of-generation is asked first: at a grammar's end it is the
// only token allowed, and its id may be near the end of a large
// vocabulary, where the scan from the lowest id would reach it last.
func (s *Sampler) canContinue(l []float32) error {
	if len(l) == 0 {
		return errors.New("no logits to sample from")
	}
	for _, t := range s.eog {
		if !math.IsInf(float64(l[t]), -1) && bool(C.jetai_grammar_allows(s.guard, C.int32_t(t))) {
			return nil
		}
	}
	if C.jetai_grammar_allows_one(s.guard, (*C.float)(unsafe.Pointer(&l[0])), C.int32_t(len(l))) {
		return nil
	}
	for _, t := range s.eog {
		if C.jetai_grammar_allows(s.guard, C.int32_t(t)) {
			return ErrGrammarComplete
		}
	}
	return ErrGrammarStuck
}

// Accept feeds a token the sampler did not pick (a prompt token) into the
// repetition history, without the grammar.
func (s *Sampler) Accept(token int) { C.common_sampler_caccept(s.c, C.int32_t(token), false) }

// Close frees the sampler.
func (s *Sampler) Close() {
	if s.c != nil {
		C.common_sampler_cfree(s.c)
		s.c = nil
	}
	if s.guard != nil {
		C.llama_sampler_free(s.guard)
		s.guard = nil
	}
}

// Replay feeds tokens that were sampled without this sampler's grammar
// into it, as if it had picked them: a lazy grammar that takes over once
// the output reaches its trigger starts from the trigger's tokens. It
// reports false, and accepts nothing more, at the first token the grammar
// does not allow; the sampler is then unusable with its grammar.
func (s *Sampler) Replay(tokens []int) bool {
	for _, t := range tokens {
		if s.guard != nil && !bool(C.jetai_grammar_allows(s.guard, C.int32_t(t))) {
			return false
		}
		C.common_sampler_caccept(s.c, C.int32_t(t), true)
		if s.guard != nil {
			C.llama_sampler_accept(s.guard, C.int32_t(t))
		}
	}
	return true
}
