// A PEFT LoRA folder read as the GGUF adapter llama.cpp's convert_lora_to_gguf.py writes for it: PEFT's
// names ("base_model.model.<HF name without .weight>.lora_A.weight") mapped onto the model's GGUF names by
// the same table as the base weights, lora_A [r, n_in] and lora_B [n_out, r] kept as they are (GGUF's ne
// reads them as [n_in, r] and [r, n_out]), and lora_B of Llama's q_proj / k_proj reordered as the base Q/K
// rows are (B·A's rows are the rows of the update).
#include <cmath>
#include <filesystem>

#include "arch/lora.hpp"
#include "ember/error.hpp"
#include "hf/hf.hpp"

namespace ember::hf {

namespace {

constexpr std::string_view kPrefix = "base_model.model.";
constexpr std::string_view kA = ".lora_A.weight", kB = ".lora_B.weight";

std::string in_quotes(std::string_view s) { return "'" + std::string(s.substr(0, 200)) + "'"; }

// The tensors' storage: the mapped file, and the reordered copies of lora_B.
struct Owned {
    safetensors::File file;
    std::vector<std::unique_ptr<uint8_t[]>> copies;
};

}  // namespace

gguf::File open_peft_adapter(const std::string& dir, const AdapterBase& base, bool use_mmap) {
    namespace fs = std::filesystem;
    const std::string what = "adapter_config.json";
    try {
        const Json cfg = parse_json(read_text((fs::path(dir) / what).string(), false), what);
        if (!cfg.is_object()) bad(what, "not a JSON object");
        const std::string type = get_string(cfg, "peft_type", "LORA", what);
        if (type != "LORA") unsupported(what, "peft_type '" + type.substr(0, 32) + "' (LoRA adapters are read)");
        const int64_t r = get_int(cfg, "r", 8, 1, arch::kMaxLoraRank, what);
        double alpha = get_float(cfg, "lora_alpha", 8.0, 1e-6, 1e6, what);
        if (get_bool(cfg, "use_dora", false, what)) unsupported(what, "DoRA (use_dora) adapters are not supported");
        if (get_bool(cfg, "fan_in_fan_out", false, what)) unsupported(what, "fan_in_fan_out (GPT-2's Conv1D layout)");
        if (get_bool(cfg, "lora_bias", false, what) || get_string(cfg, "bias", "none", what) != "none")
            unsupported(what, "adapters that train biases are not supported");
        if (const Json* m = get_array(cfg, "modules_to_save", what); m && !m->empty())
            unsupported(what, "modules_to_save (whole modules replaced) is not supported");
        if (const Json* a = get_object(cfg, "alpha_pattern", what); a && !a->empty())
            unsupported(what, "alpha_pattern (a lora_alpha per module) is not supported");
        const Json* ranks = get_object(cfg, "rank_pattern", what);
        const bool per_module_rank = ranks && !ranks->empty();
        if (get_bool(cfg, "use_rslora", false, what)) {
            // rsLoRA scales by alpha / √r; GGUF's alpha is divided by r: the same update for one rank.
            if (per_module_rank) unsupported(what, "use_rslora with rank_pattern");
            alpha *= std::sqrt(static_cast<double>(r));
        }

        const fs::path weights = fs::path(dir) / "adapter_model.safetensors";
        if (!fs::exists(weights) && fs::exists(fs::path(dir) / "adapter_model.bin"))
            throw Error(Status::Unsupported, "adapter_model.bin (a pickle) is not read: save the adapter with safe_serialization");
        auto owned = std::make_shared<Owned>(Owned{safetensors::File::open(weights.string(), use_mmap), {}});
        const ArchMap& map = find_arch_of(base.arch);
        std::vector<gguf::TensorInfo> tensors;
        for (const safetensors::TensorInfo& t : owned->file.tensors()) {
            std::string_view name = t.name;
            if (name.find(".lora_embedding_") != std::string_view::npos)
                throw Error(Status::Unsupported, "tensor " + in_quotes(name) + ": LoRA on embeddings is not supported");
            const bool is_a = name.ends_with(kA), is_b = name.ends_with(kB);
            if (!name.starts_with(kPrefix) || (!is_a && !is_b))
                throw Error(Status::BadFile, "tensor " + in_quotes(name) + " is not a PEFT LoRA tensor (" +
                                                 std::string(kPrefix) + "<module>.lora_A/lora_B.weight)");
            name.remove_prefix(kPrefix.size());
            name.remove_suffix(kA.size());
            int expert = -1;
            const std::string target = gguf_name(map, std::string(name) + ".weight", expert);
            if (target.empty() || expert >= 0)
                throw Error(Status::InvalidArgument, "tensor " + in_quotes(t.name) + " changes a module a " + base.arch +
                                                         " model does not have (an adapter for another architecture?)");
            const auto type = safetensors::tensor_type(t.dtype);
            if (!type)
                throw Error(Status::Unsupported, "tensor " + in_quotes(t.name) + " is " + safetensors::dtype_name(t.dtype) +
                                                     " (F32, F16 and BF16 adapters are read)");
            if (t.shape.size() != 2) throw Error(Status::BadFile, "tensor " + in_quotes(t.name) + " is not a matrix");
            const int64_t rank = is_a ? t.shape[0] : t.shape[1];
            if (!per_module_rank && rank != r)
                throw Error(Status::BadFile, "tensor " + in_quotes(t.name) + " has rank " + std::to_string(rank) + ", but " +
                                                 what + " says r = " + std::to_string(r));
            gguf::TensorInfo g;
            g.name = target + (is_a ? ".lora_a" : ".lora_b");
            g.type = *type;
            g.n_dims = 2;
            g.ne = {t.shape[1], t.shape[0], 1, 1};
            g.data = t.data;
            const bool q = target.ends_with(".attn_q.weight"), k = target.ends_with(".attn_k.weight");
            if (is_b && (map.flags & kPermuteQK) && (q || k)) {
                const int64_t heads = q ? base.n_head : base.n_head_kv;
                if (t.shape[0] != heads * base.head_dim || base.head_dim % 2)
                    throw Error(Status::InvalidArgument, "tensor " + in_quotes(t.name) + " has " + std::to_string(t.shape[0]) +
                                                             " rows where the model's heads have " +
                                                             std::to_string(heads * base.head_dim));
                owned->copies.push_back(std::make_unique_for_overwrite<uint8_t[]>(std::max<size_t>(t.n_bytes, 1)));
                permute_rope_rows(t.data, owned->copies.back().get(), heads, base.head_dim,
                                  static_cast<size_t>(t.shape[1]) * safetensors::dtype_size(t.dtype));
                g.data = owned->copies.back().get();
            }
            tensors.push_back(std::move(g));
        }
        Keys keys;
        keys.emplace_back("general.architecture", gguf::Value::string(base.arch));
        keys.emplace_back("general.type", gguf::Value::string("adapter"));
        keys.emplace_back("adapter.type", gguf::Value::string("lora"));
        keys.emplace_back("adapter.lora.alpha", gguf::Value::f32(static_cast<float>(alpha)));
        return gguf::File::assemble(std::move(keys), std::move(tensors), std::move(owned));
    } catch (const Error& e) {
        throw Error(e.status(), dir + ": " + e.what());
    }
}

}  // namespace ember::hf
