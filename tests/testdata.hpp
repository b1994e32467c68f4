// Where the shared test data lives (EMBER_TESTDATA, set by ctest) and small helpers for building files by hand.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace ember::test {

inline std::string testdata(const std::string& rel) {
    const char* root = std::getenv("EMBER_TESTDATA");
    return std::string(root ? root : "../shared/testdata") + "/" + rel;
}

inline bool exists(const std::string& path) { return std::filesystem::exists(path); }

// Little-endian byte builder for hand-made (often hostile) GGUF files.
struct Bytes {
    std::vector<uint8_t> b;
    Bytes& u8(uint8_t v) { b.push_back(v); return *this; }
    Bytes& u32(uint32_t v) { return raw(&v, 4); }
    Bytes& u64(uint64_t v) { return raw(&v, 8); }
    Bytes& f32(float v) { return raw(&v, 4); }
    Bytes& str(const std::string& s) { u64(s.size()); return raw(s.data(), s.size()); }
    Bytes& raw(const void* p, size_t n) {
        if (n == 0) return *this;
        const size_t at = b.size();
        b.resize(at + n);  // not insert(): GCC 12 warns falsely on it
        std::memcpy(b.data() + at, p, n);
        return *this;
    }
    Bytes& zeros(size_t n) { b.resize(b.size() + n, 0); return *this; }
    Bytes& pad_to(size_t a) { while (b.size() % a) b.push_back(0); return *this; }
    size_t size() const { return b.size(); }
};

}  // namespace ember::test
