// ember-make-model: a GGUF file with random weights and the exact shapes and metadata of a known model,
// for measuring speed (ember-bench, llama.cpp's llama-bench) without downloading the real weights.
//   ember-make-model --like llama-3.2-1b --type Q4_K_M -o llama-1b.gguf [--seed N] [--layers N] [--vocab N]
//   ember-make-model --list
// How: the weights are drawn as Q8_0 blocks (Irwin–Hall integers, std ≈ 0.02 once scaled; norms 1, biases
// 0) and streamed to a temporary GGUF beside OUT; ember::quantize_model then turns that into TYPE, choosing
// each tensor's type by llama-quantize's rules for the mix, and the temporary file is removed. Q8_0 keeps
// the temporary file at 8.5 bits a weight (8.5 GB for an 8B model) and is copied as it is for TYPE Q8_0.
// The vocabulary is a minimal SentencePiece one of the real size (<unk> <s> </s>, the 256 byte tokens,
// then filler pieces), which ember and llama.cpp both load.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "common.hpp"
#include "ember/error.hpp"
#include "ember/gguf_writer.hpp"
#include "ember/quantize.hpp"

namespace {

// ---- the models (their published configurations) ----

struct Like {
    const char* name;
    const char* arch;         // general.architecture
    const char* size_label;   // general.size_label
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train;
    double rope_base, norm_eps;
    bool tied;                // no output.weight: the token embedding doubles as the output
    double llama3_rope_factor = 0;  // Llama 3.1+ frequency scaling (rope_freqs.weight); 0: none
    int sliding_window = 0;   // Gemma 3's local layers
};

constexpr Like kLikes[] = {
    {"llama-3.2-1b", "llama", "1B", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000, 1e-5, true, 32},
    {"llama-3.1-8b", "llama", "8B", 4096, 32, 32, 8, 128, 14336, 128256, 131072, 500000, 1e-5, false, 8},
    {"qwen3-0.6b", "qwen3", "0.6B", 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1e6, 1e-6, true},
    {"qwen2.5-1.5b", "qwen2", "1.5B", 1536, 28, 12, 2, 128, 8960, 151936, 32768, 1e6, 1e-6, true},
    {"smollm2-135m", "llama", "135M", 576, 30, 9, 3, 64, 1536, 49152, 8192, 100000, 1e-5, true},
    {"gemma3-270m", "gemma3", "270M", 640, 18, 4, 1, 256, 2048, 262144, 32768, 1e6, 1e-6, true, 0, 512},
};

// ---- the tensors (weights Q8_0, the rest F32) ----

struct TensorSpec {
    enum Fill { Weight, Ones, Zeros, RopeFreqs } fill;
    std::string name;
    std::vector<int64_t> ne;
    bool q8_0() const { return ne.size() >= 2; }
    uint64_t n() const {
        uint64_t n = 1;
        for (int64_t d : ne) n *= static_cast<uint64_t>(d);
        return n;
    }
};

using Metadata = std::vector<std::pair<std::string, ember::GgufValue>>;

// ---- random numbers ----

struct SplitMix {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
};

uint64_t hash(const std::string& s, uint64_t h) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

uint16_t f32_to_f16(float f) {  // round to nearest even; the values here are small and finite
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
    const int exp = static_cast<int>((x >> 23) & 0xff) - 127 + 15;
    if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return static_cast<uint16_t>(sign);
        const uint32_t m = mant | 0x800000, shift = static_cast<uint32_t>(14 - exp);
        uint32_t h = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) ++h;
        return static_cast<uint16_t>(sign | h);
    }
    uint32_t h = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry into the exponent is right
    return static_cast<uint16_t>(sign | h);
}

