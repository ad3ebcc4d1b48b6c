package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// The kernels agree with ggml's dot products to float rounding, and a
// column's result is bit for bit the same whatever the columns beside it.
func TestKQuantKernels(t *testing.T) {
	if !KQuantKernels() {
		t.Skip("the K-quant kernels are not built for this CPU")
	}
	cases := []struct {
		name string
		typ  int
		k    int
	}{
		{"Q4_K 256", ggmlQ4K, 256},
		{"Q4_K 2048", ggmlQ4K, 2048},
		{"Q6_K 256", ggmlQ6K, 256},
		{"Q6_K 1536", ggmlQ6K, 1536},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(c.k)))
			const rows, n = 37, 13
			w := make([]float32, rows*c.k)
			for i := range w {
				w[i] = float32(r.NormFloat64() * 0.05)
			}
			x := make([]float32, n*c.k)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			var first []float32
			for _, group := range []int{1, 2, 3, 4, 5, 13} {
				ours, ggml, ok, err := kquantProducts(c.typ, w, rows, x, n, c.k, group)
				if err != nil || !ok {
					t.Fatalf("group %d: ok %v, %v", group, ok, err)
				}
				for i := range ours {
					if d := math.Abs(float64(ours[i] - ggml[i])); d > 1e-4*(1+math.Abs(float64(ggml[i]))) {
						t.Fatalf("group %d: product %d = %g, ggml %g", group, i, ours[i], ggml[i])
					}
				}
				if first == nil {
					first = ours
					continue
				}
				for i := range ours {
					if math.Float32bits(ours[i]) != math.Float32bits(first[i]) {
						t.Fatalf("columns %d at a time: product %d = %g, one at a time %g", group, i, ours[i], first[i])
					}
				}
			}
		})
	}
}

// BenchmarkKQuantColumns reports the time of a product of a 5632×2048
// Q4_K matrix (a 0.8B model's feed-forward) with n columns over one column.
func BenchmarkKQuantColumns(b *testing.B) {
	if !KQuantKernels() {
		b.Skip("the K-quant kernels are not built for this CPU")
	}
	one := kquantTime(ggmlQ4K, 5632, 2048, 1, 50)
	for _, n := range []int{2, 5, 9, 16} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			var d time.Duration
			for b.Loop() {
				d += kquantTime(ggmlQ4K, 5632, 2048, n, 50)
			}
			b.ReportMetric(float64(d)/float64(b.N)/float64(one), "×one")
			b.ReportMetric(float64(one)/50/1e6, "ms/one")
			b.ReportMetric(float64(d)/float64(b.N)/50/1e6, "ms/product")
		})
	}
}
