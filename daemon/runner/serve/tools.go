package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jetai/jetai/daemon/chattmpl"
	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/daemon/toolcall"
)

// toolSetup is what a request with tools needs past its prompt: the call
// syntax to parse and the grammar that constrains calls.
type toolSetup struct {
	format  toolcall.Format
	grammar toolcall.Grammar
}

// chatTokens formats a chat as chatRender does and tokenizes it. It
// answers the client's mistakes itself.
// starts, when not nil, receives where each message's content starts in
// the tokens, for a request whose messages carry images.
func (h *handler) chatTokens(ctx context.Context, w http.ResponseWriter, req *runner.Request, limit int, starts *[]int) ([]int, *toolSetup, error, bool) {
	cr, ok := h.chatRender(w, req)
	if !ok {
		return nil, nil, nil, false
	}
	var toks []int
	err := cr.each(func(contents []string, render func([]string) (string, error)) error {
		var err error
		if starts != nil && messageImages(req) > 0 {
			// Piece by piece, to know where each message's content
			// starts: its images go there (vision.go).
			toks, *starts, err = h.model.ChatTokensAt(ctx, contents, render, limit)
			return err
		}
		toks, err = h.model.ChatTokensRendered(ctx, contents, render, limit)
		return err
	})
	if errors.Is(err, errTemplateRefused) {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "messages: the model's chat template refused them: "+err.Error())
		return nil, nil, nil, false
	}
	return toks, cr.setup, err, true
}

// chatText is the prompt text a chat request feeds the model: what
// /apply-template answers. It answers the client's mistakes itself.
func (h *handler) chatText(w http.ResponseWriter, req *runner.Request) (string, error, bool) {
	cr, ok := h.chatRender(w, req)
	if !ok {
		return "", nil, false
	}
	var text string
	err := cr.each(func(contents []string, render func([]string) (string, error)) error {
		var err error
		text, err = render(contents)
		return err
	})
	if errors.Is(err, errTemplateRefused) {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "messages: the model's chat template refused them: "+err.Error())
		return "", nil, false
	}
	return text, err, true
}

// errTemplateRefused marks a Jinja render that failed on a request with
// tools or tool turns, which only the real template can format.
var errTemplateRefused = errors.New("template refused")

// chatRendering is how one chat request becomes prompt text.
type chatRendering struct {
	h     *handler
	req   *runner.Request
	tmpl  *chattmpl.Template // nil: llama.cpp's built-in formatter
	tools bool
	setup *toolSetup
}

// each runs use with the request's rendering: the model's Jinja chat
// template (and its tools), or llama.cpp's built-in formatter, which knows
// the common formats by their markers, when the model has no template or
// the Jinja engine cannot run it. A template that fails on a request
// without tools also falls back to the built-in formatter (laxer: no
// raise_exception); with tools it is errTemplateRefused. render is given
// each message's content, or a placeholder in its place.
func (c *chatRendering) each(use func(contents []string, render func([]string) (string, error)) error) error {
	msgs := c.req.Messages
	contents := make([]string, len(msgs))
	for i, m := range msgs {
		contents[i] = m.Content
	}
	builtin := func(contents []string) (string, error) {
		held := make([]engine.Message, len(msgs))
		for i, m := range msgs {
			held[i] = engine.Message{Role: m.Role, Content: contents[i]}
		}
		return c.h.model.ApplyChatTemplate(held, true)
	}
	if c.tmpl == nil {
		return use(contents, builtin)
	}
	info := c.h.model.Info()
	bos, eos := "", ""
	if info.BOS >= 0 {
		bos = c.h.model.TokenText(info.BOS)
	}
	if info.EOS >= 0 {
		eos = c.h.model.TokenText(info.EOS)
	}
	jinja := func(contents []string) (string, error) {
		cm := make([]chattmpl.Message, len(msgs))
		for i, m := range msgs {
			cm[i] = chattmpl.Message{Role: m.Role, Content: contents[i], Name: m.Name, ToolCallID: m.ToolCallID}
			for _, tc := range m.ToolCalls {
				t := chattmpl.ToolCall{ID: tc.ID, Type: "function"}
				t.Function.Name, t.Function.Arguments = tc.Name, tc.Arguments
				cm[i].ToolCalls = append(cm[i].ToolCalls, t)
			}
		}
		in := chattmpl.Input{Messages: cm, AddGenerationPrompt: true, BOSToken: bos, EOSToken: eos}
		if c.tools {
			in.Tools = c.req.Tools
		}
		return c.tmpl.Render(in)
	}
	err := use(contents, jinja)
	if err != nil && errors.Is(err, chattmpl.ErrRender) {
		if c.tools || hasToolTurns(msgs) {
			return fmt.Errorf("%w: %w", errTemplateRefused, err)
		}
		err = use(contents, builtin)
	}
	return err
}

