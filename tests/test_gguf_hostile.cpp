// Hostile and broken GGUF files: every one must end in ember::Error(BadFile) with a message naming the
// problem — never a crash, a hang, or an allocation out of proportion to the file.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <malloc.h>
#include <new>

#include "ember/error.hpp"
#include "gguf/reader.hpp"
#include "gguf/writer.hpp"
#include "testdata.hpp"

using namespace ember;
using namespace ember::gguf;
using ember::test::Bytes;
using ember::tensor::TensorType;

// Allocation accounting for the "bounded memory" check: every operator new in this binary is counted.
namespace {
std::atomic<size_t> g_live{0}, g_peak{0};
}
void* operator new(size_t n) {
    void* p = std::malloc(n ? n : 1);
    if (!p) throw std::bad_alloc();
    const size_t live = g_live += malloc_usable_size(p);
    size_t peak = g_peak.load();
    while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {}
    return p;
}
void operator delete(void* p) noexcept {
    if (!p) return;
    g_live -= malloc_usable_size(p);
    std::free(p);
}
void operator delete(void* p, size_t) noexcept { operator delete(p); }

namespace {

Bytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    Bytes b;
    b.u32(kMagic).u32(version).u64(n_tensors).u64(n_kv);
    return b;
}

// Parses and expects a BadFile error whose message contains `needle`.
void expect_bad(const Bytes& b, const std::string& needle) {
    CAPTURE(needle);
    try {
        (void)File::parse(b.b);
        FAIL("parse succeeded on a broken file");
    } catch (const Error& e) {
        CHECK(e.status() == Status::BadFile);
        CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
}

// One tensor info: name, dims, type, offset.
Bytes& tensor_info(Bytes& b, const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    b.str(name).u32(static_cast<uint32_t>(dims.size()));
    for (auto d : dims) b.u64(d);
    return b.u32(type).u64(offset);
}

}  // namespace

TEST_CASE("header: magic, version, counts") {
    expect_bad(Bytes{}, "too small");
    Bytes bad_magic;
    bad_magic.u32(0x46554746).u32(3).u64(0).u64(0);
    expect_bad(bad_magic, "bad magic");
    expect_bad(header(0, 0, 1), "version 1");
    expect_bad(header(0, 0, 4), "unsupported GGUF version 4");
    expect_bad(header(0, 0, 0x03000000), "big-endian");
    expect_bad(header(1ull << 40, 0), "tensor count");
    expect_bad(header(0, 1ull << 60), "metadata count");
    expect_bad(header(0, ~0ull), "metadata count");
    Bytes both = header(3, 3);
    both.zeros(100);  // 3*13 + 3*32 = 135 > 100
    expect_bad(both, "cannot fit");
    // Version 2 and an empty version-3 file are fine.
    CHECK_NOTHROW((void)File::parse(header(0, 0, 2).b));
    CHECK_NOTHROW((void)File::parse(header(0, 0, 3).b));
}

TEST_CASE("metadata: lengths, types, duplicates, depth") {
    Bytes key_past_end = header(0, 1);
    key_past_end.u64(1000).raw("abc", 3).zeros(10);
    expect_bad(key_past_end, "runs past the end");

    Bytes val_past_end = header(0, 1);
    val_past_end.str("k").u32(8).u64(1ull << 62).raw("xy", 2);
    expect_bad(val_past_end, "runs past the end");

    Bytes unknown_type = header(0, 1);
    unknown_type.str("k").u32(13).u64(0);
    expect_bad(unknown_type, "unknown value type 13");

    Bytes unknown_elem = header(0, 1);
    unknown_elem.str("k").u32(9).u32(99).u64(0);
    expect_bad(unknown_elem, "unknown value type 99");

    Bytes array_past_end = header(0, 1);
    array_past_end.str("k").u32(9).u32(4).u64(1000000).zeros(12);
    expect_bad(array_past_end, "cannot fit");

    Bytes str_array_past_end = header(0, 1);
    str_array_past_end.str("k").u32(9).u32(8).u64(2).str("ok").u64(50).raw("short", 5);
    expect_bad(str_array_past_end, "runs past the end");

    Bytes dup = header(0, 2);
    dup.str("k").u32(4).u32(1).str("k").u32(4).u32(2);
    expect_bad(dup, "duplicate metadata key 'k'");

    Bytes bad_bool = header(0, 1);
    bad_bool.str("k").u32(7).u8(2);
    expect_bad(bad_bool, "bool");

    Bytes deep = header(0, 1);
    deep.str("k").u32(9);
    for (int i = 0; i < 100; ++i) deep.u32(9).u64(1);
    deep.u32(4).u64(0);
    expect_bad(deep, "nested deeper");
}

TEST_CASE("alignment: zero, not a power of two, wrongly typed") {
    Bytes zero = header(0, 1);
    zero.str("general.alignment").u32(4).u32(0);
    expect_bad(zero, "not a power of two");
    Bytes three = header(0, 1);
    three.str("general.alignment").u32(4).u32(48);
    expect_bad(three, "not a power of two");
    Bytes typed = header(0, 1);
    typed.str("general.alignment").u32(10).u64(32);
    expect_bad(typed, "must be uint32");
    Bytes str = header(0, 1);
    str.str("general.alignment").u32(8).str("32");
    expect_bad(str, "must be uint32");
}

