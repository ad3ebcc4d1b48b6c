// Matrix products for llama.cpp's CPU backend: faster K-quant products,
// and batch invariance.
//
// ggml multiplies a Q4_K or Q6_K weight matrix by the batch's activations
// one (row, column) dot product at a time: every column unpacks the
// weights again, so a batch of k tokens costs about k times one token on
// a CPU whose decode is compute-bound. A speculative step verifies k
// tokens of one sequence in one batch and gains only if that costs little
// more than one token. The K-quant kernels here unpack a row's weights
// once for up to twelve columns and use AVX-512 VNNI's 16-bit dot product.
//
// Batch invariance: a token's logits must be bit for bit the same whether
// it is decoded alone or beside other tokens (drafts, other slots), or
// speculation's output would not be the output without it. The K-quant
// kernels compute each column the same way whatever the batch holds.
// For F32 and F16 products ggml hands batches of two columns or more to
// llamafile's tinyBLAS and one column to its own dot products, which
// round differently; the single column is computed here as tinyBLAS
// computes each of its columns (AVX-512, or AVX2 with F16C and FMA).
// Products neither path here takes (Q8_0, Q4_0 and other types, K-quants
// without AVX-512 VNNI, arm64) go to ggml's one-column dot products for
// every batch when jetai_set_batch_invariant(1) was called, as a runner
// with speculation does.
//
// The hook is ggml's call to llamafile_sgemm, which the link wraps
// (-Wl,--wrap, cgo.go): ggml calls it for every matrix product, on every
// thread of its pool (a second time with the activations converted to the
// weights' dot-product type, Q8_K for K-quants and F16 for F16), and takes
// its result when it returns true.

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define JETAI_KQUANT 1
#endif

// ggml's type numbers (ggml.h of the pinned version).
enum { T_F32 = 0, T_F16 = 1, T_Q4_K = 12, T_Q6_K = 14, T_Q8_K = 15 };

#define QK_K 256

