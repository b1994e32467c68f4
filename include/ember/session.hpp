// ember — one conversation: a KV cache, a position, the latest logits. Use from one thread at a time
// (cancel() and clear_cancel() may be called from any thread).
//
// Callbacks (SessionParams::abort, generate's on_text) run inside a call of the session. From there they may
// read it (position, tokens, logits) and call cancel(); any other call on the session (prefill, decode,
// generate, rewind, reset) throws InvalidArgument ("the session is busy"), as does a second thread calling
// while a call runs. A callback must not destroy the session it runs in.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/adapter.hpp"
#include "ember/model.hpp"
#include "ember/sampler.hpp"
#include "ember/tokenizer.hpp"

namespace ember {

namespace detail {
class SessionImpl;
}

struct SessionParams {
    int n_ctx = 0;       // KV cache size in tokens (0: the model's training context, capped at 4096)
    int n_batch = 512;   // prompt tokens evaluated per forward pass
    int n_threads = 0;   // threads for this session's steps; 0: the model's default (at most 4× hardware threads)
    // Polled between forward passes and layers; return true to stop (the call throws Cancelled).
    std::function<bool()> abort;
};

struct GenerateParams {
    int max_tokens = 256;      // < 0: until the context is full
    bool stop_at_eog = true;   // stop on end-of-generation tokens (EOS, <|im_end|>, ...)
    // Stop strings: generation ends where the text first contains one. Neither it nor what follows is
    // streamed or kept in the text; text that may be the start of one is held back until it is not.
    std::vector<std::string> stop;
    // Added to a token's logit before sampling (-infinity forbids it). Ids must be in [0, n_vocab).
    std::vector<std::pair<Token, float>> logit_bias;
};

struct GenerateResult {
    // sampled tokens (the one that ended generation included). A sampler's grammar that is finished (its text
    // complete, nothing may follow) ends generation with EndOfGeneration after the token that finished it.
    std::vector<Token> tokens;
    std::string text;            // the text streamed, special tokens not rendered
    enum class Stop { Length, EndOfGeneration, Callback, ContextFull, StopString } stop = Stop::Length;
    int stop_index = -1;         // with StopString: which of GenerateParams::stop
};

// Generated text as it may be shown while tokens arrive: never a split UTF-8 character, never text that
// may still turn out to be a stop string, and nothing from the first stop string on. Session::generate
// uses it; so can a caller that steps decoding itself (a server's batched steps).
class GeneratedText {
public:
    explicit GeneratedText(std::vector<std::string> stop = {});  // InvalidArgument for an empty stop string
    // Appends a token's bytes; returns the text now safe to show (up to the stop string, once one appears).
    std::string push(std::string_view bytes);
    // At the end of generation: the text held back ("" once a stop string was found).
    std::string flush();
    bool stopped() const noexcept { return stop_index_ >= 0; }
    int stop_index() const noexcept { return stop_index_; }  // which stop string; -1 while none

private:
    std::vector<std::string> stop_;
    std::string pending_;  // bytes of an incomplete UTF-8 character
    std::string held_;     // whole characters that may be the start of a stop string
    int stop_index_ = -1;
};

class Session;

// A generation handed out one piece at a time (an iterator for bindings, UIs and event loops), with the
// sampling, stop strings, UTF-8 hold-back and stop reasons of Session::generate. From
// Session::start_generation; the session and sampler must outlive it, and the session must not be used
// otherwise until it is done (next() throws InvalidArgument if the session changed). The token whose piece
// next() returned is evaluated at the following next(): a consumer that stops early leaves the session as
// generate's callback returning false would.
class Generation {
public:
    struct Piece {
        std::string text;  // UTF-8, never a split character
        Token token;       // the token that completed it
    };
    // The next piece, or nullopt once generation has ended (result() says why). Throws as generate does
    // (Cancelled: the session keeps what was evaluated; a step that failed while evaluating ends the
    // generation, while one refused before it started, on a session already cancelled, changes nothing).
    std::optional<Piece> next();
    const GenerateResult& result() const;  // so far; complete once done()
    bool done() const noexcept;

    ~Generation();
    Generation(Generation&&) noexcept;
    Generation& operator=(Generation&&) noexcept;

private:
    friend class Session;
    struct State;
    Generation();
    std::unique_ptr<State> s_;
};

class Session {
public:
    explicit Session(const Model& model, const SessionParams& params = {});
    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;

