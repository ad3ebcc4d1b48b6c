package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jetai/jetai/gguf"
)

// mmproj decodes a model's projector: the file must exist and be a GGUF
// vision projector, and when both headers can be read its output width
// must be the model's embedding length. Unlike a missing model file (a
// warning: a pull may bring it), a missing projector is an error, because
// the model would load and then refuse every image.
func (d *decoder) mmproj(m *Model, b *modelBlock) {
	m.MmprojOffload = b.MmprojOffload != nil && *b.MmprojOffload
	if b.Mmproj == nil {
		if b.MmprojOffload != nil {
			d.warnf(valueRange(b.Body, "mmproj_offload", b.DefRange), "model %q sets mmproj_offload but has no mmproj", m.Name)
		}
		return
	}
	r := valueRange(b.Body, "mmproj", b.DefRange)
	p := strings.TrimSpace(*b.Mmproj)
	if p == "" {
		d.errf(r, "mmproj of model %q is empty; give the projector's GGUF file, or leave it out", m.Name)
		return
	}
	m.Mmproj = d.path(p)
	fi, err := CheckModelFile(m.Mmproj)
	var fe *FileError
	switch {
	case errors.As(err, &fe) && fe.Problem == FileMissing:
		d.errf(r, "mmproj %s of model %q does not exist; put the projector's GGUF file (the mmproj-*.gguf beside a vision model) there", m.Mmproj, m.Name)
		return
	case errors.As(err, &fe) && fe.Problem == FileIsDir:
		d.errf(r, "mmproj %s of model %q is a directory, not a GGUF file", m.Mmproj, m.Name)
		return
	case err != nil:
		d.errf(r, "mmproj of model %q: %v", m.Name, err)
		return
	}
	m.MmprojFileSize, m.MmprojFileModTime = Size(fi.Size()), fi.ModTime()
	proj, err := gguf.ReadProjector(m.Mmproj)
	if err != nil {
		d.errf(r, "mmproj %s of model %q: %v", m.Mmproj, m.Name, err)
		return
	}
	if m.FileError != "" {
		return // the model's own header is not readable yet
	}
	tf, err := gguf.Open(m.Path)
	if err != nil {
		return
	}
	arch, _ := tf.String("general.architecture")
	embd, ok := tf.Uint(arch + ".embedding_length")
	if ok && int(embd) != proj.TextEmbd {
		d.errf(r, "mmproj %s makes embeddings of %d values, but model %q (%s) has an embedding length of %d: the projector belongs to another model", m.Mmproj, proj.TextEmbd, m.Name, m.Path, embd)
	}
}

// mmprojString renders a model's projector for Diff: its file and identity.
func mmprojString(m *Model) string {
	if m.Mmproj == "" {
		return "none"
	}
	return fmt.Sprintf("%s (%s %s)", strconv.Quote(m.Mmproj), m.MmprojFileSize, m.MmprojFileModTime.UTC().Format(time.RFC3339Nano))
}
