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

static int jetai_clip_offload_flag;

void jetai_clip_offload(int on) { __atomic_store_n(&jetai_clip_offload_flag, on, __ATOMIC_RELAXED); }

ggml_backend_t __wrap_ggml_backend_init_best(void) {
	if (__atomic_load_n(&jetai_clip_offload_flag, __ATOMIC_RELAXED)) {
		return __real_ggml_backend_init_best();
	}
	return ggml_backend_init_by_type(JETAI_GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
}

// jetai_clip_load loads a projector; on failure it returns NULL and copies
// the exception's message (if any) into err.
struct clip_ctx * jetai_clip_load(const char * path, char * err, size_t err_len) {
	err[0] = 0;
	try {
		return clip_model_load(path, 1);
	} catch (const std::exception & e) {
		strncpy(err, e.what(), err_len - 1);
		err[err_len - 1] = 0;
	} catch (...) {
		strncpy(err, "unknown C++ exception", err_len - 1);
	}
	return nullptr;
}
}
