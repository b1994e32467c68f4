// Gemma 2: embeddings × √n_embd, RoPE on halves, soft-capped attention and output logits, every other
// layer local (sliding window; pattern 2 when the file gives none, as llama.cpp assumes), post-norms on
// both blocks, GELU(tanh)-gated feed-forward, tied output.
#include "arch/decoder.hpp"

namespace ember::arch {

std::unique_ptr<Architecture> load_gemma2(const gguf::File& f, WeightLoader& w) {
    return std::make_unique<Decoder>(DecoderSpec{.prefix = "gemma2", .rope = backend::RopeMode::NeoX,
                                                 .post_norms = true, .gemma = true, .swa_pattern = 2},
                                     f, w);
}

}  // namespace ember::arch
