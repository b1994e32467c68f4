// ember — choosing the next token from logits. A chain applied in llama.cpp's order:
// penalties → top-k → top-p → min-p → temperature → draw. temperature <= 0 means greedy.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

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
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& params = {});
    static Sampler greedy();
    ~Sampler();
    Sampler(Sampler&&) noexcept;
    Sampler& operator=(Sampler&&) noexcept;

    // Picks a token from one position's logits (size n_vocab) and records it for the penalties.
    Token sample(std::span<const float> logits);
    // Records a token chosen elsewhere (e.g. the prompt) so penalties see it.
    void accept(Token t);
    void reset();                   // forgets history; reseeds with the seed in use
    const SamplerParams& params() const noexcept;
    // The seed in use: params().seed, or the one drawn from the OS for kRandomSeed (to reproduce a run).
    uint64_t seed() const noexcept;

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace ember
