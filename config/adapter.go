package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Adapter is an `adapter` block inside a model block: a LoRA adapter (a
// GGUF made by llama.cpp's convert_lora_to_gguf.py for the model's base)
// applied at Scale. A model with adapters is served by its own runner, so
// its slots, prompt cache and parked conversations are its own; only the
// read-only base weights may be shared (page cache, model cache copy).
type Adapter struct {
	Path  string  `json:"path"` // absolute
	Scale float64 `json:"scale"`
	// FileSize and FileModTime are the adapter file's; a change restarts
	// the model on reload.
	FileSize    Size      `json:"file_size"`
	FileModTime time.Time `json:"file_mod_time"`
}

// DefaultAdapterScale applies an adapter as trained.
const DefaultAdapterScale = 1.0

type adapterBlock struct {
	Path     string    `hcl:"path"`
	Scale    *float64  `hcl:"scale,optional"`
	Body     hcl.Body  `hcl:",body"`
	DefRange hcl.Range `hcl:",def_range"`
}

// adapters decodes and checks a model's adapter blocks.
func (d *decoder) adapters(m *Model, bs []adapterBlock) {
	for _, b := range bs {
		a := Adapter{Path: d.path(b.Path), Scale: num(b.Scale, DefaultAdapterScale)}
		if math.IsNaN(a.Scale) || a.Scale < -10 || a.Scale > 10 {
			d.errf(valueRange(b.Body, "scale", b.DefRange), "adapter scale of model %q is %g; it must be from -10 to 10 (1 applies the adapter as trained)", m.Name, a.Scale)
		}
		r := valueRange(b.Body, "path", b.DefRange)
		if strings.TrimSpace(b.Path) == "" {
			d.errf(r, "adapter of model %q has an empty path", m.Name)
			m.Adapters = append(m.Adapters, a)
			continue
		}
		// As for the model's own file (modelFile): a directory is an
		// error; a missing, unreadable or non-GGUF file is a warning and
		// makes the model unavailable until it is fixed.
		fi, err := CheckModelFile(a.Path)
		var fe *FileError
		switch {
		case errors.As(err, &fe) && fe.Problem == FileIsDir:
			d.errf(r, "adapter path %s of model %q is a directory, not a GGUF file", a.Path, m.Name)
		case errors.As(err, &fe):
			fe.Adapter = true
			what := strings.Replace(fe.Error(), "adapter file "+a.Path, fmt.Sprintf("adapter file %s of model %q", a.Path, m.Name), 1)
			d.warnf(r, "%s; the model is unavailable until it is fixed (%s)", what, fe.Hint())
			if m.FileError == "" {
				m.FileError = fe.Error()
			}
		case err != nil:
			d.errf(r, "adapter file %s of model %q: %v", a.Path, m.Name, err)
		default:
			a.FileSize, a.FileModTime = Size(fi.Size()), fi.ModTime()
		}
		m.Adapters = append(m.Adapters, a)
	}
}

// adaptersString renders adapters for Diff: path, scale and file identity.
func adaptersString(as []Adapter) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("%s×%s (%s %s)", strconv.Quote(a.Path), ftoa(a.Scale), a.FileSize, a.FileModTime.UTC().Format(time.RFC3339Nano))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
