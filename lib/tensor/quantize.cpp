// Reference row quantizers. Each encodes one block from its floats; blocks are built in a local struct and
// copied out, so dst may have any alignment.
//
// Q8_0 / Q8_1 / Q8_K must match ggml's reference rounding exactly (they quantize activations whose dot
// products are compared with ggml's), so their arithmetic is kept in the same order as ggml's:
//   Q8_0: d = amax/127, id = d ? 1/d : 0, q = roundf(x*id) (ties away from zero), d stored as fp16.
//   Q8_K: max = the value of largest magnitude (with sign), iscale = -127/max,
//         q = min(127, round-half-even(iscale*x)), d = 1/iscale stored as float, bsums per 16.
// The other formats follow ggml's reference algorithms (so files agree byte for byte): the legacy 4/5-bit
// formats scale by the block's signed absmax or min/max; the K formats search sub-block scales (and mins)
// by weighted least squares over a small sweep of candidate inverse scales, quantize those scales to
// 4/6/8 bits, and requantize the elements against the scales actually stored.
#include "tensor/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "ember/error.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace ember::tensor {

namespace {

// Round half to even, as ggml's nearest_int (the 1.5*2^23 trick) does for |x| < 2^22. lrint in the
// default rounding mode gives the same result and, unlike "x*s + magic", cannot be contracted into an FMA
// with the caller's multiply. Out-of-range inputs saturate.
int nearest_int(float x) {
    constexpr float kLimit = 4194303.f;
    if (!(std::fabs(x) <= kLimit)) return x > 0 ? static_cast<int>(kLimit) : -static_cast<int>(kLimit);
    return static_cast<int>(std::lrint(x));
}

// The element of largest magnitude, with its sign (first one wins on ties); 0 for an all-zero span.
float signed_absmax(const float* x, int n) {
    float amax = 0.f, max = 0.f;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    return max;
}

constexpr float kGroupMaxEps = 1e-15f;

// ---------------------------------------------------------------------------------------------------
// Legacy 32-element formats (ggml reference algorithms)

block_q4_0 encode_q4_0(const float* x) {
    block_q4_0 b{};
    const float max = signed_absmax(x, kQK);
    const float d = max / -8.f;  // the extreme value maps to level 0 (= -8): full use of the range
    const float id = d != 0.f ? 1.f / d : 0.f;
    b.d = f32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
        const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
        const int q1 = std::min(15, static_cast<int>(x[j + kQK / 2] * id + 8.5f));
        b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    return b;
}

// The shared scale is 2^(floor(log2 amax) - 2) · 2: amax lands in the top of the E2M1 range. Each element
// takes the table value nearest to it (the first of equals), as ggml's reference does.
block_mxfp4 encode_mxfp4(const float* x) {
    block_mxfp4 b{};
    float amax = 0.f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    b.e = amax > 0.f ? static_cast<uint8_t>(std::floor(std::log2(amax)) - 2 + 127) : 0;
    const float d = e8m0_half(b.e);
    const auto nearest = [d](float v) {
        int best = 0;
        float best_err = std::fabs(static_cast<float>(kFp4Values[0]) * d - v);
        for (int i = 1; i < 16; ++i) {
            const float err = std::fabs(static_cast<float>(kFp4Values[i]) * d - v);
            if (err < best_err) best = i, best_err = err;
        }
        return best;
    };
    for (int j = 0; j < kQK / 2; ++j)
        b.qs[j] = static_cast<uint8_t>(nearest(x[j]) | (nearest(x[j + kQK / 2]) << 4));
    return b;
}

void min_max(const float* x, int n, float& lo, float& hi) {
    lo = x[0];
    hi = x[0];
    for (int i = 1; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
}

block_q4_1 encode_q4_1(const float* x) {
    block_q4_1 b{};
    float lo, hi;
    min_max(x, kQK, lo, hi);
    const float d = (hi - lo) / 15.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    b.d = f32_to_fp16(d);
    b.m = f32_to_fp16(lo);
    for (int j = 0; j < kQK / 2; ++j) {
        const int q0 = std::min(15, static_cast<int>((x[j] - lo) * id + 0.5f));
        const int q1 = std::min(15, static_cast<int>((x[j + kQK / 2] - lo) * id + 0.5f));
        b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    return b;
}

// Packs 32 five-bit values: low nibbles as Q4, bit 4 of value n into bit n of qh (little endian).
void pack_q5(const int* q, uint8_t* qs, uint8_t* qh) {
    uint32_t hbits = 0;
    for (int j = 0; j < kQK / 2; ++j) {
        qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + kQK / 2] & 0x0f) << 4));
        hbits |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
        hbits |= static_cast<uint32_t>((q[j + kQK / 2] >> 4) & 1) << (j + kQK / 2);
    }
    for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(hbits >> (8 * k));
}