// chatRender reads a chat request's tools and the model's template: the
// rendering chat uses, and, for a request with tools, the call syntax and
// grammar. It answers the client's mistakes itself.
func (h *handler) chatRender(w http.ResponseWriter, req *runner.Request) (*chatRendering, bool) {
	info := h.model.Info()
	tools, err := toolcall.ParseTools(req.Tools)
	if err != nil {
		return nil, refuseTool(w, err)
	}
	choice, err := toolcall.ParseChoice(req.ToolChoice, tools)
	if err != nil {
		return nil, refuseTool(w, err)
	}
	cr := &chatRendering{h: h, req: req, tools: len(tools) > 0}
	var tmplErr error
	if info.ChatTemplate != "" {
		cr.tmpl, tmplErr = chattmpl.Compile(info.ChatTemplate)
		if tmplErr != nil {
			cr.tmpl = nil
		}
	}
	if len(tools) > 0 {
		if cr.tmpl == nil || !cr.tmpl.SupportsTools() {
			why := "its GGUF has no chat template"
			if tmplErr != nil {
				why = "its chat template does not run: " + tmplErr.Error()
			} else if cr.tmpl != nil {
				why = "its chat template does not render tools"
			}
			writeError(w, http.StatusBadRequest, runner.CodeToolsUnsupported,
				fmt.Sprintf("tools: this model cannot take tools (%s); leave tools out or use a model whose template supports them", why))
			return nil, false
		}
		f, _ := toolcall.Detect(info.ChatTemplate, true)
		parallel := req.ParallelToolCalls == nil || *req.ParallelToolCalls
		g, err := toolcall.BuildGrammar(f, tools, choice, parallel, engine.SchemaToGrammar)
		if err != nil {
			return nil, refuseTool(w, err)
		}
		if g.GBNF != "" && (req.Sampling.Grammar != "" || req.Sampling.JSONSchema != "") {
			writeError(w, http.StatusBadRequest, runner.CodeInvalid, "tools: a request with tools cannot also set a grammar or a JSON schema (response_format)")
			return nil, false
		}
		if choice.Mode != toolcall.ChoiceNone {
			cr.setup = &toolSetup{format: f, grammar: g}
		}
	}
	return cr, true
}

func hasToolTurns(msgs []runner.Message) bool {
	for _, m := range msgs {
		if m.Role == "tool" || len(m.ToolCalls) > 0 {
			return true
		}
	}
	return false
}

func refuseTool(w http.ResponseWriter, err error) bool {
	var te *toolcall.Error
	if errors.As(err, &te) {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, te.Error())
		return false
	}
	writeError(w, http.StatusBadRequest, runner.CodeInvalid, "tools: "+err.Error())
	return false
}

// lazyGrammar is tool_choice auto: the model writes freely until its
// output reaches the format's trigger; then the call grammar takes over,
// starting from the trigger's tokens.
type lazyGrammar struct {
	gbnf     string
	trigger  string
	anchored bool
	alt      string
	params   engine.SamplingParams
	// what was generated so far, token by token
	tokens []int
	starts []int // byte offset of each token's text
	text   strings.Builder
	off    bool // the output can no longer start a call
}

