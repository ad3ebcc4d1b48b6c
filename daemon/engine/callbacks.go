package engine

// This file holds the functions exported to C; cgo forbids definitions in
// the preamble of a file that uses //export.

/*
#include "engine.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export jetaiProgress
func jetaiProgress(progress C.float, userData unsafe.Pointer) C.bool {
	l := cgo.Handle(*(*uintptr)(userData)).Value().(*loadState)
	return C.bool(l.progress(float32(progress)))
}

//export jetaiLog
func jetaiLog(level C.int, text *C.char, _ unsafe.Pointer) {
	engineLog.write(int(level), C.GoString(text))
}
