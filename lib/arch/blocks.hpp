// Shared transformer blocks: each architecture composes its forward pass from these.
#pragma once

#include <span>

#include "arch/arch.hpp"

namespace ember::arch {

struct AttentionWeights {
    backend::Tensor norm, wq, wk, wv, wo;
    backend::Tensor q_norm, k_norm;        // optional per-head RMSNorm (Qwen3, Gemma 3)
    backend::Tensor bq, bk, bv;            // optional biases (Qwen2)
    backend::Tensor post_norm;             // optional RMSNorm of the block's output (Gemma 2/3)
};

struct FfnWeights {
    backend::Tensor norm, gate, up, down;  // dense; gate/up/down are 3-D [.., .., n_expert] with a router
    backend::Tensor router;                // mixture of experts: [n_embd, n_expert]
    backend::Tensor post_norm;             // optional RMSNorm of the block's output (Gemma 2/3)
};

// Rows [first, first + count) of a block's activations: consecutive tokens of one sequence at positions
// n_past.., whose keys and values live in `cache` (the session's workspace), as do its LoRA adapters
// (cache->loras), which the projections of both blocks apply to these rows.
struct SeqRows {
    int64_t first = 0, count = 0;
    int n_past = 0;
    Workspace* cache = nullptr;
};

// x += post_norm(Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))) for `n` rows; the
// projections run over all rows at once, RoPE and attention per sequence over its own cache. Local layers
// (hp.is_swa) see a sliding window and use their own RoPE.
void attention_block(Workspace& ws, const HParams& hp, const AttentionWeights& w, int layer, int64_t n,
                     std::span<const SeqRows> seqs);
// x += post_norm(down(act(gate·norm(x)) · up·norm(x))), act = SiLU or GELU(tanh); with a router, the
// mixture of experts: each token through its top experts, their outputs weighted by the router.
void ffn_block(Workspace& ws, const HParams& hp, const FfnWeights& w, int layer, int64_t n, std::span<const SeqRows> seqs);
// logits = output · norm(x) for the activation rows listed in `rows` (ws.logits row i: x row rows[i]),
// n the rows of x in use. Consecutive rows are read in place; others are gathered first.
void output_block(Workspace& ws, const HParams& hp, const backend::Tensor& norm, const backend::Tensor& output,
                  int64_t n, std::span<const int32_t> rows);

}  // namespace ember::arch
