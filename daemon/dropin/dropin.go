// Package dropin writes and removes the drop-in config files that tools
// add to jetai.d/ (config.DropInDir): `jetai-ctl import FILE --add NAME`
// and `jetai-ctl pull SOURCE --add NAME` each end in one model block in
// jetai.d/NAME.hcl. It owns the block's text (with a comment naming the
// source, the file's sha256 and the date), the choice of its context
// (FitContext: the GGUF's trained context, capped by the pool's memory
// estimate against the budget), and the file's durable, atomic write.
//
// It touches only files in the drop-in directory it is given. Checking a
// name against the config in force and reloading are the daemon's
// (package daemon, AddModelDropIn and RemoveModel).
package dropin

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jetai/jetai/internal/bytesize"
)

// Block is what a drop-in's model block says.
type Block struct {
	Name string
	Path string // absolute
	// Mmproj is the model's vision projector (absolute; "" for none).
	Mmproj string
	// Source is where the file came from: a Hugging Face or Ollama
	// reference, or the path it was imported from.
	Source string
	SHA256 string // "" when not known
	Added  time.Time
	// Facts describe the file in the comment: architecture, quantization,
	// parameters, size.
	Facts string
	Fit   Fit
}

// Render is the drop-in's text: a comment that says what it is and where
// the file came from, and the model block.
func Render(b Block) []byte {
	var s strings.Builder
	fmt.Fprintf(&s, "# Added by jetai-ctl --add on %s. Edit or delete this file as any config\n", b.Added.UTC().Format("2006-01-02 15:04 UTC"))
	s.WriteString("# file; `jetai-ctl rm " + b.Name + "` removes it with the model file.\n")
	fmt.Fprintf(&s, "# source: %s\n", b.Source)
	sum := b.SHA256
	if sum == "" {
		sum = "not recorded"
	}
	fmt.Fprintf(&s, "# sha256: %s\n", sum)
	if b.Facts != "" {
		fmt.Fprintf(&s, "# %s\n", b.Facts)
	}
	f := b.Fit
	fmt.Fprintf(&s, "# context: %s; estimated memory %s of the %s budget\n", f.Reason, bytesize.IEC(f.Estimate.Total), bytesize.IEC(f.Budget))
	fmt.Fprintf(&s, "model %q {\n", b.Name)
	fmt.Fprintf(&s, "  path     = %q\n", b.Path)
	if b.Mmproj != "" {
		fmt.Fprintf(&s, "  mmproj   = %q\n", b.Mmproj)
	}
	fmt.Fprintf(&s, "  context  = %d\n", f.Context)
	fmt.Fprintf(&s, "  parallel = %d\n", f.Parallel)
	if f.KVCache != "" {
		fmt.Fprintf(&s, "  kv_cache = %q\n", f.KVCache)
	}
	if f.MaxTokens > 0 {
		fmt.Fprintf(&s, "  sampling {\n    max_tokens = %d\n  }\n", f.MaxTokens)
	}
	s.WriteString("}\n")
	return []byte(s.String())
}

// MaxNameLen bounds a NAME given to --add: it names a file and a model.
const MaxNameLen = 64

// CheckName refuses a NAME that cannot be both a model name and a file
// name in the drop-in directory: letters, digits and . _ - : only, not
// starting with . or -, at most MaxNameLen bytes, not "auto" (which
// requests use for automatic selection).
func CheckName(name string) error {
	bad := func(why string) error {
		return &Error{Status: http.StatusBadRequest, Code_: "invalid_name", Msg: fmt.Sprintf("model name %q %s", name, why)}
	}
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > MaxNameLen:
		return bad(fmt.Sprintf("is longer than %d bytes", MaxNameLen))
	case name == "auto":
		return bad("is reserved: requests use it to ask for automatic selection")
	case name[0] == '.' || name[0] == '-':
		return bad("starts with . or -")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return bad("holds a character other than letters, digits and . _ - :")
		}
	}
	return nil
}

// FileName is the drop-in file for model name in dir.
func FileName(dir, name string) string { return filepath.Join(dir, name+".hcl") }

// Write creates dir/NAME.hcl with content, durably and atomically: a
// temporary file (named with a leading dot, which the config never reads)
// is written and synced, then linked into place, so a reload sees the
// whole file or none, and the directory is synced. An existing file is
// never replaced: that is a *Error with code name_taken.
func Write(dir, name string, content []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("drop-in directory: %w", err)
	}
	path := FileName(dir, name)
	tmp, err := os.CreateTemp(dir, "."+name+".hcl.*.tmp")
	if err != nil {
		return "", fmt.Errorf("drop-in %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return "", fmt.Errorf("drop-in %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("drop-in %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("drop-in %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("drop-in %s: %w", path, err)
	}
	// link(2), not rename(2): it fails when the name exists, so two adds
	// of one name cannot overwrite each other.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", &Error{Status: http.StatusConflict, Code_: "name_taken", Msg: fmt.Sprintf("the drop-in file %s exists already", path)}
		}
		return "", fmt.Errorf("drop-in %s: %w", path, err)
	}
	syncDir(dir)
	return path, nil
}

// Remove deletes a drop-in file and syncs its directory. A file already
// gone is no error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove drop-in %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Error is a refusal that knows how it reaches a client.
type Error struct {
	Status int
	Code_  string
	Msg    string
}

func (e *Error) Error() string   { return e.Msg }
func (e *Error) Code() string    { return e.Code_ }
func (e *Error) HTTPStatus() int { return e.Status }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code_: code, Msg: fmt.Sprintf(format, args...)}
}
