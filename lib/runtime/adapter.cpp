// LoRA adapters: a GGUF adapter file or a PEFT folder (read as the GGUF form by lib/hf), checked against the
// model and uploaded as F32 into buffers the adapter owns, so that unloading it frees them while the model
// lives on.
#include "ember/adapter.hpp"

#include <cmath>
#include <map>

#include "ember/error.hpp"
#include "hf/folder.hpp"
#include "runtime/adapter_impl.hpp"
#include "runtime/model_impl.hpp"
#include "tensor/dequantize.hpp"
#include "util/log.hpp"
#include "util/oom.hpp"

namespace ember {

namespace {

using gguf::TensorInfo;
using tensor::TensorType;

std::string in_quotes(const std::string& s) { return "'" + s.substr(0, 200) + "'"; }

std::string shape_of(const TensorInfo& t) {
    std::string r = "[";
    for (int d = 0; d < t.n_dims; ++d) r += (d ? ", " : "") + std::to_string(t.ne[static_cast<size_t>(d)]);
    return r + "]";
}

bool is_matrix(const TensorInfo& t) { return t.n_dims <= 2 && t.ne[2] == 1 && t.ne[3] == 1; }

// A tensor of the file dequantized to F32 and written into a buffer of the device, which `out` owns.
backend::Tensor upload(const TensorInfo& t, backend::Device& dev, backend::Stream& stream,
                       std::vector<std::unique_ptr<backend::Buffer>>& out) {
    backend::Tensor d;
    d.type = TensorType::F32;
    d.ne = {t.ne[0], t.ne[1], 1, 1};
    std::vector<float> host(static_cast<size_t>(d.n_elements()));
    tensor::dequantize_row(t.type, t.data, host.data(), d.n_elements());  // whole rows: blocks never straddle them
    out.push_back(dev.alloc(d.n_bytes()));
    d.data = out.back()->data();
    stream.write(d, host.data(), d.n_bytes());
    return d;
}

}  // namespace

Adapter Adapter::load(const Model& model, const std::string& path) {
    return as_ember_error("loading an adapter", [&] {
        try {
            const auto& mi = *model.impl();
            const arch::Architecture& arch = *mi.arch;
            const arch::HParams& hp = arch.hparams();
            const std::string model_arch = mi.file.get_string("general.architecture");
            const gguf::File f = hf::is_folder(path)
                                     ? hf::open_peft_adapter(path, {model_arch, hp.n_head, hp.n_head_kv, hp.head_dim})
                                     : gguf::File::open(path, true);
            const std::string type = f.get_string("general.type", "");
            if (type != "adapter")
                throw Error(Status::BadFile, "general.type is " + in_quotes(type) + ", not 'adapter': not an adapter file");
            const std::string kind = f.get_string("adapter.type", "");
            if (kind != "lora") throw Error(Status::Unsupported, "adapter.type " + in_quotes(kind) + " (LoRA adapters are read)");
            const std::string arch_name = f.get_string("general.architecture", "");
            if (arch_name != model_arch)
                throw Error(Status::InvalidArgument, "the adapter is for " + in_quotes(arch_name) + " models, the model is " +
                                                         in_quotes(model_arch));
            const double alpha = f.get_float("adapter.lora.alpha", 0.0);
            if (!std::isfinite(alpha) || std::fabs(alpha) > 1e6)
                throw Error(Status::BadFile, "adapter.lora.alpha is not a finite number of reasonable size");

            // Pair each <tensor>.lora_a with its .lora_b.
            std::map<std::string, std::pair<const TensorInfo*, const TensorInfo*>> pairs;
            for (const TensorInfo& t : f.tensors()) {
                const bool a = t.name.ends_with(".lora_a"), b = t.name.ends_with(".lora_b");
                if (!a && !b) {
                    if (t.name.ends_with("norm.weight"))
                        throw Error(Status::Unsupported, "tensor " + in_quotes(t.name) + ": adapters that change norms are not supported");
                    throw Error(Status::BadFile, "tensor " + in_quotes(t.name) + " is neither a .lora_a nor a .lora_b");
                }
                auto& p = pairs[t.name.substr(0, t.name.size() - 7)];
                (a ? p.first : p.second) = &t;
            }
            if (pairs.empty()) throw Error(Status::BadFile, "the adapter has no tensors");

            auto impl = std::make_shared<detail::AdapterImpl>(model);
            impl->path = path;
            impl->alpha = static_cast<float>(alpha);
            impl->weights.layers.resize(static_cast<size_t>(hp.n_layer));
            backend::Device& dev = *mi.device;
            const std::unique_ptr<backend::Stream> stream = dev.stream({1});
            for (const auto& [name, p] : pairs) {
                if (!p.first || !p.second)
                    throw Error(Status::BadFile, "tensor " + in_quotes(name) + " has a " + (p.first ? "lora_a without its lora_b" : "lora_b without its lora_a"));
                const TensorInfo &a = *p.first, &b = *p.second;
                if (!is_matrix(a) || !is_matrix(b))
                    throw Error(Status::BadFile, "tensors " + in_quotes(name) + ".lora_a/.lora_b must be matrices");
                const int64_t rank = a.ne[1];
                if (rank < 1 || rank > arch::kMaxLoraRank || b.ne[0] != rank)
                    throw Error(Status::BadFile, "tensor " + in_quotes(name) + ": lora_a " + shape_of(a) + " and lora_b " + shape_of(b) +
                                                     " must share a rank in [1, " + std::to_string(arch::kMaxLoraRank) + "]");
                const TensorInfo* base = mi.file.find_tensor(name);
                if (!base) throw Error(Status::InvalidArgument, "the model has no tensor " + in_quotes(name) + " (an adapter for another model?)");
                const auto targets = arch.lora_targets(name);
                if (targets.empty())
                    throw Error(Status::Unsupported, "LoRA on " + in_quotes(name) + " is not supported (attention and dense "
                                                     "feed-forward projections are)");
                if (!is_matrix(*base) || base->ne[0] != a.ne[0] || base->ne[1] != b.ne[1])
                    throw Error(Status::InvalidArgument, "tensor " + in_quotes(name) + " is " + shape_of(*base) + " in the model, but the adapter's lora_a " +
                                                             shape_of(a) + " and lora_b " + shape_of(b) + " make [" +
                                                             std::to_string(a.ne[0]) + ", " + std::to_string(b.ne[1]) + "] (an adapter for another model?)");
                const backend::Tensor da = upload(a, dev, *stream, impl->buffers), db = upload(b, dev, *stream, impl->buffers);
                for (const arch::LoraTarget& t : targets) {
                    arch::LoraPair& slot = impl->weights.layers[static_cast<size_t>(t.layer)][static_cast<size_t>(t.proj)];
                    slot.a = da;
                    slot.b = arch::row_slice(db, t.first, t.rows);
                    slot.scale = alpha != 0.0 ? static_cast<float>(alpha / static_cast<double>(rank)) : 1.f;  // llama.cpp's rule
                    ++impl->n_targets;
                }
                impl->weights.max_rank = std::max(impl->weights.max_rank, static_cast<int>(rank));
            }
            stream->sync();
            if (detail::log_enabled())
                detail::log(LogLevel::Info, "adapter " + path + ": " + std::to_string(impl->n_targets) + " projections, rank " +
                                                std::to_string(impl->weights.max_rank) + ", alpha " + std::to_string(alpha));
            return Adapter(std::move(impl));
        } catch (const Error& e) {
            throw Error(e.status(), path + ": " + e.what());
        }
    });
}

const std::string& Adapter::path() const noexcept { return impl_->path; }
float Adapter::alpha() const noexcept { return impl_->alpha; }
int Adapter::rank() const noexcept { return impl_->weights.max_rank; }
int Adapter::n_targets() const noexcept { return impl_->n_targets; }
const Model& Adapter::model() const noexcept { return impl_->model; }

}  // namespace ember