// observe takes a sampled token. It returns a sampler with the grammar
// once the trigger appears (nil before, and after giving up).
func (lz *lazyGrammar) observe(m *engine.Model, tok int) (*engine.Sampler, error) {
	if lz.off {
		return nil, nil
	}
	lz.tokens = append(lz.tokens, tok)
	lz.starts = append(lz.starts, lz.text.Len())
	lz.text.WriteString(m.Piece(tok))
	s := lz.text.String()
	from := -1
	if lz.anchored {
		t := strings.TrimLeft(s, " \t\r\n")
		switch {
		case t == "":
			return nil, nil
		case strings.HasPrefix(t, "{") || (lz.alt != "" && strings.HasPrefix(t, lz.alt)):
			from = 0
		case lz.alt != "" && strings.HasPrefix(lz.alt, t):
			return nil, nil
		default:
			lz.off = true
			return nil, nil
		}
	} else {
		i := strings.Index(s, lz.trigger)
		if i < 0 {
			return nil, nil
		}
		for k, st := range lz.starts {
			if st == i {
				from = k
			}
		}
		if from < 0 {
			// The trigger begins inside a token: the grammar cannot take
			// that token, and the call is left to the parser.
			lz.off = true
			return nil, nil
		}
	}
	lz.off = true
	p := lz.params
	p.Grammar, p.JSONSchema = lz.gbnf, ""
	smp, err := m.NewSampler(p)
	if err != nil {
		return nil, err
	}
	for _, t := range lz.tokens[:from] {
		smp.Accept(t)
	}
	if !smp.Replay(lz.tokens[from:]) {
		smp.Close()
		return nil, nil
	}
	return smp, nil
}

// afterSample does a sampled token's extras: its logprobs, and the switch
// to the call grammar when a lazy grammar's trigger appears.
func (s *scheduler) afterSample(sl *slot, idx, tok int) error {
	j := sl.job
	if j.logprobs >= 0 {
		lp, top := s.lctx.Logprobs(idx, tok, j.logprobs)
		piece := s.model.Piece(tok)
		e := runner.TokenLogprob{Token: piece, Bytes: []byte(piece), Logprob: lp}
		if j.logprobs > 0 {
			e.Top = make([]runner.TopLogprob, len(top))
			for i, t := range top {
				p := s.model.Piece(t.Token)
				e.Top[i] = runner.TopLogprob{Token: p, Bytes: []byte(p), Logprob: t.Logprob}
			}
		}
		j.out.mu.Lock()
		j.out.logprobs = append(j.out.logprobs, e)
		j.out.mu.Unlock()
	}
	if j.lazy != nil {
		smp, err := j.lazy.observe(s.model, tok)
		if err != nil {
			return err
		}
		if smp != nil {
			j.sampler.Close()
			j.sampler = smp
		}
		if j.lazy.off {
			j.lazy = nil
		}
	}
	return nil
}

// takeLogprobs returns the logprobs gathered since the last call.
func (o *outbox) takeLogprobs() []runner.TokenLogprob {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.logprobs
	o.logprobs = nil
	return l
}

// writeFrames writes a batch of output: with a parser, the content and the
// call pieces in the order the model wrote them, one frame per run; the
// logprobs ride on the first frame. It reports whether the client is
// still there.
func writeFrames(enc interface{ Encode(any) error }, parser *toolcall.Parser, text string, lps []runner.TokenLogprob, done bool) bool {
	if parser == nil {
		if text == "" && len(lps) == 0 {
			return true
		}
		return enc.Encode(runner.Frame{Text: text, Logprobs: lps}) == nil
	}
	var ds []toolcall.Delta
	if text != "" {
		ds = parser.Feed(text)
	}
	if done {
		ds = append(ds, parser.Finish()...)
	}
	var frames []runner.Frame
	for _, d := range ds {
		if !d.Call {
			frames = append(frames, runner.Frame{Text: d.Content})
			continue
		}
		td := runner.ToolCallDelta{Index: d.Index, Start: d.Start, ID: d.ID, Name: d.Name, Arguments: d.Arguments}
		if n := len(frames); n > 0 && len(frames[n-1].ToolCalls) > 0 {
			frames[n-1].ToolCalls = append(frames[n-1].ToolCalls, td)
			continue
		}
		frames = append(frames, runner.Frame{ToolCalls: []runner.ToolCallDelta{td}})
	}
	if len(lps) > 0 {
		if len(frames) == 0 {
			frames = append(frames, runner.Frame{})
		}
		frames[0].Logprobs = lps
	}
	for _, f := range frames {
		if enc.Encode(f) != nil {
			return false
		}
	}
	return true
}
