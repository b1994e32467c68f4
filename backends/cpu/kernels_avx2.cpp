// AVX2 + FMA + F16C kernels. This file alone is compiled with those instructions enabled; kernels.cpp
// calls into it only after cpu_features() has seen them.
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "avx2_util.hpp"
#include "kernels.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace ember::cpu::avx2 {

using namespace ember::tensor;

namespace {

// Σ of signed bytes a·b as 8 floats (maddubs needs one unsigned side: move the signs onto b).
inline __m256 dot_i8(__m256i a, __m256i b) {
    const __m256i ua = _mm256_sign_epi8(a, a);
    const __m256i sb = _mm256_sign_epi8(b, a);
    const __m256i p16 = _mm256_maddubs_epi16(ua, sb);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// Σ of unsigned a (0..31) times signed b, as 8 floats.
inline __m256 dot_u4_i8(__m256i a, __m256i b) {
    const __m256i p16 = _mm256_maddubs_epi16(a, b);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) noexcept {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) noexcept {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += a * x[i];
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) noexcept {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 va = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
        acc = _mm256_fmadd_ps(va, _mm256_loadu_ps(b + i), acc);
    }
    float s = hsum(acc);
    for (; i < n; ++i) s += h2f(a[i]) * b[i];
    return s;
}

void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) noexcept {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 vx = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, vx, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; ++i) y[i] += a * h2f(x[i]);
}

// Four keys at a time, four independent FMA chains (one key's chain alone waits on FMA latency); each
// key's sum in dot_f16_f32's order, so the scores are the same bits.
void dot_f16_rows(const uint16_t* k, size_t stride, int64_t n_keys, const float* q, int64_t n, float* out) noexcept {
    int64_t j = 0;
    if (n % 8 == 0) {
        for (; j + 4 <= n_keys; j += 4) {
            const uint16_t* r[4] = {k + j * stride, k + (j + 1) * stride, k + (j + 2) * stride, k + (j + 3) * stride};
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int64_t i = 0; i < n; i += 8) {
                const __m256 vq = _mm256_loadu_ps(q + i);
                for (int u = 0; u < 4; ++u)
                    acc[u] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r[u] + i))), vq, acc[u]);
            }
            for (int u = 0; u < 4; ++u) out[j + u] = hsum(acc[u]);
        }
    }
    for (; j < n_keys; ++j) out[j] = dot_f16_f32(k + j * stride, q, n);
}

// y += Σ_j w[j]·v_j, key by key as repeated axpy_f16 would (the same bits), 64 columns of y held in
// registers across all keys instead of loaded and stored once per key.
void axpy_f16_rows(const float* w, const uint16_t* v, size_t stride, int64_t n_keys, float* y, int64_t n) noexcept {
    int64_t c = 0;
    for (; c + 64 <= n; c += 64) {
        __m256 acc[8];
        for (int u = 0; u < 8; ++u) acc[u] = _mm256_loadu_ps(y + c + 8 * u);
        for (int64_t j = 0; j < n_keys; ++j) {
            const __m256 a = _mm256_set1_ps(w[j]);
            const uint16_t* r = v + j * stride + c;
            for (int u = 0; u < 8; ++u)
                acc[u] = _mm256_fmadd_ps(a, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 8 * u))), acc[u]);
        }
        for (int u = 0; u < 8; ++u) _mm256_storeu_ps(y + c + 8 * u, acc[u]);
    }
    if (c < n)
        for (int64_t j = 0; j < n_keys; ++j) axpy_f16(w[j], v + j * stride + c, y + c, n - c);
}

void to_f16(const float* x, uint16_t* y, int64_t n) noexcept {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

namespace {
// exp on eight lanes: 2^k · p(r) with x = k·ln2 + r, |r| ≤ ln2/2, and Cephes' degree-6 polynomial for
// e^r (about 1 ulp). Inputs below -87 flush towards zero, as softmax weights that small do not matter.
inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    const __m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(e, _mm256_castsi256_ps(pow2));
}
}  // namespace

void round_to_f16(float* x, int64_t n) noexcept {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; ++i) x[i] = h2f(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

void exp_shifted(float* x, int64_t n, float max) noexcept {
    const __m256 m = _mm256_set1_ps(max);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m)));
    if (i < n) {  // the tail through a padded lane buffer
        alignas(32) float t[8] = {};
        for (int64_t j = i; j < n; ++j) t[j - i] = x[j] - max;
        _mm256_store_ps(t, exp8(_mm256_load_ps(t)));
        for (int64_t j = i; j < n; ++j) x[j] = t[j - i];
    }
}

