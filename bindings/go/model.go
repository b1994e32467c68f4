package ember

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// Model is a loaded GGUF model: immutable, safe to share between goroutines. Sessions made from it stay
// valid after Close (they keep the weights alive); its Tokenizer does not.
type Model struct {
	h   handle
	tok *C.ember_tokenizer // borrowed from the model
}

// LoadOption changes how a model is loaded.
type LoadOption func(*loadOptions)

type loadOptions struct {
	threads    int // checked against int32 where it crosses to C
	setThreads bool
	backend    string
	mmap       int32 // -1: the library's default
	quantize   string
	progress   func(progress float32) bool
}

// WithThreads sets the sessions' default thread count (0: the hardware threads).
func WithThreads(n int) LoadOption {
	return func(o *loadOptions) { o.threads, o.setThreads = n, true }
}

// WithBackend picks the backend: "cpu", "cuda", or "auto" (the default: the best usable one).
func WithBackend(name string) LoadOption { return func(o *loadOptions) { o.backend = name } }

// WithMmap maps the file (true, the default) or reads it into memory once (false).
func WithMmap(on bool) LoadOption {
	return func(o *loadOptions) {
		o.mmap = 0
		if on {
			o.mmap = 1
		}
	}
}

// WithQuantize quantizes F32/F16/BF16 weights in memory at load to an ember-quantize type ("q8_0", "q4_0",
// "q4_k", "q6_k", ...; any case), each tensor as ember-quantize would write it. An unknown type or an
// already quantized input is StatusInvalidArgument. "" (the default) keeps the weights as the file has them.
func WithQuantize(typ string) LoadOption { return func(o *loadOptions) { o.quantize = typ } }

// WithProgress calls f with the loading progress in [0, 1]; f returning false cancels the load
// (StatusCancelled). A panic in f cancels the load and is re-raised by Load once it returns.
func WithProgress(f func(progress float32) bool) LoadOption {
	return func(o *loadOptions) { o.progress = f }
}

// Load loads a GGUF model from a file.
func Load(path string, opts ...LoadOption) (*Model, error) {
	return load(path, nil, true, opts)
}

// LoadFromMemory loads a GGUF model from bytes (copied; data may be reused when this returns).
func LoadFromMemory(data []byte, opts ...LoadOption) (*Model, error) {
	if len(data) == 0 {
		return nil, errorf(StatusInvalidArgument, "no model bytes")
	}
	return load("", data, false, opts)
}

// MemoryEstimate is what a model costs in memory on the CPU backend, in bytes.
type MemoryEstimate struct {
	Weights uint64 // the tensors (mapped from the file, or repacked or quantized once at load)
	KVCache uint64 // one session's KV cache of nCtx tokens (F16)
	Scratch uint64 // that session's activations for nBatch tokens and a row of logits
	Total   uint64 // the sum; each further session adds KVCache + Scratch
}

// EstimateMemory estimates what a GGUF file and one session of nCtx tokens (1 .. 2^24) cost in memory,
// evaluating nBatch tokens per pass (0: the default, 512), from the file's header alone. opts are the
// options Load would get: WithQuantize sizes the weights as that load holds them (an unknown type is
// StatusInvalidArgument, as the load is); the other options do not change the estimate.
func EstimateMemory(path string, nCtx, nBatch int, opts ...LoadOption) (MemoryEstimate, error) {
	if err := ensureABI(); err != nil {
		return MemoryEstimate{}, err
	}
	cnCtx, err := cInt32(nCtx, "nCtx")
	if err != nil {
		return MemoryEstimate{}, err
	}
	cnBatch, err := cInt32(nBatch, "nBatch")
	if err != nil {
		return MemoryEstimate{}, err
	}
	o := loadOptions{mmap: -1}
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := cInt32(o.threads, "the thread count"); err != nil { // as Load would refuse it
		return MemoryEstimate{}, err
	}
	cpath, err := cString(path, "the path")
	if err != nil {
		return MemoryEstimate{}, err
	}
	defer C.free(unsafe.Pointer(cpath))
	var cquantize *C.char
	if o.quantize != "" {
		if cquantize, err = cString(o.quantize, "the quantize type"); err != nil {
			return MemoryEstimate{}, err
		}
		defer C.free(unsafe.Pointer(cquantize))
	}
	var out C.ember_memory_estimate
	var msg *C.char
	st := C.ember_go_estimate_memory(cpath, cnCtx, cnBatch, cquantize, &out, &msg)
	if err := newError(st, msg); err != nil {
		return MemoryEstimate{}, err
	}
	return MemoryEstimate{Weights: uint64(out.weights), KVCache: uint64(out.kv_cache), Scratch: uint64(out.scratch),
		Total: uint64(out.total)}, nil
}

