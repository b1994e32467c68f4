// ember::convert_model / ember-convert: each tiny Hugging Face fixture (tests/data/hf) written as GGUF loads
// in ember and runs as the folder itself does (F32: the same logits bit for bit; F16: within the rounding of
// F16 weights), tokenizes the same, converts to the same bytes twice, and equals the folder quantized
// directly; misuse ends in ember::Error. tests/golden_llama/compare_convert.py holds the files against
// llama.cpp's own convert_hf_to_gguf.py (it needs torch, so it is not a ctest).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "ember/quantize.hpp"
#include "gguf/reader.hpp"
#include "testdata.hpp"

using namespace ember;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

using test::TempDir;
using test::max_abs;

const char* const kFixtures[] = {"llama", "qwen2", "qwen3", "qwen3-bf16", "qwen3_moe", "mixtral", "phi3", "gemma2", "gemma3"};

std::string dir_of(const std::string& name) { return test::testdata("hf/" + name); }

json golden_of(const std::string& name) { return json::parse(std::ifstream(dir_of(name) + "/golden.json")); }

QuantizeResult convert(const std::string& name, const std::string& type, const std::string& out) {
    QuantizeParams p;
    p.type = type;
    p.n_threads = 2;
    return convert_model(dir_of(name), out, p);
}

// Every prompt position's logits of `path` (a folder or a GGUF file) for the fixture's golden prompt.
std::vector<std::vector<float>> logits_of(const std::string& path, const std::vector<Token>& prompt) {
    ModelParams mp;
    mp.n_threads = 2;  // the same threads both ways: the same sums in the same order
    const Model m = Model::load(path, mp);
    Session s(m);
    return test::prompt_logits(s, prompt);
}

std::vector<Token> greedy_of(const std::string& path, const std::vector<Token>& prompt, size_t n) {
    ModelParams mp;
    mp.n_threads = 2;
    const Model m = Model::load(path, mp);
    Session s(m);
    s.prefill(prompt, true);
    Sampler greedy = Sampler::greedy();
    std::vector<Token> out;
    for (size_t i = 0; i < n; ++i) {
        out.push_back(greedy.sample(s.logits()));
        s.decode(out.back());
    }
    return out;
}

using test::max_diff;
using test::status_of;

}  // namespace

TEST_CASE("convert: F32 runs bit for bit as the folder, F16 within its rounding, same tokenizer") {
    const TempDir tmp("convert-run");
    for (const char* name : kFixtures) {
        CAPTURE(std::string(name));
        const json g = golden_of(name);
        const auto prompt = g["prompt_ids"].get<std::vector<Token>>();
        const auto direct = logits_of(dir_of(name), prompt);
        const bool bf16 = std::string(name) == "qwen3-bf16";

        // The folder's own types (F32, or BF16 for qwen3-bf16): the same tensors, so the same logits.
        const std::string same = tmp / (std::string(name) + (bf16 ? "-bf16.gguf" : "-f32.gguf"));
        convert(name, bf16 ? "bf16" : "f32", same);
        CHECK(max_diff(logits_of(same, prompt), direct) == 0.f);

        // Tokenizer: the same ids for the golden texts from the file as from the folder.
        const Tokenizer from_file = Tokenizer::from_gguf(same);
        CHECK(from_file.encode(g["prompt"].get<std::string>(), true, true) == prompt);
        for (const json& c : g["tokenizer"]) {
            const std::string text = c["text"].get<std::string>();
            CAPTURE(text);
            CHECK(from_file.encode(text, false, true) == c["ids"].get<std::vector<Token>>());
            CHECK(from_file.encode(text, true, true) == c["ids_special"].get<std::vector<Token>>());
        }

        // F16 against transformers' float32 logits (golden.json): every weight rounded to 11 significant bits
        // (relative 2^-11 ≈ 4.9e-4) and, as in llama.cpp, the activations rounded to F16 for F16 dot
        // products, on top of the F16 KV cache the folder already runs with (1e-3 in test_hf_folder.cpp).
        // The BF16 fixture's tolerance for 2^-9 rounding is 2e-2; F16 rounds 4× finer: 5e-3 of the logit
        // scale (measured: 0.8-1.4e-3). Greedy tokens are transformers'.
        const std::string f16 = tmp / (std::string(name) + "-f16.gguf");
        const QuantizeResult r = convert(name, "F16", f16);
        CHECK(r.file_type == 1);
        std::vector<std::vector<float>> want;
        for (const json& row : g["logits"]) want.push_back(row.get<std::vector<float>>());
        const auto half = logits_of(f16, prompt);
        const float d = max_diff(half, want), scale = max_abs(want);
        MESSAGE(std::string(name) << ": F16 max |logit diff| from transformers " << d << " (scale " << scale
                                  << ", relative " << d / scale << "; the folder itself: " << max_diff(direct, want) / scale << ")");
        CHECK(d <= 5e-3f * scale);
        CHECK(greedy_of(f16, prompt, g["greedy"].size()) == g["greedy"].get<std::vector<Token>>());
    }
}

