package engine

import (
	"fmt"
	"os"
	"strings"

	"github.com/ollama/ollama/llama"
)

// quantTypes maps the quantisation names jetai accepts to llama_ftype.
var quantTypes = map[string]uint32{
	"f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9,
	"q2_k": 10, "q3_k_s": 11, "q3_k_m": 12, "q3_k_l": 13, "q4_k_s": 14, "q4_k_m": 15,
	"q5_k_s": 16, "q5_k_m": 17, "q6_k": 18,
}

// QuantTypes lists the accepted quantisation names.
func QuantTypes() []string {
	out := make([]string, 0, len(quantTypes))
	for k := range quantTypes {
		out = append(out, k)
	}
	return out
}

// Quantize writes a copy of the GGUF at in, quantized to typ (e.g. "q4_k_m"),
// to out. It uses every CPU and may take minutes for large models.
func Quantize(in, out, typ string) error {
	Init()
	ftype, ok := quantTypes[strings.ToLower(typ)]
	if !ok {
		return fmt.Errorf("quantize: unknown type %q", typ)
	}
	if err := CheckFile(in); err != nil {
		return fmt.Errorf("quantize %s: %w", in, err)
	}
	tmp := out + ".partial"
	engineLog.takeRecent()
	if err := llama.Quantize(in, tmp, ftype); err != nil {
		os.Remove(tmp)
		return &LogError{Op: "quantize " + in, Err: err, Lines: engineLog.takeRecent()}
	}
	return os.Rename(tmp, out)
}