block_q5_0 encode_q5_0(const float* x) {
    block_q5_0 b{};
    const float max = signed_absmax(x, kQK);
    const float d = max / -16.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    b.d = f32_to_fp16(d);
    int q[kQK];
    for (int n = 0; n < kQK; ++n) q[n] = std::min(31, static_cast<int>(x[n] * id + 16.5f));
    pack_q5(q, b.qs, b.qh);
    return b;
}

block_q5_1 encode_q5_1(const float* x) {
    block_q5_1 b{};
    float lo, hi;
    min_max(x, kQK, lo, hi);
    const float d = (hi - lo) / 31.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    b.d = f32_to_fp16(d);
    b.m = f32_to_fp16(lo);
    int q[kQK];
    for (int n = 0; n < kQK; ++n) q[n] = std::min(31, static_cast<int>((x[n] - lo) * id + 0.5f));
    pack_q5(q, b.qs, b.qh);
    return b;
}

block_q8_0 encode_q8_0(const float* x) {
    block_q8_0 b{};
    float amax = 0.f;
    for (int n = 0; n < kQK; ++n) amax = std::max(amax, std::fabs(x[n]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    b.d = f32_to_fp16(d);
    for (int n = 0; n < kQK; ++n) b.qs[n] = static_cast<int8_t>(std::round(x[n] * id));
    return b;
}

block_q8_1 encode_q8_1(const float* x) {
    block_q8_1 b{};
    float amax = 0.f;
    for (int n = 0; n < kQK; ++n) amax = std::max(amax, std::fabs(x[n]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    b.d = f32_to_fp16(d);
    int sum = 0;
    for (int n = 0; n < kQK; ++n) {
        b.qs[n] = static_cast<int8_t>(std::round(x[n] * id));
        sum += b.qs[n];
    }
    b.s = f32_to_fp16(static_cast<float>(sum) * d);
    return b;
}

block_q8_K encode_q8_K(const float* x) {
    block_q8_K b{};
    const float max = signed_absmax(x, kQK_K);
    if (max == 0.f) return b;  // d = 0, qs = 0, bsums = 0
    const float iscale = -127.f / max;
    for (int n = 0; n < kQK_K; ++n) b.qs[n] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[n])));
    for (int k = 0; k < kQK_K / 16; ++k) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += b.qs[16 * k + l];
        b.bsums[k] = static_cast<int16_t>(sum);
    }
    b.d = 1.f / iscale;
    return b;
}

// ---------------------------------------------------------------------------------------------------
// Scale searches for the K formats