namespace {
// silu(g) · u, with sigmoid(g) from e = e^-|g| (at most 1, so nothing overflows): 1 / (1 + e) for g ≥ 0,
// e / (1 + e) below.
inline __m256 swiglu8(__m256 g, __m256 u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = exp8(_mm256_or_ps(g, _mm256_set1_ps(-0.0f)));
    const __m256 num = _mm256_blendv_ps(one, e, g);  // the sign bit picks e
    return _mm256_mul_ps(_mm256_mul_ps(g, _mm256_div_ps(num, _mm256_add_ps(one, e))), u);
}
}  // namespace

void swiglu(const float* gate, const float* up, float* out, int64_t n) noexcept {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {  // the tail through padded lanes: an element's value never depends on where a chunk ends
        alignas(32) float g[8] = {}, u[8] = {};
        std::memcpy(g, gate + i, sizeof(float) * static_cast<size_t>(n - i));
        std::memcpy(u, up + i, sizeof(float) * static_cast<size_t>(n - i));
        _mm256_store_ps(g, swiglu8(_mm256_load_ps(g), _mm256_load_ps(u)));
        std::memcpy(out + i, g, sizeof(float) * static_cast<size_t>(n - i));
    }
}

namespace {
// One block of 32: scale 127/amax, products rounded to nearest even, packed to int8. Returns Σ q.
inline int quantize_block(const float* x, int8_t* q, float* d_out) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
    }
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float mx = _mm_cvtss_f32(m);
    *d_out = mx / 127.f;
    const __m256 id = _mm256_set1_ps(mx != 0.f ? 127.f / mx : 0.f);
    __m256i qi[4];
    for (int i = 0; i < 4; ++i)
        qi[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3]));
    // Pack 32 int32 → 32 int8 in element order (packs interleave 128-bit lanes; the permute undoes it).
    const __m256i p16a = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p8);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    return _mm_cvtsi128_si32(s4);
}
}  // namespace

void quantize_q8_0(const float* x, void* dst, int64_t n) noexcept {
    auto* b = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / kQK; ++i) {
        float d;
        quantize_block(x + i * kQK, b[i].qs, &d);
        b[i].d = f32_to_fp16(d);
    }
}

void quantize_q8_1(const float* x, void* dst, int64_t n) noexcept {
    auto* b = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / kQK; ++i) {
        float d;
        const int sum = quantize_block(x + i * kQK, b[i].qs, &d);
        b[i].d = f32_to_fp16(d);
        b[i].s = f32_to_fp16(d * static_cast<float>(sum));
    }
}

// Q8_K exactly as the scalar reference (tensor::quantize_row) rounds it: the element of largest magnitude
// (the first on ties) sets iscale = -127/max, q = min(127, round-half-even(iscale·x)), bsums per 16.
void quantize_q8_K(const float* x, void* dst, int64_t n) noexcept {
    auto* out = static_cast<block_q8_K*>(dst);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        const float* xb = x + i * kQK_K;
        block_q8_K& b = out[i];
        __m256 am = _mm256_setzero_ps();
        for (int k = 0; k < kQK_K; k += 8) am = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xb + k), abs_mask), am);  // NaN: skipped
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(am), _mm256_extractf128_ps(am, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        if (amax == 0.f) {
            std::memset(&b, 0, sizeof b);
            continue;
        }
        float max = 0.f;
        for (int k = 0; k < kQK_K; ++k)
            if (std::fabs(xb[k]) == amax) {
                max = xb[k];
                break;
            }
        const float iscale = -127.f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (int k = 0; k < kQK_K; k += 32) {
            __m256i q[4];
            for (int j = 0; j < 4; ++j)  // cvtps rounds half to even in the default rounding mode
                q[j] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(xb + k + 8 * j))), lim);
            for (int j = 0; j < 4; j += 2) {
                const __m256i s = _mm256_add_epi32(q[j], q[j + 1]);
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                h = _mm_hadd_epi32(h, h);
                h = _mm_hadd_epi32(h, h);
                b.bsums[(k + 8 * j) / 16] = static_cast<int16_t>(_mm_cvtsi128_si32(h));
            }
            const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.qs + k), _mm256_permutevar8x32_epi32(p, order));
        }
        b.d = 1.f / iscale;
    }
}

