// The safetensors reader on files built byte by byte here: good files of every shape the format allows,
// and hostile ones, each of which must end in ember::Error with the right Status and a message naming the
// problem. Then model folders: one file, or shards behind model.safetensors.index.json.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "ember/error.hpp"
#include "safetensors/reader.hpp"
#include "tensor/fp16.hpp"
#include "testdata.hpp"

using namespace ember;
using namespace ember::safetensors;
using ember::test::Bytes;
namespace fs = std::filesystem;

namespace {

// A file: the header's length, the header, the data area.
Bytes st(const std::string& header, const Bytes& data = {}) {
    Bytes b;
    b.u64(header.size()).raw(header.data(), header.size());
    return b.raw(data.b.data(), data.size());
}
Bytes st(const std::string& header, size_t data_bytes) { return st(header, Bytes{}.zeros(data_bytes)); }

// One header entry: "name":{"dtype":..,"shape":[..],"data_offsets":[b,e]}.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t begin,
                  uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
           std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// A header object of these entries (appended, not operator+: GCC 12 warns falsely on literal + string chains).
std::string obj(std::initializer_list<std::string> entries) {
    std::string s = "{";
    for (const auto& e : entries) s.append(s.size() > 1 ? "," : "").append(e);
    return s.append("}");
}

void expect_error(const Bytes& b, Status status, const std::string& needle) {
    CAPTURE(needle);
    try {
        (void)File::parse(b.b);
        FAIL("parse succeeded on a broken file");
    } catch (const Error& e) {
        CHECK_MESSAGE(e.status() == status, e.what());
        CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
}
void expect_bad(const Bytes& b, const std::string& needle) { expect_error(b, Status::BadFile, needle); }
void expect_bad(const std::string& header, size_t data_bytes, const std::string& needle) {
    expect_bad(st(header, data_bytes), needle);
}

// A temporary folder, removed at the end of the test.
struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& name) : path(test::temp_path(name)) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    void write(const std::string& name, const std::vector<uint8_t>& bytes) const {
        std::ofstream(path / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
};

// A valid file with four dtypes, written in an order unlike its data order, with metadata.
Bytes four_dtypes() {
    Bytes data;
    for (int8_t v : {-1, 2, -3, 4}) data.u8(static_cast<uint8_t>(v));                  // i8  [0, 4)
    for (float v : {1.5f, -2.0f, 3.25f, 0.0f, 5.0f, -6.5f}) data.f32(v);                // w   [4, 28)
    for (float v : {0.5f, -1.0f, 2.0f}) {                                               // h   [28, 34)
        const uint16_t h = tensor::f32_to_fp16(v);
        data.raw(&h, 2);
    }
    for (float v : {3.0f, -0.25f}) {                                                     // b   [34, 38)
        const uint16_t h = tensor::f32_to_bf16(v);
        data.raw(&h, 2);
    }
    const std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\xc3\xa9\"}," +
                               entry("w", "F32", "2,3", 4, 28) + "," + entry("b", "BF16", "2", 34, 38) + "," +
                               entry("h", "F16", "3", 28, 34) + "," + entry("i8", "I8", "4", 0, 4) + "}";
    return st(header, data);
}

}  // namespace

TEST_CASE("good: F32, F16, BF16, I8 with metadata, in data order") {
    const Bytes b = four_dtypes();
    const File f = File::parse(b.b);
    REQUIRE(f.tensors().size() == 4);
    CHECK(f.tensors()[0].name == "i8");  // data order, not the header's
    CHECK(f.tensors()[1].name == "w");
    CHECK(f.tensors()[2].name == "h");
    CHECK(f.tensors()[3].name == "b");

    const TensorInfo* w = f.find("w");
    REQUIRE(w);
    CHECK(w->dtype == Dtype::F32);
    CHECK(w->shape == std::vector<int64_t>{2, 3});
    CHECK(w->ne() == std::vector<int64_t>{3, 2});  // GGUF order: the row length first
    CHECK(w->n_elements == 6);
    CHECK(w->n_bytes == 24);
    CHECK(w->offset == 4);
    CHECK(w->data == b.b.data() + f.data_offset() + 4);  // zero copy
    float wv[6];
    std::memcpy(wv, w->data, sizeof wv);  // the format does not align data: read through memcpy
    CHECK(wv[0] == 1.5f);
    CHECK(wv[5] == -6.5f);
    CHECK(tensor_type(w->dtype) == tensor::TensorType::F32);

    const TensorInfo* h = f.find("h");
    REQUIRE(h);
    CHECK(tensor_type(h->dtype) == tensor::TensorType::F16);
    uint16_t hv[3];
    std::memcpy(hv, h->data, sizeof hv);
    CHECK(tensor::fp16_to_f32(hv[1]) == -1.0f);

    const TensorInfo* bf = f.find("b");
    REQUIRE(bf);
    CHECK(tensor_type(bf->dtype) == tensor::TensorType::BF16);
    uint16_t bv[2];
    std::memcpy(bv, bf->bytes().data(), sizeof bv);
    CHECK(tensor::bf16_to_f32(bv[1]) == -0.25f);

    const TensorInfo* i8 = f.find("i8");
    REQUIRE(i8);
    CHECK(i8->dtype == Dtype::I8);
    CHECK(!tensor_type(i8->dtype));
    CHECK(static_cast<int8_t>(i8->data[2]) == -3);

    CHECK(f.find("nope") == nullptr);
    REQUIRE(f.metadata().size() == 2);
    CHECK(f.metadata()[0] == std::pair<std::string, std::string>{"format", "pt"});
    REQUIRE(f.find_metadata("note"));
    CHECK(*f.find_metadata("note") == "caf\xc3\xa9");
    CHECK(f.find_metadata("nope") == nullptr);
}

TEST_CASE("good: scalar, zero-size tensors, padding, unknown fields, no tensors") {
    // A scalar (empty shape) holds one element; zero-size tensors may share an offset.
    const Bytes fb = st(obj({entry("s", "F32", "", 0, 4), entry("z", "F16", "0,4", 4, 4), entry("e", "I64", "3,0", 4, 4),
                             entry("u", "U8", "2", 4, 6)}).append("   "), 6);
    const File f = File::parse(fb.b);  // the bytes must outlive the File
    REQUIRE(f.tensors().size() == 4);
    const TensorInfo* s = f.find("s");
    REQUIRE(s);
    CHECK(s->shape.empty());
    CHECK(s->n_elements == 1);
    CHECK(s->n_bytes == 4);
    const TensorInfo* z = f.find("z");
    REQUIRE(z);
    CHECK(z->n_elements == 0);
    CHECK(z->n_bytes == 0);
    CHECK(z->shape == std::vector<int64_t>{0, 4});
    CHECK(f.tensors()[1].name == "e");  // ties at one offset: by name
    CHECK(f.tensors()[3].name == "u");
    CHECK(f.metadata().empty());

    // Header padded with spaces (as the safetensors crate writes it), unknown fields of any shape ignored,
    // __metadata__ null.
    std::string deep(10000, '[');
    deep += std::string(10000, ']');
    const Bytes gb = st("{\"__metadata__\":null,\"t\":{\"x\":{\"y\":[1,{\"z\":null}]},\"dtype\":\"BOOL\",\"w\":" + deep +
                        ",\"shape\":[3],\"data_offsets\":[0,3],\"v\":-1.5}}       ", 3);
    const File g = File::parse(gb.b);
    REQUIRE(g.find("t"));
    CHECK(g.find("t")->dtype == Dtype::BOOL);

    // No tensors at all.
    CHECK(File::parse(st("{}").b).tensors().empty());
    CHECK(File::parse(st("{\"__metadata__\":{}}").b).tensors().empty());
}

TEST_CASE("dtypes: names, sizes, ember types") {
    const std::pair<const char*, size_t> all[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1}, {"U8", 1},
        {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"C64", 8}, {"F8_E8M0", 1}};
    for (const auto& [name, size] : all) {
        CAPTURE(name);
        const auto d = dtype_from_name(name);
        REQUIRE(d);
        CHECK(std::string(dtype_name(*d)) == name);
        CHECK(dtype_size(*d) == size);
        // Each reads back from a file of two elements.
        CHECK(File::parse(st(obj({entry("t", name, "2", 0, 2 * size)}), 2 * size).b).find("t")->dtype == *d);
    }
    CHECK(!dtype_from_name("f32"));  // names are case-sensitive, as the format spells them
    CHECK(!dtype_from_name(""));
    CHECK(!tensor_type(Dtype::F64));
}

