// The pre-norm decoder most families share: embeddings → N × (attention block, feed-forward block) →
// norm → output. An architecture file describes its differences in a DecoderSpec (rope pairing,
// biases, per-head norms) and the shared code reads the hyperparameters and weights and runs it.
#pragma once

#include <string>

#include "arch/arch.hpp"
#include "arch/blocks.hpp"

namespace ember::arch {

struct DecoderSpec {
    std::string prefix;                          // metadata prefix: "llama", "qwen2", ...
    backend::RopeMode rope = backend::RopeMode::Normal;
    bool qkv_bias = false;                       // Q/K/V projections carry biases (Qwen2)
    bool qk_norm = false;                        // RMSNorm each Q and K head before RoPE (Qwen3)
};

class Decoder final : public Architecture {
public:
    Decoder(const DecoderSpec& spec, const gguf::File& f, WeightLoader& w);
    void forward(Workspace& ws, std::span<const Token> tokens, int n_past, bool all_logits,
                 const std::function<bool()>& aborted) const override;

private:
    DecoderSpec spec_;
    backend::Tensor embd_, out_norm_, output_;
    std::vector<AttentionWeights> attn_;
    std::vector<FfnWeights> ffn_;
};

}  // namespace ember::arch
