#include "arch/arch.hpp"

#include <algorithm>

#include "ember/error.hpp"

namespace ember::arch {

using tensor::TensorType;

// One row per architecture: the name GGUF uses and the factory (each defined in its own file).
std::unique_ptr<Architecture> load_llama(const gguf::File& f, WeightLoader& w);
std::unique_ptr<Architecture> load_qwen2(const gguf::File& f, WeightLoader& w);
std::unique_ptr<Architecture> load_qwen3(const gguf::File& f, WeightLoader& w);
std::unique_ptr<Architecture> load_qwen3moe(const gguf::File& f, WeightLoader& w);
std::unique_ptr<Architecture> load_gemma2(const gguf::File& f, WeightLoader& w);
std::unique_ptr<Architecture> load_gemma3(const gguf::File& f, WeightLoader& w);
std::unique_ptr<Architecture> load_phi3(const gguf::File& f, WeightLoader& w);

namespace {
struct Entry {
    const char* name;
    std::unique_ptr<Architecture> (*load)(const gguf::File&, WeightLoader&);
};
constexpr Entry kArchitectures[] = {
    {"llama", load_llama},
    {"qwen2", load_qwen2},
    {"qwen3", load_qwen3},
    {"qwen3moe", load_qwen3moe},
    {"gemma2", load_gemma2},
    {"gemma3", load_gemma3},
    {"phi3", load_phi3},
};

std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}
}  // namespace

std::unique_ptr<Architecture> load_architecture(const gguf::File& file, backend::Device& dev,
                                                const std::function<bool(float)>& progress) {
    const std::string name = file.get_string("general.architecture");
    for (const auto& e : kArchitectures)
        if (name == e.name) {
            WeightLoader w(file, dev, progress);
            return e.load(file, w);
        }
    throw Error(Status::Unsupported, "architecture '" + name + "' is not supported");
}

WeightLoader::WeightLoader(const gguf::File& file, backend::Device& dev, const std::function<bool(float)>& progress)
    : file_(file), dev_(dev), progress_(progress) {
    for (const auto& t : file.tensors()) total_bytes_ += t.n_bytes;
}

backend::Tensor WeightLoader::optional(const std::string& name, std::vector<int64_t> shape) {
    const gguf::TensorInfo* t = file_.find_tensor(name);
    if (!t) return {};
    std::vector<int64_t> have(t->ne.begin(), t->ne.begin() + t->n_dims);
    while (shape.size() < have.size() && have.back() == 1) have.pop_back();  // trailing 1s are the same shape
    bool same = have.size() == shape.size();
    for (size_t i = 0; same && i < shape.size(); ++i) same = shape[i] < 0 || shape[i] == have[i];  // -1: any
    if (!same)
        throw Error(Status::BadFile, "tensor '" + name + "' has shape " + shape_str(have) + ", expected " + shape_str(shape));
    if (!dev_.supports(t->type))
        throw Error(Status::Unsupported, "tensor '" + name + "' has type " + tensor::type_name(t->type) +
                                             ", which backend '" + dev_.name() + "' cannot use");
    backend::Tensor host;
    host.type = t->type;
    for (size_t i = 0; i < 4; ++i) host.ne[i] = t->ne[i];
    host.data = const_cast<uint8_t*>(t->data);  // the mapping is read-only; weights are never written
    backend::Tensor dev = dev_.weight(host, file_.is_mapping());
    loaded_bytes_ += t->n_bytes;
    if (progress_ && !progress_(total_bytes_ ? static_cast<float>(loaded_bytes_) / total_bytes_ : 1.f))
        throw Error(Status::Cancelled, "model loading cancelled by the progress callback");
    return dev;
}

backend::Tensor WeightLoader::get(const std::string& name, std::vector<int64_t> shape) {
    backend::Tensor t = optional(name, shape);
    if (!t.data) throw Error(Status::BadFile, "missing tensor '" + name + "'");
    return t;
}

SessionBytes session_bytes(const HParams& hp, int n_ctx, int n_batch) {
    const double kv = static_cast<double>(hp.head_dim) * hp.n_head_kv, qw = static_cast<double>(hp.head_dim) * hp.n_head;
    const double ff = std::max(hp.n_ff, hp.n_ff_exp);
    SessionBytes b;
    b.kv_cache = 2.0 * hp.n_layer * static_cast<double>(tensor::row_bytes(TensorType::F16, static_cast<int64_t>(kv))) * n_ctx;
    // x, h, q, k, v, attn, gate, up (+ the expert rows and router logits) for n_batch tokens; one logits row.
    b.scratch = 4.0 * n_batch * (3.0 * hp.n_embd + 2.0 * qw + 2.0 * kv + 2.0 * ff + hp.n_expert) + 4.0 * hp.n_vocab;
    return b;
}

