package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// CheckFile makes sure path looks like a GGUF file llama.cpp can read,
// so that an obviously wrong file gets a clear error instead of reaching
// llama.cpp.
func CheckFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("not a GGUF file: too short")
		}
		return err
	}
	if string(hdr[:4]) != "GGUF" {
		return fmt.Errorf("not a GGUF file (starts with %q)", hdr[:4])
	}
	if v := binary.LittleEndian.Uint32(hdr[4:]); v < 2 || v > 3 {
		return fmt.Errorf("unsupported GGUF version %d", v)
	}
	return nil
}