TEST_CASE("file on disk: mapped and read") {
    TempDir dir("st-file");
    dir.write("m.safetensors", four_dtypes().b);
    for (bool mmap : {true, false}) {
        const File f = File::open((dir.path / "m.safetensors").string(), mmap);
        CHECK(f.tensors().size() == 4);
        CHECK(f.file_size() == four_dtypes().size());
        CHECK(f.path() == (dir.path / "m.safetensors").string());
    }
    try {
        (void)File::open((dir.path / "absent.safetensors").string());
        FAIL("opened an absent file");
    } catch (const Error& e) {
        CHECK(e.status() == Status::Io);
    }
    dir.write("empty.safetensors", std::vector<uint8_t>{});
    try {
        (void)File::open((dir.path / "empty.safetensors").string());
        FAIL("opened an empty file");
    } catch (const Error& e) {
        CHECK(e.status() == Status::BadFile);
        CHECK(std::string(e.what()).find("empty.safetensors: safetensors: file too small") != std::string::npos);
    }
}

TEST_CASE("hostile: header length") {
    expect_bad(Bytes{}, "file too small");
    expect_bad(Bytes{}.zeros(7), "file too small");
    expect_bad(Bytes{}.u64(0), "header is empty");
    expect_bad(Bytes{}.u64(100'000'001).raw("{}", 2), "over the limit");
    expect_bad(Bytes{}.u64(~0ull).raw("{}", 2), "over the limit");
    expect_bad(Bytes{}.u64(3).raw("{}", 2), "runs past the end of the file");
    expect_bad(Bytes{}.u64(1000).raw("{}", 2), "runs past the end of the file");
}

