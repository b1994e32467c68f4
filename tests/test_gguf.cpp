// The GGUF reader on real files and on hand-built files covering every metadata type.
#include <doctest/doctest.h>

#include <cstring>

#include "ember/error.hpp"
#include "gguf/reader.hpp"
#include "gguf/writer.hpp"
#include "testdata.hpp"

using namespace ember;
using namespace ember::gguf;
using ember::tensor::TensorType;

TEST_CASE("stories260K: metadata, tensors and zero-copy data") {
    const auto path = test::testdata("models/stories260K.gguf");
    REQUIRE(test::exists(path));
    File f = File::open(path);
    CHECK(f.version() == 3);
    CHECK(f.get_string("general.architecture") == "llama");
    CHECK(f.get_uint("llama.block_count") == 5);
    CHECK(f.get_uint("llama.embedding_length") == 64);
    CHECK(f.get_uint("llama.attention.head_count") == 8);
    CHECK(f.get_uint("llama.attention.head_count_kv") == 4);
    CHECK(f.get_uint("llama.feed_forward_length") == 172);
    CHECK(f.get_string("tokenizer.ggml.model") == "llama");
    CHECK(f.get("tokenizer.ggml.tokens").as_strings().size() == 512);
    CHECK(f.get("tokenizer.ggml.scores").as_floats().size() == 512);

    const TensorInfo* emb = f.find_tensor("token_embd.weight");
    REQUIRE(emb != nullptr);
    CHECK(emb->type == TensorType::F32);
    CHECK(emb->n_dims == 2);
    CHECK(emb->ne[0] == 64);
    CHECK(emb->ne[1] == 512);
    CHECK(emb->n_bytes == 64 * 512 * 4);
    CHECK(f.find_tensor("no.such.tensor") == nullptr);
    // Every tensor lies inside the file, after the header, aligned.
    for (const auto& t : f.tensors()) {
        CHECK(t.data != nullptr);
        CHECK((t.offset % f.alignment()) == 0);
        CHECK(f.data_offset() + t.offset + t.n_bytes <= f.file_size());
    }
    CHECK(f.tensors().size() == 48);  // 5 layers x 9 + embd + norm + output
}

TEST_CASE("typed getters name the key and the types on a mismatch") {
    File f = File::open(test::testdata("models/stories260K.gguf"));
    try {
        (void)f.get_uint("general.architecture");
        FAIL("expected a type error");
    } catch (const Error& e) {
        CHECK(e.status() == Status::BadFile);
        const std::string m = e.what();
        CHECK(m.find("general.architecture") != std::string::npos);
        CHECK(m.find("string") != std::string::npos);
    }
    CHECK_THROWS_AS((void)f.get_string("llama.block_count"), Error);
    CHECK_THROWS_AS((void)f.get_bool("llama.block_count"), Error);
    CHECK_THROWS_AS((void)f.get_float("general.architecture"), Error);
    CHECK_THROWS_AS((void)f.get("tokenizer.ggml.tokens").as_floats(), Error);
    CHECK_THROWS_WITH_AS((void)f.get_uint("missing.key"), doctest::Contains("missing key 'missing.key'"), Error);
    CHECK(f.get_uint("missing.key", 7) == 7);
    CHECK(f.get_string("missing.key", "x") == "x");
}

TEST_CASE("F16 model and vocab-only files") {
    File f = File::open(test::testdata("models/llama-2-tiny-random.gguf"));
    bool saw_f16 = false;
    for (const auto& t : f.tensors()) saw_f16 |= t.type == TensorType::F16;
    CHECK(saw_f16);
    CHECK(f.get("tokenizer.ggml.tokens").as_strings().size() == 32000);

    File v = File::open(test::testdata("vocab/ggml-vocab-gpt-2.gguf"));
    CHECK(v.tensors().empty());
    CHECK(v.get_string("tokenizer.ggml.model") == "gpt2");
    CHECK(v.get("tokenizer.ggml.merges").as_strings().size() > 40000);
}

TEST_CASE("every metadata value type, nested arrays included, reads back exactly") {
    Writer w;
    w.set("u8", Value::u8(200));
    w.set("i8", Value::i8(-100));
    w.set("u16", Value::u16(65000));
    w.set("i16", Value::i16(-32000));
    w.set("u32", Value::u32(4000000000u));
    w.set("i32", Value::i32(-2000000000));
    w.set("u64", Value::u64(18000000000000000000ull));
    w.set("i64", Value::i64(-9000000000000000000ll));
    w.set("f32", Value::f32(1.5f));
    w.set("f64", Value::f64(-2.25));
    w.set("bool", Value::boolean(true));
    w.set("str", Value::string("héllo\n"));
    w.set("empty", Value::string(""));
    w.set("strs", Value::strings({"a", "", "ccc"}));
    w.set("f32s", Value::f32s({1.0f, -2.0f, 0.5f}));
    w.set("i32s", Value::i32s({-1, 2, 3}));
    w.set("nested", Value::arrays({Value::i32s({1, 2}), Value::strings({"x"}), Value::arrays({Value::f32s({})})}));
    const auto bytes = w.to_bytes();
    File f = File::parse(bytes);

    CHECK(f.get_uint("u8") == 200);
    CHECK(f.get_int("i8") == -100);
    CHECK(f.get_uint("u16") == 65000);
    CHECK(f.get_int("i16") == -32000);
    CHECK(f.get_uint("u32") == 4000000000u);
    CHECK(f.get_int("i32") == -2000000000);
    CHECK(f.get_uint("u64") == 18000000000000000000ull);
    CHECK(f.get_int("i64") == -9000000000000000000ll);
    CHECK(f.get_float("f32") == 1.5);
    CHECK(f.get_float("f64") == -2.25);
    CHECK(f.get_bool("bool") == true);
    CHECK(f.get_string("str") == "héllo\n");
    CHECK(f.get_string("empty").empty());
    CHECK(f.get("strs").as_strings() == std::vector<std::string>{"a", "", "ccc"});
    CHECK(f.get("f32s").as_floats() == std::vector<float>{1.0f, -2.0f, 0.5f});
    CHECK(f.get("i32s").as_ints() == std::vector<int64_t>{-1, 2, 3});
    const auto& nested = f.get("nested").as_arrays();
    REQUIRE(nested.size() == 3);
    CHECK(nested[0].as_ints() == std::vector<int64_t>{1, 2});
    CHECK(nested[1].as_strings() == std::vector<std::string>{"x"});
    CHECK(nested[2].as_arrays()[0].size() == 0);
    // Lenient integer reads check ranges.
    CHECK_THROWS_AS((void)f.get_uint("i8"), Error);
    CHECK_THROWS_AS((void)f.get_int("u64"), Error);
    CHECK(f.metadata().size() == 17);
    CHECK(f.metadata()[0].first == "u8");  // file order is kept
}

TEST_CASE("general.alignment moves the data section and tensor offsets") {
    Writer w(64);
    const std::vector<float> a(7 * 3, 1.0f);
    const std::vector<float> b(5, 2.0f);
    w.add_tensor("a", TensorType::F32, {7, 3}, a.data(), a.size() * 4);
    w.add_tensor("b", TensorType::F32, {5}, b.data(), b.size() * 4);
    const auto bytes = w.to_bytes();
    File f = File::parse(bytes);
    CHECK(f.alignment() == 64);
    CHECK(f.data_offset() % 64 == 0);
    CHECK(f.find_tensor("b")->offset == 128);  // 84 bytes of "a" padded to 128
    float x;
    std::memcpy(&x, f.find_tensor("b")->data, 4);
    CHECK(x == 2.0f);
}
