package ember

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Tokenizer turns text into token ids and back. Safe to use from many goroutines at once.
type Tokenizer struct {
	owner *handle            // the model's handle, or the tokenizer's own (LoadTokenizer)
	ptr   *C.ember_tokenizer // borrowed from the model, or owned through owner
	model *Model             // keeps a borrowing tokenizer's model reachable
	own   *ownedTokenizer
}

type ownedTokenizer struct{ h handle }

// TokenizeFlags are EMBER_TOKENIZE_* bits.
type TokenizeFlags uint32

const (
	// AddSpecial adds BOS/EOS as the vocabulary asks.
	AddSpecial TokenizeFlags = C.EMBER_TOKENIZE_ADD_SPECIAL
	// ParseSpecial turns text such as "<|im_start|>" into its special token.
	ParseSpecial TokenizeFlags = C.EMBER_TOKENIZE_PARSE_SPECIAL
)

// DetokenizeFlags are EMBER_DETOKENIZE_* bits.
type DetokenizeFlags uint32

// RenderSpecial prints control tokens (BOS, EOS, <|im_end|>...) as their text.
const RenderSpecial DetokenizeFlags = C.EMBER_DETOKENIZE_RENDER_SPECIAL

// LoadTokenizer loads only the vocabulary of a GGUF file. Close it when done.
func LoadTokenizer(path string) (*Tokenizer, error) {
	if err := ensureABI(); err != nil {
		return nil, err
	}
	cpath, err := cString(path, "the path")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cpath))
	var out *C.ember_tokenizer
	var msg *C.char
	if err := newError(C.ember_go_tokenizer_load(cpath, &out, &msg), msg); err != nil {
		return nil, err
	}
	own := &ownedTokenizer{}
	own.h.init(unsafe.Pointer(out), "tokenizer", func(p unsafe.Pointer) { C.ember_tokenizer_free((*C.ember_tokenizer)(p)) }, nil)
	runtime.SetFinalizer(own, func(o *ownedTokenizer) { o.h.close() })
	return &Tokenizer{owner: &own.h, ptr: out, own: own}, nil
}

// Close frees a tokenizer from LoadTokenizer; for a model's tokenizer it does nothing (close the model).
func (t *Tokenizer) Close() error {
	if t.own != nil {
		t.own.h.close()
	}
	return nil
}

func (t *Tokenizer) acquire() (*C.ember_tokenizer, error) {
	if _, err := t.owner.acquire(); err != nil {
		return nil, err
	}
	return t.ptr, nil
}

func (t *Tokenizer) release() { t.owner.release() }

func (t *Tokenizer) intFact(f func(*C.ember_tokenizer) int32) int32 {
	p, err := t.acquire()
	if err != nil {
		return -1
	}
	defer t.release()
	return f(p)
}

// Tokenize turns text into token ids.
func (t *Tokenizer) Tokenize(text string, flags TokenizeFlags) ([]int32, error) {
	p, err := t.acquire()
	if err != nil {
		return nil, err
	}
	defer t.release()
	var ctext *C.char
	if len(text) > 0 {
		ctext = (*C.char)(C.CBytes([]byte(text)))
		defer C.free(unsafe.Pointer(ctext))
	}
	var n C.int32_t
	var msg *C.char
	if err := newError(C.ember_go_tokenize(p, ctext, C.size_t(len(text)), nil, 0, C.uint32_t(flags), &n, &msg), msg); err != nil {
		return nil, err
	}
	for {
		size := int(n) // at most int32's maximum: it came from C
		if size == 0 {
			size = 1 // &out[0] needs an element
		}
		out := make([]int32, size)
		have := C.int32_t(size)
		msg = nil
		st := C.ember_go_tokenize(p, ctext, C.size_t(len(text)), (*C.int32_t)(unsafe.Pointer(&out[0])), have,
			C.uint32_t(flags), &n, &msg)
		if st == C.EMBER_ERR_BUFFER_TOO_SMALL && n > have {
			C.free(unsafe.Pointer(msg))
			continue
		}
		if err := newError(st, msg); err != nil {
			return nil, err
		}
		return out[:n], nil
	}
}

// Detokenize turns token ids into text; an id outside [0, NVocab) is StatusInvalidArgument.
func (t *Tokenizer) Detokenize(tokens []int32, flags DetokenizeFlags) (string, error) {
	p, err := t.acquire()
	if err != nil {
		return "", err
	}
	defer t.release()
	n, err := cInt32(len(tokens), "the number of tokens")
	if err != nil {
		return "", err
	}
	args := C.ember_go_text_args{tokenizer: p, n_tokens: n, flags: C.uint32_t(flags)}
	if len(tokens) > 0 {
		// C memory: the args struct is Go memory and must not hold a Go pointer.
		ct := (*C.int32_t)(C.malloc(C.size_t(len(tokens)) * 4))
		defer C.free(unsafe.Pointer(ct))
		copy(unsafe.Slice((*int32)(unsafe.Pointer(ct)), len(tokens)), tokens)
		args.tokens = ct
	}
	return getText(C.EMBER_GO_TEXT_DETOKENIZE, &args)
}

