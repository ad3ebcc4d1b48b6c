package engine

/*
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
void jetai_set_batch_invariant(int on);
int jetai_kquant_enabled(void);
int jetai_column_enabled(void);
void jetai_set_kernels(int on);
bool jetai_kquant_gemm(int type, int64_t r0, int64_t r1, int64_t n, int64_t nb, const void * A, int64_t lda, const void * B, int64_t ldb, float * C, int64_t ldc);

// ggml's quantizer and CPU type traits, for checking the kernels against
// ggml's own dot products.
typedef void (*jetai_from_float_t)(const float * x, void * y, int64_t k);
typedef void (*jetai_vec_dot_t)(int n, float * s, size_t bs, const void * x, size_t bx, const void * y, size_t by, int nrc);
struct jetai_type_traits_cpu {
	jetai_from_float_t from_float;
	jetai_vec_dot_t vec_dot;
	int vec_dot_type;
	int64_t nrows;
};
const struct jetai_type_traits_cpu * ggml_get_type_traits_cpu(int type);
size_t ggml_quantize_chunk(int type, const float * src, void * dst, int64_t start, int64_t nrows, int64_t n_per_row, const float * imatrix);
size_t ggml_row_size(int type, int64_t ne);
void ggml_cpu_init(void);

static void jetai_q8k(const float * x, void * y, int64_t k) { ggml_get_type_traits_cpu(15)->from_float(x, y, k); }
static float jetai_ggml_dot(int type, int n, const void * x, const void * y) {
	float s = 0;
	ggml_get_type_traits_cpu(type)->vec_dot(n, &s, 0, x, 0, y, 0, 1);
	return s;
}
*/
import "C"

import (
	"fmt"
	"math/rand/v2"
	"time"
	"unsafe"
)

// SetBatchInvariant makes every matrix product compute a column the same
// way whatever else the batch holds (matmul.c), so that a token's logits
// do not depend on the tokens decoded beside it. Speculative decoding
// needs it: its output is then the output without speculation, token for
// token. F32 and F16 products are batch-invariant without it on AVX-512
// and AVX2 builds, Q4_K and Q6_K on AVX-512 VNNI builds; it sends every
// other product (Q8_0, Q4_0, other types, other builds) to ggml's
// one-column path, which costs those weights prompt speed. It holds for
// the process.
func SetBatchInvariant(on bool) {
	v := 0
	if on {
		v = 1
	}
	C.jetai_set_batch_invariant(C.int(v))
}

// KQuantKernels says whether jetai's own Q4_K and Q6_K matrix kernels
// are in use (built for AVX-512 VNNI, not turned off).
func KQuantKernels() bool { return C.jetai_kquant_enabled() != 0 }

// columnKernels says whether single F32/F16 columns are computed as
// tinyBLAS computes each of its columns (AVX-512 or AVX2 builds).
func columnKernels() bool { return C.jetai_column_enabled() != 0 }

// SetKernels turns jetai's matrix kernels (matmul.c) off or back on, for
// measuring them against ggml's; JETAI_KERNELS=0 in the environment turns
// them off from the start.
func SetKernels(on bool) {
	v := 0
	if on {
		v = 1
	}
	C.jetai_set_kernels(C.int(v))
}

// ggml type numbers of the K-quants the kernels take.
const (
	ggmlQ4K = 12
	ggmlQ6K = 14
	ggmlQ8K = 15
)

// quantized is a weight matrix quantized to a K-quant and columns of
// activations quantized to Q8_K, in C memory.
type quantized struct {
	typ, rows, n, k  int
	w, a             unsafe.Pointer
	rowSize, colSize int
}

// quantize quantizes weights (rows of k floats) to typ and the columns of
// x (n columns of k floats) to Q8_K, as ggml does before a product.
func quantize(typ int, weights []float32, rows int, x []float32, n, k int) (*quantized, error) {
	if len(weights) != rows*k || len(x) != n*k || k%256 != 0 {
		return nil, fmt.Errorf("quantize: %d weights for %d×%d, %d activations for %d×%d", len(weights), rows, k, len(x), n, k)
	}
	C.ggml_cpu_init()
	q := &quantized{typ: typ, rows: rows, n: n, k: k,
		rowSize: int(C.ggml_row_size(C.int(typ), C.int64_t(k))),
		colSize: int(C.ggml_row_size(ggmlQ8K, C.int64_t(k)))}
	q.w = C.malloc(C.size_t(q.rowSize * rows))
	q.a = C.malloc(C.size_t(q.colSize * n))
	f := C.malloc(C.size_t(4 * max(len(weights), len(x))))
	defer C.free(f)
	copy(unsafe.Slice((*float32)(f), len(weights)), weights)
	C.ggml_quantize_chunk(C.int(typ), (*C.float)(f), q.w, 0, C.int64_t(rows), C.int64_t(k), nil)
	copy(unsafe.Slice((*float32)(f), len(x)), x)
	for j := range n {
		C.jetai_q8k((*C.float)(unsafe.Add(f, 4*k*j)), unsafe.Add(q.a, q.colSize*j), C.int64_t(k))
	}
	return q, nil
}

func (q *quantized) free() {
	C.free(q.w)
	C.free(q.a)
}

// gemm computes columns j..j+n-1 into out (rows floats a column) with
// jetai's kernels; false where they are not built.
func (q *quantized) gemm(j, n int, out unsafe.Pointer) bool {
	nb := C.int64_t(q.k / 256)
	return bool(C.jetai_kquant_gemm(C.int(q.typ), 0, C.int64_t(q.rows), C.int64_t(n), nb, q.w, nb, unsafe.Add(q.a, q.colSize*j), nb, (*C.float)(out), C.int64_t(q.rows)))
}

// kquantProducts returns the products of quantized weights and columns
// (see quantize) computed by jetai's kernels, taking the columns `group`
// at a time, and by ggml's one-column dot product. ok is false where the
// kernels are not built.
func kquantProducts(typ int, weights []float32, rows int, x []float32, n, k, group int) (ours, ggml []float32, ok bool, err error) {
	q, err := quantize(typ, weights, rows, x, n, k)
	if err != nil {
		return nil, nil, false, err
	}
	defer q.free()
	out := C.malloc(C.size_t(4 * rows * n))
	defer C.free(out)
	ok = true
	for j := 0; j < n && ok; j += group {
		ok = q.gemm(j, min(group, n-j), unsafe.Add(out, 4*rows*j))
	}
	if ok {
		ours = append([]float32(nil), unsafe.Slice((*float32)(out), rows*n)...)
	}
	ggml = make([]float32, rows*n)
	for j := range n {
		for i := range rows {
			ggml[j*rows+i] = float32(C.jetai_ggml_dot(C.int(typ), C.int(k), unsafe.Add(q.w, q.rowSize*i), unsafe.Add(q.a, q.colSize*j)))
		}
	}
	return ours, ggml, ok, nil
}

// kquantTime quantizes a random rows×k matrix to typ and n random columns
// to Q8_K, then times iters products on the calling thread with jetai's
// kernels (0 where they are not built).
func kquantTime(typ, rows, k, n, iters int) time.Duration {
	if !KQuantKernels() {
		return 0
	}
	r := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, rows*k)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.05)
	}
	x := make([]float32, n*k)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	q, err := quantize(typ, w, rows, x, n, k)
	if err != nil {
		return 0
	}
	defer q.free()
	out := C.malloc(C.size_t(4 * rows * n))
	defer C.free(out)
	start := time.Now()
	for range iters {
		q.gemm(0, n, out)
	}
	return time.Since(start)
}