// ggml's block layouts (ggml-common.h).
typedef struct {
	uint16_t d, dmin;    // fp16 super-block scales of the scales and mins
	uint8_t scales[12];  // eight 6-bit scales and eight 6-bit mins
	uint8_t qs[QK_K / 2];
} jetai_block_q4_K;
typedef struct {
	uint8_t ql[QK_K / 2];  // low four bits
	uint8_t qh[QK_K / 4];  // high two bits
	int8_t scales[QK_K / 16];
	uint16_t d;
} jetai_block_q6_K;
typedef struct {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];  // sums of qs in groups of 16
} jetai_block_q8_K;
_Static_assert(sizeof(jetai_block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(jetai_block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(jetai_block_q8_K) == 292, "block_q8_K layout");

// The first fields of ggml's struct ggml_compute_params (ggml-cpu-impl.h).
struct jetai_compute_params {
	int ith, nth;
};

bool __real_llamafile_sgemm(const void * params, int64_t m, int64_t n, int64_t k, const void * A, int64_t lda, const void * B, int64_t ldb, void * C, int64_t ldc, int Atype, int Btype, int Ctype);

static int jetai_batch_invariant;

void jetai_set_batch_invariant(int on) { __atomic_store_n(&jetai_batch_invariant, on, __ATOMIC_RELAXED); }

// -1 until the environment is read: JETAI_KERNELS=0 turns the kernels off
// (for measuring them against ggml's).
static int jetai_kernels_off = -1;

// jetai_kernels_on says whether the kernels here are in use (JETAI_KERNELS=0
// not set, jetai_set_kernels not called with 0).
static __attribute__((unused)) int jetai_kernels_on(void) {
	int off = __atomic_load_n(&jetai_kernels_off, __ATOMIC_RELAXED);
	if (off < 0) {
		const char * e = getenv("JETAI_KERNELS");
		off = e != NULL && strcmp(e, "0") == 0;
		__atomic_store_n(&jetai_kernels_off, off, __ATOMIC_RELAXED);
	}
	return !off;
}

// jetai_kquant_enabled says whether the K-quant kernels take Q4_K and Q6_K
// products (built for AVX-512 VNNI, and the kernels on).
int jetai_kquant_enabled(void) {
#ifdef JETAI_KQUANT
	return jetai_kernels_on();
#else
	return 0;
#endif
}

// jetai_set_kernels turns the kernels off (0) or back on (1), for
// measuring them against ggml's.
void jetai_set_kernels(int on) { __atomic_store_n(&jetai_kernels_off, on ? 0 : 1, __ATOMIC_RELAXED); }

#ifdef JETAI_KQUANT

static inline float fp16(uint16_t h) { return _cvtsh_ss(h); }

// Most columns one pass takes for each unpacked row of weights (their
// accumulators and the row's unpacked weights fill the 32 vector
// registers).
#define GROUP 12
// Columns whose activations stay in cache while the rows stream past.
#define COLUMN_BLOCK 36

static inline __attribute__((always_inline)) void q4k_row(const jetai_block_q4_K * x, int64_t nb, const jetai_block_q8_K * const * y, float * out, const int nc) {
	__m512 fsum[GROUP];
	for (int c = 0; c < nc; c++) {
		fsum[c] = _mm512_setzero_ps();
	}
	const __m512i m4 = _mm512_set1_epi8(0x0F);
	// The 16-bit lanes 0..15 of the scale vector for activations
	// 64i..64i+63 take sub-block 2i's scale, lanes 16..31 sub-block 2i+1's.
	__m512i pair[4];
	for (int i = 0; i < 4; i++) {
		pair[i] = _mm512_inserti64x4(_mm512_set1_epi16(2 * i), _mm256_set1_epi16(2 * i + 1), 1);
	}
	for (int64_t b = 0; b < nb; b++) {
		const jetai_block_q4_K * xb = x + b;
		// The six-bit scales and mins, unpacked as ggml does: bytes 0..7 of
		// u are the scales, 8..15 the mins.
		uint32_t u[4];
		memcpy(u, xb->scales, 12);
		u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
		const uint32_t m1 = u[1] & 0x3f3f3f3f;
		u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
		u[2] = m1;
		u[0] &= 0x3f3f3f3f;
		const __m128i sm = _mm_loadu_si128((const __m128i *)u);
		const __m512i sc16 = _mm512_zextsi256_si512(_mm256_cvtepu8_epi16(sm));
		__m512i S[4];
		for (int i = 0; i < 4; i++) {
			S[i] = _mm512_permutexvar_epi16(pair[i], sc16);
		}
		const __m128i mn = _mm_srli_si128(sm, 8);
		const __m256i M16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn, mn));
		const __m512i W0 = _mm512_loadu_si512(xb->qs), W1 = _mm512_loadu_si512(xb->qs + 64);
		const __m512i lo0 = _mm512_and_si512(W0, m4), hi0 = _mm512_and_si512(_mm512_srli_epi16(W0, 4), m4);
		const __m512i lo1 = _mm512_and_si512(W1, m4), hi1 = _mm512_and_si512(_mm512_srli_epi16(W1, 4), m4);
		// Q[i] holds the 64 weights that meet activations 64i..64i+63.
		const __m512i Q[4] = {
			_mm512_shuffle_i64x2(lo0, hi0, _MM_SHUFFLE(1, 0, 1, 0)),
			_mm512_shuffle_i64x2(lo0, hi0, _MM_SHUFFLE(3, 2, 3, 2)),
			_mm512_shuffle_i64x2(lo1, hi1, _MM_SHUFFLE(1, 0, 1, 0)),
			_mm512_shuffle_i64x2(lo1, hi1, _MM_SHUFFLE(3, 2, 3, 2)),
		};
		const __m512 D = _mm512_set1_ps(fp16(xb->d)), DMIN = _mm512_set1_ps(fp16(xb->dmin));
		for (int c = 0; c < nc; c++) {
			const jetai_block_q8_K * yb = y[c] + b;
			// Pairs of products in 16 bits (at most 2·63·128, no
			// saturation), then times their scale into 32 bits.
			__m512i acc = _mm512_setzero_si512();
			for (int i = 0; i < 4; i++) {
				acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(Q[i], _mm512_loadu_si512(yb->qs + 64 * i)), S[i]);
			}
			// Scales times the products, less mins times the sums, then
			// times the activations' scale.
			const __m256i mm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)yb->bsums), M16);
			const __m512 v = _mm512_fnmadd_ps(_mm512_zextps256_ps512(_mm256_cvtepi32_ps(mm)), DMIN, _mm512_mul_ps(_mm512_cvtepi32_ps(acc), D));
			fsum[c] = _mm512_fmadd_ps(v, _mm512_set1_ps(yb->d), fsum[c]);
		}
	}
	for (int c = 0; c < nc; c++) {
		out[c] = _mm512_reduce_add_ps(fsum[c]);
	}
}

