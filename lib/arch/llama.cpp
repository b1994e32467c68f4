// Llama 1–3, SmolLM/SmolLM2, Mistral, Mixtral: RoPE on adjacent pairs (the converter already permuted
// Q/K for it), grouped-query attention, SwiGLU feed-forward (experts when the file has expert_count),
// optional tied output.
#include "arch/decoder.hpp"

namespace ember::arch {

std::unique_ptr<Architecture> load_llama(const gguf::File& f, WeightLoader& w) {
    return std::make_unique<Decoder>(DecoderSpec{"llama", backend::RopeMode::Normal, false, false}, f, w);
}

}  // namespace ember::arch
