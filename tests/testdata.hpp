// Where test data lives, and small helpers for building files by hand.
//   testdata(rel): tests/data/<rel>, in the repository; a missing file there is a failure.
//   fixture(rel):  $EMBER_TESTDATA/<rel> (default: the configured EMBER_TESTDATA, ../shared/testdata), too large for the repository. When it
//                  is absent the test process exits with kSkipped, which ctest reports as skipped, unless
//                  EMBER_REQUIRE_FIXTURES is set (CI sets it), when absence is a failure.
// A ctest that may skip must hold only such test cases: exiting ends the whole process.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <doctest/doctest.h>

#include "ember/error.hpp"
#include "ember/session.hpp"

#if !defined(EMBER_TEST_DATA_DIR) || !defined(EMBER_TESTDATA_DEFAULT)
#error "tests/CMakeLists.txt defines EMBER_TEST_DATA_DIR and EMBER_TESTDATA_DEFAULT"
#endif

namespace ember::test {

constexpr int kSkipped = 77;  // SKIP_RETURN_CODE in tests/CMakeLists.txt

// n normally distributed values, the same for the same seed.
inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// Normalized mean squared error Σ(got - ref)² / Σ ref², as llama.cpp's test-backend-ops measures ops.
inline double nmse(const std::vector<float>& got, const std::vector<double>& ref) {
    REQUIRE(got.size() == ref.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        num += (got[i] - ref[i]) * (got[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}
inline double nmse(const std::vector<float>& got, const std::vector<float>& ref) {
    return nmse(got, std::vector<double>(ref.begin(), ref.end()));
}

inline std::string testdata(const std::string& rel) { return std::string(EMBER_TEST_DATA_DIR) + "/" + rel; }

inline bool exists(const std::string& path) { return std::filesystem::exists(path); }

// A path in the temporary folder, unique to this process (tests run in parallel).
inline std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("ember-" + std::to_string(::getpid()) + "-" + name)).string();
}

// A whole file; throws (a test failure) when it cannot be read.
inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Ends the test process as skipped (or failed, under EMBER_REQUIRE_FIXTURES) when `path` is absent.
inline void require_fixture(const std::string& path, const char* where_from) {
    if (exists(path)) return;
    const bool required = std::getenv("EMBER_REQUIRE_FIXTURES") != nullptr;
    std::fprintf(stderr, "%s: missing fixture %s (%s)\n", required ? "FAILED" : "SKIPPED", path.c_str(), where_from);
    std::fflush(stderr);
    std::_Exit(required ? 1 : kSkipped);
}

inline std::string fixture(const std::string& rel) {
    const char* root = std::getenv("EMBER_TESTDATA");
    const std::string path = std::string(root && *root ? root : EMBER_TESTDATA_DEFAULT) + "/" + rel;
    require_fixture(path, "set EMBER_TESTDATA to a copy of the shared test data");
    return path;
}

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

// A directory made empty for a test and removed after it.
struct TempDir {
    std::string path;
    explicit TempDir(const std::string& name) : path(temp_path(name)) {
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string operator/(const std::string& f) const { return path + "/" + f; }
};

// Every position's logits of `prompt`, evaluated from the start of `s` (which is reset first).
inline std::vector<std::vector<float>> prompt_logits(ember::Session& s, const std::vector<ember::Token>& prompt) {
    s.reset();
    s.prefill(prompt, true);
    std::vector<std::vector<float>> out;
    for (size_t i = 0; i < prompt.size(); ++i) {
        const auto row = s.logits_at(static_cast<int>(i));
        out.emplace_back(row.begin(), row.end());
    }
    return out;
}

// The largest |x| over a set of logits, at least 1 (the scale relative tolerances are taken of).
inline float max_abs(const std::vector<std::vector<float>>& xs) {
    float m = 1.f;
    for (const auto& r : xs)
        for (float x : r) m = std::max(m, std::fabs(x));
    return m;
}

// The largest |a − b| over two sets of logits (rows of equal lengths).
inline float max_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
    REQUIRE(a.size() == b.size());
    float d = 0.f;
    for (size_t i = 0; i < a.size(); ++i) {
        REQUIRE(a[i].size() == b[i].size());
        for (size_t v = 0; v < a[i].size(); ++v) d = std::max(d, std::fabs(a[i][v] - b[i][v]));
    }
    return d;
}

// The status of the ember::Error f throws (Ok when it returns); any other exception fails the test.
template <class F>
ember::Status status_of(F&& f) {
    try {
        f();
    } catch (const ember::Error& e) {
        return e.status();
    } catch (const std::exception& e) {
        FAIL("not an ember::Error: " << e.what());
    }
    return ember::Status::Ok;
}

}  // namespace ember::test
