package engine

import (
	"fmt"

	"github.com/jetai/jetai/gguf"
)

// CheckFile reads the GGUF header of path (never the weights) and checks
// that every tensor lies inside the file, so that a file that is not a GGUF
// model, or is truncated, gets a clear error before llama.cpp sees it.
func CheckFile(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("invalid GGUF layout: %w", err)
	}
	return nil
}
