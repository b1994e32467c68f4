// AVX2 + FMA + F16C kernels. This file alone is compiled with those instructions enabled; kernels.cpp
// calls into it only after cpu_features() has seen them.
#include <immintrin.h>

#include "kernels.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace ember::cpu::avx2 {

using namespace ember::tensor;

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// 16 bytes of nibbles → 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31).
inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Σ of signed bytes a·b as 8 floats (maddubs needs one unsigned side: move the signs onto b).
inline __m256 dot_i8(__m256i a, __m256i b) {
    const __m256i ua = _mm256_sign_epi8(a, a);
    const __m256i sb = _mm256_sign_epi8(b, a);
    const __m256i p16 = _mm256_maddubs_epi16(ua, sb);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// Σ of unsigned a (0..15) times signed b, as 8 floats.
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

float dot_q4_0_q8_0(int64_t n, const void* w, const void* x) {
    const auto* bw = static_cast<const block_q4_0*>(w);
    const auto* bx = static_cast<const block_q8_0*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQK; ++i) {
        const __m256i qw = _mm256_sub_epi8(unpack_nibbles(bw[i].qs), _mm256_set1_epi8(8));
        const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(bw[i].d) * h2f(bx[i].d)), dot_i8(qw, qx), acc);
    }
    return hsum(acc);
}

float dot_q4_1_q8_1(int64_t n, const void* w, const void* x) {
    const auto* bw = static_cast<const block_q4_1*>(w);
    const auto* bx = static_cast<const block_q8_1*>(x);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.f;
    for (int64_t i = 0; i < n / kQK; ++i) {
        const __m256i qw = unpack_nibbles(bw[i].qs);
        const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(bw[i].d) * h2f(bx[i].d)), dot_u4_i8(qw, qx), acc);
        mins += h2f(bw[i].m) * h2f(bx[i].s);
    }
    return hsum(acc) + mins;
}

float dot_q8_0_q8_0(int64_t n, const void* w, const void* x) {
    const auto* bw = static_cast<const block_q8_0*>(w);
    const auto* bx = static_cast<const block_q8_0*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / kQK; ++i) {
        const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bw[i].qs));
        const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(bw[i].d) * h2f(bx[i].d)), dot_i8(qw, qx), acc);
    }
    return hsum(acc);
}

}  // namespace ember::cpu::avx2
