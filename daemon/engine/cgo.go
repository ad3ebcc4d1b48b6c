package engine

/*
#cgo LDFLAGS: -Wl,--wrap=ggml_backend_buffer_clear -Wl,--wrap=ggml_backend_init_best -Wl,--wrap=llamafile_sgemm
#include "engine.h"
uint64_t jetai_lazy_clear_count(void);
uint64_t jetai_lazy_clear_bytes_total(void);
*/
import "C"

import (
	"unsafe"

	"github.com/ollama/ollama/llama"
)

// rawModel returns the llama_model pointer held in the first field of the
// ollama wrapper.
func rawModel(m *llama.Model) *C.struct_llama_model {
	return (*C.struct_llama_model)(*(*unsafe.Pointer)(unsafe.Pointer(m)))
}

// wrapModel builds the ollama wrapper around a pointer loaded by jetai.
func wrapModel(p *C.struct_llama_model) *llama.Model {
	m := new(llama.Model)
	*(*unsafe.Pointer)(unsafe.Pointer(m)) = unsafe.Pointer(p)
	return m
}

// rawContext returns the llama_context pointer held in the first field of
// the ollama wrapper.
func rawContext(c *llama.Context) *C.struct_llama_context {
	return (*C.struct_llama_context)(*(*unsafe.Pointer)(unsafe.Pointer(c)))
}

// LazyClears says how many CPU buffers llama.cpp asked to zero were
// zeroed lazily instead (kvclear.c), and how many bytes they held.
func LazyClears() (count, bytes uint64) {
	return uint64(C.jetai_lazy_clear_count()), uint64(C.jetai_lazy_clear_bytes_total())
}
