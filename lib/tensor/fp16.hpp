// IEEE half (binary16) and bfloat16 conversions, in plain portable bit code.
// Both directions are exact where the value is representable; narrowing rounds to nearest, ties to
// even, and handles zeros, subnormals, overflow to infinity and NaN (which stays NaN, made quiet).
#pragma once

#include <bit>
#include <cstdint>

namespace ember::tensor {

constexpr float fp16_to_f32(uint16_t h) noexcept {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits = 0;
    if (exp == 0x1f) {  // inf / NaN: keep the payload
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {  // normal
        bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    } else if (mant == 0) {  // signed zero
        bits = sign;
    } else {  // subnormal: value = mant * 2^-24; normalise into a float
        int e = -14;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            --e;
        }
        mant &= 0x3ffu;
        bits = sign | (static_cast<uint32_t>(e + 127) << 23) | (mant << 13);
    }
    return std::bit_cast<float>(bits);
}

constexpr uint16_t f32_to_fp16(float f) noexcept {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u)  // NaN: keep the top payload bits, force quiet
        return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);

    const int e = static_cast<int>(abs >> 23) - 127;  // unbiased exponent
    const uint32_t mant = abs & 0x7fffffu;
    if (e > 15) return static_cast<uint16_t>(sign | 0x7c00u);  // too big: inf

    if (e >= -14) {  // lands in the half normal range (rounding may carry into the exponent / inf)
        uint32_t r = (static_cast<uint32_t>(e + 15) << 10) | (mant >> 13);
        const uint32_t rem = mant & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
        return static_cast<uint16_t>(sign | r);
    }
    if (abs < 0x00800000u) return static_cast<uint16_t>(sign);  // float subnormal: far below half range

    // half subnormal: result counts units of 2^-24; the float is m * 2^(e-23) with m the full mantissa
    const uint32_t m = mant | 0x800000u;
    const int shift = -e - 1;                                 // 14 .. 125
    if (shift > 24) return static_cast<uint16_t>(sign);       // below half of the smallest subnormal
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;  // may become 0x400: the smallest normal
    return static_cast<uint16_t>(sign | q);
}

constexpr float bf16_to_f32(uint16_t h) noexcept { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// An E8M0 scale (MXFP4's) halved, exactly: 2^(e - 128); e < 2 gives the two subnormals.
constexpr float e8m0_half(uint8_t e) noexcept {
    return std::bit_cast<float>(e < 2 ? uint32_t(0x00200000) << e : uint32_t(e - 1) << 23);
}

constexpr uint16_t f32_to_bf16(float f) noexcept {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
    return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace ember::tensor
