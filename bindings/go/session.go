package ember

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// SessionParams configure a session; zero fields take the library's defaults.
type SessionParams struct {
	NCtx     int // KV cache size in tokens; 0: the model's training context, at most 4096
	NBatch   int // prompt tokens per forward pass; 0: 512
	NThreads int // 0: the model's default
}

// Session is one conversation over a model: KV cache, position, logits. Use it from one goroutine at a
// time; Cancel and ClearCancel may be called from any goroutine.
type Session struct {
	h      handle
	nVocab int
}

// c is the params as C takes them; a field outside int32 is StatusInvalidArgument.
func (p SessionParams) c() (nCtx, nBatch, nThreads C.int32_t, err error) {
	if nCtx, err = cInt32(p.NCtx, "NCtx"); err != nil {
		return
	}
	if nBatch, err = cInt32(p.NBatch, "NBatch"); err != nil {
		return
	}
	nThreads, err = cInt32(p.NThreads, "NThreads")
	return
}

// NewSession creates a session over the model. It stays valid after the model is closed. A field outside
// int32 is StatusInvalidArgument.
func (m *Model) NewSession(p SessionParams) (*Session, error) {
	mp, err := m.acquire()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	nCtx, nBatch, nThreads, err := p.c()
	if err != nil {
		return nil, err
	}
	var out *C.ember_session
	var msg *C.char
	st := C.ember_go_session_create(mp, nCtx, nBatch, nThreads, &out, &msg)
	if err := newError(st, msg); err != nil {
		return nil, err
	}
	s := &Session{nVocab: int(C.ember_model_n_vocab(mp))}
	s.h.init(unsafe.Pointer(out), "session",
		func(p unsafe.Pointer) { C.ember_session_free((*C.ember_session)(p)) },
		func(p unsafe.Pointer) { C.ember_session_cancel((*C.ember_session)(p)) })
	runtime.SetFinalizer(s, (*Session).Close)
	return s, nil
}

// Close frees the session; a call running on it (in another goroutine, or the one whose callback closes
// it) is cancelled and the session freed when it returns. Idempotent.
func (s *Session) Close() error {
	s.h.close()
	return nil
}

func (s *Session) acquire() (*C.ember_session, error) {
	p, err := s.h.acquire()
	return (*C.ember_session)(p), err
}

func (s *Session) prefill(tokens []int32, flags C.uint32_t) error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.h.release()
	if len(tokens) == 0 {
		return errorf(StatusInvalidArgument, "no tokens to prefill")
	}
	n, err := cInt32(len(tokens), "the number of tokens")
	if err != nil {
		return err
	}
	var msg *C.char
	st := C.ember_go_prefill(p, (*C.int32_t)(unsafe.Pointer(&tokens[0])), n, flags, &msg)
	return newError(st, msg)
}

// Prefill evaluates tokens at the current position; Logits then belong to the last one. On failure the
// session holds what it held before.
func (s *Session) Prefill(tokens []int32) error { return s.prefill(tokens, 0) }

// PrefillAll is Prefill keeping every token's logits for LogitsAt.
func (s *Session) PrefillAll(tokens []int32) error {
	return s.prefill(tokens, C.EMBER_PREFILL_ALL_LOGITS)
}

// Decode evaluates one token.
func (s *Session) Decode(token int32) error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.h.release()
	var msg *C.char
	return newError(C.ember_go_decode(p, C.int32_t(token), &msg), msg)
}

func (s *Session) logits(at int32) ([]float32, error) {
	p, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.h.release()
	n := C.int32_t(s.nVocab)
	for {
		out := make([]float32, int(n))
		have := n
		var msg *C.char
		var dst *C.float
		if have > 0 {
			dst = (*C.float)(unsafe.Pointer(&out[0]))
		}
		if err := newError(C.ember_go_logits(p, C.int32_t(at), dst, have, &n, &msg), msg); err != nil {
			return nil, err
		}
		if n <= have {
			return out[:n], nil
		}
	}
}

// Logits copies the logits of the last evaluated position (NVocab floats).
func (s *Session) Logits() ([]float32, error) { return s.logits(-1) }

// LogitsAt copies the logits of the i-th token of the last PrefillAll.
func (s *Session) LogitsAt(i int) ([]float32, error) {
	if i < 0 {
		return nil, errorf(StatusInvalidArgument, "logits index %d is negative", i)
	}
	at, err := cInt32(i, "the logits index")
	if err != nil {
		return nil, err
	}
	return s.logits(int32(at))
}

