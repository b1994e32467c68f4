package ember

/*
#include "shim.h"
*/
import "C"

import (
	"math"
	"runtime"
	"unsafe"
)

// SeedRandom as SamplerParams.Seed seeds from the OS; Sampler.Seed tells which seed that was.
const SeedRandom uint64 = math.MaxUint64

// SamplerParams configure a sampler: penalties -> top-k -> top-p -> min-p -> temperature -> draw. Start
// from DefaultSamplerParams (the zero value is a deterministic greedy sampler with seed 0).
type SamplerParams struct {
	Temperature      float32 // <= 0: greedy
	TopK             int     // <= 0: off
	TopP             float32 // >= 1: off
	MinP             float32 // <= 0: off
	RepeatPenalty    float32 // 1: off
	PenaltyLastN     int     // how many recent tokens the penalties look at
	FrequencyPenalty float32
	PresencePenalty  float32
	Seed             uint64 // SeedRandom: from the OS
}

// DefaultSamplerParams are the library's defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
// random seed).
func DefaultSamplerParams() SamplerParams {
	var p C.ember_sampler_params
	C.ember_go_sampler_defaults(&p)
	return SamplerParams{
		Temperature:      float32(p.temperature),
		TopK:             int(p.top_k),
		TopP:             float32(p.top_p),
		MinP:             float32(p.min_p),
		RepeatPenalty:    float32(p.repeat_penalty),
		PenaltyLastN:     int(p.penalty_last_n),
		FrequencyPenalty: float32(p.frequency_penalty),
		PresencePenalty:  float32(p.presence_penalty),
		Seed:             uint64(p.seed),
	}
}

// Sampler chooses tokens from logits and keeps the penalty history and random state. Use it from one
// goroutine at a time.
type Sampler struct{ h handle }

// NewGreedySampler always takes the highest logit (the lowest id on ties).
func NewGreedySampler() (*Sampler, error) { return newSampler(true, SamplerParams{}) }

// NewSampler makes a sampler; values out of range (TopK or PenaltyLastN outside int32 included) or not finite
// are StatusInvalidArgument.
func NewSampler(p SamplerParams) (*Sampler, error) { return newSampler(false, p) }

func newSampler(greedy bool, p SamplerParams) (*Sampler, error) {
	if err := ensureABI(); err != nil {
		return nil, err
	}
	g := C.int(0)
	if greedy {
		g = 1
	}
	topK, err := cInt32(p.TopK, "TopK")
	if err != nil {
		return nil, err
	}
	penaltyLastN, err := cInt32(p.PenaltyLastN, "PenaltyLastN")
	if err != nil {
		return nil, err
	}
	var out *C.ember_sampler
	var msg *C.char
	st := C.ember_go_sampler_create(g, C.float(p.Temperature), topK, C.float(p.TopP), C.float(p.MinP),
		C.float(p.RepeatPenalty), penaltyLastN, C.float(p.FrequencyPenalty), C.float(p.PresencePenalty),
		C.uint64_t(p.Seed), &out, &msg)
	if err := newError(st, msg); err != nil {
		return nil, err
	}
	s := &Sampler{}
	s.h.init(unsafe.Pointer(out), "sampler", func(p unsafe.Pointer) { C.ember_sampler_free((*C.ember_sampler)(p)) }, nil)
	runtime.SetFinalizer(s, (*Sampler).Close)
	return s, nil
}

// Close frees the sampler (deferred while a generation uses it). Idempotent.
func (s *Sampler) Close() error {
	s.h.close()
	return nil
}

func (s *Sampler) acquire() (*C.ember_sampler, error) {
	p, err := s.h.acquire()
	return (*C.ember_sampler)(p), err
}

// Seed is the seed in use (the one drawn from the OS for SeedRandom).
func (s *Sampler) Seed() (uint64, error) {
	p, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.h.release()
	var seed C.uint64_t
	var msg *C.char
	if err := newError(C.ember_go_sampler_seed(p, &seed, &msg), msg); err != nil {
		return 0, err
	}
	return uint64(seed), nil
}

// Sample picks a token from one position's logits and records it for the penalties.
func (s *Sampler) Sample(logits []float32) (int32, error) {
	p, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.h.release()
	if len(logits) == 0 {
		return 0, errorf(StatusInvalidArgument, "no logits")
	}
	n, err := cInt32(len(logits), "the number of logits")
	if err != nil {
		return 0, err
	}
	var tok C.int32_t
	var msg *C.char
	st := C.ember_go_sampler_sample(p, (*C.float)(unsafe.Pointer(&logits[0])), n, &tok, &msg)
	if err := newError(st, msg); err != nil {
		return 0, err
	}
	return int32(tok), nil
}

// Accept records a token chosen elsewhere so the penalties see it.
func (s *Sampler) Accept(token int32) error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.h.release()
	var msg *C.char
	return newError(C.ember_go_sampler_accept(p, C.int32_t(token), 0, &msg), msg)
}

// Reset forgets the history and reseeds with the seed in use (so it repeats its draws).
func (s *Sampler) Reset() error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.h.release()
	var msg *C.char
	return newError(C.ember_go_sampler_accept(p, -1, 1, &msg), msg)
}

// SetGrammar constrains sampling to a GBNF grammar (llama.cpp's format) matched against m's vocabulary:
// only tokens that continue it are drawn, and generation ends (StopEOG) once it is complete. "" removes it.
// A bad grammar is StatusInvalidArgument with a message naming the line and column, and the sampler keeps
// the grammar it had. Prompt tokens should not be Accept'ed while a grammar is set.
func (s *Sampler) SetGrammar(m *Model, gbnf string) error { return s.setGrammar(m, gbnf, 0) }

// SetJSONSchema is SetGrammar with the grammar of the JSON documents a JSON Schema accepts (a subset:
// type, properties/required, items, enum, const, anyOf/oneOf, lengths...); "" allows any JSON value.
func (s *Sampler) SetJSONSchema(m *Model, schema string) error { return s.setGrammar(m, schema, 1) }

func (s *Sampler) setGrammar(m *Model, text string, json C.int32_t) error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.h.release()
	mp, err := m.acquire()
	if err != nil {
		return err
	}
	defer m.h.release()
	var ctext *C.char
	if text != "" {
		if ctext, err = cString(text, "the grammar"); err != nil {
			return err
		}
		defer C.free(unsafe.Pointer(ctext))
	}
	var msg *C.char
	return newError(C.ember_go_sampler_set_grammar(p, mp, ctext, json, &msg), msg)
}

// JSONSchemaToGrammar is the GBNF grammar of a JSON Schema, as SetJSONSchema uses it.
func JSONSchemaToGrammar(schema string) (string, error) {
	if err := ensureABI(); err != nil {
		return "", err
	}
	cschema, err := cString(schema, "the schema")
	if err != nil {
		return "", err
	}
	defer C.free(unsafe.Pointer(cschema))
	return getText(C.EMBER_GO_TEXT_JSON_SCHEMA_GRAMMAR, &C.ember_go_text_args{key: cschema})
}
