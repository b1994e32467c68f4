// Hugging Face folders loaded directly (tests/data/hf, made by make_fixtures.py with transformers as the
// independent reference): the tokenizer gives transformers' ids, every prompt position's logits match
// transformers' float32 logits, greedy continuations are equal. Hostile config.json / tokenizer.json
// files end in ember::Error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "gguf/reader.hpp"
#include "hf/folder.hpp"
#include "testdata.hpp"
#include "tokenizer/vocab.hpp"

using namespace ember;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Fixture {
    const char* name;
    // Allowed |ember − transformers| over all logits, relative to the largest |logit| (at least 1).
    //  F32 weights: ember keeps keys and values in an F16 cache (relative rounding 2^-11 ≈ 4.9e-4), which
    //  moves the attention outputs and so the logits by a few 1e-4 of their scale; the float sums agree far
    //  closer (~1e-6). 1e-3 is twice the cache's rounding.
    //  BF16 weights: the golden is the same weights run in float32, and ember rounds the activations to
    //  BF16 for BF16 dot products, as llama.cpp does (2^-9 ≈ 2e-3 per element): 2e-2.
    //  FP8 weights (make_fp8.py): dequantized once to BF16 (q · scale rounded to 2^-9), then as BF16: 2e-2.
    float rel_tol;
};
constexpr Fixture kFixtures[] = {
    {"llama", 1e-3f},   {"qwen2", 1e-3f}, {"qwen3", 1e-3f},  {"qwen3-bf16", 2e-2f}, {"qwen3_moe", 1e-3f}, {"mixtral", 1e-3f},
    {"phi3", 1e-3f},    {"gemma2", 1e-3f}, {"gemma3", 1e-3f}, {"llama-fp8", 2e-2f},  {"qwen3-fp8", 2e-2f},
};

std::string dir_of(const char* name) { return test::testdata(std::string("hf/") + name); }

json golden_of(const char* name) { return json::parse(std::ifstream(dir_of(name) + "/golden.json")); }

}  // namespace

TEST_CASE("HF folder: tokenizer.json encodes as transformers does") {
    for (const Fixture& f : kFixtures) {
        CAPTURE(std::string(f.name));
        const json g = golden_of(f.name);
        const Tokenizer tok = Tokenizer::from_gguf(dir_of(f.name));  // a folder works where a GGUF file does
        CHECK(tok.encode(g["prompt"].get<std::string>(), true, true) == g["prompt_ids"].get<std::vector<Token>>());
        for (const json& c : g["tokenizer"]) {
            const std::string text = c["text"].get<std::string>();
            CAPTURE(text);
            CHECK(tok.encode(text, false, true) == c["ids"].get<std::vector<Token>>());
            CHECK(tok.encode(text, true, true) == c["ids_special"].get<std::vector<Token>>());
        }
    }
}

namespace {

// One golden case against a session of `n_ctx` (0: the model's default): the logits at c["positions"]
// (every prompt position when absent) within rel_tol of the largest |logit|, then c["greedy"] exactly.
void check_case(const Model& model, const json& c, int n_ctx, float rel_tol, const std::string& label) {
    const auto prompt = c["prompt_ids"].get<std::vector<Token>>();
    std::vector<size_t> positions(prompt.size());
    for (size_t i = 0; i < positions.size(); ++i) positions[i] = i;
    if (c.contains("positions")) positions = c["positions"].get<std::vector<size_t>>();
    const auto& want = c["logits"];
    REQUIRE(want.size() == positions.size());
    REQUIRE(want[0].size() == static_cast<size_t>(model.n_vocab()));

    SessionParams sp;
    sp.n_ctx = n_ctx;
    Session s(model, sp);
    s.prefill(prompt, true);
    float scale = 1.f, max_diff = 0.f;
    for (const auto& row : want)
        for (const auto& x : row) scale = std::max(scale, std::fabs(x.get<float>()));
    for (size_t i = 0; i < positions.size(); ++i) {
        REQUIRE(positions[i] < prompt.size());
        const auto got = s.logits_at(static_cast<int>(positions[i]));
        for (size_t v = 0; v < got.size(); ++v) max_diff = std::max(max_diff, std::fabs(got[v] - want[i][v].get<float>()));
    }
    MESSAGE(label << ": max |logit diff| " << max_diff << " (logit scale " << scale << ", relative " << max_diff / scale
                  << ", tolerance " << rel_tol << ")");
    CHECK(max_diff <= rel_tol * scale);

    std::vector<Token> got;
    Sampler greedy = Sampler::greedy();
    for (size_t i = 0; i < c["greedy"].size(); ++i) {
        const Token t = greedy.sample(s.logits());
        got.push_back(t);
        s.decode(t);
    }
    CHECK(got == c["greedy"].get<std::vector<Token>>());
}

}  // namespace