namespace {

// The weight block unpacked to signed or unsigned bytes, with its scale (and min, for Q4_1).
// Q4_0 and Q5_0 as unsigned values with a min of -8·d (-16·d): the Q8_0 activations' d·Σq (x.s) takes
// the offset off once per block instead of two sign operations per block.
struct Q40 {
    using Act = block_q8_0;
    static __m256i load(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q4_0*>(w)[i];
        *d = h2f(b.d);
        *m = -8.f * *d;
        return unpack_nibbles(b.qs);
    }
    static __m256 dot(__m256i q, __m256i x) { return dot_u4_i8(q, x); }
    static constexpr bool kHasMin = true;
};
struct Q41 {
    using Act = block_q8_1;
    static __m256i load(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q4_1*>(w)[i];
        *d = h2f(b.d);
        *m = h2f(b.m);
        return unpack_nibbles(b.qs);
    }
    static __m256 dot(__m256i q, __m256i x) { return dot_u4_i8(q, x); }
    static constexpr bool kHasMin = true;
};
struct Q50 {
    using Act = block_q8_0;
    static __m256i load(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q5_0*>(w)[i];
        *d = h2f(b.d);
        *m = -16.f * *d;
        return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
    }
    static __m256 dot(__m256i q, __m256i x) { return dot_u4_i8(q, x); }
    static constexpr bool kHasMin = true;
};
// Q5_1: the nibble with a fifth bit from qh (0..31), scale and min.
struct Q51 {
    using Act = block_q8_1;
    static __m256i load(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q5_1*>(w)[i];
        *d = h2f(b.d);
        *m = h2f(b.m);
        return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
    }
    static __m256 dot(__m256i q, __m256i x) { return dot_u4_i8(q, x); }
    static constexpr bool kHasMin = true;
};
struct Q80 {
    using Act = block_q8_0;
    static __m256i load(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q8_0*>(w)[i];
        *d = h2f(b.d);
        *m = 0.f;
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    }
    static __m256 dot(__m256i q, __m256i x) { return dot_i8(q, x); }
    static constexpr bool kHasMin = false;
};

// A tile of RW weight rows × RX activation rows. Each weight block is unpacked once for all RX rows and
// each activation block loaded once for all RW rows (only RW = 1 is used at present, see dot_any). Every output keeps one accumulator chain over the
// blocks in llama.cpp's order: the same sums to the last bit, so ember's logits stay comparable.
template <typename W, int RW, int RX>
void dot_tile(int64_t n, const void* w, size_t ws, const ActRows& x, float* out, size_t os) {
    const int64_t nb = n / kQK;
    __m256 acc[RW][RX];
    float mins[RW][RX];
    const typename W::Act* act[RX];
    for (int j = 0; j < RX; ++j) act[j] = reinterpret_cast<const typename W::Act*>(static_cast<const char*>(x.q) + j * x.stride);
    for (int r = 0; r < RW; ++r)
        for (int j = 0; j < RX; ++j) {
            acc[r][j] = _mm256_setzero_ps();
            mins[r][j] = 0.f;
        }
    for (int64_t i = 0; i < nb; ++i) {
        __m256i qx[RX];
        for (int j = 0; j < RX; ++j) qx[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[j][i].qs));
        for (int r = 0; r < RW; ++r) {
            float d, m;
            const __m256i q = W::load(static_cast<const char*>(w) + r * ws, i, &d, &m);
            for (int j = 0; j < RX; ++j) {
                acc[r][j] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d[j * nb + i]), W::dot(q, qx[j]), acc[r][j]);
                if constexpr (W::kHasMin) mins[r][j] += m * x.s[j * nb + i];
            }
        }
    }
    for (int r = 0; r < RW; ++r)
        for (int j = 0; j < RX; ++j) out[j * os + r] = hsum(acc[r][j]) + mins[r][j];
}

template <typename W>
void dot_any(int64_t n, const void* w, size_t ws, int w_rows, const ActRows& x, int x_rows, float* out, size_t os) {
    // Sharing activation blocks across weight rows measured slower for decode here (four interleaved
    // weight streams), so each weight row runs on its own; several tokens share each weight block.
    for (int r = 0; r < w_rows; ++r) {
        const void* wr = static_cast<const char*>(w) + r * ws;
        switch (x_rows) {
            case 1: dot_tile<W, 1, 1>(n, wr, ws, x, out + r, os); break;
            case 2: dot_tile<W, 1, 2>(n, wr, ws, x, out + r, os); break;
            case 3: dot_tile<W, 1, 3>(n, wr, ws, x, out + r, os); break;
            default: dot_tile<W, 1, 4>(n, wr, ws, x, out + r, os); break;
        }
    }
}

}  // namespace

