package modelgen

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/jetai/jetai/gguf"
)

// LoRA describes a generated LoRA adapter for a base model Spec: rank-Rank
// updates of every layer's attn_q and attn_v, in the layout llama.cpp's
// convert_lora_to_gguf.py writes (lora_a [n_in, rank], lora_b [rank, n_out],
// F32). StdDev sets the size of the random A and B weights; large values
// change the base model's output visibly, which is what tests want.
type LoRA struct {
	Base   Spec
	Rank   int
	Alpha  float32 // adapter.lora.alpha; 0 means Rank (scale 1)
	StdDev float64
	Seed   uint64
}

// WriteLoRA writes the adapter as a GGUF file.
func WriteLoRA(w io.Writer, l LoRA) error {
	if err := l.Base.Validate(); err != nil {
		return err
	}
	if l.Rank <= 0 {
		return fmt.Errorf("modelgen: LoRA rank must be positive, got %d", l.Rank)
	}
	alpha := l.Alpha
	if alpha == 0 {
		alpha = float32(l.Rank)
	}
	gw := gguf.NewWriter(w)
	for _, kv := range [][2]any{
		{"general.architecture", "llama"},
		{"general.type", "adapter"},
		{"general.name", l.Base.Name + "-lora"},
		{"general.alignment", uint32(gguf.DefaultAlignment)},
		{"adapter.type", "lora"},
		{"adapter.lora.alpha", alpha},
	} {
		if err := gw.AddKV(kv[0].(string), kv[1]); err != nil {
			return err
		}
	}
	type pair struct {
		name string
		a, b []uint64
	}
	e, kv, r := uint64(l.Base.Embd), uint64(l.Base.EmbdKV()), uint64(l.Rank)
	var ts []pair
	for i := 0; i < l.Base.Layers; i++ {
		ts = append(ts,
			pair{fmt.Sprintf("blk.%d.attn_q.weight", i), []uint64{e, r}, []uint64{r, e}},
			pair{fmt.Sprintf("blk.%d.attn_v.weight", i), []uint64{e, r}, []uint64{r, kv}},
		)
	}
	for _, t := range ts {
		if err := gw.AddTensor(t.name+".lora_a", t.a, gguf.GGMLTypeF32); err != nil {
			return err
		}
		if err := gw.AddTensor(t.name+".lora_b", t.b, gguf.GGMLTypeF32); err != nil {
			return err
		}
	}
	rng := rand.New(rand.NewPCG(l.Seed, 0x10a))
	fill := func(shape []uint64) func(io.Writer) error {
		return func(dst io.Writer) error {
			n := shape[0] * shape[1]
			buf := make([]byte, 4*n)
			for i := range n {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(rng.NormFloat64()*l.StdDev)))
			}
			_, err := dst.Write(buf)
			return err
		}
	}
	for _, t := range ts {
		if err := gw.WriteTensor(t.name+".lora_a", fill(t.a)); err != nil {
			return err
		}
		if err := gw.WriteTensor(t.name+".lora_b", fill(t.b)); err != nil {
			return err
		}
	}
	return gw.Close()
}

// GenerateLoRA writes the adapter to path atomically.
func GenerateLoRA(path string, l LoRA) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("modelgen: %w", err)
	}
	if err := WriteLoRA(tmp, l); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("modelgen: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
