// Writer round trips: hand-made files and real models read, rewritten and read again.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include "ember/error.hpp"
#include "ember/gguf_writer.hpp"
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

TEST_CASE("ember::GgufWriter (the public streamed writer) writes what the in-memory writer writes, and checks its caller") {
    const std::string path = test::temp_path("public-writer.gguf");
    const std::vector<std::pair<std::string, GgufValue>> meta = {
        {"general.architecture", std::string("llama")}, {"a.u32", uint32_t{7}}, {"a.i32", int32_t{-3}}, {"a.f32", 0.25f},
        {"a.bool", true}, {"a.strs", std::vector<std::string>{"x", "", "yz"}}, {"a.i32s", std::vector<int32_t>{1, -2}},
        {"a.f32s", std::vector<float>{1.5f, -0.f}}};
    std::vector<float> f32(64);
    for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<float>(i) * 0.5f;
    std::vector<uint8_t> q8(2 * 34, 0x11);
    {
        GgufWriter w(path, meta, {{"t.f32", "F32", {8, 8}}, {"t.q8", "Q8_0", {64}}});
        CHECK(w.tensor_bytes(0) == 256);
        CHECK(w.tensor_bytes(1) == 68);
        w.write(f32.data(), 100);  // in pieces
        w.write(reinterpret_cast<const uint8_t*>(f32.data()) + 100, 156);
        w.end_tensor();
        w.write(q8.data(), q8.size());
        w.end_tensor();
        w.commit();
    }
    Writer mem(32);
    mem.set("general.architecture", Value::string("llama"));
    mem.set("a.u32", Value::u32(7));
    mem.set("a.i32", Value::i32(-3));
    mem.set("a.f32", Value::f32(0.25f));
    mem.set("a.bool", Value::boolean(true));
    mem.set("a.strs", Value::strings({"x", "", "yz"}));
    mem.set("a.i32s", Value::i32s({1, -2}));
    mem.set("a.f32s", Value::f32s({1.5f, -0.f}));
    mem.add_tensor("t.f32", TensorType::F32, {8, 8}, f32.data(), 256);
    mem.add_tensor("t.q8", TensorType::Q8_0, {64}, q8.data(), q8.size());
    const std::string disk = test::read_file(path);
    const auto bytes = mem.to_bytes();
    CHECK(std::string(bytes.begin(), bytes.end()) == disk);
    std::filesystem::remove(path);

    // What a caller gets wrong: InvalidArgument, and no file left behind.
    auto status = [&](const std::vector<GgufTensor>& ts, const std::function<void(GgufWriter&)>& body = {}) {
        Status s = Status::Ok;
        try {
            GgufWriter w(path, meta, ts);
            if (body) body(w);
        } catch (const Error& e) {
            s = e.status();
        }
        CHECK(!std::filesystem::exists(path));
        return s;
    };
    CHECK(status({{"t", "Q9_9", {32}}}) == Status::InvalidArgument);
    CHECK(status({{"t", "Q8_0", {31}}}) == Status::InvalidArgument);                // not whole blocks
    CHECK(status({{"t", "F32", {0}}}) == Status::InvalidArgument);
    CHECK(status({{"t", "F32", {-4}}}) == Status::InvalidArgument);
    CHECK(status({{"t", "F32", {}}}) == Status::InvalidArgument);
    CHECK(status({{"t", "F32", {1, 1, 1, 1, 1}}}) == Status::InvalidArgument);
    CHECK(status({{"t", "F32", {1 << 30, 1 << 30, 1 << 30}}}) == Status::InvalidArgument);  // bytes overflow
    CHECK(status({{"t", "F32", {4}}, {"t", "F32", {4}}}) == Status::InvalidArgument);  // a name twice
    CHECK(status({{"t", "F32", {4}}}, [](GgufWriter& w) { w.write("0123456789abcdefX", 17); }) == Status::InvalidArgument);
    CHECK(status({{"t", "F32", {4}}}, [](GgufWriter& w) {
              w.write("0123", 4);
              w.end_tensor();
          }) == Status::InvalidArgument);
    CHECK(status({{"t", "F32", {4}}}, [](GgufWriter& w) { w.commit(); }) == Status::InvalidArgument);
    CHECK(status({{"t", "F32", {4}}}, [](GgufWriter& w) { w.write("0123456789abcdef", 16); }) == Status::Ok);  // no commit
    Status dup = Status::Ok;
    try {
        GgufWriter w(path, {{"k", uint32_t{1}}, {"k", uint32_t{2}}}, {});
    } catch (const Error& e) {
        dup = e.status();
    }
    CHECK(dup == Status::InvalidArgument);
}