TEST_CASE("hostile: not JSON, not an object, wrong field types") {
    expect_bad("{", 0, "header is not valid JSON");
    expect_bad("{}x", 0, "header is not valid JSON");
    expect_bad(std::string("{}\0\0", 4), 0, "header is not valid JSON (at byte 2): a NUL byte");  // padding is spaces
    expect_bad(std::string("{}\0x", 4), 0, "a NUL byte");
    expect_bad("{\"a\":{\"dtype\":\"F32\",}}", 0, "not valid JSON");
    expect_bad("{\"a\" 1}", 0, "not valid JSON");
    expect_bad("[]", 0, "header is not a JSON object (found an array)");
    expect_bad("5", 0, "header is not a JSON object");
    expect_bad("\"x\"", 0, "header is not a JSON object");
    expect_bad(std::string(50000, '['), 0, "not a JSON object");  // deep nesting: refused at once
    expect_bad("{\"a\":5}", 0, "tensor 'a' is not an object (found a number)");
    expect_bad("{\"a\":[]}", 0, "tensor 'a' is not an object (found an array)");
    expect_bad("{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
    expect_bad("{\"__metadata__\":\"x\"}", 0, "__metadata__ is not an object (found a string)");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value for 'k' is not a string (found a number)");
    expect_bad("{\"__metadata__\":{\"k\":{}}}", 0, "__metadata__ value for 'k' is not a string (found an object)");
    expect_bad("{\"__metadata__\":{\"k\":null}}", 0, "not a string (found null)");
    expect_bad("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate __metadata__ key 'k'");
    expect_bad("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ given twice");

    const std::string tail = ",\"data_offsets\":[0,4]}}";
    expect_bad("{\"a\":{\"dtype\":5,\"shape\":[1]" + tail, 4, "tensor 'a': dtype is a number");
    expect_bad("{\"a\":{\"dtype\":[\"F32\"],\"shape\":[1]" + tail, 4, "tensor 'a': dtype is an array");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":3" + tail, 4, "tensor 'a': shape is a number");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":{}" + tail, 4, "tensor 'a': shape is an object");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"]" + tail, 4, "shape holds a string");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[[1]]" + tail, 4, "shape holds an array");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[true]" + tail, 4, "shape holds a boolean");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0\"}}", 4, "tensor 'a': data_offsets is a string");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets has 1 entries, not 2");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[]}}", 4, "data_offsets has 0 entries, not 2");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "more than two entries");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "data_offsets holds a negative number");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4, "data_offsets holds a non-integer");

    // Missing and repeated fields.
    expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a' has no dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a' has no shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a' has no data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1]" + tail, 4, "field dtype given twice");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1]" + tail, 4, "field shape given twice");
}

