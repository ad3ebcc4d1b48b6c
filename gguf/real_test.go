package gguf_test

import (
	"strings"
	"testing"

	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testmodel"
)

// TestRealModel reads the real tiny model's header, tensors and metadata.
func TestRealModel(t *testing.T) {
	f, err := gguf.Open(testmodel.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := f.Params()
	if err != nil {
		t.Fatal(err)
	}
	if p.Architecture != "llama" || p.VocabSize != 512 || p.ContextLength != 2048 || p.BlockCount == 0 {
		t.Errorf("params = %+v", p)
	}
	blocks := 0
	for _, ti := range f.Tensors {
		if strings.HasSuffix(ti.Name, ".attn_norm.weight") {
			blocks++
		}
		if f.DataOffset+ti.Offset+ti.Size > uint64(f.FileSize) {
			t.Errorf("tensor %s outside the file", ti.Name)
		}
	}
	if uint64(blocks) != p.BlockCount {
		t.Errorf("%d attn_norm tensors, block_count %d", blocks, p.BlockCount)
	}
	if bos, _ := f.Uint("tokenizer.ggml.bos_token_id"); bos != 1 {
		t.Errorf("bos = %d", bos)
	}
	if _, ok := f.ChatTemplate(); ok {
		t.Error("stories260K has no chat template")
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Shape) != 2 || emb.Shape[0] != p.EmbeddingLength || emb.Shape[1] != 512 {
		t.Errorf("token_embd.weight = %+v", emb)
	}
	ft, _ := f.FileType()
	t.Logf("%+v; %d tensors, data at %d, file type %d (%s)", p, len(f.Tensors), f.DataOffset, ft, gguf.FileTypeName(ft))
}