type progressState struct {
	f         func(float32) bool
	panicking bool
	panicVal  any
}

func load(path string, data []byte, fromFile bool, opts []LoadOption) (*Model, error) {
	if err := ensureABI(); err != nil {
		return nil, err
	}
	o := loadOptions{mmap: -1}
	for _, opt := range opts {
		opt(&o)
	}
	cthreads, err := cInt32(o.threads, "the thread count")
	if err != nil {
		return nil, err
	}
	var cpath, cbackend *C.char
	if fromFile {
		if cpath, err = cString(path, "the path"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(cpath))
	}
	if o.backend != "" {
		if cbackend, err = cString(o.backend, "the backend"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(cbackend))
	}
	var cquantize *C.char
	if o.quantize != "" {
		if cquantize, err = cString(o.quantize, "the quantize type"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(cquantize))
	}
	var ph C.uintptr_t
	var ps *progressState
	if o.progress != nil {
		ps = &progressState{f: o.progress}
		h := cgo.NewHandle(ps)
		defer h.Delete()
		ph = C.uintptr_t(h)
	}
	var dataPtr unsafe.Pointer
	if !fromFile {
		dataPtr = unsafe.Pointer(&data[0])
	}
	setThreads := C.int(0)
	if o.setThreads {
		setThreads = 1
	}
	var out *C.ember_model
	var msg *C.char
	st := C.ember_go_model_load(cpath, dataPtr, C.size_t(len(data)), cthreads, setThreads, cbackend,
		C.int32_t(o.mmap), cquantize, ph, &out, &msg)
	runtime.KeepAlive(data)
	if ps != nil && ps.panicking {
		if out != nil {
			C.ember_model_free(out)
		}
		panic(ps.panicVal)
	}
	if err := newError(st, msg); err != nil {
		return nil, err
	}
	m := &Model{tok: C.ember_model_tokenizer(out)}
	m.h.init(unsafe.Pointer(out), "model", func(p unsafe.Pointer) { C.ember_model_free((*C.ember_model)(p)) }, nil)
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

// Close frees the model (deferred while a call on it runs). Idempotent.
func (m *Model) Close() error {
	m.h.close()
	return nil
}

func (m *Model) acquire() (*C.ember_model, error) {
	p, err := m.h.acquire()
	return (*C.ember_model)(p), err
}

// intFact reads an int getter (-1 for a closed model).
func (m *Model) intFact(f func(*C.ember_model) int64) int64 {
	p, err := m.acquire()
	if err != nil {
		return -1
	}
	defer m.h.release()
	return f(p)
}

// NVocab is the number of tokens in the vocabulary (-1 once closed).
func (m *Model) NVocab() int {
	return int(m.intFact(func(p *C.ember_model) int64 { return int64(C.ember_model_n_vocab(p)) }))
}

// NCtxTrain is the context length the model was trained with.
func (m *Model) NCtxTrain() int {
	return int(m.intFact(func(p *C.ember_model) int64 { return int64(C.ember_model_n_ctx_train(p)) }))
}

// NEmbd is the embedding width.
func (m *Model) NEmbd() int {
	return int(m.intFact(func(p *C.ember_model) int64 { return int64(C.ember_model_n_embd(p)) }))
}

// NLayers is the number of layers.
func (m *Model) NLayers() int {
	return int(m.intFact(func(p *C.ember_model) int64 { return int64(C.ember_model_n_layers(p)) }))
}

// NParams is the total number of parameters.
func (m *Model) NParams() int64 {
	return m.intFact(func(p *C.ember_model) int64 { return int64(C.ember_model_n_params(p)) })
}

// Size is the tensors' size in bytes.
func (m *Model) Size() int64 {
	return m.intFact(func(p *C.ember_model) int64 { return int64(C.ember_model_size(p)) })
}

func (m *Model) text(which C.int, key string, index int32) (string, error) {
	p, err := m.acquire()
	if err != nil {
		return "", err
	}
	defer m.h.release()
	args := C.ember_go_text_args{model: p, index: C.int32_t(index)}
	if which == C.EMBER_GO_TEXT_META || which == C.EMBER_GO_TEXT_META_JSON {
		ckey, err := cString(key, "the key")
		if err != nil {
			return "", err
		}
		defer C.free(unsafe.Pointer(ckey))
		args.key = ckey
	}
	return getText(which, &args)
}

// Architecture is general.architecture ("llama", "qwen3", ...).
func (m *Model) Architecture() (string, error) { return m.text(C.EMBER_GO_TEXT_ARCH, "", 0) }

// Name is general.name ("" when absent).
func (m *Model) Name() (string, error) { return m.text(C.EMBER_GO_TEXT_NAME, "", 0) }

// Backend is the backend the weights live on ("cpu", ...).
func (m *Model) Backend() (string, error) { return m.text(C.EMBER_GO_TEXT_BACKEND, "", 0) }

// ChatTemplate is tokenizer.chat_template ("" when the file has none).
func (m *Model) ChatTemplate() (string, error) { return m.text(C.EMBER_GO_TEXT_CHAT_TEMPLATE, "", 0) }

// Meta is a metadata value as text (arrays summarised); an absent key is StatusNotFound.
func (m *Model) Meta(key string) (string, error) { return m.text(C.EMBER_GO_TEXT_META, key, 0) }

// MetaJSON is a metadata value as JSON, arrays in full; an absent key is StatusNotFound.
func (m *Model) MetaJSON(key string) (string, error) {
	return m.text(C.EMBER_GO_TEXT_META_JSON, key, 0)
}

// MetaType is the GGUF type of a metadata value (MetaString, MetaArray, ...).
func (m *Model) MetaType(key string) (MetaType, error) {
	p, err := m.acquire()
	if err != nil {
		return 0, err
	}
	defer m.h.release()
	ckey, err := cString(key, "the key")
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(ckey))
	var t C.int32_t
	var msg *C.char
	if err := newError(C.ember_go_meta_type(p, ckey, &t, &msg), msg); err != nil {
		return 0, err
	}
	return MetaType(t), nil
}

