package engine

import (
	"fmt"
	"os"

	"github.com/jetai/jetai/gguf"
	"github.com/ollama/ollama/llama"
)

// Quantize writes a copy of the GGUF at in, quantized to typ (e.g. "q4_k_m"),
// to out. It uses every CPU and may take minutes for large models.
func Quantize(in, out, typ string) error {
	Init()
	ftype, ok := gguf.QuantFileType(typ)
	if !ok {
		return fmt.Errorf("quantize: unknown type %q", typ)
	}
	if err := CheckFile(in); err != nil {
		return fmt.Errorf("quantize %s: %w", in, err)
	}
	tmp := out + ".partial"
	engineLog.takeRecent()
	if err := llama.Quantize(in, tmp, uint32(ftype)); err != nil {
		os.Remove(tmp)
		return &LogError{Op: "quantize " + in, Err: err, Lines: engineLog.takeRecent()}
	}
	return os.Rename(tmp, out)
}
