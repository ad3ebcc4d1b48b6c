package engine

/*
#include "engine.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Token attributes and vocabulary types of llama.h (enum llama_token_attr,
// enum llama_vocab_type).
const (
	attrUnknown     = 1 << 0
	attrControl     = 1 << 3
	attrUserDefined = 1 << 4
	attrLStrip      = 1 << 7
	attrRStrip      = 1 << 8

	vocabSPM  = 1
	vocabBPE  = 2
	vocabWPM  = 3
	vocabUGM  = 4
	vocabRWKV = 5
)

// ErrTooLong is wrapped by the error of a tokenization refused because the
// text cannot fit the token limit it was given.
var ErrTooLong = errors.New("text has more tokens than allowed")

// TooLongError says that a text has at least Tokens tokens, more than
// Limit. Tokens is a lower bound: the text was refused without being
// tokenized whole.
type TooLongError struct {
	Tokens int
	Limit  int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("text is at least %d tokens, more than the %d allowed", e.Tokens, e.Limit)
}

func (e *TooLongError) Unwrap() error { return ErrTooLong }

// special is a vocabulary entry that llama.cpp splits out of text before
// the text is tokenized: control, user-defined and unknown tokens.
type special struct {
	id   int
	text string
	attr uint32
}

// trieNode is a node of the trie over the special tokens' texts.
type trieNode struct {
	next map[byte]int32
	ends []int32 // indices into tokenizer.specials of texts that end here
}

// tokenizer splits text on special-token text in Go, in one pass, and
// hands only plain fragments to llama.cpp. llama.cpp's own split
// (tokenizer_st_partition) rescans its fragment list for every match, which
// is quadratic in the number of special tokens in the text; the result
// here is the same, token for token.
type tokenizer struct {
	vocab    *C.struct_llama_vocab
	specials []special // in llama.cpp's order: longer text first
	trie     []trieNode
	first    [256]bool // bytes that start some special text
	strips   bool      // some special token strips the whitespace beside it
	maxPiece int       // longest token text, in bytes
	kind     int       // llama_vocab_type
	addBOS   bool
	addEOS   bool
	bos, eos int
	sep      int

	// ops counts the partition's work (trie steps and match checks) for
	// the tests that hold it linear.
	ops atomic.Int64
}

func newTokenizer(m *Model) *tokenizer {
	v := m.vocab()
	tk := &tokenizer{
		vocab:  v,
		kind:   int(C.llama_vocab_type(v)),
		addBOS: bool(C.llama_vocab_get_add_bos(v)),
		addEOS: bool(C.llama_vocab_get_add_eos(v)),
		bos:    int(C.llama_vocab_bos(v)),
		eos:    int(C.llama_vocab_eos(v)),
		sep:    int(C.llama_vocab_sep(v)),
	}
	n := int(C.llama_vocab_n_tokens(v))
	for id := range n {
		text := C.GoString(C.llama_vocab_get_text(v, C.int32_t(id)))
		tk.maxPiece = max(tk.maxPiece, len(text))
		attr := uint32(C.llama_vocab_get_attr(v, C.int32_t(id)))
		// An empty special text would match everywhere; llama.cpp itself
		// could not split on it.
		if attr&(attrControl|attrUserDefined|attrUnknown) != 0 && text != "" {
			tk.specials = append(tk.specials, special{id: id, text: text, attr: attr})
		}
	}
	tk.maxPiece = max(tk.maxPiece, 1)
	// llama.cpp sorts by text length only (std::sort, not stable); token id
	// order breaks ties here, and resolveTies settles the ties whose order
	// can change a result the way llama.cpp's sort did.
	slices.SortStableFunc(tk.specials, func(a, b special) int { return len(b.text) - len(a.text) })
	tk.resolveTies(m)
	tk.index()
	return tk
}

// index builds the trie over the special texts, in their order.
func (tk *tokenizer) index() {
	tk.trie = []trieNode{{}}
	for i, s := range tk.specials {
		if s.attr&(attrLStrip|attrRStrip) != 0 {
			tk.strips = true
		}
		tk.first[s.text[0]] = true
		node := int32(0)
		for k := 0; k < len(s.text); k++ {
			c := s.text[k]
			nx, ok := tk.trie[node].next[c]
			if !ok {
				if tk.trie[node].next == nil {
					tk.trie[node].next = map[byte]int32{}
				}
				nx = int32(len(tk.trie))
				tk.trie = append(tk.trie, trieNode{})
				tk.trie[node].next[c] = nx
			}
			node = nx
		}
		tk.trie[node].ends = append(tk.trie[node].ends, int32(i))
	}
}

// resolveTies orders special tokens of equal length whose order matters
// (the same text, or texts that can overlap) as llama.cpp does: it asks
// llama.cpp to tokenize a text where the two compete and keeps the winner
// first. Real vocabularies have few or none.
func (tk *tokenizer) resolveTies(m *Model) {
	for lo := 0; lo < len(tk.specials); {
		hi := lo + 1
		for hi < len(tk.specials) && len(tk.specials[hi].text) == len(tk.specials[lo].text) {
			hi++
		}
		group := tk.specials[lo:hi]
		lo = hi
		if len(group) < 2 {
			continue
		}
		// Index the proper prefixes: a pair conflicts when one text's
		// proper suffix is the other's prefix, or the texts are the same.
		// Hashing keeps this linear in the group for large vocabularies.
		texts := make(map[string]int, len(group))
		prefixes := map[string]int{} // prefix -> how many texts start with it
		conflict := false
		for _, s := range group {
			texts[s.text]++
			conflict = conflict || texts[s.text] > 1
			for k := 1; k < len(s.text); k++ {
				prefixes[s.text[:k]]++
			}
		}
		for _, s := range group {
			for k := 1; k < len(s.text) && !conflict; k++ {
				suffix := s.text[k:]
				n := prefixes[suffix]
				if n > 0 && strings.HasPrefix(s.text, suffix) {
					n-- // its own prefix: no pair
				}
				conflict = n > 0
			}
		}
		if !conflict {
			continue
		}
		slices.SortStableFunc(group, func(a, b special) int {
			switch {
			case a.id == b.id:
				return 0
			case !conflicts(a.text, b.text):
				return a.id - b.id
			case tk.wins(m, a, b):
				return -1
			}
			return 1
		})
	}
}

// conflicts reports whether two special texts of equal length can compete
// for the same bytes: they are the same, or one's end is the other's start.
func conflicts(a, b string) bool {
	return a == b || overlap(a, b) > 0 || overlap(b, a) > 0
}

// overlap is the length of the longest proper suffix of a that is a prefix
// of b.
func overlap(a, b string) int {
	for k := min(len(a), len(b)) - 1; k > 0; k-- {
		if a[len(a)-k:] == b[:k] {
			return k
		}
	}
	return 0
}

// wins reports whether llama.cpp splits a out before b: it tokenizes the
// two texts overlapped (or the one text, when they are the same) and looks
// at which one it found first.
func (tk *tokenizer) wins(m *Model, a, b special) bool {
	probe := a.text
	if k := overlap(a.text, b.text); k > 0 {
		probe = a.text + b.text[k:]
	} else if k := overlap(b.text, a.text); k > 0 {
		probe = b.text + a.text[k:]
	}
	toks, err := m.m.Tokenize(probe, false, true)
	if err != nil {
		return a.id < b.id
	}
	for _, t := range toks {
		switch t {
		case a.id:
			return true
		case b.id:
			return false
		}
	}
	return a.id < b.id
}

// part is one piece of a partitioned text: a special token, or plain text
// [start, end) when token is -1.
type part struct {
	token      int
	start, end int
}

// partition splits text as llama.cpp's tokenizer_st_partition does: every
// special token in turn, longest first, is split out of the plain
// fragments left by the ones before it, leftmost match first; a token with
// the lstrip or rstrip attribute takes the whitespace beside it. Control
// and unknown tokens are only split out when parseSpecial is set. It runs
// in time linear in the text (times the longest special text): one trie
// pass finds every occurrence, then each token's occurrences are checked
// in order against the bytes already taken.
func (tk *tokenizer) partition(ctx context.Context, text string, parseSpecial bool) ([]part, error) {
	n := len(text)
	ops := 0
	defer func() { tk.ops.Add(int64(ops)) }()
	// occ packs (priority, position) of every occurrence, sorted so that
	// each token's occurrences come together and in text order.
	var occ []uint64
	for i := 0; i < n; i++ {
		if !tk.first[text[i]] {
			continue
		}
		if i&0xffff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		node := int32(0)
		for k := i; k < n; k++ {
			nx, ok := tk.trie[node].next[text[k]]
			ops++
			if !ok {
				break
			}
			node = nx
			for _, r := range tk.trie[node].ends {
				if !parseSpecial && tk.specials[r].attr&(attrControl|attrUnknown) != 0 {
					continue
				}
				occ = append(occ, uint64(r)<<32|uint64(i))
			}
		}
	}
	if len(occ) == 0 {
		if n == 0 {
			return nil, nil
		}
		return []part{{token: -1, start: 0, end: n}}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(occ)

	taken := make([]bool, n) // bytes in a special token or stripped
	var matches []part
	lastRank, lastEnd := -1, 0
	for k, o := range occ {
		if k&0xffff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r, p := int(o>>32), int(uint32(o))
		s := &tk.specials[r]
		q := p + len(s.text)
		if r != lastRank {
			lastRank, lastEnd = r, 0
		}
		if p < lastEnd {
			continue // overlaps this token's previous match
		}
		free := true
		for b := p; b < q; b++ {
			ops++
			if taken[b] {
				free = false
				break
			}
		}
		if !free {
			continue // not inside one plain fragment any more
		}
		for b := p; b < q; b++ {
			taken[b] = true
		}
		if s.attr&attrLStrip != 0 {
			for b := p - 1; b >= 0 && !taken[b] && isSpace(text[b]); b-- {
				taken[b] = true
			}
		}
		end := q
		if s.attr&attrRStrip != 0 {
			for ; end < n && !taken[end] && isSpace(text[end]); end++ {
				taken[end] = true
			}
		}
		lastEnd = end
		matches = append(matches, part{token: s.id, start: p, end: q})
	}
	slices.SortFunc(matches, func(a, b part) int { return a.start - b.start })

	var parts []part
	plain := func(from, to int) {
		for from < to {
			for from < to && taken[from] {
				from++
			}
			start := from
			for from < to && !taken[from] {
				from++
			}
			if from > start {
				parts = append(parts, part{token: -1, start: start, end: from})
			}
		}
	}
	at := 0
	for _, mt := range matches {
		plain(at, mt.start)
		parts = append(parts, mt)
		at = mt.end
	}
	plain(at, n)
	return parts, nil
}

// isParsedOnly reports whether token id is split out of text only when
// special tokens are parsed (a control or unknown token).
func (tk *tokenizer) isParsedOnly(id int) bool {
	return uint32(C.llama_vocab_get_attr(tk.vocab, C.int32_t(id)))&(attrControl|attrUnknown) != 0
}

// isSpace is C's isspace in the "C" locale, which llama.cpp's strip uses.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// prefix and suffix are the tokens llama.cpp adds around a text when asked
// to add special tokens (BOS, EOS, SEP, by vocabulary type).
func (tk *tokenizer) prefix() []int {
	switch {
	case tk.kind == vocabWPM, tk.addBOS && (tk.kind == vocabSPM || tk.kind == vocabBPE || tk.kind == vocabUGM):
		return []int{tk.bos}
	}
	return nil
}

func (tk *tokenizer) suffix() []int {
	switch {
	case tk.kind == vocabWPM:
		return []int{tk.sep}
	case tk.addEOS && (tk.kind == vocabSPM || tk.kind == vocabBPE || tk.kind == vocabUGM):
		return []int{tk.eos}
	}
	return nil
}

// lowerBound is the fewest tokens a plain fragment of n bytes can become:
// a token stands for at most maxPiece bytes of text in the vocabularies
// whose tokenizers keep every byte (SentencePiece with byte fallback,
// byte-level BPE, RWKV). WordPiece and Unigram may drop or fold text, so
// nothing is promised for them.
func (tk *tokenizer) lowerBound(n int) int {
	switch tk.kind {
	case vocabSPM, vocabBPE, vocabRWKV:
		return (n + tk.maxPiece - 1) / tk.maxPiece
	}
	return 0
}

// partBound is the fewest tokens a part can become.
func (tk *tokenizer) partBound(p part) int {
	if p.token >= 0 {
		return 1
	}
	return tk.lowerBound(p.end - p.start)
}

// tokenize turns text into tokens as llama_tokenize(text, addSpecial,
// parseSpecial) does. With limit > 0 a text of more than limit tokens is
// refused with a *TooLongError, as early as a lower bound shows it: before
// anything is tokenized when the text's length alone is too much, and
// fragment by fragment after that. ctx is checked between the steps.
func (tk *tokenizer) tokenize(ctx context.Context, text string, addSpecial, parseSpecial bool, limit int) ([]int, error) {
	var pre, post []int
	if addSpecial {
		pre, post = tk.prefix(), tk.suffix()
	}
	extra := len(pre) + len(post)
	tooLong := func(n int) error { return &TooLongError{Tokens: n, Limit: limit} }
	// Every byte ends up in a special token or a plain fragment, and no
	// token, special or not, covers more than maxPiece bytes, unless a
	// strip attribute drops whitespace.
	if limit > 0 && !tk.strips {
		if lb := tk.lowerBound(len(text)) + extra; lb > limit {
			return nil, tooLong(lb)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	parts, err := tk.partition(ctx, text, parseSpecial)
	if err != nil {
		return nil, err
	}
	// rest is a lower bound on the tokens of the parts not yet tokenized.
	rest := len(post)
	for _, p := range parts {
		rest += tk.partBound(p)
	}
	if limit > 0 && len(pre)+rest > limit {
		return nil, tooLong(len(pre) + rest)
	}
	out := append([]int(nil), pre...)
	var buf []C.int32_t
	for _, p := range parts {
		rest -= tk.partBound(p)
		if p.token >= 0 {
			out = append(out, p.token)
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		frag := text[p.start:p.end]
		// A fragment with no special text left in it: llama.cpp finds
		// nothing more to split, and tokenizes it as it would inside the
		// whole text (SentencePiece's space prefix applies at the start
		// and after a special token, which is where every fragment is).
		if need := len(frag) + 2; cap(buf) < need {
			buf = make([]C.int32_t, need)
		}
		buf = buf[:cap(buf)]
		cs := (*C.char)(unsafe.Pointer(unsafe.StringData(frag)))
		got := int(C.llama_tokenize(tk.vocab, cs, C.int32_t(len(frag)), &buf[0], C.int32_t(len(buf)), false, false))
		if got < 0 {
			buf = make([]C.int32_t, -got)
			got = int(C.llama_tokenize(tk.vocab, cs, C.int32_t(len(frag)), &buf[0], C.int32_t(len(buf)), false, false))
			if got < 0 {
				return nil, fmt.Errorf("tokenize: llama.cpp needs %d tokens for a fragment of %d bytes", -got, len(frag))
			}
		}
		for _, t := range buf[:got] {
			out = append(out, int(t))
		}
		// What is left can only add to the count.
		if limit > 0 && len(out)+rest > limit {
			return nil, tooLong(len(out) + rest)
		}
	}
	out = append(out, post...)
	if limit > 0 && len(out) > limit {
		return nil, tooLong(len(out))
	}
	return out, nil
}
