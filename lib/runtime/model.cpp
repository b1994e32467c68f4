#include "ember/model.hpp"

#include "ember/error.hpp"
#include "ember/version.hpp"
#include "hf/folder.hpp"
#include "quantize/plan.hpp"
#include "runtime/model_impl.hpp"
#include "runtime/model_info.hpp"
#include "runtime/state_file.hpp"
#include "tokenizer/vocab.hpp"
#include "util/log.hpp"
#include "util/oom.hpp"

namespace ember {

const char* version() noexcept { return EMBER_VERSION; }

namespace {
constexpr float kQuantizeShare = 0.9f;  // of the progress while quantizing at load

// ModelParams::quantize: the file's weights quantized in memory before they go to the device.
gguf::File quantized(gguf::File f, bool from_folder, const ModelParams& params, const std::string& name) {
    if (params.quantize.empty()) return f;
    std::function<bool(float)> progress;
    if (params.progress) progress = [&](float x) { return params.progress(kQuantizeShare * x); };
    try {
        return quantize::quantize_in_memory(std::move(f), params.quantize, params.n_threads, from_folder, progress);
    } catch (const Error& e) {
        throw Error(e.status(), name + ": " + e.what());
    }
}

// The params the weight loading sees: after quantizing, its progress is the last 10%.
ModelParams load_phase(const ModelParams& params) {
    ModelParams p = params;
    if (!params.quantize.empty() && params.progress)
        p.progress = [&params](float x) { return params.progress(kQuantizeShare + (1.f - kQuantizeShare) * x); };
    return p;
}
}  // namespace

Model Model::load(const std::string& path, const ModelParams& params) {
    return as_ember_error("loading a model", [&] {
        if (!params.quantize.empty()) quantize::find_mix(params.quantize);  // a bad name before the file is read
        gguf::File f = quantized(hf::open_model_file(path, params.use_mmap), hf::is_folder(path), params, path);
        return finish_load(std::make_shared<detail::ModelImpl>(std::move(f)), path, load_phase(params));
    });
}

Model Model::load_from_memory(std::span<const uint8_t> bytes, const ModelParams& params) {
    return as_ember_error("loading a model from memory", [&] {
        if (!params.quantize.empty()) quantize::find_mix(params.quantize);
        const std::string name = "<memory>";
        gguf::File f = quantized(gguf::File::copy_of(bytes, name), false, params, name);
        return finish_load(std::make_shared<detail::ModelImpl>(std::move(f)), name, load_phase(params));
    });
}

Model Model::finish_load(std::shared_ptr<detail::ModelImpl> impl, const std::string& path, const ModelParams& params) {
    impl->info = describe_model(impl->file, path);
    impl->n_threads = params.n_threads;
    impl->tokenizer = std::make_unique<Tokenizer>(detail::load_vocab(impl->file));
    impl->device = backend::create_device(params.backend);
    try {
        impl->arch = arch::load_architecture(impl->file, *impl->device, params.progress);
    } catch (const Error& e) {
        throw Error(e.status(), path + ": " + e.what());
    }
    // What a saved session must have been made with: the file's layout, not its path.
    uint64_t id = detail::fnv1a({reinterpret_cast<const uint8_t*>(impl->info.architecture.data()), impl->info.architecture.size()});
    for (const auto& t : impl->file.tensors()) {
        id = detail::fnv1a({reinterpret_cast<const uint8_t*>(t.name.data()), t.name.size()}, id);
        const uint64_t facts[] = {static_cast<uint64_t>(t.type), t.n_bytes, static_cast<uint64_t>(t.ne[0]),
                                  static_cast<uint64_t>(t.ne[1]), static_cast<uint64_t>(t.ne[2]), static_cast<uint64_t>(t.ne[3])};
        id = detail::fnv1a({reinterpret_cast<const uint8_t*>(facts), sizeof facts}, id);
    }
    const uint64_t n_tok = static_cast<uint64_t>(impl->tokenizer->n_vocab());
    impl->identity = detail::fnv1a({reinterpret_cast<const uint8_t*>(&n_tok), sizeof n_tok}, id);
    const int n_vocab = impl->arch->hparams().n_vocab;
    if (impl->tokenizer->n_vocab() > n_vocab)
        throw Error(Status::BadFile, path + ": the vocabulary has " + std::to_string(impl->tokenizer->n_vocab()) +
                                         " tokens but the embedding only " + std::to_string(n_vocab));
    if (detail::log_enabled())
        detail::log(LogLevel::Info, "loaded " + path + ": " + impl->info.architecture + ", " +
                                        std::to_string(impl->info.n_params) + " parameters, on " + impl->device->name());
    return Model(std::move(impl));
}

const Tokenizer& Model::tokenizer() const noexcept { return *impl_->tokenizer; }
const ModelInfo& Model::info() const noexcept { return impl_->info; }
std::string Model::backend() const { return impl_->device->name(); }
int Model::n_vocab() const noexcept { return impl_->tokenizer->n_vocab(); }
int Model::n_ctx_train() const noexcept { return impl_->arch->hparams().n_ctx_train; }
int Model::n_embd() const noexcept { return impl_->arch->hparams().n_embd; }
int Model::n_layers() const noexcept { return impl_->arch->hparams().n_layer; }
std::string Model::chat_template() const { return impl_->info.chat_template; }

std::optional<std::string> Model::meta(std::string_view key) const {
    const gguf::Value* v = impl_->file.find(key);
    if (!v) return std::nullopt;
    if (v->type() == gguf::ValueType::String) return v->as_string();
    return v->describe();
}

std::optional<MetaType> Model::meta_type(std::string_view key) const {
    const gguf::Value* v = impl_->file.find(key);
    if (!v) return std::nullopt;
    return static_cast<MetaType>(v->type());
}

std::optional<std::string> Model::meta_json(std::string_view key) const {
    const gguf::Value* v = impl_->file.find(key);
    if (!v) return std::nullopt;
    return v->to_json();
}

}  // namespace ember