// Asymmetric fit x ~ scale*L - mn with L in [0, nmax], mn >= 0 (returned through mn), minimising the
// weighted squared (or absolute, if use_abs) error. Starts from the min/max grid, then tries nsteps+1
// candidate inverse scales (nmax + rmin + rdelta*k)/(max - offset) -- offset being the best fit so far,
// as in ggml's make_qkx2_quants, whose results this reproduces -- refitting scale and offset by weighted
// least squares for each rounding and keeping the best.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float& mn, float rmin,
                    float rdelta, int nsteps, bool use_abs) {
    float lo = x[0], hi = x[0];
    float sum_w = 0.f, sum_x = 0.f;
    for (int i = 0; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    lo = std::min(lo, 0.f);  // the offset only ever shifts down (stored min is non-negative)
    if (hi == lo) {
        std::fill(L, L + n, uint8_t{0});
        mn = -lo;
        return 0.f;
    }
    auto error_of = [&](const uint8_t* levels, float scale, float offset) {
        float err = 0.f;
        for (int i = 0; i < n; ++i) {
            const float diff = scale * static_cast<float>(levels[i]) + offset - x[i];
            err += w[i] * (use_abs ? std::fabs(diff) : diff * diff);
        }
        return err;
    };

    float iscale = static_cast<float>(nmax) / (hi - lo);
    float scale = 1.f / iscale;
    float offset = lo;
    for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax));
    float best = error_of(L, scale, offset);

    uint8_t cand[32];
    for (int k = 0; k <= nsteps; ++k) {
        iscale = (rmin + rdelta * static_cast<float>(k) + static_cast<float>(nmax)) / (hi - offset);
        float sum_l = 0.f, sum_l2 = 0.f, sum_xl = 0.f;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(nearest_int(iscale * (x[i] - offset)), 0, nmax);
            cand[i] = static_cast<uint8_t>(l);
            const float fl = static_cast<float>(l);
            sum_l += w[i] * fl;
            sum_l2 += w[i] * fl * fl;
            sum_xl += w[i] * fl * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0.f)) continue;
        float s = (sum_w * sum_xl - sum_x * sum_l) / det;
        float o = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (o > 0.f) {  // offset must stay <= 0: refit the scale alone
            o = 0.f;
            s = sum_xl / sum_l2;
        }
        const float err = error_of(cand, s, o);
        if (err < best) {
            std::copy(cand, cand + n, L);
            best = err;
            scale = s;
            offset = o;
        }
    }
    mn = -offset;
    return scale;
}

// Symmetric fit x ~ scale*(L - nmax), L in [0, 2*nmax-1], weights x^2. Tries inverse scales
// -(nmax + 0.1k)/max for k in -9..9 and keeps the least-squares scale with the best weighted error.
// The returned scale may be negative (the extreme value maps to level 0).
float fit_symmetric(int n, int nmax, const float* x, int8_t* L) {
    const float max = signed_absmax(x, n);
    if (std::fabs(max) < kGroupMaxEps) {
        std::fill(L, L + n, int8_t{0});
        return 0.f;
    }
    auto level = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); };
    auto sums = [&](float iscale, float& sumlx, float& suml2) {
        sumlx = suml2 = 0.f;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            const float l = static_cast<float>(level(iscale, i));
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
    };
    float iscale = -static_cast<float>(nmax) / max;
    float sumlx, suml2;
    sums(iscale, sumlx, suml2);
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(level(iscale, i) + nmax);
    float scale = suml2 != 0.f ? sumlx / suml2 : 0.f;
    float best = scale * sumlx;  // = sumlx^2/suml2: larger means smaller squared error
    for (int k = -9; k <= 9; ++k) {
        if (k == 0) continue;
        const float is = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / max;
        sums(is, sumlx, suml2);
        if (suml2 > 0.f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(level(is, i) + nmax);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Symmetric 3-bit-style fit (levels -nmax..nmax-1) with greedy per-element refinement of the weighted
// (x^2) least-squares objective. Returns the scale; L receives level + nmax.
float fit_symmetric_refine(int n, int nmax, const float* x, int8_t* L) {
    const float max = signed_absmax(x, n);
    if (std::fabs(max) < kGroupMaxEps) {
        std::fill(L, L + n, int8_t{0});
        return 0.f;
    }
    const float iscale = -static_cast<float>(nmax) / max;
    float sumlx = 0.f, suml2 = 0.f;
    int lv[kQK_K];
    for (int i = 0; i < n; ++i) {
        lv[i] = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(lv[i]);
        suml2 += w * static_cast<float>(lv[i]) * static_cast<float>(lv[i]);
    }
    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * static_cast<float>(lv[i]);
            if (!(slx > 0.f)) continue;
            float sl2 = suml2 - w * static_cast<float>(lv[i]) * static_cast<float>(lv[i]);
            const int nl = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == lv[i]) continue;
            slx += w * x[i] * static_cast<float>(nl);
            sl2 += w * static_cast<float>(nl) * static_cast<float>(nl);
            if (sl2 > 0.f && slx * slx * suml2 > sumlx * sumlx * sl2) {  // objective sumlx^2/suml2 improved
                lv[i] = nl;
                sumlx = slx;
                suml2 = sl2;
                ++changed;
            }
        }
        if (changed == 0) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(lv[i] + nmax);
    return suml2 > 0.f ? sumlx / suml2 : 0.f;
}

