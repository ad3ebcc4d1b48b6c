// vision.cpp: the C side of the projector binding (vision.go). clip.cpp
// throws C++ exceptions for a file it cannot read (a missing key or
// tensor); an exception that reached Go would terminate the process, so
// the load is wrapped here and the message handed back instead.
//
// The link also wraps ggml_backend_init_best (-Wl,--wrap, cgo.go): clip.cpp
// calls it to place the projector, and it picks a GPU whenever one is
// registered. jetai_clip_offload says whether the next load may do that;
// when not, the projector runs on the CPU backend. Only clip.cpp and
// mllama.cpp call ggml_backend_init_best.

#include <cstring>
#include <exception>
#include <string>

extern "C" {
struct clip_ctx;
struct clip_ctx * clip_model_load(const char * fname, int verbosity);

typedef struct ggml_backend * ggml_backend_t;
enum jetai_ggml_backend_dev_type { JETAI_GGML_BACKEND_DEVICE_TYPE_CPU = 0 };
ggml_backend_t ggml_backend_init_by_type(int type, const char * params);
ggml_backend_t __real_ggml_backend_init_best(void);
bool ggml_backend_is_cpu(ggml_backend_t backend);
typedef bool (*ggml_abort_callback)(void * data);
void ggml_backend_cpu_set_abort_callback(ggml_backend_t backend, ggml_abort_callback cb, void * data);

static int jetai_clip_offload_flag;
// The backend the last wrapped init made: the projector's, read by
// jetai_clip_load (loads are serialised on the Go side).
static ggml_backend_t jetai_clip_backend;

void jetai_clip_offload(int on) { __atomic_store_n(&jetai_clip_offload_flag, on, __ATOMIC_RELAXED); }

ggml_backend_t __wrap_ggml_backend_init_best(void) {
	ggml_backend_t b;
	if (__atomic_load_n(&jetai_clip_offload_flag, __ATOMIC_RELAXED)) {
		b = __real_ggml_backend_init_best();
	} else {
		b = ggml_backend_init_by_type(JETAI_GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
	}
	jetai_clip_backend = b;
	return b;
}

// jetai_clip_abort_cb is the projector's CPU abort callback: ggml checks it
// between graph nodes, so an encode stops within one node once *flag is set.
static bool jetai_clip_abort_cb(void * flag) {
	return __atomic_load_n((int *)flag, __ATOMIC_RELAXED) != 0;
}

void jetai_clip_set_abort(int * flag, int on) { __atomic_store_n(flag, on, __ATOMIC_RELAXED); }

// jetai_clip_load loads a projector; on failure it returns NULL and copies
// the exception's message (if any) into err. When the projector runs on
// the CPU backend, abort (which the caller owns) becomes its abort flag
// and *abortable is set; a GPU backend has no abort hook in this ggml.
struct clip_ctx * jetai_clip_load(const char * path, char * err, size_t err_len, int * abort, int * abortable) {
	err[0] = 0;
	*abortable = 0;
	jetai_clip_backend = nullptr;
	try {
		struct clip_ctx * c = clip_model_load(path, 1);
		if (c != nullptr && jetai_clip_backend != nullptr && ggml_backend_is_cpu(jetai_clip_backend)) {
			ggml_backend_cpu_set_abort_callback(jetai_clip_backend, jetai_clip_abort_cb, abort);
			*abortable = 1;
		}
		return c;
	} catch (const std::exception & e) {
		strncpy(err, e.what(), err_len - 1);
		err[err_len - 1] = 0;
	} catch (...) {
		strncpy(err, "unknown C++ exception", err_len - 1);
	}
	return nullptr;
}
}
