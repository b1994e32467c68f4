// Qwen2 / Qwen2.5: the Llama layout with Q/K/V biases and RoPE on halves (NeoX pairing).
#include "arch/decoder.hpp"

namespace ember::arch {

std::unique_ptr<Architecture> load_qwen2(const gguf::File& f, WeightLoader& w) {
    return std::make_unique<Decoder>(DecoderSpec{"qwen2", backend::RopeMode::NeoX, true, false}, f, w);
}

}  // namespace ember::arch
