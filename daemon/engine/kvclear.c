// Lazy zeroing of CPU buffers. llama.cpp clears a new KV cache with
// ggml_backend_buffer_clear(buf, 0), a memset that faults in every page
// of the cache at context creation, though a request touches only the
// cells it uses. The link wraps that function (-Wl,--wrap, cgo.go): for a
// plain CPU buffer cleared to zero, the whole pages inside it are given
// back with MADV_DONTNEED, which makes them read as zero and faults them
// in on first use, and only the partial pages at its ends are written.
// Everything else (other values, GPU and pinned host buffers) goes to
// ggml's own function, and so does every clear when the environment sets
// JETAI_EAGER_CLEAR=1 (for measuring the difference).

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct ggml_backend_buffer * ggml_backend_buffer_t;
typedef struct ggml_backend_buffer_type * ggml_backend_buffer_type_t;

void * ggml_backend_buffer_get_base(ggml_backend_buffer_t buffer);
size_t ggml_backend_buffer_get_size(ggml_backend_buffer_t buffer);
ggml_backend_buffer_type_t ggml_backend_buffer_get_type(ggml_backend_buffer_t buffer);
ggml_backend_buffer_type_t ggml_backend_cpu_buffer_type(void);
void __real_ggml_backend_buffer_clear(ggml_backend_buffer_t buffer, uint8_t value);

// Buffers smaller than this are cleared the ordinary way.
#define JETAI_LAZY_CLEAR_MIN (1 << 20)

static uint64_t jetai_lazy_clears;
static uint64_t jetai_lazy_clear_bytes;

uint64_t jetai_lazy_clear_count(void) { return __atomic_load_n(&jetai_lazy_clears, __ATOMIC_RELAXED); }
uint64_t jetai_lazy_clear_bytes_total(void) { return __atomic_load_n(&jetai_lazy_clear_bytes, __ATOMIC_RELAXED); }

static int jetai_eager_clear(void) {
	static int eager = -1;
	if (eager < 0) {
		const char * e = getenv("JETAI_EAGER_CLEAR");
		eager = e != NULL && strcmp(e, "1") == 0;
	}
	return eager;
}

void __wrap_ggml_backend_buffer_clear(ggml_backend_buffer_t buffer, uint8_t value) {
	size_t size = ggml_backend_buffer_get_size(buffer);
	if (value == 0 && !jetai_eager_clear() && size >= JETAI_LAZY_CLEAR_MIN &&
	    ggml_backend_buffer_get_type(buffer) == ggml_backend_cpu_buffer_type()) {
		uintptr_t base = (uintptr_t) ggml_backend_buffer_get_base(buffer);
		uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE);
		uintptr_t lo = (base + page - 1) & ~(page - 1);
		uintptr_t hi = (base + size) & ~(page - 1);
		// The CPU buffer type's memory is private anonymous memory from
		// malloc, whose pages read as zero after MADV_DONTNEED.
		if (hi > lo && madvise((void *) lo, hi - lo, MADV_DONTNEED) == 0) {
			memset((void *) base, 0, lo - base);
			memset((void *) hi, 0, base + size - hi);
			__atomic_add_fetch(&jetai_lazy_clears, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&jetai_lazy_clear_bytes, (uint64_t) (hi - lo), __ATOMIC_RELAXED);
			return;
		}
	}
	__real_ggml_backend_buffer_clear(buffer, value);
}
