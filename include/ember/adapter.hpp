// ember — LoRA adapters: low-rank updates of a model's projections, loaded once against a model and applied
// by any of its sessions with a scale (Session::set_adapters), several at once, switched between requests
// without reloading or changing the model.
#pragma once

#include <memory>
#include <string>

#include "ember/model.hpp"

namespace ember {

namespace detail {
class AdapterImpl;
}

class Adapter {
public:
    // Loads a LoRA adapter for `model` from
    //  - a GGUF adapter file, as llama.cpp's convert_lora_to_gguf.py writes it (general.type "adapter",
    //    adapter.type "lora", adapter.lora.alpha; tensors "<tensor>.lora_a" [n_in, r] and ".lora_b" [r, n_out]),
    //  - or a PEFT folder (adapter_config.json + adapter_model.safetensors), its names mapped onto the model's
    //    tensors as a Hugging Face folder's are (Llama's Q/K row order included).
    // The adapter may change the attention projections (q, k, v, o; Phi-3's fused qkv) and the dense
    // feed-forward ones (gate, up, down); its tensors are kept as F32 on the model's device (an adapter is
    // small: r × (n_in + n_out) values a projection). Immutable, shareable by sessions on any thread, and it
    // keeps the model's weights alive.
    // Throws ember::Error: Io; BadFile (a malformed adapter: lora_a without lora_b, ranks that disagree, rank 0
    // or above 65536, bad metadata); InvalidArgument (an adapter made for another model: another architecture,
    // a tensor the model lacks or of another shape); Unsupported (LoRA on embeddings, norms or experts, DoRA,
    // trained biases, another adapter type).
    static Adapter load(const Model& model, const std::string& path);

    const std::string& path() const noexcept;
    // adapter.lora.alpha / lora_alpha; 0 when the GGUF file gives none (then the scale applies as given).
    float alpha() const noexcept;
    int rank() const noexcept;       // the largest rank of its projections
    int n_targets() const noexcept;  // projections it changes (a fused tensor counts each part)
    const Model& model() const noexcept;

    const std::shared_ptr<const detail::AdapterImpl>& impl() const noexcept { return impl_; }

private:
    explicit Adapter(std::shared_ptr<const detail::AdapterImpl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const detail::AdapterImpl> impl_;
};

// An adapter as a session applies it: each projection it changes gets scale × alpha / r × B·(A·x) (alpha / r
// as llama.cpp and PEFT compute it; without alpha, just scale).
struct AdapterScale {
    Adapter adapter;
    float scale = 1.f;
};

}  // namespace ember
