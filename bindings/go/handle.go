package ember

import (
	"sync"
	"unsafe"
)

// handle guards one native pointer: calls acquire it (counting calls in flight) and release it; close
// frees it at once when no call runs, and otherwise asks interrupt (if any) to stop the running call and
// frees it when the last call releases it. So Close is idempotent, safe from any goroutine (a callback
// included), and never frees a pointer a running C call uses.
type handle struct {
	mu        sync.Mutex
	ptr       unsafe.Pointer
	active    int
	closing   bool
	free      func(unsafe.Pointer)
	interrupt func(unsafe.Pointer)
	what      string
}

func (h *handle) init(ptr unsafe.Pointer, what string, free, interrupt func(unsafe.Pointer)) {
	h.ptr, h.what, h.free, h.interrupt = ptr, what, free, interrupt
}

func (h *handle) acquire() (unsafe.Pointer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ptr == nil || h.closing {
		return nil, errClosed(h.what)
	}
	h.active++
	return h.ptr, nil
}

func (h *handle) release() {
	h.mu.Lock()
	h.active--
	var p unsafe.Pointer
	if h.active == 0 && h.closing && h.ptr != nil {
		p, h.ptr = h.ptr, nil
	}
	h.mu.Unlock()
	if p != nil {
		h.free(p)
	}
}

func (h *handle) close() {
	h.mu.Lock()
	if h.closing || h.ptr == nil {
		h.mu.Unlock()
		return
	}
	h.closing = true
	var p unsafe.Pointer
	if h.active == 0 {
		p, h.ptr = h.ptr, nil
	} else if h.interrupt != nil {
		h.interrupt(h.ptr) // thread-safe in C (ember_session_cancel); the pointer is still alive here
	}
	h.mu.Unlock()
	if p != nil {
		h.free(p)
	}
}

// withPtr runs f on the pointer while it is open (even while closing), under h.mu: for the quick,
// thread-safe calls that must work while another call runs (Cancel, ClearCancel).
func (h *handle) withPtr(f func(unsafe.Pointer) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ptr == nil {
		return errClosed(h.what)
	}
	return f(h.ptr)
}