TEST_CASE("hostile: dtypes") {
    expect_bad(obj({entry("a", "Q4_0", "1", 0, 4)}), 4, "tensor 'a' has unknown dtype 'Q4_0'");
    expect_bad(obj({entry("a", "f32", "1", 0, 4)}), 4, "unknown dtype 'f32'");
    expect_bad(obj({entry("a", "", "1", 0, 4)}), 4, "unknown dtype ''");
    expect_error(st(obj({entry("a", "F4", "2", 0, 1)}), 1), Status::Unsupported, "tensor 'a' has unsupported dtype 'F4'");
}

TEST_CASE("hostile: shapes") {
    expect_bad(obj({entry("a", "F32", "-1", 0, 4)}), 4, "shape holds a negative number");
    expect_bad(obj({entry("a", "F32", "1.5", 0, 4)}), 4, "shape holds a non-integer number");
    expect_bad(obj({entry("a", "F32", "1e3", 0, 4)}), 4, "shape holds a non-integer number");
    expect_bad(obj({entry("a", "F32", "18446744073709551616", 0, 4)}), 4, "shape holds a non-integer number");
    expect_bad(obj({entry("a", "U8", "9223372036854775808", 0, 4)}), 4, "dimension 9223372036854775808, too large");
    expect_bad(obj({entry("a", "U8", "4294967296,4294967296", 0, 4)}), 4, "tensor 'a' has a shape whose element count overflows");
    expect_bad(obj({entry("a", "U8", "0,4294967296,4294967296", 0, 0)}), 0, "element count overflows");
    expect_bad(obj({entry("a", "U8", "3037000500,3037000500", 0, 0)}), 0, "element count overflows");  // > 2^63
    expect_bad(obj({entry("a", "F32", "4611686018427387904", 0, 0)}), 0, "byte size overflows");
    auto ones = [](int n) {
        std::string s;
        for (int i = 0; i < n; ++i) s.append(i ? ",1" : "1");
        return s;
    };
    expect_bad(obj({entry("a", "U8", ones(17), 0, 1)}), 1, "more than 16 dimensions");
    CHECK(File::parse(st(obj({entry("a", "U8", ones(16), 0, 1)}), 1).b).find("a")->shape.size() == 16);
}

TEST_CASE("hostile: offsets against shapes and the data area") {
    expect_bad(obj({entry("a", "F32", "4", 0, 8)}), 8, "data_offsets [0, 8] hold 8 bytes, but 4 F32 elements take 16");
    expect_bad(obj({entry("a", "F32", "1", 8, 4)}), 8, "end before they begin");
    expect_bad(obj({entry("a", "F32", "4", 0, 16)}), 8, "tensor 'a' data (offset 0, 16 bytes) is outside the data area of 8 bytes");
    expect_bad(obj({entry("a", "F32", "1", 16, 20)}), 8, "outside the data area");
    expect_bad(obj({entry("a", "U8", "16", 18446744073709551600ull, 18446744073709551615ull)}), 8, "hold 15 bytes");
    expect_bad(obj({entry("a", "U8", "15", 18446744073709551600ull, 18446744073709551615ull)}), 8, "outside the data area");
    // Overlaps, holes, bytes left over: the tensors must tile the data area exactly.
    expect_bad(obj({entry("a", "F32", "2", 0, 8), entry("b", "F32", "2", 4, 12)}), 12, "tensor 'b' data overlaps tensor 'a'");
    expect_bad(obj({entry("a", "F32", "2", 0, 8), entry("b", "F32", "2", 0, 8)}), 8, "overlaps");
    expect_bad(obj({entry("a", "F32", "1", 0, 4), entry("b", "F32", "1", 8, 12)}), 12,
               "a hole of 4 bytes before tensor 'b'");
    expect_bad(obj({entry("a", "F32", "1", 4, 8)}), 8, "a hole of 4 bytes before tensor 'a'");
    expect_bad(obj({entry("a", "F32", "1", 0, 4)}), 6, "2 bytes after the last tensor");
    expect_bad("{}", 1, "1 bytes after the last tensor");
}