Workspace Architecture::make_workspace(backend::Device& dev, backend::Stream& stream, int n_ctx, int n_batch) const {
    Workspace ws;
    ws.stream = &stream;
    ws.n_ctx = n_ctx;
    ws.n_batch = n_batch;
    auto make = [&](TensorType type, int64_t width, int64_t rows) {
        backend::Tensor t;
        t.type = type;
        t.ne = {width, rows, 1, 1};
        ws.buffers.push_back(dev.alloc(t.n_bytes()));
        t.data = ws.buffers.back()->data();
        return t;
    };
    const int64_t kv = static_cast<int64_t>(hp_.head_dim) * hp_.n_head_kv;
    const int64_t qw = static_cast<int64_t>(hp_.head_dim) * hp_.n_head;
    // Refuse now what the machine cannot hold: reserving more than it has would succeed (overcommit) and
    // end in the kernel's OOM killer once the cache fills, taking the host process with it.
    const SessionBytes need = session_bytes(hp_, n_ctx, n_batch);
    const double available = static_cast<double>(dev.available_memory());
    if (need.kv_cache + need.scratch > available) {
        auto mib = [](double b) { return std::to_string(static_cast<long long>(b / (1 << 20))); };
        throw Error(Status::OutOfMemory, "a context of " + std::to_string(n_ctx) + " tokens needs " +
                                             mib(need.kv_cache) + " MiB of KV cache (+" + mib(need.scratch) +
                                             " MiB of buffers), but " + dev.name() + " has " + mib(available) +
                                             " MiB available");
    }
    const int64_t ff = std::max(hp_.n_ff, hp_.n_ff_exp);
    for (int l = 0; l < hp_.n_layer; ++l) {
        ws.k_cache.push_back(make(TensorType::F16, kv, n_ctx));
        ws.v_cache.push_back(make(TensorType::F16, kv, n_ctx));
    }
    ws.x = make(TensorType::F32, hp_.n_embd, n_batch);
    ws.h = make(TensorType::F32, hp_.n_embd, n_batch);
    ws.q = make(TensorType::F32, qw, n_batch);
    ws.k = make(TensorType::F32, kv, n_batch);
    ws.v = make(TensorType::F32, kv, n_batch);
    ws.attn = make(TensorType::F32, qw, n_batch);
    ws.gate = make(TensorType::F32, ff, n_batch);
    ws.up = make(TensorType::F32, ff, n_batch);
    if (hp_.n_expert > 0) {
        ws.router = make(TensorType::F32, hp_.n_expert, n_batch);
        ws.moe_rows = make(TensorType::F32, hp_.n_embd, n_batch);
    }
    ws.device = &dev;
    ws.lora_width = std::max({qw, kv, static_cast<int64_t>(hp_.n_embd), static_cast<int64_t>(hp_.n_ff)});
    ws.logits.ne = {hp_.n_vocab, 0, 1, 1};
    ws.ensure_logit_rows(1);
    return ws;
}

std::span<const LoraTarget> Architecture::lora_targets(const std::string& name) const {
    const auto it = lora_targets_.find(name);
    if (it == lora_targets_.end()) return {};
    return it->second;
}

void Workspace::ensure_lora_rank(int rank) {
    if (lora_ax.ne[0] >= rank) return;
    // One buffer: A·x first, then B·(A·x), each laid out as [width, n_batch].
    const size_t ax = static_cast<size_t>(rank) * n_batch * sizeof(float);
    lora_buffer = device->alloc(ax + static_cast<size_t>(lora_width) * n_batch * sizeof(float));
    lora_ax.type = lora_out.type = TensorType::F32;
    lora_ax.ne = {rank, n_batch, 1, 1};
    lora_ax.data = lora_buffer->data();
    lora_out.ne = {lora_width, n_batch, 1, 1};
    lora_out.data = static_cast<char*>(lora_buffer->data()) + ax;
}

void Workspace::ensure_logit_rows(int64_t rows) {
    if (logits.ne[1] >= rows) return;
    logits.ne[1] = rows;
    logits_buffer = device->alloc(logits.n_bytes());
    logits.data = logits_buffer->data();
}

}  // namespace ember::arch