// Q2_K / Q3_K share the 2-bit plane layout: value n at qs[32*(n/128) + n%32], bits 2*((n%128)/32).
void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int n = 0; n < kQK_K; ++n)
        qs[32 * (n / 128) + n % 32] |= static_cast<uint8_t>((L[n] & 3) << (2 * ((n % 128) / 32)));
}

// Q4_K / Q5_K: 4-bit planes, value n at qs[32*(n/64) + n%32], low nibble for (n%64) < 32.
void pack_4bit_k(const uint8_t* L, uint8_t* qs) {
    for (int n = 0; n < kQK_K; ++n)
        qs[32 * (n / 64) + n % 32] |= static_cast<uint8_t>((L[n] & 0x0f) << (4 * ((n % 64) / 32)));
}

// Inverse of k4_scale_min: stores the 6-bit scale and min of sub-block j (0..7).
void put_k4_scale_min(uint8_t* s, int j, int scale, int min) {
    if (j < 4) {
        s[j] = static_cast<uint8_t>((s[j] & 0xc0) | scale);
        s[j + 4] = static_cast<uint8_t>((s[j + 4] & 0xc0) | min);
    } else {
        s[j + 4] = static_cast<uint8_t>((scale & 0x0f) | ((min & 0x0f) << 4));
        s[j - 4] = static_cast<uint8_t>((s[j - 4] & 0x3f) | ((scale >> 4) << 6));
        s[j] = static_cast<uint8_t>((s[j] & 0x3f) | ((min >> 4) << 6));
    }
}

// Inverse of q3k_scale: stores the 6-bit biased scale v (0..63) of sub-block j (0..15).
void put_q3k_scale(uint8_t* s, int j, int v) {
    if (j < 8)
        s[j] = static_cast<uint8_t>((s[j] & 0xf0) | (v & 0x0f));
    else
        s[j - 8] = static_cast<uint8_t>((s[j - 8] & 0x0f) | ((v & 0x0f) << 4));
    const int shift = 2 * (j / 4);
    s[8 + j % 4] = static_cast<uint8_t>((s[8 + j % 4] & ~(3 << shift)) | ((v >> 4) << shift));
}

block_q2_K encode_q2_K(const float* x) {
    block_q2_K b{};
    uint8_t L[kQK_K];
    float scales[16], mins[16], w[16];
    float max_scale = 0.f, max_min = 0.f;
    for (int k = 0; k < 16; ++k) {
        for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * k + l]);
        scales[k] = fit_scale_min(16, 3, x + 16 * k, w, L + 16 * k, mins[k], -0.5f, 0.1f, 15, true);
        max_scale = std::max(max_scale, scales[k]);
        max_min = std::max(max_min, mins[k]);
    }
    if (max_scale > 0.f) {
        const float is = 15.f / max_scale;
        for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<uint8_t>(std::clamp(nearest_int(is * scales[k]), 0, 15));
        b.d = f32_to_fp16(max_scale / 15.f);
    }
    if (max_min > 0.f) {
        const float is = 15.f / max_min;
        for (int k = 0; k < 16; ++k)
            b.scales[k] |= static_cast<uint8_t>(std::clamp(nearest_int(is * mins[k]), 0, 15) << 4);
        b.dmin = f32_to_fp16(max_min / 15.f);
    }
    const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
    for (int k = 0; k < 16; ++k) {
        const float dl = d * static_cast<float>(b.scales[k] & 0x0f);
        if (dl == 0.f) continue;
        const float ml = dmin * static_cast<float>(b.scales[k] >> 4);
        for (int l = 0; l < 16; ++l)
            L[16 * k + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * k + l] + ml) / dl), 0, 3));
    }
    pack_2bit(L, b.qs);
    return b;
}

