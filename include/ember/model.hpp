// ember — a loaded model: immutable after load, shareable by any number of sessions on any threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include "ember/model_info.hpp"
#include "ember/tokenizer.hpp"

namespace ember {

namespace detail {
class ModelImpl;
}

struct ModelParams {
    std::string backend = "auto";  // "cpu", "cuda", or "auto" for the best usable one
    // Default threads for sessions (0: the hardware threads). Values above 4× the hardware threads are
    // clamped to that. All sessions of a model share one pool of workers: more sessions, not more threads.
    int n_threads = 0;
    // Map the file (zero copy). A mapped file that shrinks while the model is loaded (truncated or
    // rewritten in place by another program) raises SIGBUS in whatever thread next reads the lost pages,
    // which kills the process — as with every mmap-based loader. If the file may change under you, use
    // false: the weights are read into memory once and the file is not touched again.
    bool use_mmap = true;
    // Called with a fraction in [0, 1] while weights load; return false to cancel (load throws Cancelled).
    std::function<bool(float)> progress;
    // Quantize the weights in memory as they load, e.g. "q8_0", "q4_0", "q4_k" / "q4_k_m", "q6_k" (any
    // ember-quantize type, any case; "": as the file is). Each tensor gets the type ember-quantize would
    // write for it (llama-quantize's rules for that mix; a folder's norms and biases F32), converted
    // tensor by tensor on n_threads threads, so the model runs as that file would, without writing one.
    // Quantized input tensors are not re-quantized (InvalidArgument naming one). Unknown names:
    // InvalidArgument; converted tensors that do not fit in the memory available: OutOfMemory. While
    // quantizing, progress reports the first 90%.
    std::string quantize;
};

// GGUF metadata value types (the file format's numbers).
enum class MetaType { U8 = 0, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };

class Model {
public:
    // Loads a GGUF file, or a Hugging Face model folder (config.json, model.safetensors or its shards with
    // model.safetensors.index.json, tokenizer.json, tokenizer_config.json): F32/F16/BF16 weights mapped as
    // they are where the GGUF form keeps them so, converted once otherwise (lib/hf/folder.hpp).
    // Throws ember::Error: Io, BadFile (malformed file, missing or misshapen tensor),
    // Unsupported (architecture, tensor type, backend), OutOfMemory, Cancelled.
    static Model load(const std::string& path, const ModelParams& params = {});
    // Loads a GGUF file held in memory (embedded in a program, downloaded, decrypted). The bytes are copied
    // (use_mmap does not apply): the caller may free them when this returns.
    static Model load_from_memory(std::span<const uint8_t> bytes, const ModelParams& params = {});

    const Tokenizer& tokenizer() const noexcept;
    const ModelInfo& info() const noexcept;
    std::string backend() const;         // the device the weights live on, e.g. "cpu"
    int n_vocab() const noexcept;        // tokens; logits have this many (embedding padding rows stay inside)
    int n_ctx_train() const noexcept;
    int n_embd() const noexcept;
    int n_layers() const noexcept;
    std::string chat_template() const;   // empty when the file has none
    // A metadata value rendered as text (strings as they are, numbers in decimal); nullopt when absent.
    std::optional<std::string> meta(std::string_view key) const;
    std::optional<MetaType> meta_type(std::string_view key) const;  // nullopt when absent (keys: info().metadata)
    // The whole value as JSON (arrays in full; bytes that are not UTF-8 become U+FFFD; NaN is null).
    std::optional<std::string> meta_json(std::string_view key) const;

    const std::shared_ptr<detail::ModelImpl>& impl() const noexcept { return impl_; }

private:
    explicit Model(std::shared_ptr<detail::ModelImpl> impl) : impl_(std::move(impl)) {}
    // Everything after the file is open: metadata, vocabulary, device, weights. `name` labels errors.
    static Model finish_load(std::shared_ptr<detail::ModelImpl> impl, const std::string& name, const ModelParams& params);
    std::shared_ptr<detail::ModelImpl> impl_;
};

}  // namespace ember