static inline __attribute__((always_inline)) void q6k_row(const jetai_block_q6_K * x, int64_t nb, const jetai_block_q8_K * const * y, float * out, const int nc) {
	__m512 fsum[GROUP];
	for (int c = 0; c < nc; c++) {
		fsum[c] = _mm512_setzero_ps();
	}
	const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
	const __mmask64 upper = 0xFFFFFFFF00000000ull;
	// The 16-bit lane l of the scale vector for activations 64i..64i+63
	// takes the scale of the 16 values it covers: 4i + l/8.
	__m512i idx[4];
	for (int i = 0; i < 4; i++) {
		int16_t v[32];
		for (int l = 0; l < 32; l++) {
			v[l] = (int16_t)(4 * i + l / 8);
		}
		idx[i] = _mm512_loadu_si512(v);
	}
	for (int64_t b = 0; b < nb; b++) {
		const jetai_block_q6_K * xb = x + b;
		const __m128i sc8 = _mm_loadu_si128((const __m128i *)xb->scales);
		const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
		__m512i S[4], Q[4];
		for (int i = 0; i < 4; i++) {
			S[i] = _mm512_permutexvar_epi16(idx[i], _mm512_zextsi256_si512(sc16));
		}
		for (int h = 0; h < 2; h++) {
			const __m512i L = _mm512_loadu_si512(xb->ql + 64 * h);
			const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(xb->qh + 32 * h)));
			const __m512i h0 = _mm512_mask_blend_epi8(upper, _mm512_and_si512(_mm512_slli_epi16(H, 4), m30), _mm512_and_si512(_mm512_slli_epi16(H, 2), m30));
			const __m512i h1 = _mm512_mask_blend_epi8(upper, _mm512_and_si512(H, m30), _mm512_and_si512(_mm512_srli_epi16(H, 2), m30));
			Q[2 * h] = _mm512_or_si512(_mm512_and_si512(L, m4), h0);
			Q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4), h1);
		}
		const float d = fp16(xb->d);
		for (int c = 0; c < nc; c++) {
			const jetai_block_q8_K * yb = y[c] + b;
			// Pairs of products in 16 bits (at most 2·63·128, no
			// saturation), then times their scale into 32 bits.
			__m512i acc = _mm512_setzero_si512();
			for (int i = 0; i < 4; i++) {
				acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(Q[i], _mm512_loadu_si512(yb->qs + 64 * i)), S[i]);
			}
			// The stored values are q + 32: take 32 times each group's
			// scaled activation sum back.
			const __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)yb->bsums), sc16);
			acc = _mm512_sub_epi32(acc, _mm512_zextsi256_si512(_mm256_slli_epi32(off, 5)));
			fsum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(d * yb->d), fsum[c]);
		}
	}
	for (int c = 0; c < nc; c++) {
		out[c] = _mm512_reduce_add_ps(fsum[c]);
	}
}

#define JETAI_ROWS(nc) \
	static void q4k_rows##nc(const jetai_block_q4_K * x, int64_t nb, const jetai_block_q8_K * const * y, float * out) { q4k_row(x, nb, y, out, nc); } \
	static void q6k_rows##nc(const jetai_block_q6_K * x, int64_t nb, const jetai_block_q8_K * const * y, float * out) { q6k_row(x, nb, y, out, nc); }