TEST_CASE("hostile: names") {
    expect_bad(obj({entry("a", "F32", "1", 0, 4), entry("a", "F32", "1", 4, 8)}), 8, "duplicate tensor name 'a'");
    expect_bad(obj({entry("a\xff", "F32", "1", 0, 4)}), 4, "UTF-8");
    expect_bad(obj({entry("a\xc0\xaf", "F32", "1", 0, 4)}), 4, "UTF-8");          // overlong '/'
    expect_bad(obj({entry("\xed\xa0\x80", "F32", "1", 0, 4)}), 4, "UTF-8");       // a surrogate, encoded
    expect_bad(obj({entry("a\\ud800", "F32", "1", 0, 4)}), 4, "surrogate");       // a lone surrogate, escaped
    expect_bad(obj({entry("a\x01", "F32", "1", 0, 4)}), 4, "control character");
    expect_bad("{\"__metadata__\":{\"k\":\"\xfe\"}}", 0, "UTF-8");
    // Messages never carry the file's raw bytes.
    try {
        (void)File::parse(st(obj({entry("a\xff", "F32", "1", 0, 4)}), 4).b);
    } catch (const Error& e) {
        for (const char* p = e.what(); *p; ++p) CHECK(static_cast<unsigned char>(*p) < 0x80);
    }
    // Escapes and real UTF-8 are fine; the name is the decoded string.
    CHECK(File::parse(st(obj({entry("\\u00e9\xc3\xa9\\\"", "F32", "1", 0, 4)}), 4).b).find("\xc3\xa9\xc3\xa9\"") != nullptr);
}

TEST_CASE("hostile: truncation at every byte, and every byte flipped") {
    const Bytes full = four_dtypes();
    (void)File::parse(full.b);
    for (size_t n = 0; n < full.size(); ++n) {
        CAPTURE(n);
        Bytes cut;
        cut.raw(full.b.data(), n);
        CHECK_THROWS_AS((void)File::parse(cut.b), Error);
    }
    // Any single byte changed parses or fails with an Error; nothing else.
    for (size_t i = 0; i < full.size(); ++i)
        for (uint8_t x : {0x01, 0x80, 0xff}) {
            Bytes m = full;
            m.b[i] ^= x;
            try {
                (void)File::parse(m.b);
            } catch (const Error&) {
            }
        }
}

TEST_CASE("index: parse, metadata as text, shard names") {
    const Index i = Index::parse(R"({"metadata": {"total_size": 28, "format": "pt", "ratio": 0.5, "neg": -3, "ok": true,
        "nested": {"a": [1]}}, "other": [1, {"x": 2}], "weight_map": {"b": "model-2.safetensors",
        "a": "model-1.safetensors", "c": "model-1.safetensors"}})");
    REQUIRE(i.metadata.size() == 5);
    CHECK(i.metadata[0] == std::pair<std::string, std::string>{"total_size", "28"});
    CHECK(i.metadata[1].second == "pt");
    CHECK(i.metadata[2].second == "0.5");
    CHECK(i.metadata[3].second == "-3");
    CHECK(i.metadata[4].second == "true");
    REQUIRE(i.weight_map.size() == 3);
    CHECK(i.weight_map[0] == std::pair<std::string, std::string>{"b", "model-2.safetensors"});
    CHECK(i.shards() == std::vector<std::string>{"model-1.safetensors", "model-2.safetensors"});

    auto bad = [](const std::string& json, const std::string& needle) {
        CAPTURE(needle);
        try {
            (void)Index::parse(json);
            FAIL("index parsed");
        } catch (const Error& e) {
            CHECK(e.status() == Status::BadFile);
            CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
        }
    };
    bad("", "index is not valid JSON");
    bad("[]", "index is not a JSON object");
    bad("{}", "index has no weight_map");
    bad(R"({"weight_map": []})", "weight_map is not an object");
    bad(R"({"weight_map": {"a": 1}})", "weight_map entry for 'a' is not a file name");
    bad(R"({"weight_map": {"a": "x"}, "weight_map": {}})", "weight_map given twice");
    bad(R"({"weight_map": {"a": "x", "a": "x"}})", "tensor 'a' listed twice");
    for (const char* name : {"../x.safetensors", "..", ".", "", "/etc/passwd", "sub/x.safetensors", "a\\\\b", "c:x",
                             "x\\u0000.safetensors"}) {
        CAPTURE(name);
        bad(std::string(R"({"weight_map": {"a": ")") + name + "\"}}", "is not a plain file name");
    }
}

