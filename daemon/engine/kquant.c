// Matrix products of K-quantized weights for llama.cpp's CPU backend, and
// batch invariance.
//
// ggml multiplies a Q4_K or Q6_K weight matrix by the batch's activations
// one (row, column) dot product at a time: every column unpacks the
// weights again, so a batch of k tokens costs about k times one token on
// a CPU whose decode is compute-bound. A speculative step verifies k
// tokens of one sequence in one batch and gains only if that costs little
// more than one token. The kernels here unpack a row's weights once for
// up to eight columns and use AVX-512 VNNI's 16-bit dot product.
//
// Each column's arithmetic is the same whatever the batch holds, so a
// token's logits are bit for bit the same computed alone or beside other
// tokens: with speculation on, greedy and seeded output is the output
// without it. ggml's own paths are not batch-invariant: llamafile's
// tinyBLAS takes a batch of two or more and rounds differently from the
// one-column dot products. jetai_set_batch_invariant(1) sends every
// product the kernels here do not take to ggml's one-column path, whatever
// the batch.
//
// The hook is ggml's call to llamafile_sgemm, which the link wraps
// (-Wl,--wrap, cgo.go): ggml calls it for every matrix product with the
// activations already quantized to Q8_K, on every thread of its pool, and
// takes its result when it returns true.

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define JETAI_KQUANT 1
#endif

// ggml's type numbers (ggml.h of the pinned version).
enum { T_F32 = 0, T_Q4_K = 12, T_Q6_K = 14, T_Q8_K = 15 };

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

// -1 until the environment is read: JETAI_KQUANT=0 turns the kernels off
// (for measuring them against ggml's).
static int jetai_kquant_off = -1;

// jetai_kquant_enabled says whether the kernels here take K-quant
// products (built for AVX-512 VNNI, and JETAI_KQUANT=0 not set).
int jetai_kquant_enabled(void) {
#ifdef JETAI_KQUANT
	int off = __atomic_load_n(&jetai_kquant_off, __ATOMIC_RELAXED);
	if (off < 0) {
		const char * e = getenv("JETAI_KQUANT");
		off = e != NULL && strcmp(e, "0") == 0;
		__atomic_store_n(&jetai_kquant_off, off, __ATOMIC_RELAXED);
	}
	return !off;
#else
	return 0;
#endif
}

// jetai_set_kquant turns the kernels off (0) or back on (1), for measuring
// them against ggml's.
void jetai_set_kquant(int on) { __atomic_store_n(&jetai_kquant_off, on ? 0 : 1, __ATOMIC_RELAXED); }

#ifdef JETAI_KQUANT

static inline float fp16(uint16_t h) { return _cvtsh_ss(h); }

// Most columns one pass takes for each unpacked row of weights; a batch
// of n takes them GROUP at a time and the rest in one pass.
#define GROUP 8
// Columns whose activations stay in cache while the rows stream past.
#define COLUMN_BLOCK 32

static inline __attribute__((always_inline)) void q4k_row(const jetai_block_q4_K * x, int64_t nb, const jetai_block_q8_K * const * y, float * out, const int nc) {
	__m512 fsum[GROUP];
	__m256 msum[GROUP];
	for (int c = 0; c < nc; c++) {
		fsum[c] = _mm512_setzero_ps();
		msum[c] = _mm256_setzero_ps();
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
		const float d = fp16(xb->d), dmin = fp16(xb->dmin);
		for (int c = 0; c < nc; c++) {
			const jetai_block_q8_K * yb = y[c] + b;
			// Pairs of products in 16 bits (at most 2·63·128, no
			// saturation), then times their scale into 32 bits.
			__m512i acc = _mm512_setzero_si512();
			for (int i = 0; i < 4; i++) {
				acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(Q[i], _mm512_loadu_si512(yb->qs + 64 * i)), S[i]);
			}
			fsum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(d * yb->d), fsum[c]);
			const __m256i mm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)yb->bsums), M16);
			msum[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mm), _mm256_set1_ps(dmin * yb->d), msum[c]);
		}
	}
	for (int c = 0; c < nc; c++) {
		out[c] = _mm512_reduce_add_ps(fsum[c]) - _mm512_reduce_add_ps(_mm512_zextps256_ps512(msum[c]));
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

typedef void (*q4k_rows_fn)(const jetai_block_q4_K *, int64_t, const jetai_block_q8_K * const *, float *);
typedef void (*q6k_rows_fn)(const jetai_block_q6_K *, int64_t, const jetai_block_q8_K * const *, float *);
static const q4k_rows_fn q4k_rows[GROUP + 1] = {NULL, q4k_rows1, q4k_rows2, q4k_rows3, q4k_rows4, q4k_rows5, q4k_rows6, q4k_rows7, q4k_rows8};
static const q6k_rows_fn q6k_rows[GROUP + 1] = {NULL, q6k_rows1, q6k_rows2, q6k_rows3, q6k_rows4, q6k_rows5, q6k_rows6, q6k_rows7, q6k_rows8};

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
				const int nc = j1 - j >= GROUP ? GROUP : (int)(j1 - j);
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
	if (__atomic_load_n(&jetai_batch_invariant, __ATOMIC_RELAXED)) {
		return false;
	}
	return __real_llamafile_sgemm(params, m, n, k, A, lda, B, ldb, C, ldc, Atype, Btype, Ctype);
}