void dot_q4_0_q8_0(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_any<Q40>(n, w, ws, wr, x, xr, out, os);
}
void dot_q4_1_q8_1(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_any<Q41>(n, w, ws, wr, x, xr, out, os);
}
void dot_q8_0_q8_0(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_any<Q80>(n, w, ws, wr, x, xr, out, os);
}
void dot_q5_0_q8_0(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_any<Q50>(n, w, ws, wr, x, xr, out, os);
}
void dot_q5_1_q8_1(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_any<Q51>(n, w, ws, wr, x, xr, out, os);
}

namespace {

// Σ over the 32 bytes of q (unsigned) × x (signed), each 16-element half weighted by its own i16 scale.
inline __m256i scaled_pairs(__m256i q, __m256i x, int16_t scale_lo, int16_t scale_hi) {
    const __m256i p16 = _mm256_maddubs_epi16(q, x);
    return _mm256_madd_epi16(p16, _mm256_set_m128i(_mm_set1_epi16(scale_hi), _mm_set1_epi16(scale_lo)));
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// Q4_K / Q5_K · Q8_K for one weight row and RX activation rows (the weight unpacked once for all): per
// 256-block, d·dx·Σ_j sc_j·Σ q·x − dmin·dx·Σ_j m_j·Σ x (the x sums from bsums). Q5_K adds a fifth bit to
// each value: bit j of qh[l] for element l of sub-block j. Each output keeps the one-row summation order.
template <typename Block, bool kFifthBit, int RX>
void dot_k_tile(int64_t n, const void* w, const ActRows& x, float* out, size_t os) {
    const auto* bw = static_cast<const Block*>(w);
    const block_q8_K* bx[RX];
    for (int j = 0; j < RX; ++j) bx[j] = reinterpret_cast<const block_q8_K*>(static_cast<const char*>(x.q) + j * x.stride);
    const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc[RX];
    float mins[RX];
    for (int j = 0; j < RX; ++j) {
        acc[j] = _mm256_setzero_ps();
        mins[j] = 0.f;
    }
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        const Block& b = bw[i];
        __m256i isum[RX];
        int msum[RX];
        for (int j = 0; j < RX; ++j) {
            isum[j] = _mm256_setzero_si256();
            msum[j] = 0;
        }
        for (int k = 0; k < 4; ++k) {  // 64 elements: low nibbles are sub-block 2k, high nibbles 2k+1
            const ScaleMin s0 = k4_scale_min(b.scales, 2 * k), s1 = k4_scale_min(b.scales, 2 * k + 1);
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * k));
            __m256i q0 = _mm256_and_si256(q, low4), q1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            if constexpr (kFifthBit) {
                const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
                q0 = _mm256_or_si256(q0, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), one), 4));
                q1 = _mm256_or_si256(q1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k + 1), one), 4));
            }
            for (int j = 0; j < RX; ++j) {
                const block_q8_K& a = bx[j][i];
                const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + 64 * k));
                const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + 64 * k + 32));
                isum[j] = _mm256_add_epi32(isum[j], scaled_pairs(q0, x0, s0.scale, s0.scale));
                isum[j] = _mm256_add_epi32(isum[j], scaled_pairs(q1, x1, s1.scale, s1.scale));
                msum[j] += s0.min * (a.bsums[4 * k] + a.bsums[4 * k + 1]) + s1.min * (a.bsums[4 * k + 2] + a.bsums[4 * k + 3]);
            }
        }
        for (int j = 0; j < RX; ++j) {
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b.d) * bx[j][i].d), _mm256_cvtepi32_ps(isum[j]), acc[j]);
            mins[j] += h2f(b.dmin) * bx[j][i].d * static_cast<float>(msum[j]);
        }
    }
    for (int j = 0; j < RX; ++j) out[j * os] = hsum(acc[j]) - mins[j];
}