TEST_CASE("folder: two shards behind an index") {
    TempDir dir("st-folder");
    // Shard 1: a (F32 [2]) and b (I8 [3]); shard 2: c (BF16 [1, 2]).
    Bytes d1;
    d1.f32(1.0f).f32(2.0f).u8(7).u8(8).u8(9);
    dir.write("model-00001-of-00002.safetensors",
              st("{\"__metadata__\":{\"format\":\"pt\"}," + entry("a", "F32", "2", 0, 8) + "," + entry("b", "I8", "3", 8, 11) + "}", d1).b);
    Bytes d2;
    d2.u32(0x40003f80);  // bf16 1.0, 2.0
    dir.write("model-00002-of-00002.safetensors", st(obj({entry("c", "BF16", "1,2", 0, 4)}), d2).b);
    dir.write("model.safetensors.index.json", R"({"metadata": {"total_size": 15}, "weight_map": {
        "c": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors",
        "b": "model-00001-of-00002.safetensors"}})");

    const Folder f = Folder::open(dir.path.string());
    REQUIRE(f.files().size() == 2);
    CHECK(f.files()[0].path() == (dir.path / "model-00001-of-00002.safetensors").string());
    const auto all = f.tensors();
    REQUIRE(all.size() == 3);
    CHECK(all[0]->name == "a");
    CHECK(all[2]->name == "c");
    const TensorInfo* c = f.find("c");
    REQUIRE(c);
    CHECK(c->shape == std::vector<int64_t>{1, 2});
    uint16_t cv[2];
    std::memcpy(cv, c->data, 4);
    CHECK(tensor::bf16_to_f32(cv[1]) == 2.0f);
    CHECK(f.file_of("c") == &f.files()[1]);
    CHECK(f.file_of("a") == &f.files()[0]);
    CHECK(f.find("b")->data[2] == 9);
    CHECK(f.find("zz") == nullptr);
    CHECK(f.file_of("zz") == nullptr);
    REQUIRE(f.metadata().size() == 1);
    CHECK(f.metadata()[0] == std::pair<std::string, std::string>{"total_size", "15"});

    // Moving a Folder keeps its lookups.
    Folder moved = Folder::open(dir.path.string());
    Folder g = std::move(moved);
    CHECK(g.find("a")->n_bytes == 8);
}

TEST_CASE("folder: one model.safetensors; neither file") {
    TempDir dir("st-single");
    CHECK_THROWS_AS((void)Folder::open(dir.path.string()), Error);
    try {
        (void)Folder::open(dir.path.string());
    } catch (const Error& e) {
        CHECK(e.status() == Status::Io);
        CHECK(std::string(e.what()).find("neither model.safetensors.index.json nor model.safetensors") != std::string::npos);
    }
    dir.write("model.safetensors", four_dtypes().b);
    const Folder f = Folder::open(dir.path.string());
    CHECK(f.files().size() == 1);
    CHECK(f.tensors().size() == 4);
    CHECK(f.find("w")->n_bytes == 24);
    CHECK(f.metadata().size() == 2);  // the file's __metadata__
}

TEST_CASE("folder: index and shards disagree, or lead outside") {
    TempDir dir("st-bad-folder");
    dir.write("s1.safetensors", st(obj({entry("a", "F32", "1", 0, 4), entry("b", "F32", "1", 4, 8)}), 8).b);
    dir.write("s2.safetensors", st(obj({entry("c", "F32", "1", 0, 4)}), 4).b);
    dir.write("s3.safetensors", st(obj({entry("a", "F32", "1", 0, 4)}), 4).b);
    auto expect = [&](const std::string& json, Status status, const std::string& needle) {
        CAPTURE(json);
        dir.write("model.safetensors.index.json", json);
        try {
            (void)Folder::open(dir.path.string());
            FAIL("folder opened");
        } catch (const Error& e) {
            CHECK_MESSAGE(e.status() == status, e.what());
            CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
        }
    };
    expect(R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s1.safetensors"}})", Status::BadFile,
           "tensor 'c' is not in its shard 's1.safetensors'");
    expect(R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"}})", Status::BadFile,
           "tensor 'b' is not in its shard 's2.safetensors'");
    expect(R"({"weight_map": {"a": "s1.safetensors"}})", Status::BadFile, "1 tensors in the shards are not in weight_map");
    expect(R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "x": "s3.safetensors"}})", Status::BadFile,
           "tensor 'a' is in two shards, 's1.safetensors' and 's3.safetensors'");
    expect(R"({"weight_map": {}})", Status::BadFile, "weight_map lists no tensors");
    expect(R"({"weight_map": {"a": "missing.safetensors"}})", Status::Io, "missing.safetensors");
    expect(R"({"weight_map": {"a": "../s1.safetensors"}})", Status::BadFile, "is not a plain file name");
    expect(R"({"weight_map": {"a": ")" + (dir.path / "s1.safetensors").string() + "\"}}", Status::BadFile, "is not a plain file name");
    expect("{\"weight_map\": {\"a\": \"s1.safetensors\",}}", Status::BadFile, "index is not valid JSON");
    // A broken shard names itself.
    dir.write("s4.safetensors", st(obj({entry("d", "F32", "1", 0, 4)}), 5).b);
    expect(R"({"weight_map": {"d": "s4.safetensors"}})", Status::BadFile, "s4.safetensors: safetensors: 1 bytes after");
}

