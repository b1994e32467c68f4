// Golden outputs from llama.cpp (tests/data/golden; the arch goldens in $EMBER_TESTDATA/arch): prompt tokens, top-10 logits at every prompt
// position, every last-position logit, and the greedy continuation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "gguf/reader.hpp"
#include "gguf/writer.hpp"
#include "tensor/dequantize.hpp"
#include "tensor/quantize.hpp"
#include "models.hpp"

using namespace ember;
using json = nlohmann::json;

namespace {

std::string from_hex(const std::string& h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

struct Result {
    float max_top_diff = 0, max_last_diff = 0;
    size_t greedy_matched = 0, greedy_required = 0;
};

// Checks one golden file. logit_tol: allowed |ember - llama.cpp| on any compared logit.
// margin_floor: greedy tokens must match up to the first step whose margin is below it (0: all steps):
// the golden's own margins when it has them, else ember's top-2 gap at that step.
Result check_golden(const std::string& golden_path, const std::string& model_path, float logit_tol, float margin_floor) {
    const json g = json::parse(std::ifstream(golden_path));
    Model model = Model::load(model_path);
    const Tokenizer& tok = model.tokenizer();
    Result r;

    const auto expect_prompt = g.at("prompt_tokens").get<std::vector<Token>>();
    const auto prompt = tok.encode(g.at("prompt").get<std::string>(), g.at("add_bos").get<bool>(), true);
    REQUIRE(prompt == expect_prompt);

    Session s(model);
    s.prefill(prompt, true);
    const auto& top = g.at("prompt_logits_top");
    REQUIRE(top.size() == prompt.size());
    for (size_t i = 0; i < prompt.size(); ++i) {
        const auto l = s.logits_at(static_cast<int>(i));
        for (const auto& pair : top[i]) {
            const float d = std::fabs(l[pair[0].get<size_t>()] - pair[1].get<float>());
            r.max_top_diff = std::max(r.max_top_diff, d);
        }
    }
    if (g.contains("last_logits")) {
        const auto& last = g["last_logits"];
        REQUIRE(last.size() == static_cast<size_t>(model.n_vocab()));
        for (size_t i = 0; i < last.size(); ++i)
            r.max_last_diff = std::max(r.max_last_diff, std::fabs(s.logits()[i] - last[i].get<float>()));
    }
    CHECK(r.max_top_diff <= logit_tol);
    CHECK(r.max_last_diff <= logit_tol);

    const auto greedy = g.at("greedy_tokens").get<std::vector<Token>>();
    r.greedy_required = greedy.size();
    if (margin_floor > 0 && g.contains("greedy_margins")) {
        const auto m = g["greedy_margins"].get<std::vector<float>>();
        for (size_t i = 0; i < m.size(); ++i)
            if (m[i] < margin_floor) {
                r.greedy_required = i + 1;  // the step itself must still be within reach; parting after it is allowed
                break;
            }
    }
    Sampler greedy_sampler = Sampler::greedy();
    std::vector<Token> got;
    const bool own_margins = margin_floor > 0 && !g.contains("greedy_margins");
    for (size_t i = 0; i < greedy.size(); ++i) {
        if (own_margins && r.greedy_required == greedy.size()) {
            std::vector<float> l(s.logits().begin(), s.logits().end());
            std::partial_sort(l.begin(), l.begin() + 2, l.end(), std::greater<float>());
            if (l[0] - l[1] < margin_floor) r.greedy_required = i;  // a near-tie: parting here is allowed
        }
        const Token t = greedy_sampler.sample(s.logits());
        got.push_back(t);
        if (t != greedy[i]) break;
        ++r.greedy_matched;
        if (i + 1 < greedy.size()) s.decode(t);
    }
    CHECK(r.greedy_matched >= std::min(r.greedy_required, greedy.size()));
    if (r.greedy_matched == greedy.size()) {
        std::string text;  // the golden's bytes are the tokens' pieces, concatenated
        for (Token t : got) text += tok.piece(t, true);
        CHECK(text == from_hex(g.at("greedy_text_hex").get<std::string>()));
    }
    MESSAGE(golden_path << ": max |Δ| top-10 " << r.max_top_diff << ", last " << r.max_last_diff << "; greedy "
                        << r.greedy_matched << "/" << greedy.size() << " tokens match (required " << r.greedy_required << ")");
    return r;
}

}  // namespace

// llama.cpp keeps its KV cache in F16 and sits up to ~0.013 from an exact float64 pass on these files.
constexpr float kTinyTol = 0.02f;

TEST_CASE("stories260K goldens") {
    for (const char* name : {"once", "park", "bird-nobos"}) {
        CAPTURE(name);
        check_golden(test::testdata(std::string("golden/stories260K-") + name + ".json"),
                     test::testdata("models/stories260K.gguf"), kTinyTol, 0);
    }
}

TEST_CASE("llama-2-tiny-random golden") {
    check_golden(test::testdata("golden/llama-2-tiny-random-hello.json"), test::testdata("models/llama-2-tiny-random.gguf"),
                 kTinyTol, 0);
}

TEST_CASE("SmolLM2-135M-Instruct Q4_1 goldens") {
    const std::string model = test::smollm2_path();
    // ember rounds activations to 8 bits before quantized dot products as llama.cpp does, but its other
    // roundings (attention, activation functions, summation order) differ, and measured differences reach
    // ~1.2. So the general rule applies: an independent float64 pass lands up to 1.4 from llama.cpp, hence
    // logits within 2.0, and greedy tokens equal up to the first step whose margin is below 0.5.
    for (const char* name : {"capital", "chat"}) {
        CAPTURE(name);
        check_golden(test::testdata(std::string("golden/smollm2-") + name + ".json"), model, 2.0f, 0.5f);
    }
}

TEST_CASE("SmolLM2: the first prompt position is llama.cpp's up to the order of float sums") {
    // At position 0 attention mixes nothing (softmax over one key is 1), so only the quantized matmuls,
    // norms and activation rounding remain. The 8-bit activations are rounded as llama.cpp's x86 path rounds
    // them (scale 127/amax, ties to even) and every block's integer sum is the same; what differs is the
    // order in which the float block products are added (ember's repacked kernels add each row's blocks
    // in order, ggml keeps eight partial lanes), measured at 0.03-0.07 over 30 layers. A wrong block moves
    // these logits by whole units; another activation rounding would hide in that noise (before repacking,
    // when ember added in ggml's order, this held to 2e-3). The larger gap at later positions comes from
    // llama.cpp's CPU flash attention, which accumulates V·p in F16; ember accumulates in F32.
    const std::string model_path = test::smollm2_path();
    Model model = Model::load(model_path);
    for (const char* name : {"capital", "chat"}) {
        CAPTURE(name);
        const json g = json::parse(std::ifstream(test::testdata(std::string("golden/smollm2-") + name + ".json")));
        Session s(model);
        s.decode(g.at("prompt_tokens")[0].get<Token>());
        for (const auto& pair : g.at("prompt_logits_top")[0])
            CHECK(std::fabs(s.logits()[pair[0].get<size_t>()] - pair[1].get<float>()) < 0.15f);
    }
}

TEST_CASE("Gemma3-270M Q4_K_M goldens") {
    // The real-model rule: logits within 2.0 (an independent float64 pass lands 0.86 from llama.cpp on
    // this file), greedy tokens equal up to the first step whose margin in llama.cpp is below 0.5.
    // One exception: in "chat", position 1 follows <start_of_turn>, where every logit sits near -65.
    // There the float64 pass (tests/golden_llama/gemma3_f64.py) lands 1.32 from llama.cpp and ember 1.81
    // from it, on opposite sides, so ember and llama.cpp are 2.58 apart; the next test case holds ember
    // to the float64 pass at every position instead. Position 0 matches llama.cpp exactly.
    const std::string model = test::gemma3_path();
    const std::pair<const char*, float> goldens[] = {{"capital", 2.0f}, {"chat", 2.75f}, {"count", 2.0f}};
    for (const auto& [name, tol] : goldens) {
        CAPTURE(name);
        check_golden(test::testdata(std::string("golden/gemma3-") + name + ".json"), model, tol, 0.5f);
    }
}

TEST_CASE("Gemma3-270M Q4_K_M: within 2.0 of an independent float64 pass at every prompt position") {
    // golden/gemma3-*-f64.json: exact arithmetic on the same dequantized weights, at llama.cpp's top-10
    // ids. llama.cpp itself lands up to 1.68 from it (chat, position 2); ember measured 1.81 (chat,
    // position 1), 0.83 (capital), 0.42 (count). The rule is the real-model rule's 2.0.
    Model model = Model::load(test::gemma3_path());
    for (const std::string name : {"capital", "chat", "count"}) {
        CAPTURE(name);
        const json g = json::parse(std::ifstream(test::testdata("golden/gemma3-" + name + "-f64.json")));
        const auto prompt = g.at("prompt_tokens").get<std::vector<Token>>();
        Session s(model);
        s.prefill(prompt, true);
        float worst = 0;
        for (size_t i = 0; i < prompt.size(); ++i) {
            const auto l = s.logits_at(static_cast<int>(i));
            for (const auto& pair : g.at("prompt_logits_top")[i])
                worst = std::max(worst, std::fabs(l[pair[0].get<size_t>()] - pair[1].get<float>()));
        }
        MESSAGE(name << ": max |ember - float64| " << worst);
        CHECK(worst <= 2.0f);
    }
}

TEST_CASE("SmolLM2: its own chat template renders the golden's ChatML prompt, token for token") {
    // The golden's prompt was written by hand; SmolLM2's template adds that system line itself.
    const Model model = Model::load(test::smollm2_path());
    REQUIRE_FALSE(model.chat_template().empty());
    const json g = json::parse(std::ifstream(test::testdata("golden/smollm2-chat.json")));
    const std::string prompt = apply_chat_template(model, {{"user", "What is 2+2?"}});
    CHECK(prompt == g.at("prompt").get<std::string>());
    const auto expect = g.at("prompt_tokens").get<std::vector<Token>>();
    CHECK(model.tokenizer().encode(prompt, g.at("add_bos").get<bool>(), true) == expect);
}

// $EMBER_TESTDATA/arch/README.md: F32/F16 within 0.1; quantized within 1.0 (activation quantization
// alone moves these sharp random models' logits by up to ~0.9 against exact math).
struct ArchFile {
    const char* stem;
    float tol;
};

void check_arch(std::initializer_list<ArchFile> files) {
    for (ArchFile f : files) {
        CAPTURE(f.stem);
        check_golden(test::fixture(std::string("arch/") + f.stem + ".json"), test::fixture(std::string("arch/") + f.stem + ".gguf"),
                     f.tol, f.tol);
    }
}

TEST_CASE("arch: llama GQA in every weight type") {
    check_arch({{"llama-gqa-f32", 0.1f}, {"llama-gqa-f16", 0.1f}, {"llama-gqa-q8_0", 1.0f}, {"llama-gqa-q4_0", 1.0f},
                {"llama-gqa-q4_k_m", 1.0f}, {"llama-gqa-q6_k", 1.0f}});
}

TEST_CASE("arch: qwen2, Q/K/V biases, NeoX RoPE, tied embeddings") { check_arch({{"qwen2-f16", 0.1f}}); }

TEST_CASE("arch: qwen3, per-head Q/K norms, head size 128, every weight type") {
    check_arch({{"qwen3-f32", 0.1f}, {"qwen3-q8_0", 1.0f}, {"qwen3-q4_0", 1.0f}, {"qwen3-q4_k_m", 1.0f}, {"qwen3-q6_k", 1.0f}});
}

TEST_CASE("arch: gemma2, soft-capping, sliding window, post-norms, GELU") { check_arch({{"gemma2-f16", 0.1f}}); }

TEST_CASE("arch: gemma3, local/global layers with their own RoPE bases, Q/K norms") { check_arch({{"gemma3-f16", 0.1f}}); }

TEST_CASE("arch: phi3, fused QKV and gate/up weights") { check_arch({{"phi3-f16", 0.1f}}); }

TEST_CASE("arch: mixture of experts, Mixtral-style llama and qwen3moe") {
    check_arch({{"llama-moe-f16", 0.1f}, {"qwen3moe-f16", 0.1f}});
}

// MXFP4 (GGUF type 39): llama-quantize's MXFP4_MOE of the qwen3moe arch model (experts MXFP4, the other
// matrices Q8_0), with llama.cpp's golden on it. ember dequantizes MXFP4 rows and dots them with the
// activations rounded to Q8_0, as llama.cpp's CPU kernel does; the quantized-file rule applies.
TEST_CASE("MXFP4 weights: llama.cpp's MXFP4_MOE file runs within the quantized rule") {
    check_golden(test::testdata("golden/mxfp4-qwen3moe.json"), test::testdata("models/qwen3moe-mxfp4.gguf"), 1.0f, 1.0f);
}

TEST_CASE("arch: MXFP4, ember's quantizer gives llama-quantize's bytes for the experts of the F16 base") {
    const gguf::File base = gguf::File::open(test::fixture("arch/qwen3moe-f16.gguf"));
    const gguf::File mx = gguf::File::open(test::testdata("models/qwen3moe-mxfp4.gguf"));
    int checked = 0;
    for (const auto& t : mx.tensors()) {
        if (t.type != tensor::TensorType::MXFP4) continue;
        CAPTURE(t.name);
        const gguf::TensorInfo* src = base.find_tensor(t.name);
        REQUIRE(src);
        REQUIRE(src->n_elements == t.n_elements);
        std::vector<float> f(src->n_elements);
        tensor::dequantize_row(src->type, src->data, f.data(), static_cast<int64_t>(f.size()));
        std::vector<uint8_t> q(t.n_bytes);
        REQUIRE(tensor::quantize_row(tensor::TensorType::MXFP4, f.data(), q.data(), static_cast<int64_t>(f.size())) == t.n_bytes);
        CHECK(std::memcmp(q.data(), t.data, t.n_bytes) == 0);
        // And back: within half a block's largest magnitude (the scale is at most amax/8 and the values
        // reach 12 scales, so the worst case is clipping just under 16).
        std::vector<float> back(f.size());
        tensor::dequantize_row(tensor::TensorType::MXFP4, t.data, back.data(), static_cast<int64_t>(back.size()));
        for (size_t b = 0; b < back.size(); b += 32) {
            float amax = 0;
            for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(f[i]));
            for (size_t i = b; i < b + 32; ++i) REQUIRE(std::fabs(back[i] - f[i]) <= 0.5f * amax);
        }
        ++checked;
    }
    CHECK(checked == 6);  // gate, up and down experts of both layers
}

