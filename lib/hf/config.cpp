// config.json → the GGUF keys ember's architectures read (the ones convert_hf_to_gguf.py writes).
// transformers 4 spells RoPE as rope_theta + rope_scaling, transformers 5 as rope_parameters (per layer
// type for Gemma 3): both are read.
#include <cmath>
#include <numbers>

#include "ember/error.hpp"
#include "hf/hf.hpp"

namespace ember::hf {

namespace {

using gguf::Value;

struct Rope {
    std::string type = "default";
    double theta = 10000.0, factor = 1.0, attn_factor = 0.0, low_freq = 1.0, high_freq = 4.0;
    int64_t orig_ctx = 0;
    std::vector<float> short_factor, long_factor;  // LongRoPE's per-frequency divisors
};

// A list of per-frequency divisors: finite and positive (they divide the angles).
std::vector<float> read_factors(const Json& p, const char* key, const std::string& what) {
    const Json* a = get_array(p, key, what);
    if (!a) bad(what, std::string("LongRoPE needs ") + key);
    if (a->size() > (1u << 16)) bad(what, std::string(key) + " is too long");
    std::vector<float> f;
    for (const Json& x : *a) {
        const double v = x.is_number() ? x.get<double>() : -1.0;
        if (!std::isfinite(v) || v <= 0.0 || v > 1e6) bad(what, std::string(key) + " holds a value that is not a positive number");
        f.push_back(static_cast<float>(v));
    }
    return f;
}

// One RoPE description: `p` is rope_parameters / rope_scaling (or null), `theta` the default base;
// `longrope`: whether the architecture runs LongRoPE's factors.
Rope read_rope(const Json* p, double theta, const std::string& what, bool longrope = false) {
    Rope r;
    r.theta = theta;
    if (!p) return r;
    const std::string w = what + " rope";
    r.theta = get_float(*p, "rope_theta", theta, 1e-3, 1e12, w);
    r.type = get_string(*p, "rope_type", get_string(*p, "type", "default", w), w);
    if (r.type == "su") r.type = "longrope";  // its first name (transformers and llama.cpp read it so)
    if (r.type == "default" || r.type == "none") return r;
    if (r.type == "longrope" && !longrope) unsupported(w, "LongRoPE on this architecture");
    // LongRoPE's factor is optional (0: max_position_embeddings / original_max_position_embeddings).
    r.factor = get_float(*p, "factor", r.type == "longrope" ? 0.0 : 1.0, 1e-3, 1e6, w);
    r.orig_ctx = get_int(*p, "original_max_position_embeddings", 0, 0, 1 << 27, w);
    if (r.type == "linear") return r;
    if (r.type == "longrope") {
        r.short_factor = read_factors(*p, "short_factor", w);
        r.long_factor = read_factors(*p, "long_factor", w);
        r.attn_factor = get_float(*p, "attention_factor", 0.0, 0.0, 1e6, w);
        return r;
    }
    if (r.type == "llama3") {
        r.low_freq = get_float(*p, "low_freq_factor", 1.0, 1e-6, 1e6, w);
        r.high_freq = get_float(*p, "high_freq_factor", 4.0, 1e-6, 1e6, w);
        if (r.orig_ctx <= 0 || r.high_freq <= r.low_freq) bad(w, "llama3 scaling needs original_max_position_embeddings and high > low");
        return r;
    }
    if (r.type == "yarn") {
        // Phi-3's "yarn" (long/short factors with YaRN's magnitude) is LongRoPE to transformers 5 and not
        // to llama.cpp: neither is run here.
        if (p->contains("long_factor") || p->contains("short_factor")) unsupported(w, "YaRN with long/short factors");
        // transformers' defaults are llama.cpp's fixed ones; other values are not run here.
        if (get_float(*p, "beta_fast", 32.0, -1e6, 1e6, w) != 32.0 || get_float(*p, "beta_slow", 1.0, -1e6, 1e6, w) != 1.0 ||
            p->contains("mscale") || p->contains("mscale_all_dim") || !get_bool(*p, "truncate", true, w))
            unsupported(w, "YaRN with other than the default beta_fast/beta_slow/mscale/truncate");
        r.attn_factor = get_float(*p, "attention_factor", 0.0, 0.0, 1e6, w);
        return r;
    }
    unsupported(w, "rope type '" + r.type.substr(0, 32) + "' is not supported yet");
}

// Llama 3.1's per-frequency divisors (llama.cpp writes them as rope_freqs.weight).
std::vector<float> llama3_factors(const Rope& r, int n_rot) {
    std::vector<float> f;
    const double low_wavelen = static_cast<double>(r.orig_ctx) / r.low_freq;
    const double high_wavelen = static_cast<double>(r.orig_ctx) / r.high_freq;
    for (int i = 0; i < n_rot; i += 2) {
        const double freq = 1.0 / std::pow(r.theta, static_cast<double>(i) / n_rot);
        const double wavelen = 2 * std::numbers::pi / freq;
        double div = 1.0;
        if (wavelen > low_wavelen) {
            div = r.factor;
        } else if (wavelen >= high_wavelen) {
            const double smooth = (static_cast<double>(r.orig_ctx) / wavelen - r.low_freq) / (r.high_freq - r.low_freq);
            div = 1.0 / ((1 - smooth) / r.factor + smooth);
        }
        f.push_back(static_cast<float>(div));
    }
    return f;
}

}  // namespace

Config read_config(const Json& cfg, const std::string& what) {
    if (!cfg.is_object()) bad(what, "not a JSON object");
    Config c;
    const std::string model_type = get_string(cfg, "model_type", "", what);
    if (model_type.empty()) bad(what, "no model_type");
    if (get_object(cfg, "text_config", what))
        unsupported(what, "a multimodal model ('" + model_type.substr(0, 64) + "'): only text-only folders are read yet");
    c.arch = &find_arch(model_type);
    const ArchMap& a = *c.arch;
    const std::string p = std::string(a.arch) + ".";
    auto u32 = [&](const std::string& k, int64_t v) { c.keys.emplace_back(p + k, Value::u32(static_cast<uint32_t>(v))); };
    auto f32 = [&](const std::string& k, double v) { c.keys.emplace_back(p + k, Value::f32(static_cast<float>(v))); };
    auto i = [&](const char* k, int64_t def, int64_t lo, int64_t hi) { return get_int(cfg, k, def, lo, hi, what); };

    c.keys.emplace_back("general.architecture", Value::string(a.arch));
    const int64_t n_embd = i("hidden_size", -1, 1, 1 << 20);
    c.n_layer = static_cast<int>(i("num_hidden_layers", -1, 1, 1024));
    c.n_head = static_cast<int>(i("num_attention_heads", -1, 1, 1 << 14));
    c.n_head_kv = static_cast<int>(i("num_key_value_heads", c.n_head, 1, c.n_head));
    c.head_dim = static_cast<int>(i("head_dim", n_embd / c.n_head, 2, 1 << 14));
    const int64_t n_ff = i("intermediate_size", -1, 1, 1 << 22);
    const int64_t n_vocab = i("vocab_size", -1, 1, 1 << 24);
    const int64_t n_ctx = i("max_position_embeddings", 2048, 1, 1 << 27);
    if (n_embd < 0 || c.n_layer < 0 || c.n_head < 0 || n_ff < 0 || n_vocab < 0)
        bad(what, "missing one of hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, vocab_size");
    if (c.n_head % c.n_head_kv) bad(what, "num_attention_heads is not a multiple of num_key_value_heads");
    // RoPE's description: rope_parameters (transformers 5, which keeps partial_rotary_factor there too) or
    // rope_scaling; its own values first, then config.json's, as llama.cpp's converter reads them.
    const Json* rp = get_object(cfg, "rope_parameters", what);
    if (!rp) rp = get_object(cfg, "rope_scaling", what);
    const bool per_layer_rope = rp && rp->contains("full_attention");
    double prf = get_float(cfg, "partial_rotary_factor", 1.0, 1e-3, 1.0, what);
    if (rp && !per_layer_rope) prf = get_float(*rp, "partial_rotary_factor", prf, 1e-3, 1.0, what);
    const int n_rot = static_cast<int>(c.head_dim * prf) / 2 * 2;
    if (n_rot < 2) bad(what, "no rotary dimensions");

    // What the GGUF form cannot hold is refused rather than run differently.
    const std::string act = get_string(cfg, "hidden_activation", get_string(cfg, "hidden_act", "", what), what);
    const std::string want = a.flags & kGemma ? "gelu_pytorch_tanh" : "silu";
    if (!act.empty() && act != want) unsupported(what, "activation '" + act.substr(0, 32) + "' (this architecture runs " + want + ")");
    if ((a.flags & kNoBias) && (get_bool(cfg, "attention_bias", false, what) || get_bool(cfg, "mlp_bias", false, what)))
        unsupported(what, "attention or MLP biases");
    if (get_bool(cfg, "use_sliding_window", false, what) && !(a.flags & kSlidingLayers))
        unsupported(what, "sliding-window attention on every layer");
    if ((a.flags & kGemma) && get_float(cfg, "query_pre_attn_scalar", c.head_dim, 1, 1e9, what) != c.head_dim)
        unsupported(what, "query_pre_attn_scalar other than head_dim");
    if (get_bool(cfg, "use_bidirectional_attention", false, what)) unsupported(what, "bidirectional attention");
    c.tied = get_bool(cfg, "tie_word_embeddings", true, what);

    // The keys the converter writes for the architecture, no more: what it leaves out, the readers (ember's
    // and llama.cpp's) take from the same defaults (head_dim = n_embd / n_head, n_rot = head_dim, ...).
    c.keys.emplace_back("general.type", Value::string("model"));
    c.keys.emplace_back("general.name", Value::string(get_string(cfg, "_name_or_path", "", what).substr(0, 256)));
    if (a.flags & kVocabSizeKey) u32("vocab_size", n_vocab);
    u32("context_length", n_ctx);
    u32("embedding_length", n_embd);
    u32("block_count", c.n_layer);
    u32("feed_forward_length", n_ff);
    u32("attention.head_count", c.n_head);
    u32("attention.head_count_kv", c.n_head_kv);
    if (cfg.contains("head_dim") && !cfg["head_dim"].is_null()) {
        u32("attention.key_length", c.head_dim);
        u32("attention.value_length", c.head_dim);
    } else if (c.head_dim * c.n_head != n_embd) {
        bad(what, "hidden_size is not a multiple of num_attention_heads (and no head_dim)");
    }
    if ((a.flags & kRopeDimsKey) || n_rot != c.head_dim) u32("rope.dimension_count", n_rot);
    f32("attention.layer_norm_rms_epsilon", get_float(cfg, "rms_norm_eps", 1e-6, 0.0, 1.0, what));

    // RoPE: Gemma 3 (transformers 5) describes each layer type; otherwise one description.
    const double theta = get_float(cfg, "rope_theta", 10000.0, 1e-3, 1e12, what);
    Rope rope, local;
    if (per_layer_rope) {
        rope = read_rope(get_object(*rp, "full_attention", what), theta, what);
        local = read_rope(get_object(*rp, "sliding_attention", what), get_float(cfg, "rope_local_base_freq", 10000.0, 1e-3, 1e12, what), what);
    } else {
        rope = read_rope(rp, theta, what, a.flags & kPhi3Keys);
        local = read_rope(nullptr, get_float(cfg, "rope_local_base_freq", 10000.0, 1e-3, 1e12, what), what);
    }
    if (!(a.flags & kNoRopeBaseKey) || rope.theta != 10000.0) f32("rope.freq_base", rope.theta);
    if (a.flags & kPhi3Keys) {
        const Json* o = rp && rp->contains("original_max_position_embeddings") ? rp : &cfg;
        const int64_t orig = get_int(*o, "original_max_position_embeddings", 0, 0, 1 << 27, what);
        if (o->contains("original_max_position_embeddings")) u32("rope.scaling.original_context_length", orig);
        u32("attention.sliding_window", i("sliding_window", 0, 0, 1 << 27));
        if (rope.type == "longrope") {
            // As llama.cpp's converter writes it: the factors as F32 tensors (the decoder turns by the long
            // ones in a context longer than `orig`) and transformers' magnitude as rope.scaling.attn_factor.
            if (orig < 2) bad(what, "LongRoPE needs original_max_position_embeddings of at least 2");
            const size_t n = static_cast<size_t>(n_rot / 2);
            if (rope.short_factor.size() != n || rope.long_factor.size() != n)
                bad(what, "LongRoPE's short_factor and long_factor need " + std::to_string(n) + " values each (n_rot / 2)");
            // sqrt(1 + ln s / ln orig) for s = max_position_embeddings / orig > 1 (else 1); transformers takes
            // an explicit factor or attention_factor first (the converter reads neither; hub files give neither).
            const double s = rope.factor > 0 ? rope.factor : static_cast<double>(n_ctx) / static_cast<double>(orig);
            const double attn = rope.attn_factor > 0 ? rope.attn_factor
                                : s > 1                ? std::sqrt(1 + std::log(s) / std::log(static_cast<double>(orig)))
                                                       : 1.0;
            f32("rope.scaling.attn_factor", attn);
            c.generated.emplace_back("rope_factors_long.weight", rope.long_factor);
            c.generated.emplace_back("rope_factors_short.weight", rope.short_factor);
        }
    }
    if (rope.type == "linear" || rope.type == "yarn") {
        c.keys.emplace_back(p + "rope.scaling.type", Value::string(rope.type));
        f32("rope.scaling.factor", rope.factor);
        if (rope.type == "yarn") {
            u32("rope.scaling.original_context_length", rope.orig_ctx ? rope.orig_ctx : n_ctx);
            // transformers multiplies cos/sin by attention_factor (default 0.1·ln(factor) + 1); the rope op
            // applies that default itself, so an explicit one goes in relative to it.
            if (rope.attn_factor > 0)
                f32("rope.scaling.attn_factor", rope.attn_factor / (rope.factor > 1 ? 0.1 * std::log(rope.factor) + 1 : 1.0));
        }
    } else if (rope.type == "llama3") {  // no key: rope_freqs.weight carries it
        c.generated.emplace_back("rope_freqs.weight", llama3_factors(rope, n_rot));
    }
    if (a.flags & kSwaRope) {
        if (local.type != "default" && local.type != "none") unsupported(what, "RoPE scaling on the local layers");
        f32("rope.freq_base_swa", local.theta);
    }

    if (a.flags & kSoftcap) {
        f32("attn_logit_softcapping", get_float(cfg, "attn_logit_softcapping", 0.0, 0.0, 1e6, what));
        f32("final_logit_softcapping", get_float(cfg, "final_logit_softcapping", 0.0, 0.0, 1e6, what));
    } else if (get_float(cfg, "attn_logit_softcapping", 0.0, 0.0, 1e6, what) != 0.0 ||
               get_float(cfg, "final_logit_softcapping", 0.0, 0.0, 1e6, what) != 0.0) {
        unsupported(what, "logit soft-capping on this architecture");
    }
    if (a.flags & kSlidingLayers) {
        // Layer l is local when (l + 1) % pattern != 0, the rule ember (and llama.cpp) apply: find the
        // pattern that gives layer_types, or refuse the folder.
        const int64_t window = i("sliding_window", 0, 0, 1 << 27);
        const int default_pattern = model_type == "gemma2" ? 2 : 6;  // ember's and llama.cpp's, when the file says none
        int pattern = static_cast<int>(i("sliding_window_pattern", default_pattern, 1, 1 << 20));
        if (const Json* types = get_array(cfg, "layer_types", what)) {
            if (types->size() != static_cast<size_t>(c.n_layer)) bad(what, "layer_types has not one entry per layer");
            std::vector<bool> local_layer;
            for (const Json& t : *types) {
                if (!t.is_string() || (t != "sliding_attention" && t != "full_attention"))
                    unsupported(what, "layer_types other than sliding_attention / full_attention");
                local_layer.push_back(t == "sliding_attention");
            }
            pattern = 0;
            for (int cand = 1; cand <= c.n_layer + 1 && !pattern; ++cand) {
                bool ok = true;
                for (int l = 0; ok && l < c.n_layer; ++l) ok = local_layer[static_cast<size_t>(l)] == ((l + 1) % cand != 0);
                if (ok) pattern = cand;
            }
            if (!pattern) unsupported(what, "layer_types that are not one global layer every N");
        }
        u32("attention.sliding_window", window);
        if (pattern != default_pattern) u32("attention.sliding_window_pattern", pattern);
    }

    c.n_expert = static_cast<int>(i("num_local_experts", i("num_experts", 0, 0, 1024), 0, 1024));
    if (c.n_expert > 0) {
        u32("expert_count", c.n_expert);
        const int64_t used = i("num_experts_per_tok", 0, 0, c.n_expert);
        if (used < 1) bad(what, "experts without num_experts_per_tok");
        u32("expert_used_count", used);
        if (cfg.contains("moe_intermediate_size")) u32("expert_feed_forward_length", i("moe_intermediate_size", n_ff, 1, 1 << 22));
        // Mixtral always renormalizes the chosen experts' weights; Qwen3-MoE says so in norm_topk_prob.
        // Renormalizing is the readers' default, so only "no" is written (the converter writes neither).
        if (model_type != "mixtral" && !get_bool(cfg, "norm_topk_prob", false, what))
            c.keys.emplace_back(p + "expert_weights_norm", Value::boolean(false));
        if (i("decoder_sparse_step", 1, 0, 1 << 20) != 1) unsupported(what, "dense layers among the expert layers");
        if (const Json* dense = get_array(cfg, "mlp_only_layers", what); dense && !dense->empty())
            unsupported(what, "dense layers among the expert layers");
    }
    return c;
}

}  // namespace ember::hf
