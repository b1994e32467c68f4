// The CUDA backend's block decoders (backends/cuda/dequant.cuh), run on the host: every element of every
// weight type against the reference dequantizer (lib/tensor/dequantize.cpp), bit for bit, on rows the
// quantizer wrote and on random bytes (every bit pattern of scales, mins and high bits). Needs no GPU, so
// the layouts the kernels read are checked wherever the backend is compiled. Exit status 0: all equal.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/dequant.cuh"
#include "tensor/dequantize.hpp"
#include "tensor/quantize.hpp"

using ember::tensor::TensorType;

namespace {

bool same(float a, float b) {
    uint32_t x, y;
    std::memcpy(&x, &a, 4);
    std::memcpy(&y, &b, 4);
    return x == y || (a != a && b != b);  // NaN from random scale bytes: any NaN matches
}

template <TensorType T>
int check(const char* name, std::mt19937& rng) {
    using D = ember::cuda::Decode<T>;
    const int64_t n = 4 * 256;  // whole blocks of every type
    const size_t bytes = ember::tensor::row_bytes(T, n);
    int bad = 0;
    for (int trial = 0; trial < 40; ++trial) {
        std::vector<uint8_t> row(bytes);
        if (trial % 2) {  // random bytes
            for (auto& b : row) b = static_cast<uint8_t>(rng());
        } else {  // what the quantizer writes, at several magnitudes
            std::normal_distribution<float> d(0.f, trial % 4 ? 1.f : 1e-3f);
            std::vector<float> x(n);
            for (auto& v : x) v = d(rng);
            ember::tensor::quantize_row(T, x.data(), row.data(), n);
        }
        std::vector<float> want(n);
        ember::tensor::dequantize_row(T, row.data(), want.data(), n);
        for (int64_t k = 0; k < n; ++k) {
            const float got = D::at(row.data(), k);
            if (!same(got, want[k]) && bad++ < 5)
                std::fprintf(stderr, "%s trial %d element %lld: %.9g, the reference %.9g\n", name, trial,
                             static_cast<long long>(k), got, want[k]);
        }
    }
    std::printf("%-6s %s\n", name, bad ? "MISMATCH" : "ok");
    return bad;
}

}  // namespace

int main() {
    std::mt19937 rng(1234);
    int bad = 0;
#define EMBER_CHECK_TYPE(name) bad += check<TensorType::name>(#name, rng);
    EMBER_CUDA_WEIGHT_TYPES(EMBER_CHECK_TYPE)
#undef EMBER_CHECK_TYPE
    std::printf(bad ? "the CUDA decoders differ from the reference\n" : "every CUDA decoder equals the reference\n");
    return bad ? 1 : 0;
}