TEST_CASE("convert: the converter's types (1-D and routers F32), keys kept, the same bytes twice") {
    const TempDir tmp("convert-types");
    for (const char* name : kFixtures) {
        CAPTURE(std::string(name));
        for (const char* type : {"f32", "f16", "bf16", "q8_0"}) {
            CAPTURE(std::string(type));
            const std::string a = tmp / "a.gguf", b = tmp / "b.gguf";
            convert(name, type, a);
            convert(name, type, b);
            CHECK(test::read_file(a) == test::read_file(b));

            const gguf::File f = gguf::File::open(a);
            CHECK(f.get_uint("general.quantization_version") == 2);
            CHECK(f.has("tokenizer.ggml.tokens"));
            CHECK(f.has("tokenizer.ember.lstrip"));  // ember's own tokenizer keys travel with the file
            const std::string t(type);
            const tensor::TensorType want = t == "f32" ? tensor::TensorType::F32
                                            : t == "f16" ? tensor::TensorType::F16
                                            : t == "bf16" ? tensor::TensorType::BF16
                                                          : tensor::TensorType::Q8_0;
            for (const auto& ti : f.tensors()) {
                CAPTURE(ti.name);
                const bool keep_f32 = ti.n_dims == 1 || ti.name.ends_with("_norm.weight") || ti.name.ends_with("ffn_gate_inp.weight");
                // Q8_0 rows not a multiple of 32 (Mixtral's 48-wide ffn_down_exps) fall back to F16, as there.
                const bool fallback = want == tensor::TensorType::Q8_0 && ti.ne[0] % 32 != 0;
                CHECK(ti.type == (keep_f32 ? tensor::TensorType::F32 : fallback ? tensor::TensorType::F16 : want));
            }
        }
    }
}

TEST_CASE("convert: the keys convert_hf_to_gguf.py writes (compare_convert.py checks them all)") {
    const TempDir tmp("convert-keys");
    auto keys_of = [&](const char* name) {
        convert(name, "f16", tmp / "k.gguf");
        return gguf::File::open(tmp / "k.gguf");
    };
    const gguf::File qwen2 = keys_of("qwen2");
    CHECK(!qwen2.has("qwen2.vocab_size"));             // only the converter's Llama class writes it
    CHECK(!qwen2.has("qwen2.attention.key_length"));   // no head_dim in config.json: n_embd / n_head
    CHECK(!qwen2.has("qwen2.rope.dimension_count"));
    CHECK(qwen2.get_string("tokenizer.ggml.pre") == "qwen2");
    CHECK(!qwen2.get_bool("tokenizer.ggml.add_bos_token"));  // always written: the template says
    const gguf::File llama = keys_of("llama");
    CHECK(llama.has("llama.vocab_size"));
    CHECK(llama.has("llama.rope.dimension_count"));
    CHECK(!llama.has("llama.rope.scaling.type"));      // Llama 3.1's scaling is rope_freqs.weight
    CHECK(llama.find_tensor("rope_freqs.weight") != nullptr);
    const gguf::File mixtral = keys_of("mixtral");
    CHECK(mixtral.get_string("tokenizer.ggml.pre") == "default");
    CHECK(!mixtral.has("tokenizer.ggml.add_space_prefix"));  // true: the default
    CHECK(!mixtral.has("llama.expert_weights_norm"));        // renormalized: the default
    CHECK(mixtral.get_string("general.type") == "model");
    const gguf::File phi3 = keys_of("phi3");
    CHECK(phi3.get_uint("phi3.attention.sliding_window") == 0);
    CHECK(phi3.get_uint("phi3.rope.scaling.original_context_length") == 4096);
    const gguf::File gemma2 = keys_of("gemma2");
    CHECK(!gemma2.has("gemma2.rope.freq_base"));       // 10000, llama.cpp's default for Gemma 2
    CHECK(!gemma2.get_bool("tokenizer.ggml.add_space_prefix"));
    CHECK(gemma2.has("tokenizer.ggml.mask_token_id"));
}

