package ember

// The shared behaviour list of bindings/SPEC.md, one test per item. The model comes from EMBER_TEST_MODEL.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	prompt       = "Once upon a time"
	promptTokens = []int32{1, 403, 407, 261, 378}
	goldenTokens = []int32{432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337}
)

// hf/llama-lora/golden.json: its prompt, and the first logits peft gives after it with the adapter at scale 1.
var (
	loraPrompt      = "Once upon a time, the quick robot counted 12345 tokens."
	loraFirstLogits = []float32{-0.628006, -0.624651, -0.801815, -0.77162, -0.501407, -0.247845, -0.116984, -0.388983}
)

func modelPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("EMBER_TEST_MODEL")
	if p == "" {
		t.Skip("EMBER_TEST_MODEL is not set")
	}
	return p
}

func loadModel(t *testing.T) *Model {
	t.Helper()
	m, err := Load(modelPath(t), WithThreads(1))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newSession(t *testing.T, m *Model) *Session {
	t.Helper()
	s, err := m.NewSession(SessionParams{NThreads: 1})
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func greedy(t *testing.T) *Sampler {
	t.Helper()
	g, err := NewGreedySampler()
	if err != nil {
		t.Fatalf("NewGreedySampler: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// primed is a session with the prompt prefilled.
func primed(t *testing.T, m *Model) *Session {
	t.Helper()
	s := newSession(t, m)
	if err := s.Prefill(promptTokens); err != nil {
		t.Fatalf("Prefill: %v", err)
	}
	return s
}

// collect generates with a callback recording tokens and text.
func collect(t *testing.T, s *Session, sm *Sampler, p GenerateParams) ([]int32, string, GenerateResult) {
	t.Helper()
	var toks []int32
	var text strings.Builder
	res, err := s.Generate(sm, p, func(piece string, tok int32) error {
		toks = append(toks, tok)
		text.WriteString(piece)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return toks, text.String(), res
}

func wantStatus(t *testing.T, err error, want ...Status) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error of status %v, got nil", want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want an *ember.Error, got %T: %v", err, err)
	}
	for _, s := range want {
		if e.Status == s && errors.Is(err, s) {
			if e.Message == "" {
				t.Errorf("error of status %v has no message", e.Status)
			}
			return e
		}
	}
	t.Fatalf("want status %v, got %v (%v)", want, e.Status, err)
	return nil
}

func TestItem01ABICheck(t *testing.T) {
	if got := LibraryABIVersion(); got != ABIVersion {
		t.Fatalf("library ABI %d, binding %d", got, ABIVersion)
	}
	if err := checkABI(1); err != nil {
		t.Fatalf("checkABI(1): %v", err)
	}
	err := checkABI(2)
	e := wantStatus(t, err, StatusUnsupported)
	if !strings.Contains(e.Message, "2") || !strings.Contains(e.Message, "1") || !strings.Contains(e.Message, "ABI") {
		t.Errorf("the mismatch message should name both versions: %q", e.Message)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(Version()) {
		t.Errorf("Version() = %q", Version())
	}
	if VersionNumber() == 0 {
		t.Errorf("VersionNumber() = 0")
	}
}

func TestItem02LoadAndFacts(t *testing.T) {
	m := loadModel(t)
	if n := m.NVocab(); n != 512 {
		t.Errorf("NVocab = %d", n)
	}
	if a, err := m.Architecture(); err != nil || a != "llama" {
		t.Errorf("Architecture = %q, %v", a, err)
	}
	if n := m.NParams(); n <= 0 {
		t.Errorf("NParams = %d", n)
	}
	if b, err := m.Backend(); err != nil || b != "cpu" {
		t.Errorf("Backend = %q, %v", b, err)
	}
	// A progress callback sees the load, and returning false cancels it.
	calls := 0
	pm, err := Load(modelPath(t), WithThreads(1), WithProgress(func(p float32) bool { calls++; return true }))
	if err != nil || calls == 0 {
		t.Errorf("Load with progress: %d calls, %v", calls, err)
	} else {
		pm.Close()
	}
	_, err = Load(modelPath(t), WithProgress(func(float32) bool { return false }))
	wantStatus(t, err, StatusCancelled)
	found := false
	for _, b := range Backends() {
		found = found || b == "cpu"
	}
	if !found {
		t.Errorf("Backends() = %v lacks cpu", Backends())
	}
}

func TestItem03Metadata(t *testing.T) {
	m := loadModel(t)
	keys, err := m.MetaKeys()
	if err != nil {
		t.Fatalf("MetaKeys: %v", err)
	}
	has := map[string]bool{}
	for _, k := range keys {
		has[k] = true
	}
	for _, k := range []string{"general.architecture", "tokenizer.ggml.tokens"} {
		if !has[k] {
			t.Errorf("keys lack %s: %v", k, keys)
		}
	}
	if v, err := m.Meta("general.architecture"); err != nil || v != "llama" {
		t.Errorf("Meta(general.architecture) = %q, %v", v, err)
	}
	js, err := m.MetaJSON("tokenizer.ggml.tokens")
	if err != nil {
		t.Fatalf("MetaJSON: %v", err)
	}
	var toks []string
	if err := json.Unmarshal([]byte(js), &toks); err != nil || len(toks) != 512 {
		t.Errorf("tokens JSON: %d strings, %v", len(toks), err)
	}
	if ty, err := m.MetaType("tokenizer.ggml.tokens"); err != nil || ty != MetaArray {
		t.Errorf("MetaType = %v, %v", ty, err)
	}
	_, err = m.Meta("no.such.key")
	wantStatus(t, err, StatusNotFound)
	if !IsNotFound(err) || !errors.Is(err, ErrNotFound) {
		t.Errorf("IsNotFound/errors.Is(ErrNotFound) false for %v", err)
	}
	_, err = m.MetaJSON("no.such.key")
	wantStatus(t, err, StatusNotFound)
}

func TestItem04TokenizeDetokenize(t *testing.T) {
	m := loadModel(t)
	tk := m.Tokenizer()
	ids, err := tk.Tokenize(prompt, AddSpecial)
	if err != nil || !reflect.DeepEqual(ids, promptTokens) {
		t.Fatalf("Tokenize = %v, %v", ids, err)
	}
	text, err := tk.Detokenize(ids, 0)
	if err != nil || text != prompt {
		t.Errorf("Detokenize = %q, %v", text, err)
	}
	_, err = tk.Detokenize([]int32{512}, 0)
	wantStatus(t, err, StatusInvalidArgument)
	empty, err := tk.Tokenize("", AddSpecial)
	if err != nil || !reflect.DeepEqual(empty, []int32{1}) {
		t.Errorf("Tokenize(\"\") = %v, %v", empty, err)
	}
	if tk.BOS() != 1 || tk.Special(SpecialBOS) != 1 {
		t.Errorf("BOS = %d, Special(BOS) = %d", tk.BOS(), tk.Special(SpecialBOS))
	}
	if tk.NVocab() != 512 {
		t.Errorf("tokenizer NVocab = %d", tk.NVocab())
	}
	if p, err := tk.Piece(403, 0); err != nil || p == "" {
		t.Errorf("Piece(403) = %q, %v", p, err)
	}
	// A vocabulary-only tokenizer agrees.
	vt, err := LoadTokenizer(modelPath(t))
	if err != nil {
		t.Fatalf("LoadTokenizer: %v", err)
	}
	if ids, err := vt.Tokenize(prompt, AddSpecial); err != nil || !reflect.DeepEqual(ids, promptTokens) {
		t.Errorf("LoadTokenizer: Tokenize = %v, %v", ids, err)
	}
	vt.Close()
	vt.Close()
	if _, err := vt.Tokenize(prompt, 0); err == nil {
		t.Errorf("Tokenize on a closed tokenizer succeeded")
	}
}

func TestItem05GreedyGeneration(t *testing.T) {
	m := loadModel(t)
	s := primed(t, m)
	toks, text, res := collect(t, s, greedy(t), GenerateParams{MaxTokens: 16, IgnoreEOG: true})
	if !reflect.DeepEqual(toks, goldenTokens) {
		t.Errorf("tokens %v, want %v", toks, goldenTokens)
	}
	want, err := m.Tokenizer().Detokenize(goldenTokens, 0)
	if err != nil {
		t.Fatal(err)
	}
	if text != want {
		t.Errorf("streamed %q, want %q", text, want)
	}
	if res.Stop != StopLength || res.NGenerated != 16 {
		t.Errorf("result %+v", res)
	}
}

func TestItem06StreamEarlyStop(t *testing.T) {
	m := loadModel(t)
	g := greedy(t)
	// The callback returns ErrStop on the 3rd piece: that piece's token is not evaluated.
	s := primed(t, m)
	pieces := 0
	res, err := s.Generate(g, GenerateParams{MaxTokens: 16, IgnoreEOG: true}, func(string, int32) error {
		pieces++
		if pieces == 3 {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if pieces != 3 || res.Stop != StopCallback {
		t.Errorf("pieces %d, result %+v", pieces, res)
	}
	if pos := s.Position(); pos != 5+3-1 {
		t.Errorf("position %d, want %d", pos, 5+3-1)
	}

	// The channel: the consumer takes 3 pieces and stops. The pending 4th piece is never delivered and its
	// token not evaluated; the 3 received ones are (a channel cannot tell "received" from "done with").
	s2 := primed(t, m)
	st := s2.GenerateStream(context.Background(), g, GenerateParams{MaxTokens: 16, IgnoreEOG: true})
	var got []int32
	for p := range st.C {
		got = append(got, p.Token)
		if len(got) == 3 {
			break
		}
	}
	st.Stop()
	for p := range st.C {
		t.Errorf("a piece after Stop: %+v", p)
	}
	res, err = st.Result()
	if err != nil || res.Stop != StopCallback {
		t.Errorf("stream result %+v, %v", res, err)
	}
	if !reflect.DeepEqual(got, goldenTokens[:3]) {
		t.Errorf("stream tokens %v", got)
	}
	if pos := s2.Position(); pos != 5+3 {
		t.Errorf("stream position %d, want %d", pos, 5+3)
	}

	// A context cancelled mid-stream ends the goroutine too, with the context's error.
	s3 := primed(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	st = s3.GenerateStream(ctx, g, GenerateParams{MaxTokens: 16, IgnoreEOG: true})
	<-st.C
	cancel()
	_, err = st.Result()
	if !errors.Is(err, context.Canceled) || StatusOf(err) != StatusCallback {
		t.Errorf("cancelled stream: %v", err)
	}
	// Draining a finished stream's channel ends at once.
	for range st.C {
	}
}

func TestItem07StopStrings(t *testing.T) {
	m := loadModel(t)
	g := greedy(t)
	_, reference, _ := collect(t, primed(t, m), g, GenerateParams{MaxTokens: 16, IgnoreEOG: true})
	if len(reference) < 14 {
		t.Fatalf("reference too short: %q", reference)
	}
	stop := reference[10:14]
	_, text, res := collect(t, primed(t, m), g, GenerateParams{MaxTokens: 16, IgnoreEOG: true, Stop: []string{stop}})
	want := reference[:strings.Index(reference, stop)]
	if text != want {
		t.Errorf("streamed %q, want %q", text, want)
	}
	if res.Stop != StopString || res.StopIndex != 0 {
		t.Errorf("result %+v", res)
	}
}

func TestItem08CancelFromAnotherGoroutine(t *testing.T) {
	m := loadModel(t)
	g := greedy(t)
	s := primed(t, m)
	first := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-first
		if err := s.Cancel(); err != nil {
			t.Errorf("Cancel: %v", err)
		}
	}()
	pieces := 0
	res, err := s.Generate(g, GenerateParams{MaxTokens: -1, IgnoreEOG: true}, func(string, int32) error {
		pieces++
		once.Do(func() { close(first) })
		if pieces == 1 {
			time.Sleep(50 * time.Millisecond) // let the cancel land while generation runs
		}
		return nil
	})
	wg.Wait()
	wantStatus(t, err, StatusCancelled)
	if !IsCancelled(err) || pieces < 1 || res.NGenerated < 1 {
		t.Errorf("pieces %d, result %+v, err %v", pieces, res, err)
	}
	if pieces >= s.NCtx() {
		t.Errorf("generation was not cancelled early: %d pieces", pieces)
	}
	if err := s.ClearCancel(); err != nil {
		t.Fatalf("ClearCancel: %v", err)
	}
	// The session runs again.
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := s.Prefill(promptTokens); err != nil {
		t.Fatalf("Prefill after ClearCancel: %v", err)
	}
	toks, _, res := collect(t, s, g, GenerateParams{MaxTokens: 16, IgnoreEOG: true})
	if !reflect.DeepEqual(toks, goldenTokens) || res.Stop != StopLength {
		t.Errorf("after ClearCancel: %v %+v", toks, res)
	}
}

func TestItem09Errors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-model.gguf")
	_, err := Load(missing)
	e := wantStatus(t, err, StatusIO)
	if !strings.Contains(e.Message, missing) {
		t.Errorf("the I/O error should name the path: %q", e.Message)
	}
	notGGUF := filepath.Join(dir, "not.gguf")
	if err := os.WriteFile(notGGUF, []byte("this is not a GGUF file, only some text long enough to read"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(notGGUF)
	wantStatus(t, err, StatusBadFile)

	m := loadModel(t)
	_, err = m.NewSession(SessionParams{NThreads: -1})
	wantStatus(t, err, StatusInvalidArgument)
	_, err = Load(modelPath(t), WithThreads(-1))
	wantStatus(t, err, StatusInvalidArgument)

	p := DefaultSamplerParams()
	p.Temperature = float32(math.NaN())
	_, err = NewSampler(p)
	wantStatus(t, err, StatusInvalidArgument)

	_, err = m.NewSession(SessionParams{NCtx: 1 << 30, NThreads: 1})
	wantStatus(t, err, StatusOutOfMemory, StatusInvalidArgument)

	s := primed(t, m)
	err = s.Decode(-1)
	wantStatus(t, err, StatusInvalidArgument)
	if !IsInvalidArgument(err) {
		t.Errorf("IsInvalidArgument false for %v", err)
	}
	var ee *Error
	if !errors.As(err, &ee) || !strings.Contains(ee.Error(), ee.Message) {
		t.Errorf("Error() %q lacks the message", err)
	}

	// Quantized at load (stories260K is F32): the file type of the Q8_0 mix; an unknown type is refused.
	_, err = Load(modelPath(t), WithQuantize("q7"))
	wantStatus(t, err, StatusInvalidArgument)
	q, err := Load(modelPath(t), WithThreads(1), WithQuantize("q8_0"))
	if err != nil {
		t.Fatalf("Load with WithQuantize(q8_0): %v", err)
	}
	defer q.Close()
	if ft, err := q.Meta("general.file_type"); err != nil || ft != "7" {
		t.Errorf("quantized at load to Q8_0: general.file_type %q, %v; want 7", ft, err)
	}
}

func TestItem10CallbackFailure(t *testing.T) {
	m := loadModel(t)
	g := greedy(t)

	// An error: generation ends with StatusCallback wrapping the callback's own error.
	s := primed(t, m)
	mine := errors.New("my callback failed")
	pieces := 0
	_, err := s.Generate(g, GenerateParams{MaxTokens: 16, IgnoreEOG: true}, func(string, int32) error {
		pieces++
		if pieces == 2 {
			return mine
		}
		return nil
	})
	wantStatus(t, err, StatusCallback)
	if !errors.Is(err, mine) {
		t.Errorf("the callback's error is not in the chain: %v", err)
	}
	if pieces != 2 {
		t.Errorf("%d pieces streamed, want 2", pieces)
	}

	// A panic: re-raised, with its value, once the C call has returned; the session survives.
	s2 := primed(t, m)
	pieces = 0
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		s2.Generate(g, GenerateParams{MaxTokens: 16, IgnoreEOG: true}, func(string, int32) error {
			pieces++
			if pieces == 2 {
				panic("boom")
			}
			return nil
		})
		t.Errorf("Generate did not panic")
	}()
	if pieces != 2 {
		t.Errorf("%d pieces streamed, want 2", pieces)
	}
	if s2.Position() < 5 {
		t.Errorf("session position %d after the panic", s2.Position())
	}
	if _, _, res := collect(t, s2, g, GenerateParams{MaxTokens: 2, IgnoreEOG: true}); res.NGenerated != 2 {
		t.Errorf("the session does not generate after a panic: %+v", res)
	}
}

func TestItem11FreeInAnyOrder(t *testing.T) {
	m, err := Load(modelPath(t), WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(SessionParams{NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	g := greedy(t)
	m.Close()
	m.Close()
	if err := s.Prefill(promptTokens); err != nil {
		t.Fatalf("Prefill after the model's Close: %v", err)
	}
	toks, _, _ := collect(t, s, g, GenerateParams{MaxTokens: 16, IgnoreEOG: true})
	if !reflect.DeepEqual(toks, goldenTokens) {
		t.Errorf("tokens after the model's Close: %v", toks)
	}
	s.Close()
	s.Close()
	if err := s.Decode(1); err == nil {
		t.Errorf("Decode on a closed session succeeded")
	}
	if _, err := m.Architecture(); err == nil {
		t.Errorf("Architecture on a closed model succeeded")
	}
	if _, err := m.Tokenizer().Tokenize("x", 0); err == nil {
		t.Errorf("Tokenize on a closed model's tokenizer succeeded")
	}
	g.Close()
	g.Close()

	// Close from inside a callback: the call stops (cancelled), the session is freed after it.
	m2 := loadModel(t)
	s2 := primed(t, m2)
	g2 := greedy(t)
	_, err = s2.Generate(g2, GenerateParams{MaxTokens: 16, IgnoreEOG: true}, func(string, int32) error {
		s2.Close()
		g2.Close()
		return nil
	})
	wantStatus(t, err, StatusCancelled)

	// Left to the finalizers.
	for i := 0; i < 3; i++ {
		func() {
			m, err := Load(modelPath(t), WithThreads(1))
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.NewSession(SessionParams{NThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			sm, _ := NewGreedySampler()
			tk := m.Tokenizer()
			_, _ = tk.Tokenize(prompt, AddSpecial)
			_ = s.Prefill(promptTokens)
			_, _ = s.Generate(sm, GenerateParams{MaxTokens: 2}, nil)
			c, err := m.NewChat(SessionParams{NThreads: 1, NCtx: 256}, ChatParams{Reserve: 16})
			if err == nil {
				_ = c
			}
		}()
		runtime.GC()
	}
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	runtime.GC()
}

func TestItem12Seeds(t *testing.T) {
	m := loadModel(t)
	run := func(sm *Sampler) []int32 {
		s := primed(t, m)
		toks, _, _ := collect(t, s, sm, GenerateParams{MaxTokens: 12, IgnoreEOG: true})
		return toks
	}
	mk := func(seed uint64) *Sampler {
		p := DefaultSamplerParams()
		p.Temperature = 1
		p.Seed = seed
		sm, err := NewSampler(p)
		if err != nil {
			t.Fatalf("NewSampler: %v", err)
		}
		t.Cleanup(func() { sm.Close() })
		return sm
	}
	a, b := run(mk(1234)), run(mk(1234))
	if len(a) != 12 || !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different tokens: %v %v", a, b)
	}
	r := mk(SeedRandom)
	seed, err := r.Seed()
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	if seed == SeedRandom {
		t.Errorf("a random sampler reports the sentinel as its seed")
	}
	first := run(r)
	again := run(mk(seed))
	if !reflect.DeepEqual(first, again) {
		t.Errorf("seed %d does not repeat: %v %v", seed, first, again)
	}
	if got, _ := mk(77).Seed(); got != 77 {
		t.Errorf("Seed() = %d, want 77", got)
	}
}

func TestItem13AllLogits(t *testing.T) {
	m := loadModel(t)
	s := newSession(t, m)
	if err := s.PrefillAll(promptTokens); err != nil {
		t.Fatalf("PrefillAll: %v", err)
	}
	at, err := s.LogitsAt(4)
	if err != nil {
		t.Fatalf("LogitsAt: %v", err)
	}
	last, err := s.Logits()
	if err != nil {
		t.Fatalf("Logits: %v", err)
	}
	if len(last) != 512 || !reflect.DeepEqual(at, last) {
		t.Errorf("LogitsAt(4) differs from Logits (%d, %d floats)", len(at), len(last))
	}
	if _, err := s.LogitsAt(5); err == nil {
		t.Errorf("LogitsAt(5) succeeded")
	}
}

func TestItem14Chat(t *testing.T) {
	m := loadModel(t)
	c, err := m.NewChat(SessionParams{NThreads: 1}, ChatParams{})
	if err != nil {
		t.Fatalf("NewChat: %v", err)
	}
	defer c.Close()
	var text strings.Builder
	res, err := c.Say(greedy(t), "Hello", GenerateParams{MaxTokens: 8}, func(piece string, _ int32) error {
		text.WriteString(piece)
		return nil
	})
	if err != nil {
		t.Fatalf("Say: %v", err)
	}
	if text.Len() == 0 || res.NGenerated < 1 || res.NGenerated > 8 {
		t.Errorf("reply %q, result %+v", text.String(), res)
	}
	if n := c.NMessages(); n != 2 {
		t.Errorf("NMessages = %d", n)
	}
}

func TestItem15LoadFromMemory(t *testing.T) {
	data, err := os.ReadFile(modelPath(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadFromMemory(data, WithThreads(1))
	if err != nil {
		t.Fatalf("LoadFromMemory: %v", err)
	}
	defer m.Close()
	for i := range data {
		data[i] = 0 // the bytes were copied
	}
	toks, _, _ := collect(t, primed(t, m), greedy(t), GenerateParams{MaxTokens: 16, IgnoreEOG: true})
	if !reflect.DeepEqual(toks, goldenTokens) {
		t.Errorf("tokens %v", toks)
	}
}

// hfPath is a fixture of tests/data/hf: EMBER_TEST_HF, else ../hf next to the model's folder.
func hfPath(t *testing.T, name string) string {
	t.Helper()
	root := os.Getenv("EMBER_TEST_HF")
	if root == "" {
		abs, err := filepath.Abs(modelPath(t))
		if err != nil {
			t.Fatal(err)
		}
		root = filepath.Join(filepath.Dir(filepath.Dir(abs)), "hf")
	}
	return filepath.Join(root, name)
}

func maxDiff(t *testing.T, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("logits of %d and %d values", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestItem16LoRAAdapters(t *testing.T) {
	base, err := Load(hfPath(t, "llama"), WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	peft, err := base.LoadAdapter(hfPath(t, "llama-lora"))
	if err != nil {
		t.Fatal(err)
	}
	gguf, err := base.LoadAdapter(hfPath(t, "llama-lora/adapter.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Adapter{peft, gguf} {
		if a.Rank() != 4 || a.NTargets() != 14 {
			t.Errorf("rank %d, n_targets %d; want 4 and 14", a.Rank(), a.NTargets())
		}
	}
	tokens, err := base.Tokenizer().Tokenize(loraPrompt, AddSpecial)
	if err != nil || len(tokens) != 29 {
		t.Fatalf("the prompt tokenizes to %v (%v), want 29 ids", tokens, err)
	}
	s := newSession(t, base)
	logits := func(set bool, adapters ...AdapterScale) []float32 {
		t.Helper()
		if set {
			if err := s.SetAdapters(adapters...); err != nil {
				t.Fatalf("SetAdapters: %v", err)
			}
		}
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		if err := s.Prefill(tokens); err != nil {
			t.Fatal(err)
		}
		l, err := s.Logits()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	argmax := func(v []float32) int {
		best := 0
		for i := range v {
			if v[i] > v[best] {
				best = i
			}
		}
		return best
	}
	baseLogits := logits(false)
	if a := argmax(baseLogits); a != 161 {
		t.Errorf("the base model's highest logit is token %d, want 161", a)
	}
	withPEFT := logits(true, AdapterScale{peft, 1})
	if a := argmax(withPEFT); a != 263 {
		t.Errorf("with the adapter the highest logit is token %d, want peft's 263", a)
	}
	if d := maxDiff(t, withPEFT[:8], loraFirstLogits); d >= 3e-3 {
		t.Errorf("the first logits %v are %g from peft's", withPEFT[:8], d)
	}
	if !reflect.DeepEqual(logits(true, AdapterScale{gguf, 1}), withPEFT) {
		t.Errorf("the GGUF form's logits differ from the PEFT folder's")
	}
	if !reflect.DeepEqual(logits(true, AdapterScale{peft, 1}, AdapterScale{gguf, 0}), withPEFT) {
		t.Errorf("a second adapter at scale 0 changed the logits")
	}
	if d := maxDiff(t, logits(true, AdapterScale{peft, 0.5}, AdapterScale{gguf, 0.5}), withPEFT); d >= 1e-3 {
		t.Errorf("two halves differ from the whole by %g", d)
	}
	if !reflect.DeepEqual(logits(true, AdapterScale{peft, 0}), baseLogits) {
		t.Errorf("scale 0 is not the base model")
	}
	if !reflect.DeepEqual(logits(true), baseLogits) {
		t.Errorf("no adapters is not the base model")
	}

	_, err = base.LoadAdapter(hfPath(t, "no-such-adapter"))
	if e := wantStatus(t, err, StatusIO); !strings.Contains(e.Message, "no-such-adapter") {
		t.Errorf("the I/O error does not name the path: %v", e)
	}
	stories := loadModel(t)
	_, err = stories.LoadAdapter(hfPath(t, "llama-lora"))
	wantStatus(t, err, StatusInvalidArgument)
	if err := s.SetAdapters(AdapterScale{peft, 1}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s.SetAdapters(AdapterScale{peft, float32(math.NaN())}), StatusInvalidArgument)
	wantStatus(t, s.SetAdapters(AdapterScale{peft, 1}, AdapterScale{peft, 1}), StatusInvalidArgument)
	wantStatus(t, s.SetAdapters(AdapterScale{nil, 1}), StatusInvalidArgument)
	if !reflect.DeepEqual(logits(false), withPEFT) {
		t.Errorf("a failed SetAdapters changed the session's adapters")
	}

	// The session keeps its adapters, and they their model, past Close.
	peft.Close()
	peft.Close()
	gguf.Close()
	base.Close()
	if peft.Rank() != -1 {
		t.Errorf("Rank of a closed adapter: %d", peft.Rank())
	}
	if !reflect.DeepEqual(logits(false), withPEFT) {
		t.Errorf("closing the adapters and the model changed the session's logits")
	}
	wantStatus(t, s.SetAdapters(AdapterScale{peft, 1}), StatusInvalidArgument)
	if !reflect.DeepEqual(logits(true), baseLogits) {
		t.Errorf("no adapters after the Close is not the base model")
	}

	// Left to the finalizers.
	func() {
		m, err := Load(hfPath(t, "llama"), WithThreads(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.LoadAdapter(hfPath(t, "llama-lora")); err != nil {
			t.Fatal(err)
		}
	}()
	runtime.GC()
}

// Item 17's model: SmolLM2-135M-Instruct, where scripts/setup.sh fetches it (the C++ tests look there too).
func smolLM2Path(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("EMBER_MODELS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Skip("no EMBER_MODELS and no home folder")
		}
		dir = filepath.Join(home, ".cache", "ember", "models")
	}
	p := filepath.Join(dir, "SmolLM2-135M-Instruct.Q4_1.gguf")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is absent (scripts/setup.sh fetches it)", p)
	}
	return p
}

const (
	yesNoGrammar = `root ::= ("yes" | "no")`
	answerPrompt = "Question: Is the sky blue? Answer yes or no.\nAnswer: "
	personPrompt = "A JSON object describing a person's age and favourite colour: "
	personSchema = `{"type": "object", "properties": {"age": {"type": "integer"},
		"color": {"type": "string", "enum": ["red", "green", "blue"]}},
		"required": ["age", "color"], "additionalProperties": false}`
)

func TestItem17GrammarAndJSONSchema(t *testing.T) {
	grammar, err := JSONSchemaToGrammar(personSchema)
	if err != nil || !strings.Contains(grammar, "root ::=") {
		t.Errorf("JSONSchemaToGrammar: %q, %v; want a grammar with root ::=", grammar, err)
	}
	_, err = JSONSchemaToGrammar("[")
	wantStatus(t, err, StatusInvalidArgument)

	m, err := Load(smolLM2Path(t), WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := newSession(t, m)
	run := func(sm *Sampler, text string, maxTokens int, ignoreEOG bool) (string, GenerateResult) {
		t.Helper()
		ids, err := m.Tokenizer().Tokenize(text, AddSpecial|ParseSpecial)
		if err != nil {
			t.Fatal(err)
		}
		if err := sm.Reset(); err != nil { // restarts the grammar, complete after the last run
			t.Fatal(err)
		}
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		if err := s.Prefill(ids); err != nil {
			t.Fatal(err)
		}
		_, out, res := collect(t, s, sm, GenerateParams{MaxTokens: maxTokens, IgnoreEOG: ignoreEOG})
		return out, res
	}
	yesOrNo := func(text string) bool { return text == "yes" || text == "no" }

	// Hot sampling cannot leave the grammar, and generation ends once it is complete.
	for seed := uint64(1); seed <= 6; seed++ {
		p := DefaultSamplerParams()
		p.Temperature, p.TopK, p.TopP, p.MinP, p.Seed = 1.5, 0, 1, 0, seed
		sm, err := NewSampler(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := sm.SetGrammar(m, yesNoGrammar); err != nil {
			t.Fatal(err)
		}
		if out, res := run(sm, answerPrompt, 8, true); !yesOrNo(out) || res.Stop != StopEOG {
			t.Errorf("seed %d: %q (stop %v), want yes or no ending with StopEOG", seed, out, res.Stop)
		}
		// A bad grammar is refused with its position and leaves the old one in place.
		e := wantStatus(t, sm.SetGrammar(m, `root ::= ("yes" | "no"`), StatusInvalidArgument)
		if !regexp.MustCompile(`line \d+, column \d+`).MatchString(e.Message) {
			t.Errorf("the grammar error should name the line and column: %q", e.Message)
		}
		if out, _ := run(sm, answerPrompt, 8, true); !yesOrNo(out) {
			t.Errorf("seed %d after a bad grammar: %q", seed, out)
		}
		// Cleared, the sampler is free again: 8 tokens, the length limit.
		if err := sm.SetGrammar(m, ""); err != nil {
			t.Fatal(err)
		}
		if _, res := run(sm, answerPrompt, 8, true); res.NGenerated != 8 || res.Stop != StopLength {
			t.Errorf("seed %d without the grammar: %+v, want 8 tokens and StopLength", seed, res)
		}
		sm.Close()
	}

	p := DefaultSamplerParams()
	p.Temperature, p.Seed = 0.7, 7
	sm, err := NewSampler(p)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if err := sm.SetJSONSchema(m, personSchema); err != nil {
		t.Fatal(err)
	}
	out, res := run(sm, personPrompt, 96, false)
	if res.Stop != StopEOG {
		t.Errorf("JSON generation stopped with %v: %q", res.Stop, out)
	}
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not JSON: %q: %v", out, err)
	}
	age, isNumber := doc["age"].(json.Number)
	if _, err := age.Int64(); !isNumber || err != nil || len(doc) != 2 {
		t.Errorf("want {age: integer, color}: %q", out)
	}
	if c := doc["color"]; c != "red" && c != "green" && c != "blue" {
		t.Errorf("color %v is outside the enum: %q", c, out)
	}
	g := greedy(t)
	wantStatus(t, g.SetJSONSchema(m, `{"type": `), StatusInvalidArgument)
}

func TestItem18MemoryEstimates(t *testing.T) {
	path := modelPath(t)
	plain, err := EstimateMemory(path, 256, 0)
	if err != nil {
		t.Fatalf("EstimateMemory: %v", err)
	}
	if plain.Weights == 0 || plain.Total != plain.Weights+plain.KVCache+plain.Scratch {
		t.Errorf("plain estimate %+v: want weights > 0 and total the sum", plain)
	}
	// "" (WithQuantize's default) and the options that do not quantize give the plain estimate.
	for _, opts := range [][]LoadOption{{WithQuantize("")}, {WithThreads(1), WithMmap(false)}} {
		if e, err := EstimateMemory(path, 256, 0, opts...); err != nil || e != plain {
			t.Errorf("EstimateMemory with %d options: %+v, %v; want %+v", len(opts), e, err, plain)
		}
	}
	// Q8_0 of stories260K's F32 weights: fewer bytes, the session's share unchanged.
	q8, err := EstimateMemory(path, 256, 0, WithQuantize("Q8_0"))
	if err != nil {
		t.Fatalf("EstimateMemory with WithQuantize(Q8_0): %v", err)
	}
	if q8.Weights == 0 || q8.Weights >= plain.Weights {
		t.Errorf("Q8_0 weights %d: want fewer than the F32 file's %d", q8.Weights, plain.Weights)
	}
	if q8.KVCache != plain.KVCache || q8.Scratch != plain.Scratch || q8.Total != q8.Weights+q8.KVCache+q8.Scratch {
		t.Errorf("Q8_0 estimate %+v against plain %+v: the session's share changed or total is not the sum", q8, plain)
	}
	if e, err := EstimateMemory(path, 256, 0, WithQuantize("q8_0")); err != nil || e != q8 {
		t.Errorf("q8_0 (lower case): %+v, %v; want %+v", e, err, q8)
	}
	// Bad types, and numbers C would not see as given.
	e := wantStatus(t, func() error { _, err := EstimateMemory(path, 256, 0, WithQuantize("Q9_9")); return err }(),
		StatusInvalidArgument)
	if !strings.Contains(e.Message, "ember_estimate_memory_quantized") {
		t.Errorf("message %q does not name ember_estimate_memory_quantized", e.Message)
	}
	e = wantStatus(t, func() error {
		_, err := EstimateMemory(path, 256, 0, WithQuantize(strings.Repeat("q", 65)))
		return err
	}(), StatusInvalidArgument)
	if !strings.Contains(e.Message, "64 bytes") {
		t.Errorf("message %q does not give the 64-byte bound", e.Message)
	}
	_, err = EstimateMemory(path, 256, 0, WithQuantize("q8_0\x00"))
	wantStatus(t, err, StatusInvalidArgument)
	_, err = EstimateMemory(path, 256, 0, WithQuantize(strings.Repeat("q", 1<<20)))
	wantStatus(t, err, StatusInvalidArgument)
	if math.MaxInt > math.MaxInt32 {
		big64 := int64(math.MaxInt32) + 257 // 256 once cut to int32
		big := int(big64)
		_, err = EstimateMemory(path, big, 0)
		wantStatus(t, err, StatusInvalidArgument)
	}
	// The function called names itself, not the one it shares code with.
	_, err = EstimateMemory(path, 0, 0)
	if e := wantStatus(t, err, StatusInvalidArgument); strings.Contains(e.Message, "_quantized") {
		t.Errorf("ember_estimate_memory's message %q names the quantized function", e.Message)
	}
	_, err = EstimateMemory(filepath.Join(t.TempDir(), "missing.gguf"), 256, 0, WithQuantize("q8_0"))
	wantStatus(t, err, StatusIO)
}

// Item 19: input is refused, never cut or wrapped, on its way to C.
func TestItem19InputRefusedNotCut(t *testing.T) {
	path := modelPath(t)
	m := loadModel(t)
	inval := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: want StatusInvalidArgument, got nil", what)
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != StatusInvalidArgument {
			t.Errorf("%s: want StatusInvalidArgument, got %v", what, err)
		}
	}
	// A NUL byte in a string C takes NUL-terminated (cgo's strings are cut there).
	_, err := Load(path+"\x00x", WithThreads(1))
	inval("a path with a NUL", err)
	_, err = Load(path, WithThreads(1), WithBackend("cpu\x00x"))
	inval("a backend with a NUL", err)
	_, err = Load(path, WithThreads(1), WithQuantize("q8_0\x00"))
	inval("a quantize type with a NUL", err)
	_, err = LoadTokenizer(path + "\x00x")
	inval("a tokenizer path with a NUL", err)
	_, err = m.Meta("general.architecture\x00x")
	inval("a metadata key with a NUL", err)
	s := primed(t, m)
	g := greedy(t)
	_, err = s.Generate(g, GenerateParams{MaxTokens: 4, Stop: []string{"x", "ti\x00me"}}, nil)
	inval("a stop string with a NUL", err)
	inval("a state path with a NUL", s.Save(filepath.Join(t.TempDir(), "state\x00x")))
	inval("a grammar with a NUL", g.SetGrammar(m, "root ::= \"yes\"\x00 | \"no\""))
	inval("a schema with a NUL", g.SetJSONSchema(m, "{\"type\": \"object\"}\x00"))
	_, err = JSONSchemaToGrammar("{\"type\": \"object\"}\x00")
	inval("json_schema_to_grammar of a schema with a NUL", err)
	_, err = m.NewChat(SessionParams{NThreads: 1}, ChatParams{System: "Be\x00 brief"})
	inval("a system message with a NUL", err)
	c, err := m.NewChat(SessionParams{NThreads: 1}, ChatParams{})
	if err != nil {
		t.Fatalf("NewChat: %v", err)
	}
	defer c.Close()
	_, err = c.Say(g, "Hel\x00lo", GenerateParams{MaxTokens: 2}, nil)
	inval("a chat message with a NUL", err)
	if c.NMessages() != 0 {
		t.Errorf("a refused turn left %d messages", c.NMessages())
	}
	// Text to tokenize crosses with its length: a NUL in it is text.
	withNUL, err := m.Tokenizer().Tokenize("a\x00b", 0)
	if err != nil {
		t.Fatalf("Tokenize with a NUL: %v", err)
	}
	if plain, _ := m.Tokenizer().Tokenize("a", 0); len(withNUL) <= len(plain) {
		t.Errorf("\"a\\x00b\" tokenizes to %v, no longer than \"a\"'s %v", withNUL, plain)
	}

	// Numbers beyond int32 are refused, not wrapped (2^32 + 256 would reach C as 256).
	if math.MaxInt == math.MaxInt32 {
		return // int is int32: nothing can wrap
	}
	wrap64 := int64(1)<<32 + 256
	wrap := int(wrap64)
	for _, sp := range []SessionParams{{NCtx: wrap, NThreads: 1}, {NBatch: wrap, NThreads: 1}, {NThreads: wrap}} {
		_, err = m.NewSession(sp)
		inval(fmt.Sprintf("NewSession(%+v)", sp), err)
		_, err = m.NewChat(sp, ChatParams{})
		inval(fmt.Sprintf("NewChat(%+v)", sp), err)
	}
	_, err = m.NewChat(SessionParams{NThreads: 1}, ChatParams{Reserve: wrap})
	inval("a chat reserve beyond int32", err)
	_, err = Load(path, WithThreads(wrap))
	inval("WithThreads beyond int32", err)
	_, err = EstimateMemory(path, 256, wrap)
	inval("EstimateMemory's nBatch beyond int32", err)
	_, err = EstimateMemory(path, 256, 0, WithThreads(wrap))
	inval("EstimateMemory with WithThreads beyond int32", err)
	sp := DefaultSamplerParams() // valid but for the one field
	sp.TopK = wrap
	_, err = NewSampler(sp)
	inval("a sampler's TopK beyond int32", err)
	sp = DefaultSamplerParams()
	sp.PenaltyLastN = wrap
	_, err = NewSampler(sp)
	inval("a sampler's PenaltyLastN beyond int32", err)
	_, err = s.Generate(g, GenerateParams{MaxTokens: wrap}, nil)
	inval("MaxTokens beyond int32", err)
	_, err = c.Say(g, "Hello", GenerateParams{MaxTokens: wrap}, nil)
	inval("a chat's MaxTokens beyond int32", err)
	inval("a rewind beyond int32", s.Rewind(int(int64(1)<<32+wrap64-256)))
	if err := s.PrefillAll(promptTokens); err != nil {
		t.Fatalf("PrefillAll: %v", err)
	}
	// 2^32 - 1 would reach C as -1, which the shim takes for "the last logits".
	_, err = s.LogitsAt(int(int64(1)<<32 - 1))
	inval("LogitsAt beyond int32", err)
	if s.Position() != 10 {
		t.Errorf("position %d after the refused calls: want 10", s.Position())
	}
}