// MetaKeys lists the metadata keys in file order.
func (m *Model) MetaKeys() ([]string, error) {
	n := int(m.intFact(func(p *C.ember_model) int64 { return int64(C.ember_model_meta_count(p)) }))
	if n < 0 {
		return nil, errClosed("model")
	}
	keys := make([]string, 0, n)
	for i := 0; i < n; i++ {
		k, err := m.text(C.EMBER_GO_TEXT_META_KEY, "", int32(i))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// MetaType is a GGUF metadata value type (EMBER_META_*).
type MetaType int32

// The GGUF metadata types.
const (
	MetaU8     MetaType = C.EMBER_META_U8
	MetaI8     MetaType = C.EMBER_META_I8
	MetaU16    MetaType = C.EMBER_META_U16
	MetaI16    MetaType = C.EMBER_META_I16
	MetaU32    MetaType = C.EMBER_META_U32
	MetaI32    MetaType = C.EMBER_META_I32
	MetaF32    MetaType = C.EMBER_META_F32
	MetaBool   MetaType = C.EMBER_META_BOOL
	MetaString MetaType = C.EMBER_META_STRING
	MetaArray  MetaType = C.EMBER_META_ARRAY
	MetaU64    MetaType = C.EMBER_META_U64
	MetaI64    MetaType = C.EMBER_META_I64
	MetaF64    MetaType = C.EMBER_META_F64
)

// Tokenizer is the model's tokenizer (valid while the model is open; it keeps the Model reachable).
func (m *Model) Tokenizer() *Tokenizer {
	return &Tokenizer{owner: &m.h, ptr: m.tok, model: m}
}
