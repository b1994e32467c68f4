// Element k of a row of GGUF blocks, decoded on the device with the arithmetic of the reference
// dequantizers (lib/tensor/dequantize.cpp), operation for operation: products and sums that the host
// computes as two roundings are written with __fmul_rn/__fadd_rn so nvcc cannot fuse them into one FMA.
// get_rows therefore gives the CPU backend's values bit for bit. Bytes are read one at a time (blocks of
// 18, 22 or 110 bytes leave wider loads unaligned): simple first; repacked layouts come with speed work.
// The decoders are host functions too, so tests/cuda_decode_host.cu checks every layout against the
// reference on a machine without a GPU.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <cuda_fp16.h>

#include "tensor/types.hpp"

namespace ember::cuda {

using tensor::TensorType;

#define EMBER_HD __host__ __device__ __forceinline__

// One IEEE rounding each (the host compiler, without -mfma, never fuses them either).
EMBER_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
EMBER_HD float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
EMBER_HD float sub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}
EMBER_HD float bits_to_float(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

EMBER_HD float f16_at(const uint8_t* p) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(p[0] | (p[1] << 8))));
}

// Block geometry and element decoder per type: Decode<T>::at(row, k).
template <TensorType T> struct Decode;

template <> struct Decode<TensorType::F32> {
    static constexpr int kBlock = 1, kBytes = 4;
    EMBER_HD static float at(const uint8_t* row, int64_t k) { return reinterpret_cast<const float*>(row)[k]; }
};
template <> struct Decode<TensorType::F16> {
    static constexpr int kBlock = 1, kBytes = 2;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        return __half2float(reinterpret_cast<const __half*>(row)[k]);
    }
};
template <> struct Decode<TensorType::BF16> {
    static constexpr int kBlock = 1, kBytes = 2;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        return bits_to_float(static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(row)[k]) << 16);
    }
};

// Q4_0: d, 16 bytes; element i < 16 in the low nibble of qs[i], i ≥ 16 in the high nibble of qs[i - 16].
template <> struct Decode<TensorType::Q4_0> {
    static constexpr int kBlock = 32, kBytes = 18;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int i = static_cast<int>(k % kBlock);
        const int q = i < 16 ? (b[2 + i] & 15) : (b[2 + i - 16] >> 4);
        return static_cast<float>(q - 8) * f16_at(b);
    }
};
// Q4_1: d, m, 16 bytes: q·d + m.
template <> struct Decode<TensorType::Q4_1> {
    static constexpr int kBlock = 32, kBytes = 20;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int i = static_cast<int>(k % kBlock);
        const int q = i < 16 ? (b[4 + i] & 15) : (b[4 + i - 16] >> 4);
        return add_rn(mul_rn(static_cast<float>(q), f16_at(b)), f16_at(b + 2));
    }
};
// Q5_0: d, qh (little-endian uint32: bit i is element i's fifth bit), 16 bytes of low nibbles as Q4_0.
template <> struct Decode<TensorType::Q5_0> {
    static constexpr int kBlock = 32, kBytes = 22;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int i = static_cast<int>(k % kBlock);
        const int lo = i < 16 ? (b[6 + i] & 15) : (b[6 + i - 16] >> 4);
        const int hi = (b[2 + i / 8] >> (i % 8)) & 1;
        return static_cast<float>((lo | (hi << 4)) - 16) * f16_at(b);
    }
};
// Q5_1: d, m, qh, 16 bytes: q·d + m.
template <> struct Decode<TensorType::Q5_1> {
    static constexpr int kBlock = 32, kBytes = 24;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int i = static_cast<int>(k % kBlock);
        const int lo = i < 16 ? (b[8 + i] & 15) : (b[8 + i - 16] >> 4);
        const int hi = (b[4 + i / 8] >> (i % 8)) & 1;
        return add_rn(mul_rn(static_cast<float>(lo | (hi << 4)), f16_at(b)), f16_at(b + 2));
    }
};
// Q8_0: d, 32 signed bytes.
template <> struct Decode<TensorType::Q8_0> {
    static constexpr int kBlock = 32, kBytes = 34;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int i = static_cast<int>(k % kBlock);
        return static_cast<float>(static_cast<int8_t>(b[2 + i])) * f16_at(b);
    }
};
// MXFP4: E8M0 exponent e, 16 bytes of FP4 codes (nibbles as Q4_0); value = table[code] · 2^(e - 128).
template <> struct Decode<TensorType::MXFP4> {
    static constexpr int kBlock = 32, kBytes = 17;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int i = static_cast<int>(k % kBlock);
        const int code = i < 16 ? (b[1 + i] & 15) : (b[1 + i - 16] >> 4);
        constexpr int8_t kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
        const uint32_t e = b[0];
        const float d = bits_to_float(e < 2 ? 0x00200000u << e : (e - 1) << 23);  // 2^(e-128), exactly
        return static_cast<float>(kValues[code]) * d;
    }
};