// Position is the number of tokens in the cache (-1 once closed).
func (s *Session) Position() int {
	p, err := s.acquire()
	if err != nil {
		return -1
	}
	defer s.h.release()
	return int(C.ember_session_position(p))
}

// NCtx is the context size (-1 once closed).
func (s *Session) NCtx() int {
	p, err := s.acquire()
	if err != nil {
		return -1
	}
	defer s.h.release()
	return int(C.ember_session_n_ctx(p))
}

// Rewind forgets the tokens from position on.
func (s *Session) Rewind(position int) error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.h.release()
	pos, err := cInt32(position, "the position")
	if err != nil {
		return err
	}
	var msg *C.char
	return newError(C.ember_go_rewind(p, pos, &msg), msg)
}

// Reset forgets every token.
func (s *Session) Reset() error { return s.Rewind(0) }

// Cancel stops the call running on the session, and every later one until ClearCancel, with
// StatusCancelled. Safe from any goroutine, including a stream callback.
func (s *Session) Cancel() error {
	return s.h.withPtr(func(p unsafe.Pointer) error {
		var msg *C.char
		return newError(C.ember_go_cancel((*C.ember_session)(p), 0, &msg), msg)
	})
}

// ClearCancel lets the session run again after Cancel. Safe from any goroutine.
func (s *Session) ClearCancel() error {
	return s.h.withPtr(func(p unsafe.Pointer) error {
		var msg *C.char
		return newError(C.ember_go_cancel((*C.ember_session)(p), 1, &msg), msg)
	})
}

func (s *Session) saveLoad(path string, load C.int32_t) error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.h.release()
	cpath, err := cString(path, "the path")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cpath))
	var msg *C.char
	return newError(C.ember_go_session_save(p, cpath, load, &msg), msg)
}

// Save writes the session's state (tokens, KV cache, logits) to path atomically.
func (s *Session) Save(path string) error { return s.saveLoad(path, 0) }

// LoadState restores a state written by Save; on failure the session is unchanged.
func (s *Session) LoadState(path string) error { return s.saveLoad(path, 1) }

// StopReason is why generation ended.
type StopReason int32

// The stop reasons (EMBER_STOP_*).
const (
	StopLength      StopReason = C.EMBER_STOP_LENGTH
	StopEOG         StopReason = C.EMBER_STOP_EOG
	StopCallback    StopReason = C.EMBER_STOP_CALLBACK
	StopContextFull StopReason = C.EMBER_STOP_CONTEXT_FULL
	StopString      StopReason = C.EMBER_STOP_STRING
)

func (r StopReason) String() string {
	switch r {
	case StopLength:
		return "length"
	case StopEOG:
		return "end of generation"
	case StopCallback:
		return "callback"
	case StopContextFull:
		return "context full"
	case StopString:
		return "stop string"
	}
	return "unknown"
}

// GenerateParams are generation options; the zero value generates up to 256 tokens, stopping at an
// end-of-generation token.
type GenerateParams struct {
	MaxTokens int               // 0: 256; < 0: until the context is full
	IgnoreEOG bool              // generate end-of-generation tokens like any other (stop_at_eog = 0)
	Stop      []string          // stop strings (non-empty, at most 64); neither one nor what follows is streamed
	Bias      map[int32]float32 // added to the tokens' logits before sampling (math.Inf(-1) forbids a token)
}

// GenerateResult says how generation went.
type GenerateResult struct {
	NGenerated int        // tokens sampled, including the one that ended generation; also on failure
	Stop       StopReason // meaningful when there is no error
	StopIndex  int        // with StopString, the index into GenerateParams.Stop; else -1
}

