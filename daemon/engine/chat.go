package engine

/*
#include "engine.h"
*/
import "C"

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ApplyChatTemplate formats messages with the model's own chat template
// (llama.cpp's built-in template support) and, when addAssistant is set,
// opens the assistant's turn.
func (m *Model) ApplyChatTemplate(msgs []Message, addAssistant bool) (string, error) {
	if m.info.ChatTemplate == "" {
		return "", ErrNoChatTemplate
	}
	return applyTemplate(m.info.ChatTemplate, msgs, addAssistant)
}

func applyTemplate(tmpl string, msgs []Message, addAssistant bool) (string, error) {
	if len(msgs) == 0 {
		return "", fmt.Errorf("chat: no messages")
	}
	ctmpl := C.CString(tmpl)
	defer C.free(unsafe.Pointer(ctmpl))

	cmsgs := (*[1 << 28]C.jetai_chat_message)(C.malloc(C.size_t(len(msgs)) * C.size_t(unsafe.Sizeof(C.jetai_chat_message{}))))[:len(msgs):len(msgs)]
	defer C.free(unsafe.Pointer(&cmsgs[0]))
	total := 0
	for i, msg := range msgs {
		cmsgs[i].role = C.CString(msg.Role)
		cmsgs[i].content = C.CString(msg.Content)
		total += len(msg.Role) + len(msg.Content)
	}
	defer func() {
		for i := range cmsgs {
			C.free(unsafe.Pointer(cmsgs[i].role))
			C.free(unsafe.Pointer(cmsgs[i].content))
		}
	}()

	size := 2*total + 256
	for {
		buf := C.malloc(C.size_t(size))
		n := int(C.llama_chat_apply_template(ctmpl, &cmsgs[0], C.size_t(len(msgs)), C.bool(addAssistant), (*C.char)(buf), C.int32_t(size)))
		if n < 0 {
			C.free(buf)
			return "", fmt.Errorf("%w: llama.cpp does not support this template", ErrNoChatTemplate)
		}
		if n <= size {
			out := C.GoStringN((*C.char)(buf), C.int(n))
			C.free(buf)
			return out, nil
		}
		C.free(buf)
		size = n + 1
	}
}

// ChatTokens formats msgs with the model's chat template, opens the
// assistant's turn and tokenizes the result. The template's own special
// tokens (<|im_start|> and the like) are parsed; text inside a message's
// content never becomes a special token, so a user cannot write a role
// marker and speak as the system. Prompts without special-token text
// tokenize exactly as the whole formatted string does; the others are
// tokenized piecewise (template text with special tokens, content without).
// limit and ctx work as in TokenizeLimit.
func (m *Model) ChatTokens(ctx context.Context, msgs []Message, limit int) ([]int, error) {
	contents := make([]string, len(msgs))
	for i, msg := range msgs {
		contents[i] = msg.Content
	}
	return m.ChatTokensRendered(ctx, contents, func(contents []string) (string, error) {
		held := make([]Message, len(msgs))
		for i, msg := range msgs {
			held[i] = Message{Role: msg.Role, Content: contents[i]}
		}
		return m.ApplyChatTemplate(held, true)
	}, limit)
}

