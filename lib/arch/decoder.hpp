// The pre-norm decoder most families share: embeddings → N × (attention block, feed-forward block) →
// norm → output. An architecture file describes its differences in a DecoderSpec (rope pairing, biases,
// per-head norms, fused weights, post-norms, sliding windows) and the shared code reads the
// hyperparameters and weights and runs it. A file with experts (expert_count) gets mixture-of-experts
// feed-forward blocks whatever its architecture.
#pragma once

#include <string>

#include "arch/arch.hpp"
#include "arch/blocks.hpp"

namespace ember::arch {

struct DecoderSpec {
    std::string prefix;                          // metadata prefix: "llama", "qwen2", ...
    backend::RopeMode rope = backend::RopeMode::Normal;
    bool qkv_bias = false;                       // Q/K/V projections carry biases (Qwen2)
    bool qk_norm = false;                        // RMSNorm each Q and K head before RoPE (Qwen3, Gemma 3)
    bool fused_qkv = false;                      // one attn_qkv weight: Q, K, V rows in that order (Phi-3)
    bool fused_gate_up = false;                  // ffn_up holds the gate rows, then the up rows (Phi-3)
    bool post_norms = false;                     // RMSNorm of each block's output before the residual (Gemma)
    bool gemma = false;                          // embeddings × √n_embd, GELU(tanh)-gated FFN
    int swa_pattern = 0;                         // sliding-window layers when the file gives no pattern
                                                 // (0: no sliding window; Gemma 2: 2, Gemma 3: 6)
    bool rope_base_swa = false;                  // local layers' own RoPE base, rope.freq_base_swa (Gemma 3)
};

class Decoder final : public Architecture {
public:
    Decoder(const DecoderSpec& spec, const gguf::File& f, WeightLoader& w);
    void forward(Workspace& ws, std::span<const Token> tokens, int n_past, bool all_logits,
                 const std::function<bool()>& aborted) const override;
    void forward_batch(Workspace& ws, std::span<const BatchSeq> seqs,
                       const std::function<bool()>& aborted) const override;

private:
    // The pass over `tokens` (rows of `seqs`), with logits for the rows listed in out_rows (ws.logits row
    // i: activation row out_rows[i]).
    void run(Workspace& ws, std::span<const Token> tokens, std::span<const SeqRows> seqs,
             std::span<const int32_t> out_rows, const std::function<bool()>& aborted) const;

    DecoderSpec spec_;
    backend::Tensor embd_, out_norm_, output_;
    std::vector<AttentionWeights> attn_;
    std::vector<FfnWeights> ffn_;
};

}  // namespace ember::arch