block_q3_K encode_q3_K(const float* x) {
    block_q3_K b{};
    int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0.f, amax = 0.f;
    for (int k = 0; k < 16; ++k) {
        scales[k] = fit_symmetric_refine(16, 4, x + 16 * k, L + 16 * k);
        if (std::fabs(scales[k]) > amax) {
            amax = std::fabs(scales[k]);
            max_scale = scales[k];
        }
    }
    if (max_scale != 0.f) {
        const float iscale = -32.f / max_scale;
        for (int k = 0; k < 16; ++k)
            put_q3k_scale(b.scales, k, std::clamp(nearest_int(iscale * scales[k]), -32, 31) + 32);
        b.d = f32_to_fp16(1.f / iscale);
    }  // else: d = 0 and every element decodes to 0 whatever the scale bytes say
    const float d = fp16_to_f32(b.d);
    uint8_t U[kQK_K];
    for (int n = 0; n < kQK_K; ++n) U[n] = static_cast<uint8_t>(L[n]);
    for (int k = 0; k < 16; ++k) {
        const float dl = d * static_cast<float>(q3k_scale(b.scales, k));
        if (dl == 0.f) continue;  // decodes to 0 anyway; keep the first-pass levels (as ggml does)
        for (int l = 0; l < 16; ++l)
            U[16 * k + l] = static_cast<uint8_t>(std::clamp(nearest_int(x[16 * k + l] / dl), -4, 3) + 4);
    }
    for (int n = 0; n < kQK_K; ++n)
        if (U[n] & 4) b.hmask[n % 32] |= static_cast<uint8_t>(1u << (n / 32));
    pack_2bit(U, b.qs);
    return b;
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-32 asymmetric fit, then 6-bit scales and mins.
template <class Block>
void encode_k_scale_min(const float* x, Block& b, uint8_t* L, int nmax, float rmin, int nsteps) {
    float scales[8], mins[8], w[32];
    float max_scale = 0.f, max_min = 0.f;
    for (int k = 0; k < 8; ++k) {
        const float* xs = x + 32 * k;
        float sum_x2 = 0.f;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32.f);
        for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
        scales[k] = fit_scale_min(32, nmax, xs, w, L + 32 * k, mins[k], rmin, 0.1f, nsteps, false);
        max_scale = std::max(max_scale, scales[k]);
        max_min = std::max(max_min, mins[k]);
    }
    const float inv_scale = max_scale > 0.f ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0.f ? 63.f / max_min : 0.f;
    for (int k = 0; k < 8; ++k)
        put_k4_scale_min(b.scales, k, std::clamp(nearest_int(inv_scale * scales[k]), 0, 63),
                         std::clamp(nearest_int(inv_min * mins[k]), 0, 63));
    b.d = f32_to_fp16(max_scale / 63.f);
    b.dmin = f32_to_fp16(max_min / 63.f);
    const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
    for (int k = 0; k < 8; ++k) {
        const ScaleMin sm = k4_scale_min(b.scales, k);
        const float dl = d * static_cast<float>(sm.scale);
        if (dl == 0.f) continue;
        const float ml = dmin * static_cast<float>(sm.min);
        for (int l = 0; l < 32; ++l)
            L[32 * k + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * k + l] + ml) / dl), 0, nmax));
    }
}

block_q4_K encode_q4_K(const float* x) {
    block_q4_K b{};
    uint8_t L[kQK_K];
    encode_k_scale_min(x, b, L, 15, -1.f, 20);
    pack_4bit_k(L, b.qs);
    return b;
}

block_q5_K encode_q5_K(const float* x) {
    block_q5_K b{};
    uint8_t L[kQK_K];
    encode_k_scale_min(x, b, L, 31, -0.5f, 15);
    pack_4bit_k(L, b.qs);
    for (int n = 0; n < kQK_K; ++n)
        if (L[n] & 0x10) b.qh[n % 32] |= static_cast<uint8_t>(1u << (n / 32));
    return b;
}