TEST_CASE("HF folder: logits and greedy tokens match transformers") {
    for (const Fixture& f : kFixtures) {
        CAPTURE(std::string(f.name));
        check_case(Model::load(dir_of(f.name)), golden_of(f.name), 0, f.rel_tol, f.name);
    }
}

// make_longrope.py: transformers turns by the short factors while a pass stays within
// original_max_position_embeddings (48) and by the long ones past it; ember chooses by the context size,
// as llama.cpp does, so a context of 48 runs the short case and one of 192 the long case. The long factors
// move these logits by ~0.6 (the golden's note), far beyond the tolerance: a wrong choice fails.
TEST_CASE("HF folder: Phi-3 LongRoPE, short and long factors, as transformers") {
    const json g = golden_of("phi3-longrope");
    const Model model = Model::load(dir_of("phi3-longrope"));
    for (const char* which : {"short", "long"}) {
        CAPTURE(std::string(which));
        const json& c = g[which];
        check_case(model, c, c["n_ctx"].get<int>(), 1e-3f, std::string("phi3-longrope ") + which);
    }
}

namespace {

using test::status_of;

std::shared_ptr<const detail::Vocab> detail_vocab(hf::Keys& keys) {
    const gguf::File f = gguf::File::assemble(std::move(keys), {}, nullptr);
    return detail::load_vocab(f);
}

Status tokenizer_status(const std::string& tokenizer_json, const std::string& tokenizer_config = "",
                        const std::string& config = "") {
    return status_of([&] {
        hf::Keys keys;
        hf::tokenizer_keys(tokenizer_json, tokenizer_config, config, keys);
        const Tokenizer tok(detail_vocab(keys));
        (void)tok.encode("Hello <s> world", true, true);
    });
}

// A copy of a fixture folder in the temporary folder, with config.json replaced by `config` (when given).
struct TempFolder {
    std::string path;
    TempFolder(const char* fixture, const std::string& config) : path(test::temp_path(std::string("hf-") + fixture)) {
        fs::remove_all(path);
        fs::copy(dir_of(fixture), path);
        if (!config.empty()) std::ofstream(path + "/config.json", std::ios::trunc) << config;
    }
    ~TempFolder() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("HF folder: Phi-3 LongRoPE's keys and tensors, transformers 5's form, bad factors end in errors") {
    const json g = golden_of("phi3-longrope");
    const json cfg = json::parse(test::read_file(dir_of("phi3-longrope") + "/config.json"));
    {  // what llama.cpp's converter writes: the factors as F32 tensors, transformers' magnitude as attn_factor
        const gguf::File f = hf::open_folder(dir_of("phi3-longrope"));
        CHECK(f.get_uint("phi3.rope.scaling.original_context_length") == 48);
        CHECK(f.get_float("phi3.rope.scaling.attn_factor") == doctest::Approx(g["attn_factor"].get<double>()).epsilon(1e-6));
        CHECK(!f.has("phi3.rope.scaling.type"));
        for (const char* which : {"long", "short"}) {
            const gguf::TensorInfo* t = f.find_tensor(std::string("rope_factors_") + which + ".weight");
            REQUIRE(t != nullptr);
            CHECK(t->type == tensor::TensorType::F32);
            const auto want = cfg["rope_scaling"][std::string(which) + "_factor"].get<std::vector<float>>();
            REQUIRE(t->ne[0] == static_cast<int64_t>(want.size()));
            CHECK(std::memcmp(t->data, want.data(), want.size() * sizeof(float)) == 0);
        }
    }
    auto logits = [&](const json& c) {
        const TempFolder f("phi3-longrope", c.dump());
        const Model m = Model::load(f.path);
        SessionParams sp;
        sp.n_ctx = 192;
        Session s(m, sp);
        return test::prompt_logits(s, g["long"]["prompt_ids"].get<std::vector<Token>>());
    };
    // transformers 5 saves the same settings as rope_parameters (original context and partial_rotary_factor
    // inside); "su" is LongRoPE's first name. Both run exactly as the hub form.
    const auto base = logits(cfg);
    json v5 = cfg;
    for (const char* k : {"rope_scaling", "rope_theta", "original_max_position_embeddings"}) v5.erase(k);
    v5["rope_parameters"] = {{"rope_type", "longrope"}, {"rope_theta", 10000.0}, {"partial_rotary_factor", 1.0},
                             {"original_max_position_embeddings", 48}, {"short_factor", cfg["rope_scaling"]["short_factor"]},
                             {"long_factor", cfg["rope_scaling"]["long_factor"]}};
    CHECK(test::max_diff(logits(v5), base) == 0.f);
    json su = cfg;
    su["rope_scaling"]["type"] = "su";
    CHECK(test::max_diff(logits(su), base) == 0.f);

    auto status = [](const json& c) {
        const TempFolder f("phi3-longrope", c.dump());
        return status_of([&] { (void)Model::load(f.path); });
    };
    auto with = [&](const char* key, const json& v) {
        json c = cfg;
        c["rope_scaling"][key] = v;
        return c;
    };
    json no_orig = cfg, orig_1 = cfg, no_long = cfg;
    no_orig.erase("original_max_position_embeddings");
    orig_1["original_max_position_embeddings"] = 1;
    no_long["rope_scaling"].erase("long_factor");
    const json short7 = json(std::vector<float>(7, 1.f)), short9 = json(std::vector<float>(9, 1.f));
    const json bad_file[] = {
        with("short_factor", short7), with("long_factor", short9), with("short_factor", json::array()),
        with("long_factor", {1, 2, 3, 4, 5, 6, 7, 0}), with("long_factor", {1, 2, 3, 4, 5, 6, 7, -2}),
        with("long_factor", {1, 2, 3, 4, 5, 6, 7, "8"}), with("long_factor", {1, 2, 3, 4, 5, 6, 7, 1e300}),
        with("long_factor", {1, 2, 3, 4, 5, 6, 7, nullptr}), with("short_factor", "1.0"), with("short_factor", 1.0),
        with("attention_factor", -1.0), with("factor", 0.0), no_orig, orig_1, no_long,
    };
    for (const json& c : bad_file) {
        CAPTURE(c["rope_scaling"].dump().substr(0, 160));
        CHECK(status(c) == Status::BadFile);
    }
    CHECK(status(with("type", "yarn")) == Status::Unsupported);  // Phi-3's YaRN: LongRoPE to transformers 5, not to llama.cpp
    CHECK(status(with("attention_factor", 1.0)) == Status::Ok);  // an explicit magnitude, as transformers takes it
}

TEST_CASE("HF folder: hostile tokenizer.json and tokenizer_config.json end in errors") {
    const std::string good = test::read_file(dir_of("qwen2") + "/tokenizer.json");
    const std::string spm = test::read_file(dir_of("mixtral") + "/tokenizer.json");
    REQUIRE(tokenizer_status(good) == Status::Ok);
    REQUIRE(tokenizer_status(spm) == Status::Ok);
    auto replaced = [](std::string s, const std::string& from, const std::string& to) {
        const size_t at = s.find(from);
        REQUIRE(at != std::string::npos);
        return s.replace(at, from.size(), to);
    };
    const std::string bad_file[] = {
        "", "{", "[]", "null", "{\"model\": 5}", "{\"model\": {}}", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
        "{\"model\": {\"vocab\": {\"a\": -1}}}", "{\"model\": {\"vocab\": {\"a\": 1e3}}}",
        "{\"model\": {\"vocab\": {\"a\": 18446744073709551615}}}", "{\"model\": {\"vocab\": {\"a\": 16777215}}}",
        "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 0}}}", std::string(100000, '[') + std::string(100000, ']'),
        std::string("{\"model\": {\"vocab\": {\"a\": 0}}}\0", 29), std::string("{\"model\": {\"vocab\": {\"\xff\": 0}}}"),
        replaced(good, "\"merges\": [", "\"merges\": [1, "), replaced(good, "\"merges\": [", "\"merges\": [[\"a\"], "),
        replaced(good, "\"merges\": [", "\"merges\": [\"ab\", "), replaced(good, "\"added_tokens\": [", "\"added_tokens\": [7, "),
        replaced(good, "\"id\": 0,", "\"id\": 99999999,"), replaced(good, "\"id\": 0,", "\"id\": \"0\","),
        replaced(good, "\"content\": \"<|endoftext|>\"", "\"content\": \"\""),
        replaced(good, "\"ignore_merges\": false", "\"ignore_merges\": 3"),
    };
    for (const std::string& t : bad_file) {
        CAPTURE(t.substr(0, 80));
        CHECK(tokenizer_status(t) == Status::BadFile);
    }
    const std::string unsupported[] = {
        replaced(good, "\"type\": \"BPE\"", "\"type\": \"Unigram\""), replaced(good, "\"type\": \"BPE\"", "\"type\": \"WordPiece\""),
        replaced(good, "\\\\p{N}|", "\\\\p{N}+|"),  // a pre-tokenizer regex ember does not know
        replaced(good, "\"normalizer\": null", "\"normalizer\": {\"type\": \"Lowercase\"}"),
        replaced(spm, "\"prepend_scheme\": \"first\"", "\"prepend_scheme\": \"sometimes\""),
        replaced(spm, "\"split\": false", "\"split\": true"),
        replaced(good, "\"post_processor\": {", "\"post_processor\": {\"type\": \"BertProcessing\"}, \"x\": {"),
        replaced(good, "\"merges\": [", "\"merges\": [[\"a b\", \"c\"], "),
    };
    for (const std::string& t : unsupported) {
        CAPTURE(t.substr(0, 80));
        CHECK(tokenizer_status(t) == Status::Unsupported);
    }
    // tokenizer_config.json and config.json beside it
    CHECK(tokenizer_status(good, "{\"bos_token\": \"<no such token>\"}") == Status::BadFile);
    CHECK(tokenizer_status(good, "{\"bos_token\": 5}") == Status::BadFile);
    CHECK(tokenizer_status(good, "{\"chat_template\": 5}") == Status::BadFile);
    CHECK(tokenizer_status(good, "{\"add_bos_token\": \"yes\"}") == Status::BadFile);
    CHECK(tokenizer_status(good, "[") == Status::BadFile);
    CHECK(tokenizer_status(good, "", "{\"bos_token_id\": -4}") == Status::BadFile);
    CHECK(tokenizer_status(good, "", "{\"bos_token_id\": [12345678901]}") == Status::BadFile);
    CHECK(tokenizer_status(good, "{\"chat_template\": [{\"name\": \"default\", \"template\": \"x\"}, 3]}") == Status::Ok);
}

TEST_CASE("HF folder: mutated tokenizer.json and config.json never crash") {
    // Random byte changes and truncations of real files: each parse ends in success or ember::Error.
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    auto next = [&] {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        return seed;
    };
    const std::string files[] = {test::read_file(dir_of("qwen2") + "/tokenizer.json"),
                                 test::read_file(dir_of("phi3") + "/tokenizer.json")};
    for (const std::string& base : files)
        for (int i = 0; i < 150; ++i) {
            std::string t = base;
            const int edits = 1 + static_cast<int>(next() % 4);
            for (int e = 0; e < edits; ++e) {
                const size_t at = next() % t.size();
                if (next() % 8 == 0) t.resize(at);
                else if (!t.empty()) t[at % t.size()] = "{}[]\":,0-9 \\ax\xff"[next() % 16];
                if (t.empty()) break;
            }
            (void)tokenizer_status(t);
        }
    const std::string config = test::read_file(dir_of("qwen3_moe") + "/config.json");
    for (int i = 0; i < 40; ++i) {
        std::string c = config;
        c[next() % c.size()] = "{}[]\":,09 -ex"[next() % 13];
        const TempFolder f("qwen3_moe", c);
        (void)status_of([&] { (void)Model::load(f.path); });
    }
}

TEST_CASE("HF folder: hostile config.json and weights end in errors") {
    const std::string config = test::read_file(dir_of("qwen3_moe") + "/config.json");
    auto with = [&](const std::string& from, const std::string& to) {
        std::string c = config;
        const size_t at = c.find(from);
        REQUIRE(at != std::string::npos);
        return c.replace(at, from.size(), to);
    };
    auto load_status = [](const std::string& cfg, const char* fixture = "qwen3_moe") {
        const TempFolder f(fixture, cfg);
        return status_of([&] { (void)Model::load(f.path); });
    };
    REQUIRE(load_status(config) == Status::Ok);
    // 300,000 empty objects in an unknown key: read in linear time and ignored (nlohmann's callback
    // parser, used before, took time in the square of the count: 1.8 s for 100,000, minutes for millions).
    std::string many = "\"x_unused\": [{}";
    for (int i = 1; i < 300000; ++i) many += ",{}";
    CHECK(load_status(with("\"hidden_size\": 64", many + "], \"hidden_size\": 64")) == Status::Ok);
    const std::string bad_file[] = {
        " ", "[]", "{}", with("\"hidden_size\": 64", "\"hidden_size\": \"64\""), with("\"hidden_size\": 64", "\"hidden_size\": -64"),
        with("\"hidden_size\": 64", "\"hidden_size\": 1e40"), with("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 100000"),
        with("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"), with("\"head_dim\": 16", "\"head_dim\": 8"),
        with("\"num_local_experts\": 4", "\"num_local_experts\": 3"), with("\"num_local_experts\": 4", "\"num_local_experts\": 5000"),
        with("\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9"), with("\"vocab_size\": 420", "\"vocab_size\": 0"),
        with("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": \"tiny\""), with("\"rope_theta\": 10000.0", "\"rope_theta\": -1"),
        with("\"model_type\": \"qwen3_moe\"", "\"model_type\": 7"), with("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"),
        with("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": 0"),
    };
    for (const std::string& c : bad_file) {
        CAPTURE(c.substr(0, 120));
        CHECK(load_status(c) == Status::BadFile);
    }
    const std::string unsupported[] = {
        with("\"model_type\": \"qwen3_moe\"", "\"model_type\": \"gpt_oss\""),
        with("\"rope_type\": \"default\"", "\"rope_type\": \"longrope\""), with("\"hidden_act\": \"silu\"", "\"hidden_act\": \"relu\""),
        with("\"mlp_only_layers\": []", "\"mlp_only_layers\": [1]"), with("\"attention_bias\": false", "\"attention_bias\": true"),
    };
    for (const std::string& c : unsupported) {
        CAPTURE(c.substr(0, 120));
        CHECK(load_status(c) == Status::Unsupported);
    }
    // Gemma 3's layer pattern must be one global layer every N.
    const std::string gemma = test::read_file(dir_of("gemma3") + "/config.json");
    std::string odd = gemma;
    const std::string pattern = "\"sliding_attention\",\n    \"full_attention\"";
    REQUIRE(odd.find(pattern) != std::string::npos);
    odd.replace(odd.find(pattern), pattern.size(), "\"full_attention\",\n    \"sliding_attention\"");
    CHECK(load_status(odd, "gemma3") == Status::Unsupported);
    // A folder whose weights have a tensor no architecture places, or lack one.
    {
        const TempFolder f("llama", "");
        std::string c = test::read_file(f.path + "/config.json");
        std::ofstream(f.path + "/config.json", std::ios::trunc) << c.replace(c.find("\"tie_word_embeddings\": false"), 28, "\"tie_word_embeddings\": true ");
        CHECK(status_of([&] { (void)Model::load(f.path); }) == Status::Ok);  // tied: lm_head left unused
    }
    {
        const TempFolder f("qwen3-bf16", "");
        std::string c = test::read_file(f.path + "/config.json");
        std::ofstream(f.path + "/config.json", std::ios::trunc) << c.replace(c.find("\"tie_word_embeddings\": true"), 27, "\"tie_word_embeddings\": false");
        CHECK(status_of([&] { (void)Model::load(f.path); }) == Status::BadFile);  // no lm_head.weight
    }
    // FP8: a NaN among the values, and a weight whose scales are missing (the name changed in place).
    {
        const TempFolder f("qwen3-fp8", "");
        const std::string file = f.path + "/model.safetensors";
        std::string bytes = test::read_file(file);
        uint64_t header = 0;
        std::memcpy(&header, bytes.data(), 8);
        const std::string name = "model.layers.0.mlp.down_proj.weight";
        const size_t key = bytes.find("\"" + name + "\"");
        REQUIRE((key != std::string::npos && key < 8 + header));
        const size_t offsets = bytes.find("\"data_offsets\":[", key);
        const uint64_t begin = std::stoull(bytes.substr(offsets + 16));
        std::string nan = bytes;
        nan[8 + header + begin + 5] = 0x7F;
        std::ofstream(file, std::ios::binary | std::ios::trunc) << nan;
        CHECK(status_of([&] { (void)Model::load(f.path); }) == Status::BadFile);
        std::string unscaled = bytes;
        const size_t scale = unscaled.find(name + "_scale_inv");
        REQUIRE((scale != std::string::npos && scale < 8 + header));
        unscaled[scale + name.size() + 9] = 'x';  // ..._scale_inx
        std::ofstream(file, std::ios::binary | std::ios::trunc) << unscaled;
        CHECK(status_of([&] { (void)Model::load(f.path); }) == Status::Unsupported);
    }
    {
        const TempFolder f("qwen2", "");
        fs::remove(f.path + "/tokenizer.json");
        CHECK(status_of([&] { (void)Model::load(f.path); }) == Status::Unsupported);
        fs::remove(f.path + "/config.json");
        CHECK(status_of([&] { (void)Model::load(f.path); }) == Status::Io);
    }
}