// Piece is the text of one token as detokenizing it alone gives it (possibly part of a UTF-8 character).
func (t *Tokenizer) Piece(token int32, flags DetokenizeFlags) (string, error) {
	p, err := t.acquire()
	if err != nil {
		return "", err
	}
	defer t.release()
	args := C.ember_go_text_args{tokenizer: p, index: C.int32_t(token), flags: C.uint32_t(flags)}
	return getText(C.EMBER_GO_TEXT_PIECE, &args)
}

// NVocab is the number of tokens in the vocabulary.
func (t *Tokenizer) NVocab() int {
	return int(t.intFact(func(p *C.ember_tokenizer) int32 { return int32(C.ember_tokenizer_n_vocab(p)) }))
}

// BOS is the beginning-of-sequence token, -1 when the vocabulary has none.
func (t *Tokenizer) BOS() int32 {
	return t.intFact(func(p *C.ember_tokenizer) int32 { return int32(C.ember_token_bos(p)) })
}

// EOS is the end-of-sequence token, -1 when the vocabulary has none.
func (t *Tokenizer) EOS() int32 {
	return t.intFact(func(p *C.ember_tokenizer) int32 { return int32(C.ember_token_eos(p)) })
}

// EOT is the end-of-turn token (e.g. <|im_end|>), -1 when the vocabulary has none.
func (t *Tokenizer) EOT() int32 {
	return t.intFact(func(p *C.ember_tokenizer) int32 { return int32(C.ember_token_eot(p)) })
}

// SpecialToken names a special role (EMBER_SPECIAL_*).
type SpecialToken int32

// The special roles.
const (
	SpecialBOS    SpecialToken = C.EMBER_SPECIAL_BOS
	SpecialEOS    SpecialToken = C.EMBER_SPECIAL_EOS
	SpecialEOT    SpecialToken = C.EMBER_SPECIAL_EOT
	SpecialEOM    SpecialToken = C.EMBER_SPECIAL_EOM
	SpecialUNK    SpecialToken = C.EMBER_SPECIAL_UNK
	SpecialSEP    SpecialToken = C.EMBER_SPECIAL_SEP
	SpecialPAD    SpecialToken = C.EMBER_SPECIAL_PAD
	SpecialMASK   SpecialToken = C.EMBER_SPECIAL_MASK
	SpecialFIMPre SpecialToken = C.EMBER_SPECIAL_FIM_PRE
	SpecialFIMSuf SpecialToken = C.EMBER_SPECIAL_FIM_SUF
	SpecialFIMMid SpecialToken = C.EMBER_SPECIAL_FIM_MID
	SpecialFIMPad SpecialToken = C.EMBER_SPECIAL_FIM_PAD
	SpecialFIMRep SpecialToken = C.EMBER_SPECIAL_FIM_REP
	SpecialFIMSep SpecialToken = C.EMBER_SPECIAL_FIM_SEP
)

// Special is the token with a special role, -1 when the vocabulary has none.
func (t *Tokenizer) Special(which SpecialToken) int32 {
	return t.intFact(func(p *C.ember_tokenizer) int32 { return int32(C.ember_token_special(p, C.int32_t(which))) })
}

// IsEOG reports whether a token ends generation (EOS, EOT and the like).
func (t *Tokenizer) IsEOG(token int32) bool {
	return t.intFact(func(p *C.ember_tokenizer) int32 {
		if C.ember_token_is_eog(p, C.int32_t(token)) {
			return 1
		}
		return 0
	}) == 1
}

// Attr is a token's attribute bits (EMBER_TOKEN_ATTR_*, llama.cpp's numbering).
func (t *Tokenizer) Attr(token int32) uint32 {
	return uint32(t.intFact(func(p *C.ember_tokenizer) int32 { return int32(C.ember_token_attr(p, C.int32_t(token))) }))
}

// AddsBOS reports whether AddSpecial adds a BOS token for this vocabulary.
func (t *Tokenizer) AddsBOS() bool {
	return t.intFact(func(p *C.ember_tokenizer) int32 { return int32(C.ember_tokenizer_add_bos(p)) }) == 1
}

// AddsEOS reports whether AddSpecial adds an EOS token for this vocabulary.
func (t *Tokenizer) AddsEOS() bool {
	return t.intFact(func(p *C.ember_tokenizer) int32 { return int32(C.ember_tokenizer_add_eos(p)) }) == 1
}