block_q6_K encode_q6_K(const float* x) {
    block_q6_K b{};
    int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0.f, amax = 0.f;
    for (int k = 0; k < 16; ++k) {
        scales[k] = fit_symmetric(16, 32, x + 16 * k, L + 16 * k);
        if (std::fabs(scales[k]) > amax) {
            amax = std::fabs(scales[k]);
            max_scale = scales[k];
        }
    }
    if (amax < kGroupMaxEps) return b;  // all zero
    const float iscale = -128.f / max_scale;
    b.d = f32_to_fp16(1.f / iscale);
    for (int k = 0; k < 16; ++k)
        b.scales[k] = static_cast<int8_t>(std::clamp(nearest_int(iscale * scales[k]), -128, 127));
    const float d = fp16_to_f32(b.d);
    for (int k = 0; k < 16; ++k) {
        const float dl = d * static_cast<float>(b.scales[k]);
        if (dl == 0.f) continue;
        for (int l = 0; l < 16; ++l)
            L[16 * k + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * k + l] / dl), -32, 31) + 32);
    }
    for (int n = 0; n < kQK_K; ++n) {
        const int q = L[n];
        const int h = n / 128, g = (n % 128) / 32, l = n % 32;
        b.ql[64 * h + 32 * (g & 1) + l] |= static_cast<uint8_t>((q & 0x0f) << (g < 2 ? 0 : 4));
        b.qh[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * g));
    }
    return b;
}

template <class Block, Block (*Encode)(const float*)>
size_t encode_blocks(const float* src, void* dst, int64_t n, int64_t block_size) {
    auto* p = static_cast<unsigned char*>(dst);
    const int64_t nb = n / block_size;
    for (int64_t i = 0; i < nb; ++i) {
        const Block b = Encode(src + i * block_size);
        std::memcpy(p + static_cast<size_t>(i) * sizeof(Block), &b, sizeof(Block));
    }
    return static_cast<size_t>(nb) * sizeof(Block);
}

}  // namespace

size_t quantize_row(TensorType t, const float* src, void* dst, int64_t n) {
    const TypeInfo& ti = info(t);
    if (n < 0 || n % ti.block_size != 0)
        throw Error(Status::InvalidArgument, std::string("quantize_row: ") + ti.name + " needs a multiple of " +
                                                 std::to_string(ti.block_size) + " elements, got " +
                                                 std::to_string(n));
    auto* p = static_cast<unsigned char*>(dst);
    switch (t) {
        case TensorType::F32:
            if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
            return static_cast<size_t>(n) * sizeof(float);
        case TensorType::F16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = f32_to_fp16(src[i]);
                std::memcpy(p + 2 * i, &h, 2);
            }
            return static_cast<size_t>(n) * 2;
        case TensorType::BF16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = f32_to_bf16(src[i]);
                std::memcpy(p + 2 * i, &h, 2);
            }
            return static_cast<size_t>(n) * 2;
        case TensorType::Q4_0: return encode_blocks<block_q4_0, encode_q4_0>(src, dst, n, kQK);
        case TensorType::Q4_1: return encode_blocks<block_q4_1, encode_q4_1>(src, dst, n, kQK);
        case TensorType::Q5_0: return encode_blocks<block_q5_0, encode_q5_0>(src, dst, n, kQK);
        case TensorType::Q5_1: return encode_blocks<block_q5_1, encode_q5_1>(src, dst, n, kQK);
        case TensorType::Q8_0: return encode_blocks<block_q8_0, encode_q8_0>(src, dst, n, kQK);
        case TensorType::Q8_1: return encode_blocks<block_q8_1, encode_q8_1>(src, dst, n, kQK);
        case TensorType::Q2_K: return encode_blocks<block_q2_K, encode_q2_K>(src, dst, n, kQK_K);
        case TensorType::Q3_K: return encode_blocks<block_q3_K, encode_q3_K>(src, dst, n, kQK_K);
        case TensorType::Q4_K: return encode_blocks<block_q4_K, encode_q4_K>(src, dst, n, kQK_K);
        case TensorType::Q5_K: return encode_blocks<block_q5_K, encode_q5_K>(src, dst, n, kQK_K);
        case TensorType::Q6_K: return encode_blocks<block_q6_K, encode_q6_K>(src, dst, n, kQK_K);
        case TensorType::Q8_K: return encode_blocks<block_q8_K, encode_q8_K>(src, dst, n, kQK_K);
        case TensorType::MXFP4: return encode_blocks<block_mxfp4, encode_mxfp4>(src, dst, n, kQK);
    }
    throw Error(Status::InvalidArgument, "quantize_row: cannot quantize to type " +
                                             std::to_string(static_cast<uint32_t>(t)));
}

}  // namespace ember::tensor