namespace {
template <typename T>
std::vector<T> values(const TensorInfo& t) {
    REQUIRE(t.n_bytes % sizeof(T) == 0);
    std::vector<T> v(t.n_bytes / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), t.data, t.n_bytes);
    return v;
}
}  // namespace

// Written by the safetensors library itself (tests/data/safetensors/make_reference.py).
TEST_CASE("reference: a file from the safetensors library") {
    const File f = File::open(test::testdata("safetensors/reference.safetensors"));
    CHECK(f.tensors().size() == 11);
    CHECK(f.data_offset() % 8 == 0);  // the library pads the header with spaces to 8 bytes
    REQUIRE(f.find_metadata("writer"));
    CHECK(*f.find_metadata("writer") == "safetensors");
    CHECK(*f.find_metadata("format") == "np");
    auto get = [&](const char* name, Dtype dtype, std::vector<int64_t> shape) -> const TensorInfo& {
        CAPTURE(name);
        const TensorInfo* t = f.find(name);
        REQUIRE(t);
        CHECK(t->dtype == dtype);
        CHECK(t->shape == shape);
        return *t;
    };
    CHECK(values<double>(get("f64", Dtype::F64, {2})) == std::vector<double>{0.5, -1.25});
    CHECK(values<float>(get("f32", Dtype::F32, {2, 3})) == std::vector<float>{-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f});
    const auto h = values<uint16_t>(get("f16", Dtype::F16, {2, 2}));
    CHECK(tensor::fp16_to_f32(h[1]) == -2.0f);
    CHECK(tensor::fp16_to_f32(h[2]) == 0.25f);
    CHECK(tensor::fp16_to_f32(h[3]) == 65504.0f);
    CHECK(values<int64_t>(get("i64", Dtype::I64, {2})) == std::vector<int64_t>{-(int64_t{1} << 40), 7});
    CHECK(values<int32_t>(get("i32", Dtype::I32, {3})) == std::vector<int32_t>{-123456, 0, 99});
    CHECK(values<int16_t>(get("i16", Dtype::I16, {2})) == std::vector<int16_t>{-300, 300});
    CHECK(values<int8_t>(get("i8", Dtype::I8, {3})) == std::vector<int8_t>{-128, 127, 0});
    CHECK(values<uint8_t>(get("u8", Dtype::U8, {2, 2})) == std::vector<uint8_t>{1, 2, 3, 255});
    CHECK(values<uint8_t>(get("bool", Dtype::BOOL, {3})) == std::vector<uint8_t>{1, 0, 1});
    CHECK(values<float>(get("scalar", Dtype::F32, {})) == std::vector<float>{3.5f});
    CHECK(get("empty", Dtype::F32, {0, 4}).n_bytes == 0);
}

TEST_CASE("reference: a sharded folder from the safetensors library") {
    const Folder f = Folder::open(test::testdata("safetensors/sharded"));
    REQUIRE(f.files().size() == 2);
    CHECK(f.tensors().size() == 3);
    CHECK(f.metadata() == std::vector<std::pair<std::string, std::string>>{{"total_size", "38"}});
    const TensorInfo* e = f.find("embed.weight");
    REQUIRE(e);
    CHECK(e->shape == std::vector<int64_t>{4, 2});
    CHECK(values<float>(*e)[7] == 7.0f);
    CHECK(f.file_of("embed.weight") == &f.files()[0]);
    CHECK(f.file_of("head.bias") == &f.files()[1]);
    CHECK(values<int8_t>(*f.find("head.bias")) == std::vector<int8_t>{1, -1});
    CHECK(tensor::fp16_to_f32(values<uint16_t>(*f.find("norm.weight"))[1]) == 1.0f);
}
