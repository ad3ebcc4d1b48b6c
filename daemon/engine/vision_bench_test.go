package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// BenchmarkProjectorEncode times the encoding of one image by a generated
// projector at LLaVA-like input sizes: 224 pixels in 28-pixel patches (64
// tokens, the test projector), 224 in 14 (256) and 336 in 14 (576, LLaVA
// 1.5's geometry). Every encode decodes and resizes the image too.
//
//	go test -run '^$' -bench ProjectorEncode ./daemon/engine/
func BenchmarkProjectorEncode(b *testing.B) {
	m, err := Load(context.Background(), testmodel.Path(b), LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	img := readImage(b, "checker.jpg")
	for _, g := range []struct{ size, patch int }{{224, 28}, {224, 14}, {336, 14}} {
		b.Run(fmt.Sprintf("%dpx-patch%d", g.size, g.patch), func(b *testing.B) {
			spec := modelgen.TinyProjector(m.Info().Embedding)
			spec.ImageSize, spec.PatchSize = g.size, g.patch
			p := loadProjectorSpec(b, m, spec)
			b.ResetTimer()
			for range b.N {
				if _, err := p.Encode(context.Background(), img, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(p.ImageTokens()), "tokens")
		})
	}
}