// One weight row at a time over up to four activation rows (as dot_any does for the 32-blocks).
template <template <int> class Tile>
void dot_k_rows(int64_t n, const void* w, size_t ws, int w_rows, const ActRows& x, int x_rows, float* out, size_t os) {
    for (int r = 0; r < w_rows; ++r) {
        const void* wr = static_cast<const char*>(w) + r * ws;
        switch (x_rows) {
            case 1: Tile<1>::run(n, wr, x, out + r, os); break;
            case 2: Tile<2>::run(n, wr, x, out + r, os); break;
            case 3: Tile<3>::run(n, wr, x, out + r, os); break;
            default: Tile<4>::run(n, wr, x, out + r, os); break;
        }
    }
}
template <int RX> struct Q4KTile { static void run(int64_t n, const void* w, const ActRows& x, float* o, size_t os) { dot_k_tile<block_q4_K, false, RX>(n, w, x, o, os); } };
template <int RX> struct Q5KTile { static void run(int64_t n, const void* w, const ActRows& x, float* o, size_t os) { dot_k_tile<block_q5_K, true, RX>(n, w, x, o, os); } };

// Q2_K / Q3_K · Q8_K over one row. Per 128-element half, 32 bytes of qs hold four 32-element groups in
// bit pairs 0-1, 2-3, 4-5, 6-7; each group spans two 16-element sub-blocks with scales of their own.
// Q2_K: x = d·sc·q − dmin·m (4-bit sc and m per sub-block), the mins through bsums. Q3_K: q = low + 4·high
// − 4 with high from hmask bit 4h+g, 6-bit signed scales; the −4 comes off through bsums.
template <bool kQ3>
float dot_k_low_row(int64_t n, const void* w, const void* x) {
    using Block = std::conditional_t<kQ3, block_q3_K, block_q2_K>;
    const auto* bw = static_cast<const Block*>(w);
    const auto* bx = static_cast<const block_q8_K*>(x);
    const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    float sum = 0.f;
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        const Block& b = bw[i];
        const block_q8_K& a = bx[i];
        int16_t sc[16];
        int mins = 0, offset = 0;
        for (int k = 0; k < 16; ++k) {
            if constexpr (kQ3) {
                sc[k] = static_cast<int16_t>(tensor::q3k_scale(b.scales, k));
                offset += sc[k] * a.bsums[k];
            } else {
                sc[k] = b.scales[k] & 0x0F;
                mins += (b.scales[k] >> 4) * a.bsums[k];
            }
        }
        __m256i isum = _mm256_setzero_si256();
        __m256i hm = _mm256_setzero_si256();
        if constexpr (kQ3) hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
        for (int h = 0; h < 2; ++h) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
            for (int g = 0; g < 4; ++g) {
                __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * g), three);
                if constexpr (kQ3)
                    v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + g), one), 2));
                const int k = 8 * h + 2 * g;
                const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + 128 * h + 32 * g));
                isum = _mm256_add_epi32(isum, scaled_pairs(v, xv, sc[k], sc[k + 1]));
            }
        }
        if constexpr (kQ3) {
            sum += h2f(b.d) * a.d * static_cast<float>(hsum_i32(isum) - 4 * offset);
        } else {
            sum += h2f(b.d) * a.d * static_cast<float>(hsum_i32(isum)) - h2f(b.dmin) * a.d * static_cast<float>(mins);
        }
    }
    return sum;
}

// Q6_K · Q8_K for one weight row and RX activation rows: 6-bit values stored +32, 16 signed scales; the
// +32 comes off through bsums. The weight is unpacked once for all RX rows.
template <int RX>
void dot_q6_K_tile(int64_t n, const void* w, const ActRows& x, float* out, size_t os) {
    const auto* bw = static_cast<const block_q6_K*>(w);
    const block_q8_K* bx[RX];
    for (int j = 0; j < RX; ++j) bx[j] = reinterpret_cast<const block_q8_K*>(static_cast<const char*>(x.q) + j * x.stride);
    const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(3);
    float sum[RX] = {};
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        const block_q6_K& b = bw[i];
        __m256i isum[RX];
        int offset[RX] = {};
        for (int j = 0; j < RX; ++j) isum[j] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {  // two halves of 128
            const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, two), 4)),
                _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4)),
            };
            for (int g = 0; g < 4; ++g) {  // 32 elements, sub-blocks 8h+2g and 8h+2g+1
                const int sb = 8 * h + 2 * g;
                for (int j = 0; j < RX; ++j) {
                    const block_q8_K& a = bx[j][i];
                    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + 128 * h + 32 * g));
                    isum[j] = _mm256_add_epi32(isum[j], scaled_pairs(q[g], xv, b.scales[sb], b.scales[sb + 1]));
                    offset[j] += b.scales[sb] * a.bsums[sb] + b.scales[sb + 1] * a.bsums[sb + 1];
                }
            }
        }
        for (int j = 0; j < RX; ++j)
            sum[j] += h2f(b.d) * bx[j][i].d * static_cast<float>(hsum_i32(isum[j]) - 32 * offset[j]);
    }
    for (int j = 0; j < RX; ++j) out[j * os] = sum[j];
}
template <int RX> struct Q6KTile { static void run(int64_t n, const void* w, const ActRows& x, float* o, size_t os) { dot_q6_K_tile<RX>(n, w, x, o, os); } };