TEST_CASE("tensor infos: dims, shapes, types, block multiples") {
    auto one = [](std::vector<uint64_t> dims, uint32_t type, uint64_t offset = 0) {
        Bytes b = header(1, 0);
        tensor_info(b, "t", std::move(dims), type, offset);
        b.pad_to(32).zeros(64);
        return b;
    };
    expect_bad(one({1, 1, 1, 1, 1}, 0), "5 dimensions");
    expect_bad(one({}, 0), "0 dimensions");
    expect_bad(one({1ull << 32, 1ull << 32}, 0), "element count overflows");
    expect_bad(one({~0ull}, 0), "element count overflows");
    expect_bad(one({1ull << 62}, 0), "byte size overflows");  // 2^62 floats = 2^64 bytes
    expect_bad(one({4}, 16), "unknown or unsupported type 16");
    expect_bad(one({4}, 1000), "unknown or unsupported type 1000");
    expect_bad(one({16}, static_cast<uint32_t>(TensorType::Q4_0)), "not a multiple of the Q4_0 block size 32");
    expect_bad(one({300}, static_cast<uint32_t>(TensorType::Q4_K)), "block size 256");
    expect_bad(one({4}, 0, 8), "not a multiple of the alignment");
    expect_bad(one({4}, 0, 64), "runs past the end");
    expect_bad(one({1000}, 0), "runs past the end");
    CHECK_NOTHROW((void)File::parse(one({16}, 0).b));

    Bytes trunc = header(1, 0);
    tensor_info(trunc, "t", {4, 4}, 0, 0);
    expect_bad(trunc, "ends before its tensor data");
}

TEST_CASE("tensor data: overlap, duplicates") {
    Bytes overlap = header(2, 0);
    tensor_info(overlap, "a", {16}, 0, 0);   // 64 bytes at 0
    tensor_info(overlap, "b", {16}, 0, 32);  // 64 bytes at 32: overlaps a
    overlap.pad_to(32).zeros(128);
    expect_bad(overlap, "overlaps tensor 'a'");

    Bytes dup = header(2, 0);
    tensor_info(dup, "a", {8}, 0, 0);
    tensor_info(dup, "a", {8}, 0, 32);
    dup.pad_to(32).zeros(64);
    expect_bad(dup, "duplicate tensor name 'a'");

    Bytes ok = header(2, 0);
    tensor_info(ok, "a", {8}, 0, 32);  // out of order but disjoint
    tensor_info(ok, "b", {8}, 0, 0);
    ok.pad_to(32).zeros(64);
    CHECK_NOTHROW((void)File::parse(ok.b));
}

TEST_CASE("truncation at every byte of a small valid file") {
    Writer w;
    w.set("general.architecture", Value::string("llama"));
    w.set("n", Value::u32(5));
    w.set("list", Value::strings({"a", "bb"}));
    w.set("nested", Value::arrays({Value::f32s({1.0f, 2.0f})}));
    std::vector<float> a(8, 1.0f);
    std::vector<uint8_t> q(18, 7);
    w.add_tensor("a", TensorType::F32, {8}, a.data(), 32);
    w.add_tensor("q", TensorType::Q4_0, {32}, q.data(), q.size());
    const auto full = w.to_bytes();
    File whole = File::parse(full);
    uint64_t needed = 0;
    for (const auto& t : whole.tensors()) needed = std::max(needed, whole.data_offset() + t.offset + t.n_bytes);
    size_t failures = 0;
    for (size_t n = 0; n < needed; ++n) {
        Bytes cut;
        cut.raw(full.data(), n);
        try {
            (void)File::parse(cut.b);
        } catch (const Error& e) {
            failures += e.status() == Status::BadFile;
        }
    }
    CHECK(failures == needed);  // every prefix short of the last tensor byte is rejected
    for (size_t n = needed; n <= full.size(); ++n)
        CHECK_NOTHROW((void)File::parse(std::span<const uint8_t>(full.data(), n)));
}

TEST_CASE("parsing allocates a bounded multiple of the file size") {
    // Files that claim huge counts or lengths must be rejected before anything is reserved for them.
    std::vector<Bytes> files;
    files.push_back(header(0, 1ull << 40));
    files.push_back(header(1ull << 40, 0));
    Bytes arr = header(0, 1);
    arr.str("k").u32(9).u32(8).u64(1ull << 40).zeros(64);
    files.push_back(arr);
    Bytes nested = header(0, 1);
    nested.str("k").u32(9).u32(9).u64(1ull << 30).zeros(256);
    files.push_back(nested);
    // A legitimate file full of tiny strings: the worst case for per-element overhead.
    Bytes many = header(0, 1);
    many.str("k").u32(9).u32(8).u64(20000);
    for (int i = 0; i < 20000; ++i) many.u64(0);
    files.push_back(many);
    for (const auto& f : files) {
        g_peak = g_live.load();
        const size_t before = g_live.load();
        try {
            (void)File::parse(f.b);
        } catch (const Error&) {
        }
        const size_t used = g_peak - before;
        CAPTURE(f.size());
        CHECK(used <= 8 * f.size() + 4096);
    }
}
