package bench

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// TestChatCopy: the copy has the ChatML template and the same metadata and
// tensor bytes as the original.
func TestChatCopy(t *testing.T) {
	src := testmodel.Path(t)
	out, err := ChatCopy(src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl, _ := b.ChatTemplate(); tmpl != modelgen.ChatML {
		t.Fatalf("template %q", tmpl)
	}
	if len(b.KVs) != len(a.KVs)+1 || len(b.Tensors) != len(a.Tensors) {
		t.Fatalf("%d KVs, %d tensors; want %d, %d", len(b.KVs), len(b.Tensors), len(a.KVs)+1, len(a.Tensors))
	}
	fa, _ := os.Open(src)
	defer fa.Close()
	fb, _ := os.Open(out)
	defer fb.Close()
	for i, ta := range a.Tensors {
		tb := b.Tensors[i]
		da, _ := io.ReadAll(io.NewSectionReader(fa, int64(a.DataOffset+ta.Offset), int64(ta.Size)))
		db, _ := io.ReadAll(io.NewSectionReader(fb, int64(b.DataOffset+tb.Offset), int64(tb.Size)))
		if ta.Name != tb.Name || !bytes.Equal(da, db) {
			t.Fatalf("tensor %s differs", ta.Name)
		}
	}
}