JETAI_ROWS(1)
JETAI_ROWS(2)
JETAI_ROWS(3)
JETAI_ROWS(4)
JETAI_ROWS(5)
JETAI_ROWS(6)
JETAI_ROWS(7)
JETAI_ROWS(8)
JETAI_ROWS(9)
JETAI_ROWS(10)
JETAI_ROWS(11)
JETAI_ROWS(12)

typedef void (*q4k_rows_fn)(const jetai_block_q4_K *, int64_t, const jetai_block_q8_K * const *, float *);
typedef void (*q6k_rows_fn)(const jetai_block_q6_K *, int64_t, const jetai_block_q8_K * const *, float *);
static const q4k_rows_fn q4k_rows[GROUP + 1] = {NULL, q4k_rows1, q4k_rows2, q4k_rows3, q4k_rows4, q4k_rows5, q4k_rows6, q4k_rows7, q4k_rows8, q4k_rows9, q4k_rows10, q4k_rows11, q4k_rows12};
static const q6k_rows_fn q6k_rows[GROUP + 1] = {NULL, q6k_rows1, q6k_rows2, q6k_rows3, q6k_rows4, q6k_rows5, q6k_rows6, q6k_rows7, q6k_rows8, q6k_rows9, q6k_rows10, q6k_rows11, q6k_rows12};

// gemm computes rows r0..r1 of C = A·B for all n columns: C[ldc*j + i] is
// row i of A (lda blocks apart) against column j of B (ldb blocks apart).
static void gemm(int type, int64_t r0, int64_t r1, int64_t n, int64_t nb, const void * A, int64_t lda, const jetai_block_q8_K * B, int64_t ldb, float * C, int64_t ldc) {
	const size_t row = type == T_Q4_K ? sizeof(jetai_block_q4_K) : sizeof(jetai_block_q6_K);
	for (int64_t j0 = 0; j0 < n; j0 += COLUMN_BLOCK) {
		const int64_t j1 = j0 + COLUMN_BLOCK < n ? j0 + COLUMN_BLOCK : n;
		for (int64_t i = r0; i < r1; i++) {
			const void * x = (const char *)A + (size_t)(i * lda) * row;
			for (int64_t j = j0; j < j1;) {
				const jetai_block_q8_K * y[GROUP];
				float out[GROUP];
				// The rest in as few passes as can take it, of even size.
				const int64_t left = j1 - j, passes = (left + GROUP - 1) / GROUP;
				const int nc = (int)((left + passes - 1) / passes);
				for (int c = 0; c < nc; c++) {
					y[c] = B + (j + c) * ldb;
				}
				if (type == T_Q4_K) {
					q4k_rows[nc](x, nb, y, out);
				} else {
					q6k_rows[nc](x, nb, y, out);
				}
				for (int c = 0; c < nc; c++) {
					C[(j + c) * ldc + i] = out[c];
				}
				j += nc;
			}
		}
	}
}

#endif  // JETAI_KQUANT

// jetai_kquant_gemm is the kernels' entry for tests: rows r0..r1 of A
// (type Q4_K or Q6_K) against n columns of Q8_K activations. It returns
// false where the kernels are not built or the type is not theirs.
bool jetai_kquant_gemm(int type, int64_t r0, int64_t r1, int64_t n, int64_t nb, const void * A, int64_t lda, const void * B, int64_t ldb, float * C, int64_t ldc) {
#ifdef JETAI_KQUANT
	if (type != T_Q4_K && type != T_Q6_K) {
		return false;
	}
	gemm(type, r0, r1, n, nb, A, lda, B, ldb, C, ldc);
	return true;
#else
	(void)type, (void)r0, (void)r1, (void)n, (void)nb, (void)A, (void)lda, (void)B, (void)ldb, (void)C, (void)ldc;
	return false;
#endif
}

