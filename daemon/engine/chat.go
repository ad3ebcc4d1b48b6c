package engine

/*
#include "engine.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ApplyChatTemplate formats messages with the model's own chat template
// (llama.cpp's built-in template support) and, when addAssistant is set,
// opens the assistant's turn.
func (m *Model) ApplyChatTemplate(msgs []Message, addAssistant bool) (string, error) {
	if m.info.ChatTemplate == "" {
		return "", ErrNoChatTemplate
	}
	return applyTemplate(m.info.ChatTemplate, msgs, addAssistant)
}

func applyTemplate(tmpl string, msgs []Message, addAssistant bool) (string, error) {
	if len(msgs) == 0 {
		return "", fmt.Errorf("chat: no messages")
	}
	ctmpl := C.CString(tmpl)
	defer C.free(unsafe.Pointer(ctmpl))

	cmsgs := (*[1 << 28]C.jetai_chat_message)(C.malloc(C.size_t(len(msgs)) * C.size_t(unsafe.Sizeof(C.jetai_chat_message{}))))[:len(msgs):len(msgs)]
	defer C.free(unsafe.Pointer(&cmsgs[0]))
	total := 0
	for i, msg := range msgs {
		cmsgs[i].role = C.CString(msg.Role)
		cmsgs[i].content = C.CString(msg.Content)
		total += len(msg.Role) + len(msg.Content)
	}
	defer func() {
		for i := range cmsgs {
			C.free(unsafe.Pointer(cmsgs[i].role))
			C.free(unsafe.Pointer(cmsgs[i].content))
		}
	}()

	size := 2*total + 256
	for {
		buf := C.malloc(C.size_t(size))
		n := int(C.llama_chat_apply_template(ctmpl, &cmsgs[0], C.size_t(len(msgs)), C.bool(addAssistant), (*C.char)(buf), C.int32_t(size)))
		if n < 0 {
			C.free(buf)
			return "", fmt.Errorf("%w: llama.cpp does not support this template", ErrNoChatTemplate)
		}
		if n <= size {
			out := C.GoStringN((*C.char)(buf), C.int(n))
			C.free(buf)
			return out, nil
		}
		C.free(buf)
		size = n + 1
	}
}
