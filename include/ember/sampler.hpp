// ember — choosing the next token from logits. A chain applied in llama.cpp's order:
// penalties → top-k → top-p → min-p → temperature → draw. temperature <= 0 means greedy.
// With a grammar (GBNF, llama.cpp's format), only tokens whose text continues it can be chosen.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ember/tokenizer.hpp"

namespace ember {

struct SamplerParams {
    static constexpr uint64_t kRandomSeed = ~uint64_t{0};  // every other value is a seed

    float temperature = 0.8f;
    int top_k = 40;                 // <= 0: off
    float top_p = 0.95f;            // >= 1: off
    float min_p = 0.05f;            // <= 0: off
    float repeat_penalty = 1.0f;    // 1: off
    int penalty_last_n = 64;        // how many recent tokens the penalties look at
    float frequency_penalty = 0.0f;
    float presence_penalty = 0.0f;
    uint64_t seed = kRandomSeed;    // kRandomSeed: seeded from the OS
    // GBNF text (llama.cpp's grammar format, `root` the start); empty: none. It needs the vocabulary, so
    // only Sampler(tokenizer, params) takes it. See ember/grammar.hpp for JSON and JSON Schema grammars.
    std::string grammar;
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& params = {});  // InvalidArgument when params.grammar is set
    // A sampler whose grammar (params.grammar) is matched against `vocab`'s token texts.
    Sampler(const Tokenizer& vocab, const SamplerParams& params);
    static Sampler greedy();
    ~Sampler();
    Sampler(Sampler&&) noexcept;
    Sampler& operator=(Sampler&&) noexcept;

    // Picks a token from one position's logits (size n_vocab) and records it for the penalties.
    // With a grammar: the chain's choice is checked; only when the grammar refuses it is every token
    // checked, the refused ones set to -infinity and the chain run again. An end-of-generation token is
    // allowed only where the grammar's text is complete. The chosen token advances the grammar. Throws
    // InvalidArgument when no token of the vocabulary can continue the grammar (the state is unchanged).
    Token sample(std::span<const float> logits);
    // Records a token chosen elsewhere so penalties see it; with a grammar, it also advances the grammar
    // (InvalidArgument, nothing recorded, when its text cannot continue it). Do not pass prompt tokens
    // to a sampler with a grammar.
    void accept(Token t);
    void reset();                   // forgets history; reseeds with the seed in use; the grammar restarts

    // Sets the grammar (GBNF) matched against `vocab`'s token texts, starting at its root; "" removes it.
    // InvalidArgument with "line L, column C" for a bad grammar; the sampler keeps its previous one then.
    // Token texts are decoded once per vocabulary and shared between samplers.
    void set_grammar(const Tokenizer& vocab, std::string_view gbnf);
    bool has_grammar() const noexcept;
    // A grammar is set and its text is complete with nothing that may follow: generation is over
    // (Session::generate stops there with EndOfGeneration).
    bool grammar_done() const noexcept;
    const SamplerParams& params() const noexcept;
    // The seed in use: params().seed, or the one drawn from the OS for kRandomSeed (to reproduce a run).
    uint64_t seed() const noexcept;

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace ember