// generate runs ember_session_generate_ex (chat == nil) or ember_chat_say_ex.
func generate(session *C.ember_session, chat *C.ember_chat, user *C.char, sampler *Sampler, p GenerateParams,
	fn StreamFunc) (GenerateResult, error) {
	res := GenerateResult{StopIndex: -1}
	var sp *C.ember_sampler
	if sampler != nil {
		var err error
		if sp, err = sampler.acquire(); err != nil {
			return res, err
		}
		defer sampler.h.release()
	}
	maxTokens, err := cInt32(p.MaxTokens, "MaxTokens")
	if err != nil {
		return res, err
	}
	if maxTokens == 0 {
		maxTokens = 256
	}
	nStop, err := cInt32(len(p.Stop), "the number of stop strings")
	if err != nil {
		return res, err
	}
	nBias, err := cInt32(len(p.Bias), "the number of biased tokens")
	if err != nil {
		return res, err
	}
	stopAtEOG := C.int32_t(1)
	if p.IgnoreEOG {
		stopAtEOG = 0
	}
	var stops []*C.char
	for _, s := range p.Stop {
		cs, err := cString(s, "a stop string")
		if err != nil {
			return res, err
		}
		defer C.free(unsafe.Pointer(cs))
		stops = append(stops, cs)
	}
	var stopPtr **C.char
	if len(stops) > 0 {
		stopPtr = &stops[0]
	}
	var biasTokens []int32
	var biasValues []float32
	for t, v := range p.Bias {
		biasTokens = append(biasTokens, t)
		biasValues = append(biasValues, v)
	}
	var btPtr *C.int32_t
	var bvPtr *C.float
	if len(biasTokens) > 0 {
		btPtr = (*C.int32_t)(unsafe.Pointer(&biasTokens[0]))
		bvPtr = (*C.float)(unsafe.Pointer(&biasValues[0]))
	}
	var handle C.uintptr_t
	var state *streamState
	if fn != nil {
		state = &streamState{fn: fn}
		h := cgo.NewHandle(state)
		defer h.Delete()
		handle = C.uintptr_t(h)
	}
	var out C.ember_go_gen_out
	var msg *C.char
	st := C.ember_go_generate(session, chat, user, sp, maxTokens, stopAtEOG, handle, stopPtr, nStop, btPtr, bvPtr,
		nBias, &out, &msg)
	runtime.KeepAlive(stops)
	runtime.KeepAlive(biasTokens)
	runtime.KeepAlive(biasValues)
	res = GenerateResult{NGenerated: int(out.n_generated), Stop: StopReason(out.stop_reason), StopIndex: int(out.stop_index)}
	if state != nil && state.panicking {
		if msg != nil {
			C.free(unsafe.Pointer(msg))
		}
		panic(state.panicVal)
	}
	err = newError(st, msg)
	if e, ok := err.(*Error); ok && e.Status == StatusCallback && state != nil && state.err != nil {
		e.Err = state.err
	}
	return res, err
}

// Generate samples, evaluates and streams tokens from the current logits (prefill first). fn may be nil.
// See StreamFunc for how the callback stops generation or reports an error.
func (s *Session) Generate(sampler *Sampler, p GenerateParams, fn StreamFunc) (GenerateResult, error) {
	sp, err := s.acquire()
	if err != nil {
		return GenerateResult{StopIndex: -1}, err
	}
	defer s.h.release()
	return generate(sp, nil, nil, sampler, p, fn)
}

// Piece is one piece of streamed text and the token that completed it.
type Piece struct {
	Text  string
	Token int32
}

// Stream is a generation running in its own goroutine, its pieces arriving on C.
//
// Receive from C until it is closed, or call Stop (or cancel the context) to end early: either way the
// goroutine ends, nothing leaks. Every piece received has been handed over before its token is evaluated
// into the session; the token of a piece that was never received (the one pending when Stop is called) is
// not evaluated, so after Stop the session holds the prompt plus the tokens of the pieces received.
type Stream struct {
	C <-chan Piece

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	res      GenerateResult
	err      error
}

// GenerateStream starts Generate in a goroutine and streams its pieces through a channel. Use neither the
// session nor the sampler until the stream has ended (Stop or Result returned, or C closed).
func (s *Session) GenerateStream(ctx context.Context, sampler *Sampler, p GenerateParams) *Stream {
	if ctx == nil {
		ctx = context.Background()
	}
	ch := make(chan Piece)
	st := &Stream{C: ch, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		defer close(ch)
		st.res, st.err = s.Generate(sampler, p, func(text string, token int32) error {
			select {
			case <-st.stop:
				return ErrStop
			case <-ctx.Done():
				return ctx.Err()
			default:
			}
			select {
			case ch <- Piece{Text: text, Token: token}:
				return nil
			case <-st.stop:
				return ErrStop
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return st
}

// Stop ends the generation early and waits for it to end; no piece is sent after Stop is called (unless
// another goroutine receives concurrently). Idempotent, safe from any goroutine.
func (st *Stream) Stop() {
	st.stopOnce.Do(func() { close(st.stop) })
	<-st.done
}

// Done is closed when the generation has ended.
func (st *Stream) Done() <-chan struct{} { return st.done }

// Result waits for the generation to end and gives its result and error (a context's error arrives as an
// *Error of StatusCallback wrapping it).
func (st *Stream) Result() (GenerateResult, error) {
	<-st.done
	return st.res, st.err
}
