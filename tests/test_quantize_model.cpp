// ember::quantize_model against llama-quantize: the same bytes for the same input and mix (hashes in
// tests/data/quantize/references.json), the same per-tensor types for Q4_K_M, and the errors.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "ember/error.hpp"
#include "ember/model.hpp"
#include "ember/quantize.hpp"
#include "ember/sampler.hpp"
#include "ember/session.hpp"
#include "ember/tokenizer.hpp"
#include "gguf/reader.hpp"
#include "testdata.hpp"

using namespace ember;

namespace {

// SHA-256 (FIPS 180-4), enough to compare a file with a recorded hash.
std::string sha256_hex(const std::string& data) {
    static constexpr std::array<uint32_t, 64> k = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    std::array<uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::string m = data;
    const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
    m.push_back(static_cast<char>(0x80));
    while (m.size() % 64 != 56) m.push_back(0);
    for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
    auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
    for (size_t off = 0; off < m.size(); off += 64) {
        std::array<uint32_t, 64> w{};
        for (int i = 0; i < 16; ++i)
            for (int j = 0; j < 4; ++j) w[i] = (w[i] << 8) | static_cast<uint8_t>(m[off + 4 * i + j]);
        for (int i = 16; i < 64; ++i) {
            const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        auto v = h;
        for (int i = 0; i < 64; ++i) {
            const uint32_t S1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
            const uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
            const uint32_t t1 = v[7] + S1 + ch + k[i] + w[i];
            const uint32_t S0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
            const uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            const uint32_t t2 = S0 + maj;
            v = {t1 + t2, v[0], v[1], v[2], v[3] + t1, v[4], v[5], v[6]};
        }
        for (int i = 0; i < 8; ++i) h[i] += v[i];
    }
    std::string hex;
    char buf[9];
    for (uint32_t x : h) {
        std::snprintf(buf, sizeof buf, "%08x", x);
        hex += buf;
    }
    return hex;
}

const nlohmann::json& references() {
    static const nlohmann::json j = nlohmann::json::parse(test::read_file(test::testdata("quantize/references.json")));
    return j;
}

// Where a references.json input lives: models/ in the repository, arch/ in EMBER_TESTDATA (skips when absent).
std::string input_path(const std::string& rel) {
    return rel.rfind("arch/", 0) == 0 ? test::fixture(rel) : test::testdata(rel);
}

// Quantizes every recorded case of inputs under `prefix` and compares with llama-quantize's file.
void check_references(const std::string& prefix) {
    int n = 0;
    for (const auto& c : references()["cases"]) {
        const std::string rel = c["input"], type = c["type"];
        if (rel.rfind(prefix, 0) != 0) continue;
        CAPTURE(rel);
        CAPTURE(type);
        const std::string out = test::temp_path("q-" + type + ".gguf");
        QuantizeParams p;
        p.type = type;
        p.n_threads = 2;
        const QuantizeResult r = quantize_model(input_path(rel), out, p);
        const std::string bytes = test::read_file(out);
        CHECK(r.file_bytes_out == bytes.size());
        CHECK(bytes.size() == c["size"].get<size_t>());
        CHECK(sha256_hex(bytes) == c["sha256"].get<std::string>());
        if (c.contains("tensor_types")) {
            // The mix, read back with the GGUF reader: same tensors in the same order, same types.
            const gguf::File f = gguf::File::open(out);
            std::map<std::string, std::string> got;
            for (const auto& t : f.tensors()) got[t.name] = tensor::type_name(t.type);
            const auto want = c["tensor_types"].get<std::map<std::string, std::string>>();
            CHECK(got == want);
        }
        std::filesystem::remove(out);
        ++n;
    }
    CHECK(n > 0);
}

// The quantized model loads and generates text.
void check_runs(const std::string& path) {
    ModelParams mp;
    mp.n_threads = 1;
    const Model m = Model::load(path, mp);
    Session s(m);
    s.prefill(m.tokenizer().encode("Once upon a time"));
    Sampler g = Sampler::greedy();
    GenerateParams gp;
    gp.max_tokens = 8;
    const auto r = s.generate(g, gp);
    CHECK(r.tokens.size() == 8);
}

}  // namespace

TEST_CASE("SHA-256 of known strings") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex(std::string(1000, 'a')) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST_CASE("stories260K: Q8_0, Q4_0, Q6_K, Q4_K_M byte-identical to llama-quantize") { check_references("models/"); }

TEST_CASE("stories260K: every mix loads and generates; the summary adds up") {
    const std::string in = test::testdata("models/stories260K.gguf");
    for (const std::string type : {"q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_S", "Q6_K", "F16", "BF16"}) {
        CAPTURE(type);
        const std::string out = test::temp_path("run-" + type + ".gguf");
        QuantizeParams p;
        p.type = type;
        p.n_threads = 2;
        std::vector<float> seen;
        p.progress = [&](float f) {
            seen.push_back(f);
            return true;
        };
        const QuantizeResult r = quantize_model(in, out, p);
        REQUIRE(!seen.empty());
        CHECK(seen.front() == 0.0f);
        CHECK(seen.back() == doctest::Approx(1.0));
        CHECK(std::is_sorted(seen.begin(), seen.end()));
        CHECK(r.tensors.size() == 48);
        uint64_t sum = 0;
        for (const auto& t : r.tensors) sum += t.bytes_out;
        CHECK(sum == r.tensor_bytes_out);
        CHECK(r.file_bytes_out == std::filesystem::file_size(out));
        const gguf::File f = gguf::File::open(out);
        CHECK(f.get_uint("general.quantization_version") == 2);
        CHECK(f.get_uint("general.file_type") == r.file_type);
        check_runs(out);
        std::filesystem::remove(out);
    }
}

TEST_CASE("errors: unknown type, requantize, missing input, missing folder, cancellation") {
    const std::string in = test::testdata("models/stories260K.gguf");
    const std::string out = test::temp_path("err.gguf");
    std::filesystem::remove(out);
    auto status_of = [](auto&& fn) {
        try {
            fn();
        } catch (const Error& e) {
            return e.status();
        }
        return Status::Ok;
    };
    QuantizeParams p;
    p.n_threads = 1;

    p.type = "Q4_K_X";
    CHECK(status_of([&] { quantize_model(in, out, p); }) == Status::InvalidArgument);
    p.type = "Q8_0";
    CHECK(status_of([&] { quantize_model(in + ".missing", out, p); }) == Status::Io);
    CHECK(status_of([&] { quantize_model(in, test::temp_path("no-such-dir") + "/out.gguf", p); }) == Status::Io);
    CHECK(!std::filesystem::exists(out));

    // Cancelled at the start, in the middle: no OUT, no temporary file beside it.
    for (int stop_after : {0, 5}) {
        int calls = 0;
        p.progress = [&](float) { return calls++ < stop_after; };
        CHECK(status_of([&] { quantize_model(in, out, p); }) == Status::Cancelled);
        CHECK(!std::filesystem::exists(out));
    }
    p.progress = nullptr;

    // An existing OUT survives a failed run untouched.
    test::Bytes keep;
    keep.u32(42);
    { std::FILE* fp = std::fopen(out.c_str(), "wb"); REQUIRE(fp); std::fwrite(keep.b.data(), 1, keep.size(), fp); std::fclose(fp); }
    p.progress = [](float f) { return f < 0.5f; };
    CHECK(status_of([&] { quantize_model(in, out, p); }) == Status::Cancelled);
    CHECK(std::filesystem::file_size(out) == 4);
    p.progress = nullptr;

    // A quantized input re-quantized: refused without allow_requantize, naming the tensor.
    const std::string q8 = test::temp_path("err-q8.gguf");
    quantize_model(in, q8, p);
    p.type = "Q4_0";
    try {
        quantize_model(q8, out, p);
        FAIL("requantizing without allow_requantize must throw");
    } catch (const Error& e) {
        CHECK(e.status() == Status::InvalidArgument);
        CHECK(std::string(e.what()).find("Q8_0") != std::string::npos);
        CHECK(std::string(e.what()).find(".weight") != std::string::npos);
    }
    CHECK(std::filesystem::file_size(out) == 4);
    p.allow_requantize = true;
    quantize_model(q8, out, p);
    check_runs(out);
    // The same mix as the file already has: nothing to re-quantize, so no flag needed.
    p.allow_requantize = false;
    p.type = "Q8_0";
    quantize_model(q8, out, p);
    CHECK(test::read_file(out) == test::read_file(q8));
    std::filesystem::remove(q8);
    std::filesystem::remove(out);
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
        CHECK(e.path().filename().string().find(std::filesystem::path(out).filename().string() + ".tmp") == std::string::npos);
}

TEST_CASE("--pure: every quantizable tensor gets the base type (or its fallback)") {
    QuantizeParams p;
    p.type = "Q4_0";
    p.pure = true;
    p.n_threads = 1;
    const std::string out = test::temp_path("pure.gguf");
    const QuantizeResult r = quantize_model(test::testdata("models/stories260K.gguf"), out, p);
    for (const auto& t : r.tensors) {
        CAPTURE(t.name);
        CHECK((t.type_out == "Q4_0" || t.fallback || t.shape.size() == 1));
    }
    std::filesystem::remove(out);
}

TEST_CASE("arch: llama, qwen3, phi3, qwen3moe byte-identical to llama-quantize (Q8_0, Q4_0, Q6_K, Q4_K_M)") {
    check_references("arch/");
}

TEST_CASE("arch: every architecture quantized to Q4_K_M loads and generates") {
    for (const char* name : {"llama-gqa-f16", "llama-moe-f16", "qwen2-f16", "qwen3-f32", "qwen3moe-f16", "gemma2-f16", "gemma3-f16",
                             "phi3-f16"}) {
        CAPTURE(name);
        const std::string in = test::fixture(std::string("arch/") + name + ".gguf");
        const std::string out = test::temp_path(std::string("arch-") + name + ".gguf");
        QuantizeParams p;
        p.type = "Q4_K_M";
        p.n_threads = 2;
        quantize_model(in, out, p);
        check_runs(out);
        std::filesystem::remove(out);
    }
}
