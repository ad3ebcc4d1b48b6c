package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jetai/jetai/gguf"
)

// Speculative is a model's `speculative` block: speculative decoding in
// its runner. Drafted tokens are verified with the request's own sampler,
// so output is the same with it on or off; only speed differs.
type Speculative struct {
	// NGram drafts the continuation of n-grams found earlier in each
	// request's prompt and output (no memory cost).
	NGram bool `json:"ngram"`
	// Draft is the file of a smaller model with the same vocabulary that
	// drafts tokens in the same runner (absolute; "" for none).
	// DraftModel is the model block it was named by, if any.
	Draft      string `json:"draft,omitempty"`
	DraftModel string `json:"draft_model,omitempty"`
	// MaxDraft bounds the tokens drafted per request and step; each
	// request's draft length adapts below it.
	MaxDraft int `json:"max_draft"`
	// DraftFileSize and DraftFileModTime identify the draft's file; a
	// change restarts the model on reload.
	DraftFileSize    Size      `json:"draft_file_size,omitempty"`
	DraftFileModTime time.Time `json:"draft_file_mod_time,omitzero"`
}

// On says whether the model speculates at all.
func (s Speculative) On() bool { return (s.NGram || s.Draft != "") && s.MaxDraft > 0 }

// Defaults inside a speculative block.
const (
	DefaultSpecNGram    = true
	DefaultSpecMaxDraft = 8
	// MaxSpecMaxDraft matches the runner's limit (runner.MaxDraftLimit).
	MaxSpecMaxDraft = 32
)

type speculativeBlock struct {
	NGram    *bool     `hcl:"ngram,optional"`
	Draft    *string   `hcl:"draft,optional"`
	MaxDraft *int      `hcl:"max_draft,optional"`
	Body     hcl.Body  `hcl:",body"`
	DefRange hcl.Range `hcl:",def_range"`
}

// speculative decodes a model's speculative block, all but the draft
// (speculativeDrafts: it may name a model block defined later).
func (d *decoder) speculative(m *Model, b *speculativeBlock) {
	if b == nil {
		return
	}
	m.Speculative = Speculative{
		NGram:    boolean(b.NGram, DefaultSpecNGram),
		MaxDraft: num(b.MaxDraft, DefaultSpecMaxDraft),
	}
	d.intRange(b.Body, b.DefRange, "max_draft", m.Speculative.MaxDraft, 0, MaxSpecMaxDraft,
		fmt.Sprintf("max_draft must be from 0 (off) to %d tokens per step", MaxSpecMaxDraft))
}

// speculativeDrafts resolves each draft (the name of a model block, else a
// path) and checks its header against the model's: a draft must tokenize
// exactly as the model does.
func (d *decoder) speculativeDrafts(c *Config, bs []modelBlock) {
	blocks := blocksByName(bs)
	for i := range c.Models {
		m := &c.Models[i]
		b := blocks[m.Name]
		if b == nil || b.Speculative == nil || b.Speculative.Draft == nil {
			continue
		}
		sb := b.Speculative
		r := valueRange(sb.Body, "draft", sb.DefRange)
		name := strings.TrimSpace(*sb.Draft)
		if name == "" {
			d.errf(r, "speculative draft of model %q is empty; name a model block or a GGUF file, or leave it out", m.Name)
			continue
		}
		s := &m.Speculative
		if j, ok := c.byName[name]; ok {
			s.Draft, s.DraftModel = c.Models[j].Path, c.Models[j].Name
		} else {
			s.Draft = d.path(name)
		}
		if s.DraftModel == m.Name || s.Draft == m.Path {
			d.errf(r, "model %q cannot draft for itself: a draft is a smaller model with the same vocabulary", m.Name)
			continue
		}
		fi, err := CheckModelFile(s.Draft)
		var fe *FileError
		switch {
		case errors.As(err, &fe) && fe.Problem == FileIsDir:
			d.errf(r, "speculative draft %s of model %q is a directory, not a GGUF file", s.Draft, m.Name)
			continue
		case err != nil:
			d.warnf(r, "speculative draft of model %q: %v; the model is unavailable until it is fixed", m.Name, err)
			if m.FileError == "" {
				m.FileError = fmt.Sprintf("speculative draft: %v", err)
			}
			continue
		}
		s.DraftFileSize, s.DraftFileModTime = Size(fi.Size()), fi.ModTime()
		if m.FileError != "" {
			continue // the model's own header is not readable
		}
		tf, err1 := gguf.Open(m.Path)
		df, err2 := gguf.Open(s.Draft)
		if err1 != nil || err2 != nil {
			continue // the pool reports unreadable headers at load
		}
		if err := gguf.VocabCompatible(tf, df); err != nil {
			d.errf(r, "speculative draft %s cannot draft for model %q: its vocabulary differs (%v)", s.Draft, m.Name, err)
		}
	}
}

// speculativeString renders the restart part of a speculative block for
// Diff: the draft's file and identity.
func speculativeDraftString(s Speculative) string {
	if s.Draft == "" {
		return "none"
	}
	return fmt.Sprintf("%s (%s %s)", strconv.Quote(s.Draft), s.DraftFileSize, s.DraftFileModTime.UTC().Format(time.RFC3339Nano))
}
