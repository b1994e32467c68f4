// Qwen3-MoE: Qwen3's attention with mixture-of-experts feed-forward blocks (expert_count experts of
// expert_feed_forward_length, expert_used_count per token, router weights renormalized).
#include "arch/decoder.hpp"

namespace ember::arch {

std::unique_ptr<Architecture> load_qwen3moe(const gguf::File& f, WeightLoader& w) {
    return std::make_unique<Decoder>(DecoderSpec{.prefix = "qwen3moe", .rope = backend::RopeMode::NeoX, .qk_norm = true},
                                     f, w);
}

}  // namespace ember::arch
