// ember::quantize_model: GGUF → GGUF at another precision, choosing each tensor's type the way
// llama.cpp's llama-quantize does for the same mix (the rules of its src/llama-quant.cpp, restated here;
// see the comments for where they come from and the few places ember deliberately differs).
#include "ember/quantize.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include "ember/error.hpp"
#include "gguf/reader.hpp"
#include "gguf/stream_writer.hpp"
#include "gguf/writer.hpp"
#include "hf/folder.hpp"
#include "quantize/plan.hpp"
#include "tensor/dequantize.hpp"
#include "tensor/quantize.hpp"
#include "tensor/types.hpp"

namespace ember {

namespace {

using tensor::TensorType;

// ---- the mixes (llama_ftype numbers are what general.file_type records) ----

enum FType : uint32_t {
    kAllF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ8_0 = 7, kQ5_0 = 8, kQ5_1 = 9, kQ2_K = 10,
    kQ3_K_S = 11, kQ3_K_M = 12, kQ3_K_L = 13, kQ4_K_S = 14, kQ4_K_M = 15, kQ5_K_S = 16, kQ5_K_M = 17,
    kQ6_K = 18, kBF16 = 32,
};

constexpr quantize::Mix kMixes[] = {
    {"Q4_0", kQ4_0, TensorType::Q4_0},     {"Q4_1", kQ4_1, TensorType::Q4_1},
    {"Q5_0", kQ5_0, TensorType::Q5_0},     {"Q5_1", kQ5_1, TensorType::Q5_1},
    {"Q2_K", kQ2_K, TensorType::Q2_K},     {"Q3_K_S", kQ3_K_S, TensorType::Q3_K},
    {"Q3_K_M", kQ3_K_M, TensorType::Q3_K}, {"Q3_K_L", kQ3_K_L, TensorType::Q3_K},
    {"Q4_K_S", kQ4_K_S, TensorType::Q4_K}, {"Q4_K_M", kQ4_K_M, TensorType::Q4_K},
    {"Q5_K_S", kQ5_K_S, TensorType::Q5_K}, {"Q5_K_M", kQ5_K_M, TensorType::Q5_K},
    {"Q6_K", kQ6_K, TensorType::Q6_K},     {"Q8_0", kQ8_0, TensorType::Q8_0},
    {"F16", kF16, TensorType::F16},        {"BF16", kBF16, TensorType::BF16},
    {"F32", kAllF32, TensorType::F32},
};

// llama-quantize's aliases: a K type without its size letter is the _M mix.
constexpr std::pair<const char*, const char*> kAliases[] = {{"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};

// ---- tensor categories (by name, as llama-quant.cpp's tensor_get_category) ----

enum class Cat { Output, TokenEmbd, AttnQkv, AttnKvB, AttnV, AttnK, AttnQ, AttnOutput, FfnUp, FfnGate, FfnDown, Other };

bool has(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

Cat category(std::string_view n) {
    if (n == "output.weight") return Cat::Output;
    if (n == "token_embd.weight" || n == "per_layer_token_embd.weight") return Cat::TokenEmbd;
    if (has(n, "attn_qkv.weight")) return Cat::AttnQkv;
    if (has(n, "attn_kv_b.weight")) return Cat::AttnKvB;
    if (has(n, "attn_v.weight")) return Cat::AttnV;
    if (has(n, "attn_k.weight")) return Cat::AttnK;
    if (has(n, "attn_q.weight")) return Cat::AttnQ;
    if (has(n, "attn_output.weight")) return Cat::AttnOutput;
    if (has(n, "ffn_up")) return Cat::FfnUp;
    if (has(n, "ffn_gate")) return Cat::FfnGate;
    if (has(n, "ffn_down")) return Cat::FfnDown;
    return Cat::Other;
}

// V-like tensors (V alone or inside a fused projection) are the most sensitive to quantization.
bool is_attn_v(Cat c) { return c == Cat::AttnV || c == Cat::AttnQkv || c == Cat::AttnKvB; }

// ggml_n_dims: the dimensions up to the last one above 1 (at least one). GGUF files record this count.
int ggml_dims(const gguf::TensorInfo& t) {
    for (int i = gguf::kMaxDims - 1; i >= 1; --i)
        if (t.ne[static_cast<size_t>(i)] > 1) return i + 1;
    return 1;
}

// Which tensors are quantized at all: 2-D and up, named "...weight", not norms, routers, positional or
// token-type embeddings, nor the small special-purpose tensors of other architectures.
bool quantizable(const gguf::TensorInfo& t) {
    if (ggml_dims(t) < 2) return false;
    const std::string_view n = t.name;
    if (n.size() < 6 || n.substr(n.size() - 6) != "weight") return false;
    for (std::string_view skip : {"_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
                                  "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
                                  "indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight",
                                  "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight",
                                  "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight",
                                  "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
                                  "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
                                  ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd",
                                  ".patch_merger", "a.rvq.codebook", "mm.a.code_embd"})
        if (has(n, skip)) return false;
    return n != "position_embd.weight" && n != "token_types.weight";
}

// The layer a tensor belongs to ("blk.N."), or -1.
int layer_of(const std::string& name) {
    int layer = -1;
    if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
    return layer;
}

// ---- the model facts the rules look at ----

struct Hparams {
    std::string arch;
    int n_layer = 0;
    int n_expert = 0;
    int n_head = 0, n_head_kv = 0;
    bool is_70b = false;  // llama.cpp's LLM_TYPE_70B (80-layer Llama 2/3 70B with GQA, Qwen2 72B)
    int n_gqa() const { return n_head_kv > 0 ? n_head / n_head_kv : 0; }
};

int first_int(const gguf::File& f, const std::string& key, int def) {
    const gguf::Value* v = f.find(key);
    if (!v) return def;
    if (v->is_array()) {
        const auto xs = v->as_ints();
        return xs.empty() ? def : static_cast<int>(xs[0]);
    }
    return static_cast<int>(v->as_int());
}

Hparams read_hparams(const gguf::File& f) {
    Hparams h;
    h.arch = f.get_string("general.architecture", "");
    h.n_layer = first_int(f, h.arch + ".block_count", 0);
    h.n_expert = first_int(f, h.arch + ".expert_count", 0);
    h.n_head = first_int(f, h.arch + ".attention.head_count", 0);
    h.n_head_kv = first_int(f, h.arch + ".attention.head_count_kv", h.n_head);
    h.is_70b = h.n_layer == 80 && ((h.arch == "llama" && h.n_expert != 8 && h.n_head != h.n_head_kv) || h.arch == "qwen2");
    return h;
}

// ---- per-tensor type choice (llama_tensor_get_type and its _impl, for the mixes ember offers) ----

struct Chooser {
    const Hparams& hp;
    uint32_t ft;
    bool tied = true;  // no output.weight: the token embedding doubles as the output
    int n_attn_v = 0, i_attn_v = 0, i_ffn_down = 0, i_ffn_gate = 0, i_ffn_up = 0;

    static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

    // (layer, n_layer) of an FFN tensor: its running index, or, in an MoE model (experts may be spread
    // anywhere in the file), the layer in its name.
    std::pair<int, int> ffn_layer(int counter, const std::string& name) const {
        if (std::max(1, hp.n_expert) <= 1) return {counter, hp.n_layer};
        const int l = layer_of(name);
        if (name.rfind("blk.", 0) != 0 || l < 0 || l >= hp.n_layer)
            throw Error(Status::BadFile, "quantize: cannot tell the layer of MoE tensor '" + name + "'");
        return {l, hp.n_layer};
    }

    TensorType mix_rules(TensorType t, const gguf::TensorInfo& ti, Cat cat) {
        const int64_t nx = ti.ne[0];
        if (cat == Cat::Output || (tied && cat == Cat::TokenEmbd)) {
            if (nx % tensor::info(t).block_size != 0) return TensorType::Q8_0;
            return t != TensorType::Q8_0 ? TensorType::Q6_K : t;
        }
        if (cat == Cat::TokenEmbd) return t;
        if (is_attn_v(cat)) {  // fused QKV lands here too: llama.cpp's own QKV branch after this one is never reached
            if (ft == kQ2_K) t = hp.n_gqa() >= 4 ? TensorType::Q4_K : TensorType::Q3_K;
            else if (ft == kQ3_K_M) t = i_attn_v < 2 ? TensorType::Q5_K : TensorType::Q4_K;
            else if (ft == kQ3_K_L) t = TensorType::Q5_K;
            else if ((ft == kQ4_K_M || ft == kQ5_K_M) && more_bits(i_attn_v, n_attn_v)) t = TensorType::Q6_K;
            else if (ft == kQ4_K_S && i_attn_v < 4) t = TensorType::Q5_K;
            if (hp.is_70b && (t == TensorType::Q3_K || t == TensorType::Q4_K)) t = TensorType::Q5_K;
            if (hp.n_expert == 8) t = TensorType::Q8_0;
            ++i_attn_v;
            return t;
        }
        switch (cat) {
            case Cat::AttnK:
                if (hp.n_expert == 8) t = TensorType::Q8_0;
                return t;
            case Cat::FfnDown: {
                const auto [i, n] = ffn_layer(i_ffn_down, ti.name);
                if (ft == kQ2_K) t = TensorType::Q3_K;
                else if (ft == kQ3_K_M) t = i < n / 16 ? TensorType::Q5_K : TensorType::Q4_K;
                else if (ft == kQ3_K_L) t = TensorType::Q5_K;
                else if (ft == kQ4_K_M) { if (more_bits(i, n)) t = TensorType::Q6_K; }
                else if (ft == kQ5_K_M && more_bits(i, n)) t = TensorType::Q6_K;
                else if (ft == kQ4_K_S && i < n / 8) t = TensorType::Q5_K;
                ++i_ffn_down;
                return t;
            }
            case Cat::AttnOutput:
                if (hp.n_expert == 8) {
                    if (ft == kQ2_K || ft == kQ3_K_S || ft == kQ3_K_M || ft == kQ4_K_S || ft == kQ4_K_M) t = TensorType::Q5_K;
                } else if (ft == kQ2_K) t = TensorType::Q3_K;
                else if (ft == kQ3_K_M) t = TensorType::Q4_K;
                else if (ft == kQ3_K_L) t = TensorType::Q5_K;
                return t;
            case Cat::FfnGate:
                (void)ffn_layer(i_ffn_gate, ti.name);
                ++i_ffn_gate;
                return t;
            case Cat::FfnUp:
                (void)ffn_layer(i_ffn_up, ti.name);
                ++i_ffn_up;
                return t;
            default: return t;
        }
    }

    // A type whose block does not divide the row length gives way to one whose block does (F16 at worst).
    static TensorType fallback(TensorType t, int64_t nx, bool& fell_back) {
        const int64_t bs = tensor::info(t).block_size;
        if (nx % bs == 0) return t;
        fell_back = true;
        TensorType r = t;
        switch (t) {
            case TensorType::Q2_K:
            case TensorType::Q3_K: r = TensorType::Q4_0; break;
            case TensorType::Q4_K: r = TensorType::Q5_0; break;
            case TensorType::Q5_K: r = TensorType::Q5_1; break;
            case TensorType::Q6_K: r = TensorType::Q8_0; break;
            default: break;  // the 32-element types: straight to F16 below
        }
        if (nx % tensor::info(r).block_size != 0) r = TensorType::F16;
        return r;
    }
};

// Converts rows [r0, r1) of `src` (type `from`, rows of nx) into `dst` (type `to`), rows at dst's start.
void convert_rows(TensorType from, TensorType to, const uint8_t* src, uint8_t* dst, int64_t nx, int64_t r0, int64_t r1,
                  const std::string& name) {
    const size_t in_row = tensor::row_bytes(from, nx), out_row = tensor::row_bytes(to, nx);
    std::vector<float> buf(static_cast<size_t>(nx));
    for (int64_t r = r0; r < r1; ++r) {
        tensor::dequantize_row(from, src + static_cast<size_t>(r) * in_row, buf.data(), nx);
        for (float x : buf)
            if (!std::isfinite(x))
                throw Error(Status::BadFile, "quantize: tensor '" + name + "' row " + std::to_string(r) + " holds a non-finite value");
        tensor::quantize_row(to, buf.data(), dst + static_cast<size_t>(r - r0) * out_row, nx);
    }
}

// Rows [r0, r1) of t into dst, split among up to n_threads threads.
void convert_rows_parallel(const gguf::TensorInfo& t, TensorType to, int64_t r0, int64_t r1, uint8_t* dst, int n_threads) {
    const int64_t nx = t.ne[0];
    const size_t out_row = tensor::row_bytes(to, nx);
    // Enough rows per thread to be worth a thread (about 16K elements each, as llama.cpp chunks).
    const int64_t min_rows = std::max<int64_t>(1, (16384 + nx - 1) / std::max<int64_t>(nx, 1));
    const int nt_use = static_cast<int>(std::clamp<int64_t>((r1 - r0) / min_rows, 1, n_threads));
    if (nt_use == 1) return convert_rows(t.type, to, t.data, dst, nx, r0, r1, t.name);
    std::vector<std::exception_ptr> errs(static_cast<size_t>(nt_use));
    std::vector<std::thread> ws;
    // Should starting a thread fail, the ones already running are joined before the error leaves.
    auto joiner = [](std::vector<std::thread>* v) {
        for (auto& th : *v)
            if (th.joinable()) th.join();
    };
    std::unique_ptr<std::vector<std::thread>, decltype(joiner)> join_all(&ws, joiner);
    const int64_t per = (r1 - r0 + nt_use - 1) / nt_use;
    for (int w = 0; w < nt_use; ++w) {
        const int64_t a = r0 + w * per, b = std::min(r1, a + per);
        if (a >= b) break;
        ws.emplace_back([&, w, a, b] {
            try {
                convert_rows(t.type, to, t.data, dst + static_cast<size_t>(a - r0) * out_row, nx, a, b, t.name);
            } catch (...) {
                errs[static_cast<size_t>(w)] = std::current_exception();
            }
        });
    }
    join_all.release();
    for (auto& th : ws) th.join();
    for (auto& e : errs)
        if (e) std::rethrow_exception(e);
}

}  // namespace

namespace quantize {

const Mix& find_mix(const std::string& name) {
    std::string up(name);
    std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (const auto& [alias, mix] : kAliases)
        if (up == alias) up = mix;
    for (const Mix& m : kMixes)
        if (up == m.name) return m;
    std::string all;
    for (const Mix& m : kMixes) all += std::string(all.empty() ? "" : " ") + m.name;
    throw Error(Status::InvalidArgument, "quantize: unknown type '" + name.substr(0, 64) + "' (one of: " + all +
                                             "; Q3_K, Q4_K, Q5_K: the _M mixes)");
}

int resolve_threads(int n) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (n <= 0) return hw;
    return std::min(n, std::min(4 * hw, 4096));
}

Plan plan(const gguf::File& f, const QuantizeParams& params, bool from_folder) {
    Plan p;
    p.mix = &find_mix(params.type);
    const Mix& mix = *p.mix;
    const Hparams hp = read_hparams(f);

    // llama-quantize's tensor order: the tensors outside the blocks first, then block by block, each group
    // sorted by name (its loader keeps them in a map ordered that way).
    std::vector<const gguf::TensorInfo*>& order = p.order;
    for (const auto& t : f.tensors()) order.push_back(&t);
    std::vector<int> layers(f.tensors().size());
    for (size_t i = 0; i < f.tensors().size(); ++i) layers[i] = layer_of(f.tensors()[i].name);
    const gguf::TensorInfo* base = f.tensors().data();
    std::stable_sort(order.begin(), order.end(), [&](const gguf::TensorInfo* a, const gguf::TensorInfo* b) {
        const int la = layers[static_cast<size_t>(a - base)], lb = layers[static_cast<size_t>(b - base)];
        return la != lb ? la < lb : a->name < b->name;
    });

    Chooser ch{hp, mix.ftype};
    for (const auto* t : order) {
        const Cat c = category(t->name);
        if (is_attn_v(c)) ++ch.n_attn_v;
        if (c == Cat::Output) ch.tied = false;
    }

    QuantizeResult& res = p.result;
    res.type = mix.name;
    res.file_type = mix.ftype;
    res.file_bytes_in = f.file_size();  // a folder: its tensors' bytes, added below
    const bool base_quantized = tensor::info(mix.base).quantized;
    for (const auto* t : order) {
        QuantizedTensor q;
        q.name = t->name;
        for (int d = 0; d < ggml_dims(*t); ++d) q.shape.push_back(t->ne[static_cast<size_t>(d)]);
        TensorType nt = t->type;
        if (quantizable(*t)) {
            nt = mix.base;
            if (base_quantized) {
                if (!params.pure) nt = ch.mix_rules(nt, *t, category(t->name));
                nt = Chooser::fallback(nt, t->ne[0], q.fallback);
                if (q.fallback) ++res.n_fallback;
            }
        } else if (from_folder) {
            // convert_hf_to_gguf.py writes what it does not quantize (norms, biases, MoE routers) as F32,
            // whatever the outtype: the ops read them in F32.
            nt = TensorType::F32;
        }
        if (nt != t->type && tensor::info(t->type).quantized && !params.allow_requantize)
            throw Error(Status::InvalidArgument, "quantize: tensor '" + t->name + "' is already " + tensor::type_name(t->type) +
                                                 "; re-quantizing it to " + tensor::type_name(nt) + " needs allow_requantize");
        q.type_in = tensor::type_name(t->type);
        q.type_out = tensor::type_name(nt);
        q.bytes_in = t->n_bytes;
        q.bytes_out = t->n_elements / static_cast<uint64_t>(tensor::info(nt).block_size) * tensor::info(nt).block_bytes;
        res.n_elements += t->n_elements;
        res.tensor_bytes_in += q.bytes_in;
        res.tensor_bytes_out += q.bytes_out;
        res.tensors.push_back(std::move(q));
        p.types.push_back(nt);
    }
    if (from_folder) res.file_bytes_in = res.tensor_bytes_in;
    return p;
}

std::vector<std::pair<std::string, gguf::Value>> output_metadata(const gguf::File& f, const Mix& mix) {
    std::vector<std::pair<std::string, gguf::Value>> kv;
    for (const auto& [k, v] : f.metadata())
        if (k != "general.quantization_version" && k != "general.file_type" && k != "split.no" && k != "split.count" &&
            k != "split.tensors.count")
            kv.emplace_back(k, v);
    kv.emplace_back("general.quantization_version", gguf::Value::u32(2));
    kv.emplace_back("general.file_type", gguf::Value::u32(mix.ftype));
    return kv;
}

void convert_tensor(const gguf::TensorInfo& t, TensorType to, int n_threads,
                    const std::function<uint8_t*(int64_t r0, int64_t r1)>& out,
                    const std::function<void(int64_t r0, int64_t r1)>& done) {
    constexpr uint64_t kSlabBytes = 32u << 20;
    const int64_t nx = t.ne[0];
    const int64_t rows = static_cast<int64_t>(t.n_elements / static_cast<uint64_t>(std::max<int64_t>(nx, 1)));
    const size_t in_row = tensor::row_bytes(t.type, nx), out_row = tensor::row_bytes(to, nx);
    const int64_t slab = std::max<int64_t>(1, static_cast<int64_t>(kSlabBytes / std::max<size_t>(1, in_row + out_row)));
    for (int64_t r0 = 0; r0 < rows; r0 += slab) {
        const int64_t r1 = std::min(rows, r0 + slab);
        convert_rows_parallel(t, to, r0, r1, out(r0, r1), n_threads);
        done(r0, r1);
    }
}

}  // namespace quantize

std::vector<std::string> quantize_types() {
    std::vector<std::string> v;
    for (const quantize::Mix& m : kMixes) v.emplace_back(m.name);
    return v;
}

QuantizeResult quantize_model(const std::string& in, const std::string& out, const QuantizeParams& params) {
    const quantize::Mix& mix = quantize::find_mix(params.type);
    const int n_threads = quantize::resolve_threads(params.n_threads);
    gguf::StreamWriter o(out);  // first: an output that cannot be written fails before the input is read
    // A Hugging Face folder reads as the GGUF llama.cpp's converter writes for it (lib/hf), so converting
    // one is quantizing that file, with the converter's one rule (plan's from_folder).
    const bool from_folder = hf::is_folder(in);
    const gguf::File f = hf::open_model_file(in);
    quantize::Plan p = quantize::plan(f, params, from_folder);
    QuantizeResult& res = p.result;

    // llama-quantize always pads to 32 bytes even when the input declares general.alignment; ember keeps the
    // declared alignment so the file stays readable.
    std::vector<gguf::TensorHeader> headers;
    for (size_t i = 0; i < res.tensors.size(); ++i)
        headers.push_back({res.tensors[i].name, p.types[i], res.tensors[i].shape, res.tensors[i].bytes_out});
    o.header(quantize::output_metadata(f, mix), headers, f.alignment());

    // Data, tensor by tensor, in slabs of rows shared among the threads.
    const double total = std::max<double>(1.0, static_cast<double>(res.tensor_bytes_in));
    uint64_t done = 0;
    auto report = [&](uint64_t d) {
        if (params.progress && !params.progress(static_cast<float>(static_cast<double>(d) / total)))
            throw Error(Status::Cancelled, "quantize: cancelled");
    };
    report(0);
    std::vector<uint8_t> work;
    for (size_t i = 0; i < p.order.size(); ++i) {
        const gguf::TensorInfo& t = *p.order[i];
        const TensorType nt = p.types[i];
        if (nt == t.type) {
            o.data(t.data, t.n_bytes);
        } else {
            const size_t in_row = tensor::row_bytes(t.type, t.ne[0]), out_row = tensor::row_bytes(nt, t.ne[0]);
            const int64_t rows = static_cast<int64_t>(t.n_bytes / std::max<size_t>(1, in_row));
            quantize::convert_tensor(
                t, nt, n_threads,
                [&](int64_t r0, int64_t r1) {
                    work.resize(static_cast<size_t>(r1 - r0) * out_row);
                    return work.data();
                },
                [&](int64_t, int64_t r1) {
                    o.data(work.data(), work.size());
                    if (r1 < rows) report(done + static_cast<uint64_t>(r1) * in_row);
                });
        }
        done += t.n_bytes;
        o.end_tensor();
        report(done);
    }
    res.file_bytes_out = o.written();
    o.commit();
    return res;
}

QuantizeResult convert_model(const std::string& hf_dir, const std::string& out, const QuantizeParams& params) {
    quantize::find_mix(params.type);  // a bad type is reported before the folder is read
    if (!hf::is_folder(hf_dir))
        throw Error(Status::InvalidArgument, "convert: '" + hf_dir +
                                                 "' is not a folder (a Hugging Face model: config.json, *.safetensors, tokenizer.json)");
    return quantize_model(hf_dir, out, params);
}

}  // namespace ember
