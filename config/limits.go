package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/jetai/jetai/internal/bytesize"
)

// MaxFileSize is the largest config file jetaid accepts. A real config is
// a few KiB (10,000 model blocks are about 330 KiB); the limit keeps a
// wrong path (a GGUF model given as the config) from being read and parsed
// whole, which took 3.5 GB of memory and 14 s for a 52 MiB file.
const MaxFileSize = 1 << 20

// maxShown is how many errors, and how many warnings, a Diagnostics holds
// at most; a last line counts the rest.
const maxShown = 100

// readLimited reads path, but no more than MaxFileSize+1 bytes of it.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// checkText refuses what cannot be a config before HCL parses it: an
// empty file, and what is not a config file at all (HCL
// reports every bad byte of a binary file (39,000 diagnostics, 170 MB of
// memory, for a 1.2 MB GGUF)).
func checkText(src []byte, filename string) Diagnostics {
	msg := ""
	switch {
	case len(bytes.TrimSpace(src)) == 0:
		// Almost always a save in progress or a mistake; put in force, it
		// would unload every model.
		return Diagnostics{{Severity: Error, Filename: filename, Message: "the config file is empty"}}
	case bytes.HasPrefix(src, []byte("GGUF")):
		msg = "this is a GGUF model file, not a config; a model's file goes in the path of a model block"
	case len(src) > MaxFileSize:
		msg = fmt.Sprintf("the file is over %s; a config file is text of a few KiB (is this the right file?)", bytesize.IEC(MaxFileSize))
	case bytes.IndexByte(src, 0) >= 0 || !utf8.Valid(src):
		msg = "the file is not UTF-8 text (it holds NUL bytes or invalid UTF-8); is this the right file?"
	default:
		return nil
	}
	return Diagnostics{{Severity: Error, Filename: filename, Line: 1, Column: 1, Message: msg}}
}

// MaxModels is how many model blocks a config may hold. Decoding costs
// about 8 KiB of transient allocations per block in HCL's decoder
// (75,000 empty blocks in a 1 MiB file peaked at 290 MB of RSS).
const MaxModels = 10000

// checkBlockCount refuses a file with more than MaxModels model blocks,
// at the first one past the limit, before the blocks are decoded.
func checkBlockCount(body *hclsyntax.Body, filename string) Diagnostics {
	n := 0
	for _, b := range body.Blocks {
		if b.Type != "model" {
			continue
		}
		if n++; n > MaxModels {
			r := b.DefRange()
			return Diagnostics{newDiag(Error, filename, &r, fmt.Sprintf("more than %d model blocks; a config holds at most %d models", MaxModels, MaxModels))}
		}
	}
	return nil
}

// capped keeps the first maxShown diagnostics and counts the rest in a
// last one.
func capped(ds Diagnostics, filename, what string) Diagnostics {
	if len(ds) <= maxShown {
		return ds
	}
	more := len(ds) - maxShown
	out := append(ds[:maxShown:maxShown], Diagnostic{Severity: ds[maxShown].Severity, Filename: filename,
		Message: fmt.Sprintf("and %d more %s", more, what)})
	return out
}