// One Q8_0 block (fp16 scale, 32 int8) of weights with mean 0 and standard deviation about `std`: each
// quant is the sum of three uniform integers in [-42, 42] (std 42), the scale jittered per block by ±25%.
void q8_0_block(SplitMix& rng, float std, uint8_t* out) {
    const uint64_t r0 = rng.next();
    const float d = std / 42.0f * (0.75f + 0.5f * static_cast<float>(r0 >> 40) / 16777216.0f);
    const uint16_t h = f32_to_f16(d);
    std::memcpy(out, &h, 2);
    for (int i = 0; i < 32; i += 2) {
        const uint64_t r = rng.next();
        for (int j = 0; j < 2; ++j) {
            int q = -126;
            for (int k = 0; k < 3; ++k) q += static_cast<int>(((r >> (8 * (3 * j + k))) & 0xff) * 85 >> 8);
            out[2 + i + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
        }
    }
}

// Llama 3.1's RoPE frequency factors, as llama.cpp's converter computes them into rope_freqs.weight.
std::vector<float> llama3_rope_factors(const Like& m) {
    const double low_freq_factor = 1, high_freq_factor = 4, old_ctx = 8192;
    const double low_wavelen = old_ctx / low_freq_factor, high_wavelen = old_ctx / high_freq_factor;
    std::vector<float> f;
    for (int i = 0; i < m.head_dim; i += 2) {
        const double freq = 1.0 / std::pow(m.rope_base, static_cast<double>(i) / m.head_dim);
        const double wavelen = 2 * std::numbers::pi / freq;
        if (wavelen < high_wavelen) f.push_back(1.0f);
        else if (wavelen > low_wavelen) f.push_back(static_cast<float>(m.llama3_rope_factor));
        else {
            const double smooth = (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
            f.push_back(static_cast<float>(1 / ((1 - smooth) / m.llama3_rope_factor + smooth)));
        }
    }
    return f;
}

std::vector<TensorSpec> tensors_of(const Like& m) {
    const int64_t E = m.n_embd, V = m.n_vocab, HD = m.head_dim, Q = HD * m.n_head, KV = HD * m.n_head_kv, F = m.n_ff;
    const std::string arch = m.arch;
    std::vector<TensorSpec> t{{TensorSpec::Weight, "token_embd.weight", {E, V}}};
    if (!m.tied) t.push_back({TensorSpec::Weight, "output.weight", {E, V}});
    t.push_back({TensorSpec::Ones, "output_norm.weight", {E}});
    if (m.llama3_rope_factor > 0) t.push_back({TensorSpec::RopeFreqs, "rope_freqs.weight", {HD / 2}});
    for (int l = 0; l < m.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        auto add = [&](TensorSpec::Fill f, const char* name, std::vector<int64_t> ne) {
            t.push_back({f, b + name, std::move(ne)});
        };
        add(TensorSpec::Ones, "attn_norm.weight", {E});
        add(TensorSpec::Weight, "attn_q.weight", {E, Q});
        add(TensorSpec::Weight, "attn_k.weight", {E, KV});
        add(TensorSpec::Weight, "attn_v.weight", {E, KV});
        if (arch == "qwen2") {
            add(TensorSpec::Zeros, "attn_q.bias", {Q});
            add(TensorSpec::Zeros, "attn_k.bias", {KV});
            add(TensorSpec::Zeros, "attn_v.bias", {KV});
        }
        if (arch == "qwen3" || arch == "gemma3") {
            add(TensorSpec::Ones, "attn_q_norm.weight", {HD});
            add(TensorSpec::Ones, "attn_k_norm.weight", {HD});
        }
        add(TensorSpec::Weight, "attn_output.weight", {Q, E});
        if (arch == "gemma3") add(TensorSpec::Ones, "post_attention_norm.weight", {E});
        add(TensorSpec::Ones, "ffn_norm.weight", {E});
        add(TensorSpec::Weight, "ffn_gate.weight", {E, F});
        add(TensorSpec::Weight, "ffn_up.weight", {E, F});
        add(TensorSpec::Weight, "ffn_down.weight", {F, E});
        if (arch == "gemma3") add(TensorSpec::Ones, "post_ffw_norm.weight", {E});
    }
    return t;
}

Metadata metadata_of(const Like& m, uint64_t seed) {
    const std::string a = std::string(m.arch) + ".";
    auto u32 = [](int v) { return ember::GgufValue(static_cast<uint32_t>(v)); };
    auto f32 = [](double v) { return ember::GgufValue(static_cast<float>(v)); };
    auto str = [](std::string v) { return ember::GgufValue(std::move(v)); };
    Metadata kv{
        {"general.architecture", str(m.arch)},
        {"general.type", str("model")},
        {"general.name", str(std::string(m.name) + " (random weights)")},
        {"general.description", str("random weights from ember-make-model --like " + std::string(m.name) + " --seed " +
                                    std::to_string(seed) + ": for speed measurements only")},
        {"general.size_label", str(m.size_label)},
        {a + "block_count", u32(m.n_layer)},
        {a + "context_length", u32(m.n_ctx_train)},
        {a + "embedding_length", u32(m.n_embd)},
        {a + "feed_forward_length", u32(m.n_ff)},
        {a + "attention.head_count", u32(m.n_head)},
        {a + "attention.head_count_kv", u32(m.n_head_kv)},
        {a + "rope.freq_base", f32(m.rope_base)},
        {a + "attention.layer_norm_rms_epsilon", f32(m.norm_eps)},
        {a + "attention.key_length", u32(m.head_dim)},
        {a + "attention.value_length", u32(m.head_dim)},
        {a + "rope.dimension_count", u32(m.head_dim)},
        {a + "vocab_size", u32(m.n_vocab)},
    };
    if (m.sliding_window) kv.emplace_back(a + "attention.sliding_window", u32(m.sliding_window));
    kv.emplace_back("general.file_type", u32(7));  // Q8_0, what this file holds; quantize_model sets TYPE's

    // SentencePiece: <unk> <s> </s>, <0x00>..<0xFF>, then filler pieces up to the real vocabulary size.
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    for (int i = 0; i < m.n_vocab; ++i) {
        char b[32];
        int type = 1;  // normal
        if (i == 0) std::snprintf(b, sizeof b, "<unk>"), type = 2;
        else if (i == 1) std::snprintf(b, sizeof b, "<s>"), type = 3;
        else if (i == 2) std::snprintf(b, sizeof b, "</s>"), type = 3;
        else if (i < 259) std::snprintf(b, sizeof b, "<0x%02X>", i - 3), type = 6;
        else std::snprintf(b, sizeof b, "\xE2\x96\x81tok%d", i);
        tokens.emplace_back(b);
        scores.push_back(type == 1 ? -static_cast<float>(i) : 0.0f);
        types.push_back(type);
    }
    kv.emplace_back("tokenizer.ggml.model", str("llama"));
    kv.emplace_back("tokenizer.ggml.pre", str("default"));
    kv.emplace_back("tokenizer.ggml.tokens", std::move(tokens));
    kv.emplace_back("tokenizer.ggml.scores", std::move(scores));
    kv.emplace_back("tokenizer.ggml.token_type", std::move(types));
    kv.emplace_back("tokenizer.ggml.bos_token_id", u32(1));
    kv.emplace_back("tokenizer.ggml.eos_token_id", u32(2));
    kv.emplace_back("tokenizer.ggml.unknown_token_id", u32(0));
    kv.emplace_back("tokenizer.ggml.add_bos_token", true);
    kv.emplace_back("tokenizer.ggml.add_eos_token", false);
    return kv;
}

// Writes the random Q8_0 model (through ember's GGUF writer); `progress` gets the fraction of tensor bytes
// written.
void write_source(const Like& m, uint64_t seed, const std::string& path, const std::function<void(double)>& progress) {
    const std::vector<TensorSpec> ts = tensors_of(m);
    std::vector<ember::GgufTensor> infos;
    for (const TensorSpec& t : ts) infos.push_back({t.name, t.q8_0() ? "Q8_0" : "F32", t.ne});
    ember::GgufWriter o(path, metadata_of(m, seed), infos);
    uint64_t total = 0;
    for (size_t i = 0; i < ts.size(); ++i) total += o.tensor_bytes(i);

    uint64_t done = 0;
    std::vector<uint8_t> buf;
    for (const TensorSpec& t : ts) {
        SplitMix rng{hash(t.name, 0xcbf29ce484222325ull ^ seed)};
        if (t.q8_0()) {
            constexpr uint64_t kChunkBlocks = 1 << 16;  // 2 MiB at a time
            const uint64_t n_blocks = t.n() / 32;
            for (uint64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
                const uint64_t nb = std::min(kChunkBlocks, n_blocks - b0);
                buf.resize(nb * 34);
                for (uint64_t b = 0; b < nb; ++b) q8_0_block(rng, 0.02f, buf.data() + b * 34);
                o.write(buf.data(), buf.size());
                done += buf.size();
                if (progress) progress(static_cast<double>(done) / static_cast<double>(total));
            }
        } else {
            std::vector<float> v;
            if (t.fill == TensorSpec::RopeFreqs) v = llama3_rope_factors(m);
            else v.assign(t.n(), t.fill == TensorSpec::Ones ? 1.0f : 0.0f);
            o.write(v.data(), v.size() * 4);
            done += v.size() * 4;
        }
        o.end_tensor();
    }
    o.commit();
}

}  // namespace

int main(int argc, char** argv) {
    std::string names, types;
    for (const Like& l : kLikes) names += (names.empty() ? "" : " ") + std::string(l.name);
    for (const auto& t : ember::quantize_types()) types += (types.empty() ? "" : " ") + t;
    CLI::App app{"ember-make-model: a GGUF with random weights and a known model's shapes and metadata (for speed tests)"};
    std::string like, out;
    ember::QuantizeParams qp;
    qp.type = "Q4_K_M";
    uint64_t seed = 42;
    int layers = 0, vocab = 0;
    bool list = false, quiet = false;
    app.add_option("--like", like, "the model whose shapes to copy: " + names);
    app.add_option("--type", qp.type, "weight type or mix (as ember-quantize): " + types)->capture_default_str();
    app.add_option("-o,--output", out, "the GGUF to write");
    app.add_option("--seed", seed, "random seed (the same seed gives the same file)")->capture_default_str();
    app.add_option("--layers", layers, "override the layer count (a smaller file, e.g. for tests)")->check(CLI::Range(1, 1024));
    app.add_option("--vocab", vocab, "override the vocabulary size (at least 259)")->check(CLI::Range(259, 1 << 20));
    app.add_option("-t,--threads", qp.n_threads, "threads for quantizing (0: all hardware threads)")->check(CLI::Range(0, 4096));
    app.add_flag("--list", list, "list the models and their shapes");
    app.add_flag("-q,--quiet", quiet, "no progress lines");
    CLI11_PARSE(app, argc, argv);

    if (list) {
        std::printf("%-14s %-7s %6s %6s %5s %4s %4s %6s %7s %7s %10s %7s %s\n", "name", "arch", "embd", "layers", "heads",
                    "kv", "hd", "ffn", "vocab", "ctx", "rope base", "eps", "tied");
        for (const Like& l : kLikes)
            std::printf("%-14s %-7s %6d %6d %5d %4d %4d %6d %7d %7d %10.0f %7.0e %s\n", l.name, l.arch, l.n_embd, l.n_layer,
                        l.n_head, l.n_head_kv, l.head_dim, l.n_ff, l.n_vocab, l.n_ctx_train, l.rope_base, l.norm_eps,
                        l.tied ? "yes" : "no");
        return 0;
    }
    int last = -1;          // the percentage shown last
    bool mid_line = false;  // a progress line is open on stderr
    try {
        const Like* found = nullptr;
        for (const Like& l : kLikes)
            if (like == l.name) found = &l;
        if (!found) throw ember::Error(ember::Status::InvalidArgument, "--like: one of " + names + " (got '" + like + "')");
        if (out.empty()) throw ember::Error(ember::Status::InvalidArgument, "-o OUT.gguf is required");
        auto upper = [](std::string s) {
            for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            return s;
        };
        bool known_type = false;
        for (const auto& t : ember::quantize_types()) known_type |= t == upper(qp.type);
        if (!known_type) throw ember::Error(ember::Status::InvalidArgument, "--type: one of " + types);
        Like m = *found;
        if (layers) m.n_layer = layers;
        if (vocab) m.n_vocab = vocab;

        const double t0 = ember_examples::now_ms();
        // Beside OUT (the same file system, as quantize_model's own temporary file), removed whatever happens.
        const std::string src = out + ".random-q8_0-" + std::to_string(::getpid()) + ".tmp";
        struct Remove {
            std::string path;
            ~Remove() { std::remove(path.c_str()); }
        } remove_src{src};
        auto show = [&](const char* what, double f) {
            const int pct = static_cast<int>(f * 100);
            if (quiet || pct == last) return;
            last = pct;
            mid_line = true;
            std::fprintf(stderr, "\r%s: %3d%%", what, pct);
            std::fflush(stderr);
        };
        write_source(m, seed, src, [&](double f) { show("random Q8_0 weights", f); });
        if (std::exchange(mid_line, false)) std::fprintf(stderr, "\n");
        last = -1;
        qp.allow_requantize = true;
        qp.progress = [&](float f) {
            show(("quantizing to " + qp.type).c_str(), f);
            return true;
        };
        const ember::QuantizeResult r = ember::quantize_model(src, out, qp);
        if (std::exchange(mid_line, false)) std::fprintf(stderr, "\n");
        std::printf("%s: %s shapes (%d layers, vocabulary %d), %s, %.3f B parameters, %.2f MiB, seed %llu, %.1f s\n",
                    out.c_str(), m.name, m.n_layer, m.n_vocab, r.type.c_str(), static_cast<double>(r.n_elements) / 1e9,
                    static_cast<double>(r.file_bytes_out) / 1048576.0, static_cast<unsigned long long>(seed),
                    (ember_examples::now_ms() - t0) / 1000.0);
        return 0;
    } catch (const std::exception& e) {
        if (mid_line) std::fprintf(stderr, "\n");
        return ember_examples::fail(e);
    }
}