// Phi-3 LongRoPE (make_longrope.py): the file holds the factor tensors and keys the folder is read with, so
// it runs as the folder in a context within the original one (short factors) and past it (long factors).
TEST_CASE("convert: Phi-3 LongRoPE runs as the folder, short and long factors") {
    const TempDir tmp("convert-longrope");
    const json g = golden_of("phi3-longrope");
    const std::string file = tmp / "phi3-longrope-f32.gguf";
    convert("phi3-longrope", "f32", file);
    const gguf::File f = gguf::File::open(file);
    CHECK(f.find_tensor("rope_factors_long.weight") != nullptr);
    CHECK(f.find_tensor("rope_factors_short.weight") != nullptr);
    CHECK(f.get_float("phi3.rope.scaling.attn_factor") == doctest::Approx(g["attn_factor"].get<double>()).epsilon(1e-6));
    for (const char* which : {"short", "long"}) {
        CAPTURE(std::string(which));
        const json& c = g[which];
        auto logits = [&](const std::string& path) {
            ModelParams mp;
            mp.n_threads = 2;
            const Model m = Model::load(path, mp);
            SessionParams sp;
            sp.n_ctx = c["n_ctx"].get<int>();
            Session s(m, sp);
            return test::prompt_logits(s, c["prompt_ids"].get<std::vector<Token>>());
        };
        CHECK(max_diff(logits(file), logits(dir_of("phi3-longrope"))) == 0.f);
    }
}

TEST_CASE("convert: a folder quantized directly equals its F32 conversion quantized") {
    const TempDir tmp("convert-quantize");
    for (const char* name : {"llama", "qwen3_moe", "gemma3"}) {
        CAPTURE(std::string(name));
        QuantizeParams p;
        p.n_threads = 2;
        p.type = "F32";
        quantize_model(dir_of(name), tmp / "f32.gguf", p);  // quantize_model takes a folder as IN
        p.type = "Q4_K_M";
        quantize_model(dir_of(name), tmp / "direct.gguf", p);
        quantize_model(tmp / "f32.gguf", tmp / "two-steps.gguf", p);
        CHECK(test::read_file(tmp / "direct.gguf") == test::read_file(tmp / "two-steps.gguf"));
        const Model m = Model::load(tmp / "direct.gguf");
        CHECK(m.n_vocab() > 0);
    }
}

TEST_CASE("convert: misuse ends in ember::Error and leaves nothing behind") {
    const TempDir tmp("convert-misuse");
    QuantizeParams p;
    p.type = "f16";
    const std::string llama = dir_of("llama");
    // The output is a directory, inside a missing folder, or under a regular file (not a folder).
    CHECK(status_of([&] { convert_model(llama, tmp.path, p); }) == Status::Io);
    CHECK(status_of([&] { convert_model(llama, tmp / "missing/out.gguf", p); }) == Status::Io);
    std::ofstream(tmp / "file") << "x";
    CHECK(status_of([&] { convert_model(llama, tmp / "file/out.gguf", p); }) == Status::Io);
    // The input is a GGUF file, missing, or a folder that is not a model.
    CHECK(status_of([&] { convert_model(test::testdata("models/stories260K.gguf"), tmp / "o.gguf", p); }) ==
          Status::InvalidArgument);
    CHECK(status_of([&] { convert_model(tmp / "no-such-folder", tmp / "o.gguf", p); }) == Status::InvalidArgument);
    CHECK(status_of([&] { convert_model(tmp.path, tmp / "o.gguf", p); }) == Status::Io);  // no config.json
    // Unknown output types, before anything is read.
    for (const char* bad : {"", "f8", "q8_0x", "tq1_0", "auto"}) {
        CAPTURE(std::string(bad));
        QuantizeParams q;
        q.type = bad;
        CHECK(status_of([&] { convert_model(llama, tmp / "o.gguf", q); }) == Status::InvalidArgument);
    }
    // Cancelled from the progress callback.
    QuantizeParams c = p;
    c.progress = [](float f) { return f < 0.5f; };
    CHECK(status_of([&] { convert_model(llama, tmp / "o.gguf", c); }) == Status::Cancelled);
    // Nothing but the stray file is left: no output, no temporary file.
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(tmp.path)) left.push_back(e.path().filename().string());
    CHECK(left == std::vector<std::string>{"file"});
}