// One column of tinyBLAS's F32 and F16 products (sgemm.cpp: one vector
// accumulator per result over k in steps of KN, then its horizontal sum),
// for the single column that tinyBLAS leaves to ggml's dot products: a
// token's products are then the same decoded alone or in a batch.
#if defined(__AVX512F__) && defined(__F16C__) && defined(__FMA__)
#define KN 16
typedef __m512 vec;
static inline vec vzero(void) { return _mm512_setzero_ps(); }
static inline vec vload32(const float * p) { return _mm512_loadu_ps(p); }
static inline vec vload16(const uint16_t * p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline vec vmadd(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline float vhsum(vec x) { return _mm512_reduce_add_ps(x); }
#define JETAI_COLUMN 1
#elif defined(__AVX__) && defined(__F16C__) && defined(__FMA__)
#define KN 8
typedef __m256 vec;
static inline vec vzero(void) { return _mm256_setzero_ps(); }
static inline vec vload32(const float * p) { return _mm256_loadu_ps(p); }
static inline vec vload16(const uint16_t * p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline vec vmadd(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline float vhsum(vec v) {
	__m128 x = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
	x = _mm_add_ps(x, _mm_movehl_ps(x, x));
	x = _mm_add_ss(x, _mm_movehdup_ps(x));
	return _mm_cvtss_f32(x);
}
#define JETAI_COLUMN 1
#endif

#ifdef JETAI_COLUMN
static void column_f32(int64_t r0, int64_t r1, int64_t k, const float * A, int64_t lda, const float * B, float * C) {
	for (int64_t i = r0; i < r1; i++) {
		vec acc = vzero();
		for (int64_t l = 0; l < k; l += KN) {
			acc = vmadd(vload32(A + lda * i + l), vload32(B + l), acc);
		}
		C[i] = vhsum(acc);
	}
}

static void column_f16(int64_t r0, int64_t r1, int64_t k, const uint16_t * A, int64_t lda, const uint16_t * B, float * C) {
	for (int64_t i = r0; i < r1; i++) {
		vec acc = vzero();
		for (int64_t l = 0; l < k; l += KN) {
			acc = vmadd(vload16(A + lda * i + l), vload16(B + l), acc);
		}
		C[i] = vhsum(acc);
	}
}
#endif

// jetai_column_enabled says whether single F32/F16 columns are computed
// here (built for AVX-512 or AVX2 with F16C and FMA, and the kernels on).
int jetai_column_enabled(void) {
#ifdef JETAI_COLUMN
	return jetai_kernels_on();
#else
	return 0;
#endif
}

bool __wrap_llamafile_sgemm(const void * params, int64_t m, int64_t n, int64_t k, const void * A, int64_t lda, const void * B, int64_t ldb, void * C, int64_t ldc, int Atype, int Btype, int Ctype) {
#ifdef JETAI_KQUANT
	if ((Atype == T_Q4_K || Atype == T_Q6_K) && Btype == T_Q8_K && Ctype == T_F32 && jetai_kquant_enabled()) {
		const struct jetai_compute_params * p = params;
		// Rows split evenly over ggml's threads.
		const int64_t r0 = m * p->ith / p->nth, r1 = m * (p->ith + 1) / p->nth;
		gemm(Atype, r0, r1, n, k, A, lda, B, ldb, C, ldc);
		return true;
	}
#endif
#ifdef JETAI_COLUMN
	// The shapes tinyBLAS takes from two columns on (sgemm.cpp: k a
	// multiple of KN and m of 4), for one column.
	if (jetai_kernels_on() && n == 1 && Ctype == T_F32 && k % KN == 0 && m % 4 == 0 && Atype == Btype && (Atype == T_F32 || Atype == T_F16)) {
		const struct jetai_compute_params * p = params;
		const int64_t r0 = m * p->ith / p->nth, r1 = m * (p->ith + 1) / p->nth;
		if (Atype == T_F32) {
			column_f32(r0, r1, k, A, lda, B, C);
		} else {
			column_f16(r0, r1, k, A, lda, B, C);
		}
		return true;
	}
	if (jetai_kernels_on() && (Atype == T_F32 || Atype == T_F16)) {
		return __real_llamafile_sgemm(params, m, n, k, A, lda, B, ldb, C, ldc, Atype, Btype, Ctype);
	}
#endif
	if (__atomic_load_n(&jetai_batch_invariant, __ATOMIC_RELAXED)) {
		return false;
	}
	return __real_llamafile_sgemm(params, m, n, k, A, lda, B, ldb, C, ldc, Atype, Btype, Ctype);
}
