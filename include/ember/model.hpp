// ember — a loaded model: immutable after load, shareable by any number of sessions on any threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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
};

class Model {
public:
    // Loads a GGUF file. Throws ember::Error: Io, BadFile (malformed file, missing or misshapen tensor),
    // Unsupported (architecture, tensor type, backend), OutOfMemory, Cancelled.
    static Model load(const std::string& path, const ModelParams& params = {});

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

    const std::shared_ptr<detail::ModelImpl>& impl() const noexcept { return impl_; }

private:
    explicit Model(std::shared_ptr<detail::ModelImpl> impl) : impl_(std::move(impl)) {}
    static Model load_model(const std::string& path, const ModelParams& params);
    std::shared_ptr<detail::ModelImpl> impl_;
};

}  // namespace ember
