// Package ember is the Go binding of ember, an embeddable LLM library, over its C ABI (capi/ember.h).
//
// Every handle (Model, Tokenizer, Session, Sampler, Chat) has an idempotent Close, and a finalizer frees
// what a program forgets to close. Failures are *Error values carrying the ember status and message.
// C never keeps a Go pointer: callbacks reach Go through runtime/cgo handles.
package ember

/*
#include "shim.h"
*/
import "C"

import (
	"math"
	"strings"
	"sync"
	"unsafe"
)

// ABIVersion is the ember ABI this binding is written for; the loaded library must report the same.
const ABIVersion = 1

var (
	abiOnce sync.Once
	abiErr  error
)

// checkABI compares the loaded library's ABI version with ABIVersion.
func checkABI(got uint32) error {
	if got != ABIVersion {
		return errorf(StatusUnsupported,
			"the loaded ember library has ABI version %d, but this Go binding is written for ABI version %d "+
				"(use a libember.so.%d)", got, ABIVersion, ABIVersion)
	}
	return nil
}

// ensureABI checks the ABI once, before the first handle is made.
func ensureABI() error {
	abiOnce.Do(func() { abiErr = checkABI(uint32(C.ember_abi_version())) })
	return abiErr
}

// Version is the loaded library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.ember_version()) }

// VersionNumber is the loaded library's version as MAJOR*1000000 + MINOR*1000 + PATCH.
func VersionNumber() uint32 { return uint32(C.ember_version_number()) }

// LibraryABIVersion is ember_abi_version() of the loaded library.
func LibraryABIVersion() uint32 { return uint32(C.ember_abi_version()) }

// Backends lists the backends the library was built with, "cpu" first.
func Backends() []string {
	n := int(C.ember_backend_count())
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if p := C.ember_backend_name(C.int32_t(i)); p != nil {
			out = append(out, C.GoString(p))
		}
	}
	return out
}

// cString is C.CString refusing text with a NUL byte (C would cut it there).
func cString(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errorf(StatusInvalidArgument, "%s contains a NUL byte", what)
	}
	return C.CString(s), nil
}

// cInt32 is v as C's int32_t, refusing a value outside int32 (a conversion would wrap it silently into
// another number, which C would then take as given).
func cInt32(v int, what string) (C.int32_t, error) {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, errorf(StatusInvalidArgument, "%s (%d) is outside int32", what, v)
	}
	return C.int32_t(v), nil
}

// getText runs a two-call text getter of the shim (ember_go_text) and returns the text.
func getText(which C.int, args *C.ember_go_text_args) (string, error) {
	var needed C.size_t
	var msg *C.char
	st := C.ember_go_text(which, args, nil, 0, &needed, &msg)
	for {
		if err := newError(st, msg); err != nil {
			return "", err
		}
		if needed <= 1 {
			return "", nil
		}
		buf := make([]byte, int(needed))
		have := needed
		msg = nil
		st = C.ember_go_text(which, args, (*C.char)(unsafe.Pointer(&buf[0])), have, &needed, &msg)
		if st == C.EMBER_ERR_BUFFER_TOO_SMALL && needed > have {
			if msg != nil {
				C.free(unsafe.Pointer(msg))
			}
			msg, st = nil, C.EMBER_OK
			continue // grew between the calls; ask again with the new size
		}
		if st == C.EMBER_OK {
			if msg != nil {
				C.free(unsafe.Pointer(msg))
			}
			return string(buf[:needed-1]), nil
		}
	}
}
