// LoRA in the forward pass: a projection y = W·x of a layer becomes y = W·x + s·B·(A·x) for each adapter a
// session uses, computed beside the base matmul with the backend's ops (matmul, scale, add) and never merged
// into W, so the model stays shared and unchanged. The adapter's tensors are loaded by runtime/adapter.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "backend/backend.hpp"

namespace ember::arch {

// The projections of a layer an adapter may change (the dense ones: experts and the router are not).
enum class Proj : uint8_t { Q, K, V, O, Gate, Up, Down };
constexpr int kProjCount = 7;
constexpr int64_t kMaxLoraRank = 1 << 16;  // far above any adapter's; keeps a hostile claim small

// One projection's update: a is A [n_in, r], b is B [r, n_out] (F32); scale is alpha / r (1 without alpha).
struct LoraPair {
    backend::Tensor a, b;
    float scale = 1.f;
};

// An adapter's tensors on the device, per layer and projection (a.data == nullptr: left as it is).
struct LoraWeights {
    std::vector<std::array<LoraPair, kProjCount>> layers;
    int max_rank = 0;
};

// An adapter as a session applies it: its tensors and the caller's scale (never 0: those are left out).
struct ActiveLora {
    const LoraWeights* weights = nullptr;
    float scale = 1.f;
    bool operator==(const ActiveLora&) const = default;
};

// Rows [first, first + rows) of the output of a file tensor are projection `proj` of `layer`: one target
// for a plain projection, several for a fused one (Phi-3's attn_qkv, ffn_up holding gate and up).
struct LoraTarget {
    int layer = 0;
    Proj proj = Proj::Q;
    int64_t first = 0, rows = 0;
};

}  // namespace ember::arch
