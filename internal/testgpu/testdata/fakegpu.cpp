// fakegpu.cpp is a ggml backend for tests: one device of type GPU whose
// buffers are host memory and which supports no operation, so a model
// "offloaded" to it keeps its weights on the CPU (llama.cpp falls back per
// tensor), places its KV cache in this device's buffers and runs every op
// on the CPU backend. It fills ggml's interface structs only and calls no
// ggml function, so it loads into a binary that links ggml statically.
//
// Environment: FAKEGPU_TOTAL_MIB (default 4096) is the device's memory;
// FAKEGPU_NAME (default "FakeGPU0") its name. Free memory is the total less
// what this device's buffers hold.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "ggml-backend-impl.h"

static std::atomic<size_t> g_allocated{0};

static size_t total_bytes() {
	const char *s = getenv("FAKEGPU_TOTAL_MIB");
	size_t mib = s ? strtoull(s, nullptr, 10) : 4096;
	return mib << 20;
}

static const char *dev_name() {
	const char *s = getenv("FAKEGPU_NAME");
	return s ? s : "FakeGPU0";
}

struct fake_buffer {
	void *data;
	size_t size;
};

static void buf_free(ggml_backend_buffer_t b) {
	auto *fb = (fake_buffer *)b->context;
	g_allocated -= fb->size;
	free(fb->data);
	delete fb;
}
static void *buf_base(ggml_backend_buffer_t b) { return ((fake_buffer *)b->context)->data; }
static void buf_memset(ggml_backend_buffer_t, ggml_tensor *t, uint8_t v, size_t off, size_t n) {
	memset((char *)t->data + off, v, n);
}
static void buf_set(ggml_backend_buffer_t, ggml_tensor *t, const void *d, size_t off, size_t n) {
	memcpy((char *)t->data + off, d, n);
}
static void buf_get(ggml_backend_buffer_t, const ggml_tensor *t, void *d, size_t off, size_t n) {
	memcpy(d, (const char *)t->data + off, n);
}
static bool buf_cpy(ggml_backend_buffer_t, const ggml_tensor *, ggml_tensor *) { return false; }
static void buf_clear(ggml_backend_buffer_t b, uint8_t v) {
	auto *fb = (fake_buffer *)b->context;
	memset(fb->data, v, fb->size);
}

static const ggml_backend_buffer_i buffer_iface = {
	buf_free, buf_base, nullptr, buf_memset, buf_set, buf_get, buf_cpy, buf_clear, nullptr,
};

static ggml_backend_device g_dev;
static ggml_backend_reg g_reg;

static const char *buft_name(ggml_backend_buffer_type_t) { return "FakeGPU"; }
static ggml_backend_buffer_t buft_alloc(ggml_backend_buffer_type_t buft, size_t size) {
	void *p = nullptr;
	if (posix_memalign(&p, 64, size ? size : 64) != 0) {
		return nullptr;
	}
	g_allocated += size;
	auto *fb = new fake_buffer{p, size};
	return new ggml_backend_buffer{buffer_iface, buft, fb, size, GGML_BACKEND_BUFFER_USAGE_ANY};
}
static size_t buft_align(ggml_backend_buffer_type_t) { return 64; }
static bool buft_is_host(ggml_backend_buffer_type_t) { return true; }

static ggml_backend_buffer_type g_buft = {
	{buft_name, buft_alloc, buft_align, nullptr, nullptr, buft_is_host},
	&g_dev,
	nullptr,
};

static const char *be_name(ggml_backend_t) { return "FakeGPU"; }
static void be_free(ggml_backend_t b) { delete b; }
static ggml_status be_compute(ggml_backend_t, ggml_cgraph *) {
	// Every op is unsupported, so the scheduler must never hand one here.
	fprintf(stderr, "fakegpu: graph_compute called though no op is supported\n");
	return GGML_STATUS_FAILED;
}
static ggml_guid g_guid = {0x6a, 0x65, 0x74, 0x61, 0x69, 0x66, 0x61, 0x6b, 0x65, 0x67, 0x70, 0x75, 0, 0, 0, 1};

static const char *dev_get_name(ggml_backend_dev_t) { return dev_name(); }
static const char *dev_desc(ggml_backend_dev_t) { return "jetai test device (host memory, no ops)"; }
static void dev_memory(ggml_backend_dev_t, size_t *free_, size_t *total) {
	size_t t = total_bytes(), a = g_allocated;
	*total = t;
	*free_ = a < t ? t - a : 0;
}
static enum ggml_backend_dev_type dev_type(ggml_backend_dev_t) { return GGML_BACKEND_DEVICE_TYPE_GPU; }
static void dev_props(ggml_backend_dev_t d, ggml_backend_dev_props *p) {
	p->name = dev_get_name(d);
	p->description = dev_desc(d);
	dev_memory(d, &p->memory_free, &p->memory_total);
	p->type = GGML_BACKEND_DEVICE_TYPE_GPU;
	p->caps = {false, false, false, false};
}
static ggml_backend_t dev_init(ggml_backend_dev_t d, const char *) {
	ggml_backend_i iface = {};
	iface.get_name = be_name;
	iface.free = be_free;
	iface.graph_compute = be_compute;
	return new ggml_backend{&g_guid, iface, d, nullptr};
}
static ggml_backend_buffer_type_t dev_buft(ggml_backend_dev_t) { return &g_buft; }
static bool dev_supports_op(ggml_backend_dev_t, const ggml_tensor *) { return false; }
static bool dev_supports_buft(ggml_backend_dev_t, ggml_backend_buffer_type_t b) { return b == &g_buft; }
static bool dev_offload_op(ggml_backend_dev_t, const ggml_tensor *) { return false; }

static const char *reg_name(ggml_backend_reg_t) { return "FakeGPU"; }
static size_t reg_count(ggml_backend_reg_t) { return 1; }
static ggml_backend_dev_t reg_dev(ggml_backend_reg_t, size_t) { return &g_dev; }
static void *reg_proc(ggml_backend_reg_t, const char *) { return nullptr; }

extern "C" {
__attribute__((visibility("default"))) ggml_backend_reg_t ggml_backend_init(void) {
	g_dev.iface = {dev_get_name, dev_desc, dev_memory, dev_type, dev_props, dev_init, dev_buft,
	               nullptr, nullptr, dev_supports_op, dev_supports_buft, dev_offload_op,
	               nullptr, nullptr, nullptr};
	g_dev.reg = &g_reg;
	g_dev.context = nullptr;
	g_reg.api_version = GGML_BACKEND_API_VERSION;
	g_reg.iface = {reg_name, reg_count, reg_dev, reg_proc};
	g_reg.context = nullptr;
	return &g_reg;
}
__attribute__((visibility("default"))) int ggml_backend_score(void) { return 1; }
}
