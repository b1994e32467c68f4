package ember

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Adapter is a LoRA adapter loaded for a model: immutable, safe to share between goroutines and sessions.
// It keeps the model's weights alive (it stays valid after the model's Close), and a session using it keeps
// it alive (closing it while a session uses it is safe).
type Adapter struct {
	h handle
}

// AdapterScale is one adapter of Session.SetAdapters and the scale it is applied with.
type AdapterScale struct {
	Adapter *Adapter
	Scale   float32
}

// LoadAdapter loads a LoRA adapter for the model from a GGUF adapter file (llama.cpp's
// convert_lora_to_gguf.py) or a PEFT folder (adapter_config.json + adapter_model.safetensors). It fails with
// StatusIO, StatusBadFile (a malformed adapter), StatusInvalidArgument (an adapter made for another model)
// or StatusUnsupported.
func (m *Model) LoadAdapter(path string) (*Adapter, error) {
	mp, err := m.acquire()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	cpath, err := cString(path, "the path")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cpath))
	var out *C.ember_adapter
	var msg *C.char
	if err := newError(C.ember_go_adapter_load(mp, cpath, &out, &msg), msg); err != nil {
		return nil, err
	}
	a := &Adapter{}
	a.h.init(unsafe.Pointer(out), "adapter", func(p unsafe.Pointer) { C.ember_adapter_free((*C.ember_adapter)(p)) }, nil)
	runtime.SetFinalizer(a, (*Adapter).Close)
	return a, nil
}

// Close frees the adapter (sessions using it keep it alive until they stop using it). Idempotent.
func (a *Adapter) Close() error {
	a.h.close()
	return nil
}

func (a *Adapter) intFact(f func(*C.ember_adapter) C.int32_t) int {
	p, err := a.h.acquire()
	if err != nil {
		return -1
	}
	defer a.h.release()
	return int(f((*C.ember_adapter)(p)))
}

// Rank is the adapter's largest rank (-1 once closed).
func (a *Adapter) Rank() int {
	return a.intFact(func(p *C.ember_adapter) C.int32_t { return C.ember_adapter_rank(p) })
}

// NTargets is how many projections the adapter changes (-1 once closed).
func (a *Adapter) NTargets() int {
	return a.intFact(func(p *C.ember_adapter) C.int32_t { return C.ember_adapter_n_targets(p) })
}

// SetAdapters applies LoRA adapters, each with its scale, to every token the session evaluates from now
// on; no arguments remove them. A scale of 0 gives the base model's logits exactly. Tokens already in the
// cache keep what they were computed with: Reset or Rewind to recompute them. Each adapter must be loaded
// for this session's model and appear once, scales finite in [-1000, 1000]; otherwise StatusInvalidArgument
// and the session keeps its adapters. The session keeps the adapters alive.
func (s *Session) SetAdapters(adapters ...AdapterScale) error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.h.release()
	n, err := cInt32(len(adapters), "the number of adapters")
	if err != nil {
		return err
	}
	// C pointers in Go memory are fine to pass to C (cgo forbids only Go pointers in it).
	ptrs := make([]*C.ember_adapter, len(adapters))
	scales := make([]float32, len(adapters))
	for i, as := range adapters {
		if as.Adapter == nil {
			return errorf(StatusInvalidArgument, "adapter %d is nil", i)
		}
		ap, err := as.Adapter.h.acquire() // held until the call returns: a concurrent Close waits
		if err != nil {
			return err
		}
		defer as.Adapter.h.release()
		ptrs[i], scales[i] = (*C.ember_adapter)(ap), as.Scale
	}
	var pa **C.ember_adapter
	var ps *C.float
	if len(adapters) > 0 {
		pa, ps = &ptrs[0], (*C.float)(unsafe.Pointer(&scales[0]))
	}
	var msg *C.char
	return newError(C.ember_go_set_adapters(p, pa, ps, n, &msg), msg)
}