// ChatTokensRendered is ChatTokens for a conversation that render formats
// (a Jinja chat template, say): render is given each message's content, or
// a placeholder in its place, and returns the prompt text. A leading BOS
// text that the tokenizer adds by itself is not doubled.
func (m *Model) ChatTokensRendered(ctx context.Context, contents []string, render func(contents []string) (string, error), limit int) ([]int, error) {
	text, err := render(contents)
	if err != nil {
		return nil, err
	}
	injected := false
	for _, c := range contents {
		if injected, err = m.hasSpecialText(ctx, c); err != nil || injected {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if !injected {
		return m.TokenizeLimit(ctx, m.trimBOS(text), true, limit)
	}
	return m.chatTokensPiecewise(ctx, contents, render, limit)
}

// trimBOS drops a BOS token's text that a template wrote at the start of
// the prompt when tokenizing adds the BOS token anyway.
func (m *Model) trimBOS(text string) string {
	if !m.info.AddBOS || m.info.BOS < 0 {
		return text
	}
	if bos := m.TokenText(m.info.BOS); bos != "" {
		return strings.TrimPrefix(text, bos)
	}
	return text
}

// TokenText is a token's text in the vocabulary (special tokens as
// written, <|im_end|>), or "" for an id out of range.
func (m *Model) TokenText(token int) string {
	if token < 0 || token >= m.info.VocabSize {
		return ""
	}
	return C.GoString(C.llama_vocab_get_text(m.vocab(), C.int32_t(token)))
}

// hasSpecialText reports whether s contains the text of a special token
// that parsing specials splits out (a control or unknown token): then
// parsing specials changes its tokens.
func (m *Model) hasSpecialText(ctx context.Context, s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	parts, err := m.tok.partition(ctx, s, true)
	if err != nil {
		return false, err
	}
	for _, p := range parts {
		if p.token >= 0 && m.tok.isParsedOnly(p.token) {
			return true, nil
		}
	}
	return false, nil
}

// ChatTokensAt is ChatTokensRendered tokenized piece by piece (see
// chatTokensPiecewise) that also says where each message's content starts
// in the tokens (-1 for a message the template leaves out): where a
// message's images go.
func (m *Model) ChatTokensAt(ctx context.Context, contents []string, render func(contents []string) (string, error), limit int) ([]int, []int, error) {
	starts := make([]int, len(contents))
	toks, err := m.chatTokensPiecewiseAt(ctx, contents, render, limit, starts)
	return toks, starts, err
}

// chatTokensPiecewise formats msgs with a random placeholder for each
// content, then tokenizes the template's text with special tokens parsed
// and each content, in its place, as plain text.
func (m *Model) chatTokensPiecewise(ctx context.Context, contents []string, render func([]string) (string, error), limit int) ([]int, error) {
	return m.chatTokensPiecewiseAt(ctx, contents, render, limit, nil)
}

// chatTokensPiecewiseAt is chatTokensPiecewise that records, when starts
// is not nil, the token index where each content begins.
func (m *Model) chatTokensPiecewiseAt(ctx context.Context, contents []string, render func([]string) (string, error), limit int, starts []int) ([]int, error) {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	marker := func(i int) string { return fmt.Sprintf("\x01jetai-%x-%d\x01", nonce, i) }
	held := make([]string, len(contents))
	for i := range contents {
		held[i] = marker(i)
	}
	text, err := render(held)
	if err != nil {
		return nil, err
	}
	text = m.trimBOS(text)
	var toks []int
	add := func(s string, special bool) error {
		if s == "" {
			return nil
		}
		left := 0
		if limit > 0 {
			left = limit - len(toks)
			if left <= 0 {
				return &TooLongError{Tokens: len(toks) + 1, Limit: limit}
			}
		}
		t, err := m.tokenize(ctx, s, len(toks) == 0 && m.info.AddBOS, special, left)
		var tl *TooLongError
		if errors.As(err, &tl) {
			return &TooLongError{Tokens: len(toks) + tl.Tokens, Limit: limit}
		}
		toks = append(toks, t...)
		return err
	}
	for i, content := range contents {
		if starts != nil {
			starts[i] = -1
		}
		before, after, found := strings.Cut(text, held[i])
		if !found {
			continue // the template leaves this message out
		}
		if err := add(before, true); err != nil {
			return nil, err
		}
		if starts != nil {
			starts[i] = len(toks)
		}
		if err := add(content, false); err != nil {
			return nil, err
		}
		text = after
	}
	if err := add(text, true); err != nil {
		return nil, err
	}
	return toks, nil
}
