// Reference dequantizers. One small function per format, written for clarity: each decodes one block
// into its elements in file order. The arithmetic (and its order) is the same as ggml's reference
// dequantizers, so results agree with ggml bit for bit.
#include "tensor/dequantize.hpp"

#include <cstring>
#include <string>

#include "ember/error.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace ember::tensor {

namespace {

void decode(const block_q4_0& b, float* y) {
    const float d = fp16_to_f32(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = static_cast<float>((b.qs[j] & 0x0f) - 8) * d;
        y[j + kQK / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
}

void decode(const block_q4_1& b, float* y) {
    const float d = fp16_to_f32(b.d);
    const float m = fp16_to_f32(b.m);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = static_cast<float>(b.qs[j] & 0x0f) * d + m;
        y[j + kQK / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
}

void decode(const block_mxfp4& b, float* y) {
    const float d = e8m0_half(b.e);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = static_cast<float>(kFp4Values[b.qs[j] & 0x0f]) * d;
        y[j + kQK / 2] = static_cast<float>(kFp4Values[b.qs[j] >> 4]) * d;
    }
}

uint32_t load_u32le(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
}

// 5-bit value of element n (0..31) of a Q5_0 / Q5_1 block.
int q5_value(const uint8_t* qs, uint32_t qh, int n) {
    const int lo = (n < kQK / 2) ? (qs[n] & 0x0f) : (qs[n - kQK / 2] >> 4);
    const int hi = static_cast<int>((qh >> n) & 1u);
    return lo | (hi << 4);
}

void decode(const block_q5_0& b, float* y) {
    const float d = fp16_to_f32(b.d);
    const uint32_t qh = load_u32le(b.qh);
    for (int n = 0; n < kQK; ++n) y[n] = static_cast<float>(q5_value(b.qs, qh, n) - 16) * d;
}

void decode(const block_q5_1& b, float* y) {
    const float d = fp16_to_f32(b.d);
    const float m = fp16_to_f32(b.m);
    const uint32_t qh = load_u32le(b.qh);
    for (int n = 0; n < kQK; ++n) y[n] = static_cast<float>(q5_value(b.qs, qh, n)) * d + m;
}

void decode(const block_q8_0& b, float* y) {
    const float d = fp16_to_f32(b.d);
    for (int n = 0; n < kQK; ++n) y[n] = static_cast<float>(b.qs[n]) * d;
}

void decode(const block_q8_1& b, float* y) {
    const float d = fp16_to_f32(b.d);
    for (int n = 0; n < kQK; ++n) y[n] = static_cast<float>(b.qs[n]) * d;
}

// Q2_K: each 128-element half uses 32 bytes of qs; the four 32-element groups of the half take bit
// pairs 0-1, 2-3, 4-5, 6-7 of those bytes. Sub-block k (16 elements) has scale nibble scales[k]&15 and
// min nibble scales[k]>>4: x = d*scale*q - dmin*min.
void decode(const block_q2_K& b, float* y) {
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    for (int n = 0; n < kQK_K; ++n) {
        const uint8_t sc = b.scales[n / 16];
        const float dl = d * static_cast<float>(sc & 0x0f);
        const float ml = dmin * static_cast<float>(sc >> 4);
        const int q = (b.qs[32 * (n / 128) + n % 32] >> (2 * ((n % 128) / 32))) & 3;
        y[n] = dl * static_cast<float>(q) - ml;
    }
}

// Q3_K: low 2 bits laid out as Q2_K; hmask[n%32] bit n/32 set means "+4"; q = low + 4*high - 4.
void decode(const block_q3_K& b, float* y) {
    const float d = fp16_to_f32(b.d);
    for (int n = 0; n < kQK_K; ++n) {
        const float dl = d * static_cast<float>(q3k_scale(b.scales, n / 16));
        const int low = (b.qs[32 * (n / 128) + n % 32] >> (2 * ((n % 128) / 32))) & 3;
        const bool high = (b.hmask[n % 32] >> (n / 32)) & 1;
        y[n] = dl * static_cast<float>(low - (high ? 0 : 4));
    }
}

// Q4_K: 64-element chunks share 32 bytes of qs: low nibbles are the chunk's first 32 elements (sub-block
// 2c), high nibbles the next 32 (sub-block 2c+1). x = d*scale*q - dmin*min.
void decode(const block_q4_K& b, float* y) {
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    for (int sb = 0; sb < kQK_K / 32; ++sb) {
        const ScaleMin sm = k4_scale_min(b.scales, sb);
        const float dl = d * static_cast<float>(sm.scale);
        const float ml = dmin * static_cast<float>(sm.min);
        const uint8_t* q = b.qs + 32 * (sb / 2);
        const int shift = 4 * (sb % 2);
        for (int l = 0; l < 32; ++l) y[32 * sb + l] = dl * static_cast<float>((q[l] >> shift) & 0x0f) - ml;
    }
}

// Q5_K: as Q4_K, plus bit 4 of element 32*sb + l in qh[l] at bit sb.
void decode(const block_q5_K& b, float* y) {
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    for (int sb = 0; sb < kQK_K / 32; ++sb) {
        const ScaleMin sm = k4_scale_min(b.scales, sb);
        const float dl = d * static_cast<float>(sm.scale);
        const float ml = dmin * static_cast<float>(sm.min);
        const uint8_t* q = b.qs + 32 * (sb / 2);
        const int shift = 4 * (sb % 2);
        for (int l = 0; l < 32; ++l) {
            const int v = ((q[l] >> shift) & 0x0f) | (((b.qh[l] >> sb) & 1) << 4);
            y[32 * sb + l] = dl * static_cast<float>(v) - ml;
        }
    }
}

// Q6_K: per 128-element half h, ql[64h .. 64h+63] and qh[32h .. 32h+31]. Group g (0..3) of 32 elements
// takes its low nibble from ql[64h + 32*(g&1) + l] (low nibble for g < 2, high for g >= 2) and its top
// two bits from qh[32h + l] bits 2g..2g+1. x = d * scales[n/16] * (q - 32).
void decode(const block_q6_K& b, float* y) {
    const float d = fp16_to_f32(b.d);
    for (int n = 0; n < kQK_K; ++n) {
        const int h = n / 128, g = (n % 128) / 32, l = n % 32;
        const int lo = (b.ql[64 * h + 32 * (g & 1) + l] >> (g < 2 ? 0 : 4)) & 0x0f;
        const int hi = (b.qh[32 * h + l] >> (2 * g)) & 3;
        const int q = (lo | (hi << 4)) - 32;
        y[n] = d * static_cast<float>(b.scales[n / 16]) * static_cast<float>(q);
    }
}

void decode(const block_q8_K& b, float* y) {
    for (int n = 0; n < kQK_K; ++n) y[n] = b.d * static_cast<float>(b.qs[n]);
}

template <class Block>
void decode_blocks(const void* src, float* dst, int64_t n, int64_t block_size) {
    const auto* p = static_cast<const unsigned char*>(src);
    const int64_t nb = n / block_size;
    for (int64_t i = 0; i < nb; ++i) {
        Block b;
        std::memcpy(&b, p + static_cast<size_t>(i) * sizeof(Block), sizeof(Block));
        decode(b, dst + i * block_size);
    }
}

}  // namespace

void dequantize_row(TensorType t, const void* src, float* dst, int64_t n) {
    const TypeInfo& ti = info(t);
    if (n < 0 || n % ti.block_size != 0)
        throw Error(Status::InvalidArgument, std::string("dequantize_row: ") + ti.name + " needs a multiple of " +
                                                 std::to_string(ti.block_size) + " elements, got " +
                                                 std::to_string(n));
    if (n == 0) return;
    const auto* p = static_cast<const unsigned char*>(src);
    switch (t) {
        case TensorType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
            return;
        case TensorType::F16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                dst[i] = fp16_to_f32(h);
            }
            return;
        case TensorType::BF16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                dst[i] = bf16_to_f32(h);
            }
            return;
        case TensorType::Q4_0: return decode_blocks<block_q4_0>(src, dst, n, kQK);
        case TensorType::Q4_1: return decode_blocks<block_q4_1>(src, dst, n, kQK);
        case TensorType::Q5_0: return decode_blocks<block_q5_0>(src, dst, n, kQK);
        case TensorType::Q5_1: return decode_blocks<block_q5_1>(src, dst, n, kQK);
        case TensorType::Q8_0: return decode_blocks<block_q8_0>(src, dst, n, kQK);
        case TensorType::Q8_1: return decode_blocks<block_q8_1>(src, dst, n, kQK);
        case TensorType::Q2_K: return decode_blocks<block_q2_K>(src, dst, n, kQK_K);
        case TensorType::Q3_K: return decode_blocks<block_q3_K>(src, dst, n, kQK_K);
        case TensorType::Q4_K: return decode_blocks<block_q4_K>(src, dst, n, kQK_K);
        case TensorType::Q5_K: return decode_blocks<block_q5_K>(src, dst, n, kQK_K);
        case TensorType::Q6_K: return decode_blocks<block_q6_K>(src, dst, n, kQK_K);
        case TensorType::Q8_K: return decode_blocks<block_q8_K>(src, dst, n, kQK_K);
        case TensorType::MXFP4: return decode_blocks<block_mxfp4>(src, dst, n, kQK);
    }
    throw Error(Status::InvalidArgument, "dequantize_row: unknown tensor type " +
                                             std::to_string(static_cast<uint32_t>(t)));
}

}  // namespace ember::tensor