// Q2_K (84 bytes): scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
template <> struct Decode<TensorType::Q2_K> {
    static constexpr int kBlock = 256, kBytes = 84;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int n = static_cast<int>(k % kBlock);
        const int sc = b[n / 16];
        const float dl = mul_rn(f16_at(b + 80), static_cast<float>(sc & 15));
        const float ml = mul_rn(f16_at(b + 82), static_cast<float>(sc >> 4));
        const int q = (b[16 + 32 * (n / 128) + n % 32] >> (2 * ((n % 128) / 32))) & 3;
        return sub_rn(mul_rn(dl, static_cast<float>(q)), ml);
    }
};
// Q3_K (110 bytes): hmask[32], qs[64], scales[12] (16 signed 6-bit scales), d.
template <> struct Decode<TensorType::Q3_K> {
    static constexpr int kBlock = 256, kBytes = 110;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int n = static_cast<int>(k % kBlock);
        const uint8_t* s = b + 96;
        const int j = n / 16;
        const int lo = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        const float dl = mul_rn(f16_at(b + 108), static_cast<float>((lo | (hi << 4)) - 32));
        const int low = (b[32 + 32 * (n / 128) + n % 32] >> (2 * ((n % 128) / 32))) & 3;
        const int high = (b[n % 32] >> (n / 32)) & 1;
        return mul_rn(dl, static_cast<float>(low - (high ? 0 : 4)));
    }
};

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K block (tensor::k4_scale_min).
EMBER_HD void k4_scale_min(const uint8_t* s, int j, int& sc, int& m) {
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q4_K (144 bytes): d, dmin, scales[12], qs[128]; sub-block sb of 32 in the low (even sb) or high nibbles
// of qs[32·(sb/2) ..].
template <> struct Decode<TensorType::Q4_K> {
    static constexpr int kBlock = 256, kBytes = 144;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int n = static_cast<int>(k % kBlock), sb = n / 32;
        int sc, m;
        k4_scale_min(b + 4, sb, sc, m);
        const float dl = mul_rn(f16_at(b), static_cast<float>(sc));
        const float ml = mul_rn(f16_at(b + 2), static_cast<float>(m));
        const int q = (b[16 + 32 * (sb / 2) + n % 32] >> (4 * (sb % 2))) & 15;
        return sub_rn(mul_rn(dl, static_cast<float>(q)), ml);
    }
};
// Q5_K (176 bytes): as Q4_K with qh[32] at 16 (bit sb of qh[n % 32] is the fifth bit) and qs at 48.
template <> struct Decode<TensorType::Q5_K> {
    static constexpr int kBlock = 256, kBytes = 176;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int n = static_cast<int>(k % kBlock), sb = n / 32;
        int sc, m;
        k4_scale_min(b + 4, sb, sc, m);
        const float dl = mul_rn(f16_at(b), static_cast<float>(sc));
        const float ml = mul_rn(f16_at(b + 2), static_cast<float>(m));
        const int q = ((b[48 + 32 * (sb / 2) + n % 32] >> (4 * (sb % 2))) & 15) | (((b[16 + n % 32] >> sb) & 1) << 4);
        return sub_rn(mul_rn(dl, static_cast<float>(q)), ml);
    }
};
// Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], d. x = d · scale · (q - 32), multiplied in that order.
template <> struct Decode<TensorType::Q6_K> {
    static constexpr int kBlock = 256, kBytes = 210;
    EMBER_HD static float at(const uint8_t* row, int64_t k) {
        const uint8_t* b = row + (k / kBlock) * kBytes;
        const int n = static_cast<int>(k % kBlock);
        const int h = n / 128, g = (n % 128) / 32, l = n % 32;
        const int lo = (b[64 * h + 32 * (g & 1) + l] >> (g < 2 ? 0 : 4)) & 15;
        const int hi = (b[128 + 32 * h + l] >> (2 * g)) & 3;
        const int q = (lo | (hi << 4)) - 32;
        const float sc = static_cast<float>(static_cast<int8_t>(b[192 + n / 16]));
        return mul_rn(mul_rn(f16_at(b + 208), sc), static_cast<float>(q));
    }
};

// Calls f(std::integral_constant<TensorType, T>{}) for the runtime type t (a generic lambda reads T back as
// decltype(tag)::value); false when t has no decoder.
#define EMBER_CUDA_WEIGHT_TYPES(X) \
    X(F32) X(F16) X(BF16) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q8_0) X(MXFP4) X(Q2_K) X(Q3_K) X(Q4_K) X(Q5_K) X(Q6_K)

template <class F>
bool dispatch_type(TensorType t, F&& f) {
    switch (t) {
#define EMBER_CUDA_CASE(name) \
    case TensorType::name: f(std::integral_constant<TensorType, TensorType::name>{}); return true;
        EMBER_CUDA_WEIGHT_TYPES(EMBER_CUDA_CASE)
#undef EMBER_CUDA_CASE
        default: return false;
    }
}

}  // namespace ember::cuda