// RoPE scaling (tests/golden_llama/make_yarn.sh): arch models with scaling keys added, ~100 prompt tokens
// so that positions run far past YaRN's original context (32 or 64). Each golden names its base file and
// the keys; the model is written again here from them (the same bytes ggml's writer gave llama.cpp).
struct TempModel {
    std::string path;
    ~TempModel() { std::filesystem::remove(path); }
};

TempModel write_scaled_model(const json& g) {
    const gguf::File base = gguf::File::open(test::fixture("arch/" + g.at("base_model").get<std::string>()));
    gguf::Writer w(base.alignment());
    for (const auto& [k, v] : base.metadata())
        if (k != "general.alignment") w.set(k, v);
    for (const auto& kv : g.at("metadata_added")) {
        const auto key = kv.at(0).get<std::string>(), type = kv.at(1).get<std::string>();
        if (type == "str") w.set(key, gguf::Value::string(kv.at(2).get<std::string>()));
        else if (type == "f32") w.set(key, gguf::Value::f32(kv.at(2).get<float>()));
        else if (type == "u32") w.set(key, gguf::Value::u32(kv.at(2).get<uint32_t>()));
        else FAIL("unknown metadata type " << type);
    }
    for (const auto& t : base.tensors())
        w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
    if (g.contains("tensors_added"))
        for (const auto& t : g.at("tensors_added")) {
            const auto v = t.at(1).get<std::vector<float>>();
            w.add_tensor(t.at(0).get<std::string>(), tensor::TensorType::F32, {static_cast<int64_t>(v.size())}, v.data(),
                         v.size() * sizeof(float));
        }
    TempModel m{test::temp_path(g.at("model").get<std::string>())};
    w.write(m.path);
    return m;
}

