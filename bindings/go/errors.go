package ember

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Status is an ember_status: the kind of an error. The numbers are ember.h's.
type Status int32

// The statuses of ember.h.
const (
	StatusOK              Status = C.EMBER_OK
	StatusInvalidArgument Status = C.EMBER_ERR_INVALID_ARGUMENT
	StatusBadFile         Status = C.EMBER_ERR_BAD_FILE
	StatusUnsupported     Status = C.EMBER_ERR_UNSUPPORTED
	StatusOutOfMemory     Status = C.EMBER_ERR_OUT_OF_MEMORY
	StatusContextFull     Status = C.EMBER_ERR_CONTEXT_FULL
	StatusCancelled       Status = C.EMBER_ERR_CANCELLED
	StatusBackend         Status = C.EMBER_ERR_BACKEND
	StatusInternal        Status = C.EMBER_ERR_INTERNAL
	StatusIO              Status = C.EMBER_ERR_IO
	StatusBufferTooSmall  Status = C.EMBER_ERR_BUFFER_TOO_SMALL
	StatusNotFound        Status = C.EMBER_ERR_NOT_FOUND
	StatusCallback        Status = C.EMBER_ERR_CALLBACK
)

// String is ember_status_string: "ok", "invalid argument", ...
func (s Status) String() string {
	return C.GoString(C.ember_status_string(C.ember_status(s)))
}

// Error makes a Status usable as a target of errors.Is: errors.Is(err, ember.StatusNotFound) is true for
// every *Error of that status.
func (s Status) Error() string { return "ember: " + s.String() }

// Sentinels for errors.Is (each is the Status itself).
var (
	ErrInvalidArgument error = StatusInvalidArgument
	ErrBadFile         error = StatusBadFile
	ErrUnsupported     error = StatusUnsupported
	ErrOutOfMemory     error = StatusOutOfMemory
	ErrContextFull     error = StatusContextFull
	ErrCancelled       error = StatusCancelled
	ErrBackend         error = StatusBackend
	ErrInternal        error = StatusInternal
	ErrIO              error = StatusIO
	ErrBufferTooSmall  error = StatusBufferTooSmall
	ErrNotFound        error = StatusNotFound
	ErrCallback        error = StatusCallback
)

// Error is a failed ember call: its status and ember_last_error's message. Err, when set, is the error a
// stream callback returned (Status is then StatusCallback); errors.Is and errors.As see through to it.
type Error struct {
	Status  Status
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "ember: " + e.Status.String()
	}
	return fmt.Sprintf("ember: %s: %s", e.Status, e.Message)
}

// Unwrap gives the callback's own error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is matches a Status (errors.Is(err, ember.ErrNotFound)) or an *Error of the same status and message.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Status:
		return e.Status == t
	case *Error:
		return t != nil && e.Status == t.Status && (t.Message == "" || t.Message == e.Message)
	}
	return false
}

// StatusOf gives the status of an ember error (anywhere in err's chain), StatusOK for nil, and
// StatusInternal for an error that is not ember's.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	var s Status
	if errors.As(err, &s) {
		return s
	}
	return StatusInternal
}

// IsNotFound reports whether err is ember's "not found" (an absent metadata key, ...).
func IsNotFound(err error) bool { return errors.Is(err, StatusNotFound) }

// IsCancelled reports whether err is ember's "cancelled" (Session.Cancel, a progress callback...).
func IsCancelled(err error) bool { return errors.Is(err, StatusCancelled) }

// IsInvalidArgument reports whether err is ember's "invalid argument".
func IsInvalidArgument(err error) bool { return errors.Is(err, StatusInvalidArgument) }

// newError turns a status and the message a shim wrapper copied (malloc'd, freed here) into an *Error.
func newError(status C.ember_status, msg *C.char) error {
	if status == C.EMBER_OK {
		if msg != nil {
			C.free(unsafe.Pointer(msg))
		}
		return nil
	}
	e := &Error{Status: Status(status)}
	if msg != nil {
		e.Message = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	return e
}

func errorf(status Status, format string, args ...any) error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

func errClosed(what string) error {
	return &Error{Status: StatusInvalidArgument, Message: "the " + what + " is closed"}
}
