// Quantized block layouts, byte for byte as GGUF files (and ggml) store them.
// Scales are IEEE half stored as raw uint16_t bits (see fp16.hpp), except Q8_K's float d.
// All structs are trivially copyable, alignment <= 4, no padding: a row of blocks can be read in
// place from an mmap'd file (Q8_K, an activation-only format, needs 4-byte alignment).
//
// Element order inside each block (n = element index in the block):
//   Q4_0/Q4_1:  qs[n % 16], low nibble for n < 16, high nibble for n >= 16.
//   Q5_0/Q5_1:  as Q4 for the low 4 bits; bit 4 of element n is bit n of the little-endian uint32 qh.
//   Q8_0/Q8_1:  qs[n].
//   Q2_K:  16 sub-blocks of 16 (scale index n/16: low nibble = scale, high nibble = min).
//          2-bit q in qs[32*(n/128) + n%32] at bit 2*((n%128)/32).
//   Q3_K:  16 sub-blocks of 16 with 6-bit signed scales (offset 32) packed into scales[12];
//          low 2 bits as Q2_K; bit 2 ("high") in hmask[n%32] at bit n/32, q = low2 + 4*high - 4.
//   Q4_K:  8 sub-blocks of 32 with 6-bit scale and 6-bit min packed into scales[12];
//          q in qs[32*(n/64) + n%32], low nibble when (n%64) < 32 else high nibble.
//   Q5_K:  as Q4_K for the low 4 bits; bit 4 in qh[n%32] at bit (n/32).
//   Q6_K:  16 sub-blocks of 16, int8 scales; low 4 bits in ql[64*(n/128) + n%32 + 32*(((n%128)/32)&1)],
//          low nibble for (n%128) < 64 else high nibble; top 2 bits in qh[32*(n/128) + n%32] at bit
//          2*((n%128)/32); q = 6-bit value - 32.
//   Q8_K:  qs[n]; bsums[k] = sum of qs[16k .. 16k+15].
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ember::tensor {

inline constexpr int kQK = 32;    // block size of the legacy formats
inline constexpr int kQK_K = 256;  // super-block size of the K formats
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales in Q3_K / Q4_K / Q5_K

struct block_q4_0 {
    uint16_t d;
    uint8_t qs[kQK / 2];
};

struct block_q4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK / 2];
};

struct block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};

struct block_q5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};

struct block_q8_0 {
    uint16_t d;
    int8_t qs[kQK];
};

// MXFP4: element k is kFp4Values[its nibble] · 2^(e - 128) (the table holds twice the E2M1 values, the scale
// half the E8M0 one); elements 0..15 in the low nibbles, 16..31 in the high, as Q4_0.
struct block_mxfp4 {
    uint8_t e;
    uint8_t qs[kQK / 2];
};
inline constexpr int8_t kFp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

struct block_q8_1 {
    uint16_t d;
    uint16_t s;  // d * sum(qs)
    int8_t qs[kQK];
};

struct block_q2_K {
    uint8_t scales[kQK_K / 16];  // low nibble: scale, high nibble: min
    uint8_t qs[kQK_K / 4];
    uint16_t d;
    uint16_t dmin;
};

struct block_q3_K {
    uint8_t hmask[kQK_K / 8];
    uint8_t qs[kQK_K / 4];
    uint8_t scales[kKScaleBytes];
    uint16_t d;
};

struct block_q4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleBytes];
    uint8_t qs[kQK_K / 2];
};

struct block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleBytes];
    uint8_t qh[kQK_K / 8];
    uint8_t qs[kQK_K / 2];
};

struct block_q6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    uint16_t d;
};

struct block_q8_K {
    float d;
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(block_q4_0) == 18);
static_assert(sizeof(block_q4_1) == 20);
static_assert(sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24);
static_assert(sizeof(block_q8_0) == 34);
static_assert(sizeof(block_mxfp4) == 17);
static_assert(sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q2_K) == 84);
static_assert(sizeof(block_q3_K) == 110);
static_assert(sizeof(block_q4_K) == 144);
static_assert(sizeof(block_q5_K) == 176);
static_assert(sizeof(block_q6_K) == 210);
static_assert(sizeof(block_q8_K) == 292);

static_assert(offsetof(block_q5_0, qs) == 6);
static_assert(offsetof(block_q2_K, d) == 80);
static_assert(offsetof(block_q3_K, scales) == 96 && offsetof(block_q3_K, d) == 108);
static_assert(offsetof(block_q4_K, qs) == 16);
static_assert(offsetof(block_q5_K, qh) == 16 && offsetof(block_q5_K, qs) == 48);
static_assert(offsetof(block_q6_K, scales) == 192 && offsetof(block_q6_K, d) == 208);
static_assert(offsetof(block_q8_K, bsums) == 260);

static_assert(std::is_trivially_copyable_v<block_q4_K> && std::is_standard_layout_v<block_q4_K>);

// The 6-bit (scale, min) pair of sub-block j (0..7) of a Q4_K / Q5_K block.
// Bytes 0-3 hold scales 0-3 in their low 6 bits, bytes 4-7 mins 0-3; for j >= 4 the low 4 bits sit in
// byte 8+(j-4) (scale low nibble, min high nibble) and the top 2 bits in the spare top bits of
// bytes j-4 (scale) and j (min).
struct ScaleMin {
    uint8_t scale;
    uint8_t min;
};

constexpr ScaleMin k4_scale_min(const uint8_t* s, int j) noexcept {
    if (j < 4) return {static_cast<uint8_t>(s[j] & 63), static_cast<uint8_t>(s[j + 4] & 63)};
    return {static_cast<uint8_t>((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4)),
            static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4))};
}

// The signed scale (-32..31) of sub-block j (0..15) of a Q3_K block.
// Low 4 bits: nibble (j/8) of byte j%8; top 2 bits: bits 2*(j/4) of byte 8 + j%4.
constexpr int q3k_scale(const uint8_t* s, int j) noexcept {
    const int lo = (j < 8) ? (s[j] & 0x0f) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

}  // namespace ember::tensor
