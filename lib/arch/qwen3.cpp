// Qwen3: no biases; each Q and K head is RMS-normalized before RoPE (NeoX pairing); the head size comes
// from attention.key_length and may differ from n_embd / n_head.
#include "arch/decoder.hpp"

namespace ember::arch {

std::unique_ptr<Architecture> load_qwen3(const gguf::File& f, WeightLoader& w) {
    return std::make_unique<Decoder>(DecoderSpec{"qwen3", backend::RopeMode::NeoX, false, true}, f, w);
}

}  // namespace ember::arch