// Phi-3's LongRoPE (128k files): short and long per-frequency factors, the long ones for a context longer
// than the original one (llama.cpp's context 512 and ember's default 256 are both longer than 64 and not
// than 512), cos/sin × rope.scaling.attn_factor either way.
TEST_CASE("arch: LongRoPE, short and long factors by context size, against llama.cpp") {
    std::vector<float> last[2];
    int i = 0;
    for (const std::string name : {"rope-longrope-phi3-f16-short", "rope-longrope-phi3-f16-long"}) {
        CAPTURE(name);
        const std::string golden = test::testdata("golden/" + name + ".json");
        const json g = json::parse(std::ifstream(golden));
        const TempModel m = write_scaled_model(g);
        check_golden(golden, m.path, 0.1f, 0.1f);
        last[i++] = g.at("last_logits").get<std::vector<float>>();
    }
    // The choice matters: the two goldens are far apart where the test allows 0.1.
    float d = 0.f;
    for (size_t v = 0; v < last[0].size(); ++v) d = std::max(d, std::fabs(last[0][v] - last[1][v]));
    CHECK(d > 1.f);
}

TEST_CASE("arch: RoPE scaling, YaRN and linear, against llama.cpp over 135 positions") {
    // F32/F16 rule as above. yarn-qwen3: NeoX pairs, factor 4 from 32. yarn-llama-gqa: adjacent pairs,
    // factor 8 from 64, rope.scaling.attn_factor 0.8, and yarn_* keys llama.cpp ignores for llama.
    // gemma3: the local layers stay unscaled, under YaRN and under linear scaling (Gemma 3 4B and up).
    for (const std::string name :
         {"rope-yarn-qwen3-f32", "rope-yarn-llama-gqa-f32", "rope-yarn-gemma3-f16", "rope-linear-gemma3-f16"}) {
        CAPTURE(name);
        const std::string golden = test::testdata("golden/" + name + ".json");
        const TempModel m = write_scaled_model(json::parse(std::ifstream(golden)));
        check_golden(golden, m.path, 0.1f, 0.1f);
    }
}
