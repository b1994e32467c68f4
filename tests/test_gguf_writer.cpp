// Writer round trips: hand-made files and real models read, rewritten and read again.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "ember/error.hpp"
#include "gguf/reader.hpp"
#include "gguf/writer.hpp"
#include "testdata.hpp"

using namespace ember;
using namespace ember::gguf;
using ember::tensor::TensorType;

namespace {
std::vector<uint8_t> rewrite(const File& f) {
    Writer w(f.alignment());
    for (const auto& [k, v] : f.metadata())
        if (k != "general.alignment") w.set(k, v);
    for (const auto& t : f.tensors())
        w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
    return w.to_bytes();
}

void check_same(const File& a, const File& b) {
    REQUIRE(a.metadata().size() == b.metadata().size());
    for (size_t i = 0; i < a.metadata().size(); ++i) {
        CHECK(a.metadata()[i].first == b.metadata()[i].first);
        CHECK(a.metadata()[i].second == b.metadata()[i].second);
    }
    REQUIRE(a.tensors().size() == b.tensors().size());
    for (size_t i = 0; i < a.tensors().size(); ++i) {
        const auto &x = a.tensors()[i], &y = b.tensors()[i];
        CHECK(x.name == y.name);
        CHECK(x.type == y.type);
        CHECK(x.ne == y.ne);
        REQUIRE(x.n_bytes == y.n_bytes);
        CHECK(std::memcmp(x.data, y.data, x.n_bytes) == 0);
    }
}
void check_round_trip(const std::string& path) {
    File a = File::open(path);
    const auto bytes = rewrite(a);
    File b = File::parse(bytes);
    check_same(a, b);
    // A second round trip is byte-identical to the first: the layout is deterministic.
    CHECK(rewrite(b) == bytes);
}
}  // namespace

TEST_CASE("real models survive read → write → read unchanged") {
    for (const char* rel : {"models/stories260K.gguf", "models/llama-2-tiny-random.gguf", "vocab/ggml-vocab-llama-spm.gguf"}) {
        CAPTURE(rel);
        check_round_trip(test::testdata(rel));
    }
}

TEST_CASE("arch: a K-quant model survives read → write → read unchanged") {
    check_round_trip(test::fixture("arch/llama-gqa-q4_k_m.gguf"));
}

TEST_CASE("stories260K rewritten is byte-identical to the original file") {
    // gguf-py lays files out the same way, so this pins our layout to the reference writer's.
    const auto path = test::testdata("models/stories260K.gguf");
    File a = File::open(path);
    const auto bytes = rewrite(a);
    REQUIRE(bytes.size() == std::filesystem::file_size(path));
    std::vector<uint8_t> orig(bytes.size());
    FILE* fp = std::fopen(path.c_str(), "rb");
    REQUIRE(fp != nullptr);
    CHECK(std::fread(orig.data(), 1, orig.size(), fp) == orig.size());
    std::fclose(fp);
    CHECK(orig == bytes);
}

TEST_CASE("quantized tensors and files on disk round trip") {
    Writer w;
    std::vector<uint8_t> q4(18 * 4, 0x5a), q6(210 * 2, 0x33);
    w.add_tensor("q4", TensorType::Q4_0, {64, 2}, q4.data(), q4.size());
    w.add_tensor("q6", TensorType::Q6_K, {256, 2}, q6.data(), q6.size());
    w.set("general.architecture", Value::string("test"));
    const auto tmp = std::filesystem::temp_directory_path() / "ember-writer-test.gguf";
    w.write(tmp.string());
    {
        File f = File::open(tmp.string());
        CHECK(f.find_tensor("q4")->n_bytes == q4.size());
        CHECK(std::memcmp(f.find_tensor("q6")->data, q6.data(), q6.size()) == 0);
        CHECK(f.get_string("general.architecture") == "test");
    }
    std::filesystem::remove(tmp);
}

TEST_CASE("the writer refuses what the reader would reject") {
    Writer w;
    std::vector<uint8_t> d(18);
    CHECK_THROWS_AS(w.add_tensor("bad", TensorType::Q4_0, {16}, d.data(), d.size()), Error);  // row not a block multiple
    CHECK_THROWS_AS(w.add_tensor("bad", TensorType::Q4_0, {32}, d.data(), 17), Error);       // wrong byte size
    CHECK_THROWS_AS(w.add_tensor("bad", TensorType::F32, {1, 1, 1, 1, 1}, d.data(), 4), Error);
    w.add_tensor("ok", TensorType::Q4_0, {32}, d.data(), d.size());
    CHECK_THROWS_AS(w.add_tensor("ok", TensorType::Q4_0, {32}, d.data(), d.size()), Error);  // duplicate
    CHECK_THROWS_AS(Writer(3), Error);
    CHECK_THROWS_AS(w.write("/nonexistent-dir/x.gguf"), Error);
}
