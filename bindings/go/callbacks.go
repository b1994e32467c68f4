package ember

// The exported trampolines C calls back through. This file's preamble may only declare (cgo's rule for
// files with //export), so the C adapters that call these live in shim.h.

/*
#include <stddef.h>
#include <stdint.h>
#include "ember.h"
*/
import "C"

import (
	"errors"
	"runtime/cgo"
	"unsafe"
)

// ErrStop, returned from a StreamFunc, ends generation normally (StopCallback).
var ErrStop = errors.New("ember: stop generation")

// StreamFunc receives each piece of generated text (never a split UTF-8 character) and the token that
// completed it. Return nil to go on, ErrStop to stop (the stop reason is then StopCallback and the token is
// not evaluated into the session), or any other error to end generation with it: Generate returns an
// *Error of StatusCallback wrapping it (errors.Is / errors.As reach it). A panic in the callback ends
// generation too, and Generate re-panics it with the same value once the C call has returned.
type StreamFunc func(text string, token int32) error

type streamState struct {
	fn        StreamFunc
	err       error
	panicking bool
	panicVal  any
}

//export emberGoStream
func emberGoStream(text *C.char, n C.size_t, token C.int32_t, user unsafe.Pointer) (ret C.int32_t) {
	st, ok := cgo.Handle(uintptr(user)).Value().(*streamState)
	if !ok || st.fn == nil {
		return C.EMBER_STREAM_ERROR
	}
	finished := false
	defer func() {
		if !finished {
			st.panicking, st.panicVal = true, recover()
			ret = C.EMBER_STREAM_ERROR
		}
	}()
	err := st.fn(C.GoStringN(text, C.int(n)), int32(token))
	finished = true
	switch {
	case err == nil:
		return C.EMBER_STREAM_CONTINUE
	case errors.Is(err, ErrStop):
		return C.EMBER_STREAM_STOP
	default:
		st.err = err
		return C.EMBER_STREAM_ERROR
	}
}

//export emberGoProgress
func emberGoProgress(progress C.float, user unsafe.Pointer) (ret C.int32_t) {
	ps, ok := cgo.Handle(uintptr(user)).Value().(*progressState)
	if !ok || ps.f == nil {
		return 1
	}
	finished := false
	defer func() {
		if !finished {
			ps.panicking, ps.panicVal = true, recover()
			ret = 0
		}
	}()
	goOn := ps.f(float32(progress))
	finished = true
	if goOn {
		return 1
	}
	return 0
}
