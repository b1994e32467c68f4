// Phi-3: the Llama layout with fused weights (attn_qkv: Q, K, V rows; ffn_up: gate rows, then up rows),
// split into views at load, and RoPE on halves. Long/short RoPE scaling factors are refused (decoder.cpp).
#include "arch/decoder.hpp"

namespace ember::arch {

std::unique_ptr<Architecture> load_phi3(const gguf::File& f, WeightLoader& w) {
    return std::make_unique<Decoder>(DecoderSpec{.prefix = "phi3", .rope = backend::RopeMode::NeoX, .fused_qkv = true,
                                                 .fused_gate_up = true},
                                     f, w);
}

}  // namespace ember::arch