template <float (*Row)(int64_t, const void*, const void*)>
void dot_rows_k(int64_t n, const void* w, size_t ws, int w_rows, const ActRows& x, int x_rows, float* out, size_t os) {
    for (int r = 0; r < w_rows; ++r)
        for (int j = 0; j < x_rows; ++j)
            out[j * os + r] = Row(n, static_cast<const char*>(w) + r * ws, static_cast<const char*>(x.q) + j * x.stride);
}

// F16 · F16 in llama.cpp's order: four chains of eight lanes, folded pairwise, then across the vector.
float dot_f16_row(int64_t n, const uint16_t* x, const uint16_t* y) {
    __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const int64_t np = n & ~int64_t(31);
    for (int64_t i = 0; i < np; i += 32)
        for (int j = 0; j < 4; ++j) {
            const __m256 ax = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8 * j)));
            const __m256 ay = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + i + 8 * j)));
            sum[j] = _mm256_fmadd_ps(ax, ay, sum[j]);
        }
    sum[0] = _mm256_add_ps(sum[0], sum[2]);
    sum[1] = _mm256_add_ps(sum[1], sum[3]);
    sum[0] = _mm256_add_ps(sum[0], sum[1]);
    const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(sum[0]), _mm256_extractf128_ps(sum[0], 1));
    const __m128 t1 = _mm_hadd_ps(t0, t0);
    double s = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
    for (int64_t i = np; i < n; ++i) s += static_cast<double>(h2f(x[i]) * h2f(y[i]));
    return static_cast<float>(s);
}

float dot_f16_row_v(int64_t n, const void* w, const void* x) {
    return dot_f16_row(n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(x));
}

// 8 BF16 values → 8 floats: BF16 is the top half of an F32.
inline __m256 load_bf16(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

// BF16 · BF16 (activations rounded to BF16 as llama.cpp does): four chains of eight lanes, as for F16.
float dot_bf16_row_v(int64_t n, const void* w, const void* x) {
    const auto* a = static_cast<const uint16_t*>(w);
    const auto* b = static_cast<const uint16_t*>(x);
    __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const int64_t np = n & ~int64_t(31);
    for (int64_t i = 0; i < np; i += 32)
        for (int j = 0; j < 4; ++j) sum[j] = _mm256_fmadd_ps(load_bf16(a + i + 8 * j), load_bf16(b + i + 8 * j), sum[j]);
    const __m256 s = _mm256_add_ps(_mm256_add_ps(sum[0], sum[2]), _mm256_add_ps(sum[1], sum[3]));
    double r = hsum(s);
    for (int64_t i = np; i < n; ++i) r += static_cast<double>(tensor::bf16_to_f32(a[i]) * tensor::bf16_to_f32(b[i]));
    return static_cast<float>(r);
}

}  // namespace

void dot_f16_f16(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_rows_k<dot_f16_row_v>(n, w, ws, wr, x, xr, out, os);
}
void dot_bf16_bf16(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_rows_k<dot_bf16_row_v>(n, w, ws, wr, x, xr, out, os);
}

void dot_q4_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_k_rows<Q4KTile>(n, w, ws, wr, x, xr, out, os);
}
void dot_q5_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_k_rows<Q5KTile>(n, w, ws, wr, x, xr, out, os);
}
void dot_q2_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_rows_k<dot_k_low_row<false>>(n, w, ws, wr, x, xr, out, os);
}
void dot_q3_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_rows_k<dot_k_low_row<true>>(n, w, ws, wr, x, xr, out, os);
}
void dot_q6_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os) {
    dot_k_rows<Q6KTile>(n, w, ws, wr, x, xr, out, os);
}

}  // namespace ember::cpu::avx2
