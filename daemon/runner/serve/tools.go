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

// chatTokens formats a chat with the model's Jinja chat template (and its
// tools) and tokenizes it. A template the Jinja engine cannot run falls
// back to llama.cpp's built-in formatter, which knows the common formats
// by their markers, unless the request has tools: those need the real
// template. It answers the client's mistakes itself.
func (h *handler) chatTokens(ctx context.Context, w http.ResponseWriter, req *runner.Request, limit int) ([]int, *toolSetup, error, bool) {
	info := h.model.Info()
	tools, err := toolcall.ParseTools(req.Tools)
	if err != nil {
		return nil, nil, nil, refuseTool(w, err)
	}
	choice, err := toolcall.ParseChoice(req.ToolChoice, tools)
	if err != nil {
		return nil, nil, nil, refuseTool(w, err)
	}
	var tmpl *chattmpl.Template
	var tmplErr error
	if info.ChatTemplate != "" {
		tmpl, tmplErr = chattmpl.Compile(info.ChatTemplate)
	}
	var setup *toolSetup
	if len(tools) > 0 {
		if tmpl == nil || !tmpl.SupportsTools() {
			why := "its GGUF has no chat template"
			if tmplErr != nil {
				why = "its chat template does not run: " + tmplErr.Error()
			} else if tmpl != nil {
				why = "its chat template does not render tools"
			}
			writeError(w, http.StatusBadRequest, runner.CodeToolsUnsupported,
				fmt.Sprintf("tools: this model cannot take tools (%s); leave tools out or use a model whose template supports them", why))
			return nil, nil, nil, false
		}
		f, _ := toolcall.Detect(info.ChatTemplate, true)
		parallel := req.ParallelToolCalls == nil || *req.ParallelToolCalls
		g, err := toolcall.BuildGrammar(f, tools, choice, parallel, engine.SchemaToGrammar)
		if err != nil {
			return nil, nil, nil, refuseTool(w, err)
		}
		if g.GBNF != "" && (req.Sampling.Grammar != "" || req.Sampling.JSONSchema != "") {
			writeError(w, http.StatusBadRequest, runner.CodeInvalid, "tools: a request with tools cannot also set a grammar or a JSON schema (response_format)")
			return nil, nil, nil, false
		}
		if choice.Mode != toolcall.ChoiceNone {
			setup = &toolSetup{format: f, grammar: g}
		}
	}
	if tmpl == nil {
		toks, err := h.model.ChatTokens(ctx, engineMessages(req.Messages), limit)
		return toks, setup, err, true
	}
	bos, eos := "", ""
	if info.BOS >= 0 {
		bos = h.model.TokenText(info.BOS)
	}
	if info.EOS >= 0 {
		eos = h.model.TokenText(info.EOS)
	}
	contents := make([]string, len(req.Messages))
	for i, m := range req.Messages {
		contents[i] = m.Content
	}
	render := func(contents []string) (string, error) {
		msgs := make([]chattmpl.Message, len(req.Messages))
		for i, m := range req.Messages {
			msgs[i] = chattmpl.Message{Role: m.Role, Content: contents[i], Name: m.Name, ToolCallID: m.ToolCallID}
			for _, c := range m.ToolCalls {
				tc := chattmpl.ToolCall{ID: c.ID, Type: "function"}
				tc.Function.Name, tc.Function.Arguments = c.Name, c.Arguments
				msgs[i].ToolCalls = append(msgs[i].ToolCalls, tc)
			}
		}
		in := chattmpl.Input{Messages: msgs, AddGenerationPrompt: true, BOSToken: bos, EOSToken: eos}
		if len(tools) > 0 {
			in.Tools = req.Tools
		}
		return tmpl.Render(in)
	}
	toks, err := h.model.ChatTokensRendered(ctx, contents, render, limit)
	if err != nil && errors.Is(err, chattmpl.ErrRender) {
		if len(tools) > 0 || hasToolTurns(req.Messages) {
			writeError(w, http.StatusBadRequest, runner.CodeInvalid, "messages: the model's chat template refused them: "+err.Error())
			return nil, nil, nil, false
		}
		// llama.cpp's formatter is laxer (no raise_exception), and it is
		// what answered before Jinja templates ran here.
		toks, err = h.model.ChatTokens(ctx, engineMessages(req.Messages), limit)
	}
	return toks, setup, err, true
}

func hasToolTurns(msgs []runner.Message) bool {
	for _, m := range msgs {
		if m.Role == "tool" || len(m.ToolCalls) > 0 {
			return true
		}
	}
	return false
}

func engineMessages(msgs []runner.Message) []engine.Message {
	out := make([]engine.Message, len(msgs))
	for i, m := range msgs {
		out[i] = engine.Message{Role: m.Role, Content: m.Content}
	}
	return out
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