    // Evaluates tokens at the current position. Afterwards logits() belongs to the last one; with
    // all_logits, logits_at(i) holds every token's. Throws ContextFull when they do not fit (nothing is
    // evaluated then), InvalidArgument for an out-of-range token; after any failure the cache holds what
    // it held before the call.
    void prefill(std::span<const Token> tokens, bool all_logits = false);
    void decode(Token token);
    // Makes the cache hold exactly `prompt`, evaluating only what it does not share with the cached
    // tokens (at least its last token, so logits() belongs to it): a conversation resent whole, or prompts
    // with a common start, pay only for what is new. Returns the tokens reused. On failure the cache holds
    // the reused part. It is reuse_prefix(prompt), then prefill of the rest.
    int prefill_reusing(std::span<const Token> prompt);
    // The first half of prefill_reusing: keeps the longest prefix of the cache that `prompt` starts with,
    // short of its last token (which is always left to evaluate), forgets the rest, and returns how many
    // tokens it kept. The caller then evaluates prompt[kept..]: with prefill, or a chunk at a time through
    // step_batch.
    int reuse_prefix(std::span<const Token> prompt);
    // One forward step for several sessions of one model: sessions[i] evaluates tokens[i] — its next token,
    // or a chunk of a prompt — at its own position against its own cache, while every weight is read once
    // for all the tokens of the step (serving N conversations, or decoding some while prefilling another,
    // costs far less than a step each). Afterwards each session's logits() belongs to the last token of its
    // span, as after prefill(). The sessions must be distinct, idle, of one model and not cancelled; each
    // span non-empty, its ids in range and fitting its session's context; at most the first session's
    // n_batch tokens in all. Throws as prefill does (InvalidArgument, ContextFull, Cancelled...); on any
    // failure no session changes.
    // The logits equal each session's own prefill of the same tokens up to summation order (the matmul
    // kernels chosen depend on how many tokens a step holds), not bit for bit.
    static void step_batch(std::span<Session* const> sessions, std::span<const std::span<const Token>> tokens);
    // step_batch with one token per session: one decoding step of several conversations. Each session's
    // logits() then belongs to its token, as after decode().
    static void decode_batch(std::span<Session* const> sessions, std::span<const Token> tokens);

    std::span<const float> logits() const;          // last evaluated position, n_vocab values
    std::span<const float> logits_at(int i) const;  // i-th token of the last prefill(all_logits=true)

    // Samples, appends and streams tokens until a stop. on_text gets UTF-8 text as it completes (a
    // multi-byte character is never split); returning false stops generation.
    // The token that ended generation (end of generation, stop string, on_text returning false) is not
    // evaluated into the cache.
    GenerateResult generate(Sampler& sampler, const GenerateParams& params = {},
                            const std::function<bool(std::string_view text, Token token)>& on_text = {});
    // The same generation, driven by the caller one piece at a time.
    Generation start_generation(Sampler& sampler, const GenerateParams& params = {});
    // The same, filling `result` as it goes: when it throws (Cancelled from another thread, an error from
    // on_text), `result` still tells what was sampled and streamed before.
    void generate(Sampler& sampler, const GenerateParams& params,
                  const std::function<bool(std::string_view text, Token token)>& on_text, GenerateResult& result);

    // The LoRA adapters applied to every token this session evaluates from now on (prefill, decode, generate,
    // step_batch), each with its scale; {} removes them. They must be loaded for this session's model, appear
    // once each, with finite scales in [-1000, 1000] (at most 64 adapters); otherwise InvalidArgument and the
    // session keeps its adapters. The model and its other sessions are unaffected, and a session without
    // adapters (or whose scales are all 0) runs exactly the base model's operations.
    // The KV cache is kept as it is: keys and values already cached were computed under the previous adapters
    // (as llama.cpp's llama_set_adapter_lora leaves them). For outputs exactly as under the new adapters from
    // the first token, reset() or rewind() to where they should start applying. Saved states (save, save_state)
    // do not record the adapters.
    void set_adapters(const std::vector<AdapterScale>& adapters);
    const std::vector<AdapterScale>& adapters() const noexcept;

    int position() const noexcept;                // tokens in the cache
    int n_ctx() const noexcept;
    int n_batch() const noexcept;                 // tokens one forward pass of this session holds at most
    const std::vector<Token>& tokens() const noexcept;  // the cached tokens, in order
    void rewind(int position);                    // forget tokens from `position` on
    void reset();                                 // rewind(0)
    // Thread-safe. The running call stops with Cancelled, and so does every later prefill/decode/generate
    // until clear_cancel(): a Stop button pressed just before a call starts is not lost.
    void cancel() noexcept;
    void clear_cancel() noexcept;
    bool cancelled() const noexcept;

    // The session's state — tokens, KV cache, last logits — to resume later without re-evaluating. The
    // file/buffer carries a magic, a format version, the model's identity and a checksum: load refuses
    // (BadFile) anything truncated, corrupted, of another version, made with another model or too long for
    // this session's context, and the session stays as it was. save writes atomically (temporary file,
    // flush, rename), so a crash mid-save leaves the previous file intact.
    void save(const std::string& path) const;
    void load(const std::string& path);
    std::vector<uint8_t> save_state() const;
    void load_state(std::span<const uint8_t> bytes);

    const Model& model() const noexcept;

private:
    // step_batch, with `what` naming the public call in error messages.
    static void step(const char* what, std::span<Session* const> sessions,
                     std::span<const std::span<const Token>> tokens);
    std::unique_ptr<detail::SessionImpl> impl_;
};

}  // namespace ember
