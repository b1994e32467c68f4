// Gemma 3: Gemma 2's layout without soft-capping, with per-head Q/K norms, five local layers to one
// global (sliding_window_pattern, default 6) and the local layers' own RoPE base (rope.freq_base_swa).
#include "arch/decoder.hpp"

namespace ember::arch {

std::unique_ptr<Architecture> load_gemma3(const gguf::File& f, WeightLoader& w) {
    return std::make_unique<Decoder>(DecoderSpec{.prefix = "gemma3", .rope = backend::RopeMode::NeoX, .qk_norm = true,
                                                 .post_norms = true, .gemma = true, .swa_pattern = 6,
                                                 .rope_base_swa = true},
                                     f, w);
}

}  // namespace ember::arch
