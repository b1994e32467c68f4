// Prefill GEMMs over packed weight panels (AVX2). A panel holds a few weight rows rewritten once per
// matmul into the layout the inner loop wants, then reused for every token:
//   - quantized types: values widened to unsigned bytes and interleaved four elements per row, so one
//     32-byte load holds elements 4g..4g+3 of 8 rows, and one broadcast of 4 activation bytes multiplies
//     all 8 rows at once (vpmaddubsw). Block sums stay in 16 bits while they cannot overflow, and the
//     float work (conversion, scales) is done once per block for 8 rows instead of once per row;
//   - float types: 16 rows per panel, element-major, for a 16 × 6 FMA tile.
// Integer block sums equal llama.cpp's exactly; only the order of the float accumulation differs.
//
// Where the ceiling is (AMD EPYC Zen 3, one core, ~3 GHz): the 4-bit tiles spend a broadcast, a vpmaddubsw
// and a 16-bit add per 32 multiply-adds, and Zen 3 runs the broadcast from memory on a vector pipe too.
// That inner loop alone, with no unpacking or scales, peaks near 125 GMAC/s; the Q4_0 / Q4_K tiles reach
// 80-90. Q8_0's signed weights add vpsignb and a vpmaddwd per product (a pair reaches 2·128·127, so it
// cannot stay in 16 bits): that loop alone peaks near 70 GMAC/s. AVX-512 VNNI's vpdpbusd (4 products
// summed into 32 bits, no saturation) is what lifts both.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <utility>
#include <vector>

#include "avx2_util.hpp"
#include "kernels.hpp"
#include "tensor/blocks.hpp"
#include "tensor/fp16.hpp"

namespace ember::cpu::avx2 {

using namespace ember::tensor;

namespace {

// An opaque step: stops the compiler from regrouping a chain of 16-bit sums into a tree, which computes
// every product first and spills them (measured on 8-group chains: 20-25% slower; shorter chains are
// faster left to the compiler).
inline void chain(__m256i& v) { asm("" : "+x"(v)); }

// Asks for the block about 4 KB ahead: the hardware prefetcher alone leaves the repacked kernels at half
// the bandwidth they reach with it (measured: Q6_K 9 → 23 GB/s of weights per CPU-second on 27 MB), and
// two blocks ahead is too close for the small blocks (one thread, best of 6 on 16 MB to 34 MB: Q8_0 20 →
// 25 GB/s, Q4_0 22.5 → 26.4, Q4_K 25.8 → 27.8, Q6_K unchanged).
constexpr size_t kPrefetchBytes = 4096;
template <class B>
inline void prefetch_ahead(const B* b) {
    constexpr size_t ahead = std::max<size_t>(2, (kPrefetchBytes + sizeof(B) - 1) / sizeof(B));
    for (size_t off = 0; off < sizeof(B); off += 64) _mm_prefetch(reinterpret_cast<const char*>(b + ahead) + off, _MM_HINT_T0);
}

inline __m256i bcast4(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// The NT activation rows from row j0 on, as blocks of type A (or floats).
template <class A, int NT>
inline std::array<const A*, NT> act_rows(const ActRows& x, int64_t j0) {
    std::array<const A*, NT> xa;
    for (int j = 0; j < NT; ++j) xa[j] = reinterpret_cast<const A*>(static_cast<const char*>(x.q) + (j0 + j) * x.stride);
    return xa;
}

// out[j·os + r] = acc[j] lane r for r < rows, through a local tile: stores from the accumulator array at
// run-time offsets would make the compiler keep the array in memory for the whole loop.
template <int NT>
inline void store_tile(const __m256 (&acc)[NT], float* out, size_t os, int rows) {
    alignas(32) float tile[NT][8];
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) _mm256_store_ps(tile[j], acc[j]);
    for (int j = 0; j < NT; ++j) std::memcpy(out + j * os, tile[j], sizeof(float) * static_cast<size_t>(rows));
}

// tile.template operator()<NT>(j) over x_rows tokens: tiles of kMax from j = 0, then one of the rest.
template <int kMax, class F>
inline void token_tiles(int64_t x_rows, F&& tile) {
    int64_t j = 0;
    for (; j + kMax <= x_rows; j += kMax) tile.template operator()<kMax>(j);
    [&]<int... I>(std::integer_sequence<int, I...>) {
        ((x_rows - j == I + 1 ? tile.template operator()<I + 1>(j) : void()), ...);
    }(std::make_integer_sequence<int, kMax - 1>{});
}

// v[r] holds 32 values of row r; q[g] gets dword g of every row (elements 4g..4g+3 of rows 0..7): an
// 8 × 8 transpose of 32-bit words.
inline void interleave(const __m256i v[8], uint8_t (*q)[32]) {
    __m256i t[8], u[8];
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_epi32(v[k], v[k + 1]);
        t[k + 1] = _mm256_unpackhi_epi32(v[k], v[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
        u[k] = _mm256_unpacklo_epi64(t[k], t[k + 2]);
        u[k + 1] = _mm256_unpackhi_epi64(t[k], t[k + 2]);
        u[k + 2] = _mm256_unpacklo_epi64(t[k + 1], t[k + 3]);
        u[k + 3] = _mm256_unpackhi_epi64(t[k + 1], t[k + 3]);
    }
    for (int g = 0; g < 4; ++g) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q[g]), _mm256_permute2x128_si256(u[g], u[g + 4], 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q[g + 4]), _mm256_permute2x128_si256(u[g], u[g + 4], 0x31));
    }
}

// ---- 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against Q8_0 / Q8_1 activations ----

struct Panel32 {
    float d[8];
    float m[8];         // Q4_1 / Q5_1 mins
    uint8_t q[8][32];   // q[g][4r + e] = element 4g + e of row r
};

// Per weight type: the activation block, how a block unpacks, and the arithmetic it needs.
//   kZero: the value stored is q + kZero (Q4_0: 8, Q5_0: 16); the kernel takes kZero·Σx off in integers.
//   kGroupsPerMadd: groups of 4 elements whose 16-bit products can be summed before widening.
struct Q40P {
    using Act = block_q8_0;
    static constexpr int kZero = 8, kGroupsPerMadd = 8;
    static constexpr bool kMin = false, kSigned = false;
    static __m256i unpack(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q4_0*>(w)[i];
        *d = h2f(b.d), *m = 0;
        return unpack_nibbles(b.qs);
    }
};
struct Q41P {
    using Act = block_q8_1;
    static constexpr int kZero = 0, kGroupsPerMadd = 8;
    static constexpr bool kMin = true, kSigned = false;
    static __m256i unpack(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q4_1*>(w)[i];
        *d = h2f(b.d), *m = h2f(b.m);
        return unpack_nibbles(b.qs);
    }
};
template <class B>
__m256i unpack5(const B& b) {
    return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
}
struct Q50P {
    using Act = block_q8_0;
    static constexpr int kZero = 16, kGroupsPerMadd = 4;
    static constexpr bool kMin = false, kSigned = false;
    static __m256i unpack(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q5_0*>(w)[i];
        *d = h2f(b.d), *m = 0;
        return unpack5(b);
    }
};
struct Q51P {
    using Act = block_q8_1;
    static constexpr int kZero = 0, kGroupsPerMadd = 4;
    static constexpr bool kMin = true, kSigned = false;
    static __m256i unpack(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q5_1*>(w)[i];
        *d = h2f(b.d), *m = h2f(b.m);
        return unpack5(b);
    }
};
// Q8_0 weights are signed: vpmaddubsw needs one unsigned side, so the kernel moves the weights' signs onto
// the activations (|w|·sign(x, w)), and each group's products are widened at once (they could overflow 16 bits).
struct Q80P {
    using Act = block_q8_0;
    static constexpr int kZero = 0, kGroupsPerMadd = 1;
    static constexpr bool kMin = false, kSigned = true;
    static __m256i unpack(const void* w, int64_t i, float* d, float* m) {
        const auto& b = static_cast<const block_q8_0*>(w)[i];
        *d = h2f(b.d), *m = 0;
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    }
};

template <class W>
size_t panel32_bytes(int64_t n) { return sizeof(Panel32) * static_cast<size_t>(n / kQK); }

template <class W>
void pack32(int64_t n, const void* w, size_t ws, int rows, void* out) {
    auto* p = static_cast<Panel32*>(out);
    for (int64_t i = 0; i < n / kQK; ++i) {
        Panel32& b = p[i];
        __m256i v[8];
        for (int r = 0; r < 8; ++r) {
            if (r < rows) {
                v[r] = W::unpack(static_cast<const char*>(w) + r * ws, i, &b.d[r], &b.m[r]);
            } else {
                v[r] = _mm256_setzero_si256();
                b.d[r] = b.m[r] = 0.f;
            }
        }
        interleave(v, b.q);
    }
}

// NT tokens (j0 ..) against one 8-row panel.
template <class W, int NT>
void tile32(int64_t nb, const Panel32* p, const ActRows& x, int64_t j0, float* out, size_t os, int rows) {
    using A = typename W::Act;
    const auto xa = act_rows<A, NT>(x, j0);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const Panel32& b = p[i];
        __m256i isum[NT], s16[NT];
        for (int j = 0; j < NT; ++j) isum[j] = s16[j] = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q[g]));
            if constexpr (W::kSigned) {
                const __m256i aw = _mm256_sign_epi8(w, w);
                for (int j = 0; j < NT; ++j) {
                    const __m256i xs = _mm256_sign_epi8(bcast4(xa[j][i].qs + 4 * g), w);
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones));
                }
            } else {
                for (int j = 0; j < NT; ++j) {
                    const __m256i p16 = _mm256_maddubs_epi16(w, bcast4(xa[j][i].qs + 4 * g));
                    s16[j] = g % W::kGroupsPerMadd == 0 ? p16 : _mm256_add_epi16(s16[j], p16);
                    if constexpr (W::kGroupsPerMadd == 8) chain(s16[j]);
                }
                if (g % W::kGroupsPerMadd == W::kGroupsPerMadd - 1)
                    for (int j = 0; j < NT; ++j) isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16[j], ones));
            }
        }
        const __m256 dw = _mm256_loadu_ps(b.d);
        for (int j = 0; j < NT; ++j) {
            const int64_t k = (j0 + j) * nb + i;
            __m256i s = isum[j];
            if constexpr (W::kZero != 0) s = _mm256_sub_epi32(s, _mm256_set1_epi32(W::kZero * x.sum[k]));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(x.d[k])), acc[j]);
            if constexpr (W::kMin) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(b.m), _mm256_set1_ps(x.s[k]), acc[j]);
        }
    }
    store_tile(acc, out + j0 * os, os, rows);
}

template <class W>
void run32(int64_t n, const void* panel, const ActRows& x, int64_t x_rows, float* out, size_t os, int rows) {
    token_tiles<4>(x_rows, [&]<int NT>(int64_t j) { tile32<W, NT>(n / kQK, static_cast<const Panel32*>(panel), x, j, out, os, rows); });
}

// ---- K types (Q2_K .. Q6_K) against Q8_K activations ----

// Per super-block of 8 rows. A sub-block's scales are repeated in both 16-bit halves of each row's lane so
// one vpmaddwd applies them; mn[p] holds, per row, the two coefficients of bsums[2p] and bsums[2p+1]
// (a 32-element sub-block's min twice; for 16-element sub-blocks their own mins, or their scales when the
// type stores values with a zero point instead of mins).
struct PanelK {
    float d[8];
    float dmin[8];
    int16_t sc[16][16];
    int16_t mn[8][16];
    uint8_t q[64][32];
};

// One super-block of one row: its values in 8 chunks of 32 elements, and its scales.
struct KBlock {
    __m256i v[8];
    int sc[16];   // per sub-block
    int mn[16];   // per 16 elements: the coefficient of bsums[k]
    float d, dmin;
};

// The 2-bit field at bit `shift` of each byte.
inline __m256i bits2(__m256i q, int shift) {
    return _mm256_and_si256(_mm256_srli_epi16(q, shift), _mm256_set1_epi8(3));
}
inline __m256i nibble(__m256i q, bool high) {
    return _mm256_and_si256(high ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(15));
}
// Bit `bit` of each byte of h, moved to bit `to`.
inline __m256i bit_at(__m256i h, int bit, int to) {
    return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, bit), _mm256_set1_epi8(1)), to);
}
inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// kSub: sub-blocks per super-block (8 of 32 or 16 of 16). kZero (a power of two): values stored as q + kZero
// (the kernel takes kZero·Σ sc·bsum off in integers); otherwise dmin·Σ min·bsum comes off in floats.
// Chunk c of a 2-bit-plane type (Q2_K, Q3_K, Q6_K's top bits) is field c % 4 of qs half c / 4.
struct Q2KP {
    static constexpr int kSub = 16, kGroupsPerMadd = 4, kZero = 0;
    static void unpack(const void* w, int64_t i, KBlock& o) {
        const auto& b = static_cast<const block_q2_K*>(w)[i];
        for (int c = 0; c < 8; ++c) o.v[c] = bits2(load32(b.qs + 32 * (c / 4)), 2 * (c % 4));
        for (int s = 0; s < 16; ++s) o.sc[s] = b.scales[s] & 15, o.mn[s] = b.scales[s] >> 4;
        o.d = h2f(b.d), o.dmin = h2f(b.dmin);
    }
};
struct Q3KP {
    static constexpr int kSub = 16, kGroupsPerMadd = 4, kZero = 4;
    static void unpack(const void* w, int64_t i, KBlock& o) {
        const auto& b = static_cast<const block_q3_K*>(w)[i];
        const __m256i hm = load32(b.hmask);
        for (int c = 0; c < 8; ++c)
            o.v[c] = _mm256_or_si256(bits2(load32(b.qs + 32 * (c / 4)), 2 * (c % 4)), bit_at(hm, c, 2));
        for (int s = 0; s < 16; ++s) o.sc[s] = o.mn[s] = q3k_scale(b.scales, s);
        o.d = h2f(b.d), o.dmin = 0;
    }
};
struct Q4KP {
    static constexpr int kSub = 8, kGroupsPerMadd = 8, kZero = 0;
    static void unpack(const void* w, int64_t i, KBlock& o) {
        const auto& b = static_cast<const block_q4_K*>(w)[i];
        for (int c = 0; c < 8; ++c) o.v[c] = nibble(load32(b.qs + 32 * (c / 2)), c % 2);
        k4_scales(b.scales, o);
        o.d = h2f(b.d), o.dmin = h2f(b.dmin);
    }
    static void k4_scales(const uint8_t* scales, KBlock& o) {
        for (int s = 0; s < 8; ++s) {
            const ScaleMin sm = k4_scale_min(scales, s);
            o.sc[s] = sm.scale;
            o.mn[2 * s] = o.mn[2 * s + 1] = sm.min;
        }
    }
};
struct Q5KP {
    static constexpr int kSub = 8, kGroupsPerMadd = 4, kZero = 0;
    static void unpack(const void* w, int64_t i, KBlock& o) {
        const auto& b = static_cast<const block_q5_K*>(w)[i];
        const __m256i qh = load32(b.qh);
        for (int c = 0; c < 8; ++c) o.v[c] = _mm256_or_si256(nibble(load32(b.qs + 32 * (c / 2)), c % 2), bit_at(qh, c, 4));
        Q4KP::k4_scales(b.scales, o);
        o.d = h2f(b.d), o.dmin = h2f(b.dmin);
    }
};
struct Q6KP {
    static constexpr int kSub = 16, kGroupsPerMadd = 2, kZero = 32;
    static void unpack(const void* w, int64_t i, KBlock& o) {
        const auto& b = static_cast<const block_q6_K*>(w)[i];
        for (int c = 0; c < 8; ++c) {
            const int h = c / 4, g = c % 4;
            const __m256i low = nibble(load32(b.ql + 64 * h + 32 * (g & 1)), g >= 2);
            o.v[c] = _mm256_or_si256(low, _mm256_slli_epi16(bits2(load32(b.qh + 32 * h), 2 * g), 4));
        }
        for (int s = 0; s < 16; ++s) o.sc[s] = o.mn[s] = b.scales[s];
        o.d = h2f(b.d), o.dmin = 0;
    }
};

template <class W>
size_t panelk_bytes(int64_t n) { return sizeof(PanelK) * static_cast<size_t>(n / kQK_K); }

template <class W>
void packk(int64_t n, const void* w, size_t ws, int rows, void* out) {
    auto* p = static_cast<PanelK*>(out);
    KBlock kb[8];
    for (int64_t i = 0; i < n / kQK_K; ++i) {
        PanelK& b = p[i];
        for (int r = 0; r < 8; ++r) {
            if (r < rows) {
                W::unpack(static_cast<const char*>(w) + r * ws, i, kb[r]);
            } else {
                std::memset(static_cast<void*>(&kb[r]), 0, sizeof kb[r]);
            }
            b.d[r] = kb[r].d;
            b.dmin[r] = kb[r].dmin;
            for (int s = 0; s < W::kSub; ++s) b.sc[s][2 * r] = b.sc[s][2 * r + 1] = static_cast<int16_t>(kb[r].sc[s]);
            for (int k = 0; k < 8; ++k) {
                b.mn[k][2 * r] = static_cast<int16_t>(kb[r].mn[2 * k]);
                b.mn[k][2 * r + 1] = static_cast<int16_t>(kb[r].mn[2 * k + 1]);
            }
        }
        for (int c = 0; c < 8; ++c) {
            const __m256i v[8] = {kb[0].v[c], kb[1].v[c], kb[2].v[c], kb[3].v[c], kb[4].v[c], kb[5].v[c], kb[6].v[c], kb[7].v[c]};
            interleave(v, b.q + 8 * c);
        }
    }
}

template <class W, int NT>
void tilek(int64_t nb, const PanelK* p, const ActRows& x, int64_t j0, float* out, size_t os, int rows) {
    constexpr int kGroups = 64 / W::kSub;  // 4-element groups per sub-block
    const auto xa = act_rows<block_q8_K, NT>(x, j0);
    __m256 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const PanelK& b = p[i];
        __m256i isum[NT], s16[NT];
        for (int j = 0; j < NT; ++j) isum[j] = s16[j] = _mm256_setzero_si256();
        for (int s = 0; s < W::kSub; ++s) {
            const __m256i sc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.sc[s]));
            for (int g = 0; g < kGroups; ++g) {
                const int gg = s * kGroups + g;
                const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q[gg]));
                for (int j = 0; j < NT; ++j) {
                    const __m256i p16 = _mm256_maddubs_epi16(w, bcast4(xa[j][i].qs + 4 * gg));
                    s16[j] = g % W::kGroupsPerMadd == 0 ? p16 : _mm256_add_epi16(s16[j], p16);
                    if constexpr (W::kGroupsPerMadd == 8) chain(s16[j]);
                }
                if (g % W::kGroupsPerMadd == W::kGroupsPerMadd - 1)
                    for (int j = 0; j < NT; ++j) isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16[j], sc));
            }
        }
        __m256i msum[NT];
        for (int j = 0; j < NT; ++j) msum[j] = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k) {
            const __m256i mn = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.mn[k]));
            for (int j = 0; j < NT; ++j) msum[j] = _mm256_add_epi32(msum[j], _mm256_madd_epi16(mn, bcast4(xa[j][i].bsums + 2 * k)));
        }
        const __m256 d = _mm256_loadu_ps(b.d);
        for (int j = 0; j < NT; ++j) {
            const __m256 dx = _mm256_set1_ps(xa[j][i].d);
            if constexpr (W::kZero != 0) {
                const __m256i s = _mm256_sub_epi32(isum[j], _mm256_slli_epi32(msum[j], std::countr_zero(unsigned(W::kZero))));
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, dx), acc[j]);
            } else {
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, dx), acc[j]);
                acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[j]), _mm256_mul_ps(_mm256_loadu_ps(b.dmin), dx), acc[j]);
            }
        }
    }
    store_tile(acc, out + j0 * os, os, rows);
}

template <class W>
void runk(int64_t n, const void* panel, const ActRows& x, int64_t x_rows, float* out, size_t os, int rows) {
    token_tiles<4>(x_rows, [&]<int NT>(int64_t j) { tilek<W, NT>(n / kQK_K, static_cast<const PanelK*>(panel), x, j, out, os, rows); });
}

// ---- float weights (F32, F16, BF16) against activations already rounded to the weights' format ----

constexpr int kFloatRows = 16;

template <TensorType T>
float to_float(const void* w, int64_t k) {
    if constexpr (T == TensorType::F32) return static_cast<const float*>(w)[k];
    else if constexpr (T == TensorType::F16) return h2f(static_cast<const uint16_t*>(w)[k]);
    else return bf16_to_f32(static_cast<const uint16_t*>(w)[k]);
}

// Elements k..k+7 of a row as floats.
template <TensorType T>
__m256 load8(const void* w, int64_t k) {
    if constexpr (T == TensorType::F32) return _mm256_loadu_ps(static_cast<const float*>(w) + k);
    const auto* h = reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + k);
    if constexpr (T == TensorType::F16) return _mm256_cvtph_ps(_mm_loadu_si128(h));
    else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(h)), 16));
}

// v[r] = 8 elements of row r → p[16k + r] for those 8 elements k (an 8 × 8 transpose of floats).
inline void transpose_store(const __m256 v[8], float* p) {
    __m256 t[8], u[8];
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(v[k], v[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(v[k], v[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
        u[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
        u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
        u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
    for (int g = 0; g < 4; ++g) {
        _mm256_storeu_ps(p + 16 * g, _mm256_permute2f128_ps(u[g], u[g + 4], 0x20));
        _mm256_storeu_ps(p + 16 * (g + 4), _mm256_permute2f128_ps(u[g], u[g + 4], 0x31));
    }
}

template <TensorType T>
size_t panelf_bytes(int64_t n) { return sizeof(float) * kFloatRows * static_cast<size_t>(n); }

// p[16k + r] = element k of row r.
template <TensorType T>
void packf(int64_t n, const void* w, size_t ws, int rows, void* out) {
    auto* p = static_cast<float*>(out);
    const auto row = [&](int r) { return static_cast<const char*>(w) + r * ws; };
    int64_t k = 0;
    if (rows == kFloatRows)
        for (; k + 8 <= n; k += 8)
            for (int half = 0; half < 2; ++half) {
                __m256 v[8];
                for (int r = 0; r < 8; ++r) v[r] = load8<T>(row(8 * half + r), k);
                transpose_store(v, p + kFloatRows * k + 8 * half);
            }
    for (; k < n; ++k)
        for (int r = 0; r < kFloatRows; ++r) p[kFloatRows * k + r] = r < rows ? to_float<T>(row(r), k) : 0.f;
}

// The panel of columns: p[16k + r] = w[k·ws + r] (F16), for V in attention, whose rows are keys and
// whose columns are the output's dimensions.
void packf16_columns(int64_t n, const void* w, size_t ws, int cols, void* out) {
    auto* p = static_cast<float*>(out);
    for (int64_t k = 0; k < n; ++k) {
        const auto* row = reinterpret_cast<const uint16_t*>(static_cast<const char*>(w) + k * ws);
        if (cols == kFloatRows) {
            _mm256_storeu_ps(p + kFloatRows * k, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row))));
            _mm256_storeu_ps(p + kFloatRows * k + 8, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8))));
        } else {
            for (int r = 0; r < kFloatRows; ++r) p[kFloatRows * k + r] = r < cols ? h2f(row[r]) : 0.f;
        }
    }
}

template <int NT>
void tilef(int64_t n, const float* p, const ActRows& x, int64_t j0, float* out, size_t os, int rows) {
    const auto xa = act_rows<float, NT>(x, j0);
    __m256 a0[NT], a1[NT];
    for (int j = 0; j < NT; ++j) a0[j] = a1[j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < n; ++k) {
        const __m256 w0 = _mm256_loadu_ps(p + kFloatRows * k), w1 = _mm256_loadu_ps(p + kFloatRows * k + 8);
#pragma GCC unroll 8
        for (int j = 0; j < NT; ++j) {
            const __m256 xb = _mm256_broadcast_ss(xa[j] + k);
            a0[j] = _mm256_fmadd_ps(w0, xb, a0[j]);
            a1[j] = _mm256_fmadd_ps(w1, xb, a1[j]);
        }
    }
    // Through a local tile: stores from the accumulator arrays at run-time offsets would keep them in
    // memory for the whole loop.
    alignas(32) float tile[NT][kFloatRows];
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
        _mm256_store_ps(tile[j], a0[j]);
        _mm256_store_ps(tile[j] + 8, a1[j]);
    }
    for (int j = 0; j < NT; ++j) std::memcpy(out + (j0 + j) * os, tile[j], sizeof(float) * static_cast<size_t>(rows));
}

template <TensorType T>
void runf(int64_t n, const void* panel, const ActRows& x, int64_t x_rows, float* out, size_t os, int rows) {
    token_tiles<6>(x_rows, [&]<int NT>(int64_t j) { tilef<NT>(n, static_cast<const float*>(panel), x, j, out, os, rows); });
}

// ---- Q4_0, Q4_1, Q5_0 repacked at load: 8 rows interleaved, the file's bytes ----

// Per 32-element block of 8 rows: the rows' scales (and mins, or fifth bits), then four 32-byte chunks; byte
// 4r + e of chunk c holds element 8c + e of row r in its low nibble and element 8c + 4 + e in its high
// nibble, so the low and high nibbles of a chunk are groups 2c and 2c + 1 of the panel layout above.
// Q5_0's and Q5_1's fifth bits: bit k of byte 4r + e of qh is element 4k + e's.
struct Q40x8 {
    uint16_t d[8];
    uint8_t qs[4][32];
    using Panel = Q40P;
    using Act = block_q8_0;
    static constexpr int kZero = 8, kGroupsPerMadd = 8;
    static constexpr bool kMin = false, kFifthBits = false;
};
struct Q41x8 {
    uint16_t d[8], m[8];
    uint8_t qs[4][32];
    using Panel = Q41P;
    using Act = block_q8_1;
    static constexpr int kZero = 0, kGroupsPerMadd = 8;
    static constexpr bool kMin = true, kFifthBits = false;
};
struct Q50x8 {
    uint16_t d[8];
    uint8_t qh[32];
    uint8_t qs[4][32];
    using Panel = Q50P;
    using Act = block_q8_0;
    static constexpr int kZero = 16, kGroupsPerMadd = 4;
    static constexpr bool kMin = false, kFifthBits = true;
};
struct Q51x8 {
    uint16_t d[8], m[8];
    uint8_t qh[32];
    uint8_t qs[4][32];
    using Panel = Q51P;
    using Act = block_q8_1;
    static constexpr int kZero = 0, kGroupsPerMadd = 4;
    static constexpr bool kMin = true, kFifthBits = true;
};
static_assert(sizeof(Q40x8) == 8 * sizeof(block_q4_0) && sizeof(Q41x8) == 8 * sizeof(block_q4_1) &&
              sizeof(Q50x8) == 8 * sizeof(block_q5_0) && sizeof(Q51x8) == 8 * sizeof(block_q5_1));

// Through the packed panel of the same 8 rows (one unpacking for both layouts): its byte values, two
// groups to a byte.
inline __m256i nibble_pair(const uint8_t* even, const uint8_t* odd, __m256i low4) {
    const __m256i e = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(even)), low4);
    const __m256i o = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(odd)), low4);
    return _mm256_or_si256(e, _mm256_slli_epi16(o, 4));
}
inline void floats_to_f16(const float* f, uint16_t* h) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm256_cvtps_ph(_mm256_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT));
}

template <class X, class P>
void repack32(const void* src, size_t row_bytes, int64_t n_rows, int64_t n, void* dst) {
    auto* out = static_cast<X*>(dst);
    const int64_t nb = n / kQK;
    std::vector<Panel32> panel(static_cast<size_t>(nb));
    const __m256i low4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    for (int64_t g = 0; g < n_rows / 8; ++g) {
        pack32<P>(n, static_cast<const char*>(src) + 8 * g * row_bytes, row_bytes, 8, panel.data());
        for (int64_t i = 0; i < nb; ++i) {
            const Panel32& b = panel[static_cast<size_t>(i)];
            X& o = out[g * nb + i];
            floats_to_f16(b.d, o.d);  // exact: they were F16
            if constexpr (X::kMin) floats_to_f16(b.m, o.m);
            for (int c = 0; c < 4; ++c)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qs[c]), nibble_pair(b.q[2 * c], b.q[2 * c + 1], low4));
            if constexpr (X::kFifthBits) {
                __m256i h = _mm256_setzero_si256();
                for (int k = 0; k < 8; ++k) {
                    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q[k]));
                    h = _mm256_or_si256(h, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), one), k));
                }
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qh), h);
            }
        }
    }
}

template <class X, int NT>
void tile32x8(int64_t nb, const X* p, const ActRows& x, int64_t j0, float* out, size_t os) {
    using A = typename X::Act;
    const auto xa = act_rows<A, NT>(x, j0);
    const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(15);
    __m256 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const X& b = p[i];
        prefetch_ahead(&b);
        __m256i s16[NT], isum[NT];
        for (int j = 0; j < NT; ++j) s16[j] = isum[j] = _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs[c]));
            __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            if constexpr (X::kFifthBits) {
                const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh)), one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c + 1), one), 4));
            }
            for (int j = 0; j < NT; ++j) {
                s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(lo, bcast4(xa[j][i].qs + 8 * c)));
                if constexpr (X::kGroupsPerMadd == 8) chain(s16[j]);
                s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(hi, bcast4(xa[j][i].qs + 8 * c + 4)));
                if constexpr (X::kGroupsPerMadd == 8) chain(s16[j]);
            }
            if (2 * (c + 1) % X::kGroupsPerMadd == 0)
                for (int j = 0; j < NT; ++j) {
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16[j], ones));
                    s16[j] = _mm256_setzero_si256();
                }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
        for (int j = 0; j < NT; ++j) {
            const int64_t k = (j0 + j) * nb + i;
            __m256i s = isum[j];
            if constexpr (X::kZero != 0) s = _mm256_sub_epi32(s, _mm256_set1_epi32(X::kZero * x.sum[k]));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(x.d[k])), acc[j]);
            if constexpr (X::kMin)
                acc[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.m))),
                                         _mm256_set1_ps(x.s[k]), acc[j]);
        }
    }
    store_tile(acc, out + j0 * os, os, 8);
}

// ---- Q8_0 repacked at load: 8 rows interleaved 4 bytes at a time, the file's bytes ----

struct Q80x8 {
    uint16_t d[8];
    int8_t qs[8][32];  // chunk c: elements 4c..4c+3 of each of the 8 rows
};
static_assert(sizeof(Q80x8) == 8 * sizeof(block_q8_0));

void repack_q8_0(const void* src, size_t row_bytes, int64_t n_rows, int64_t n, void* dst) {
    auto* out = static_cast<Q80x8*>(dst);
    const int64_t nb = n / kQK;
    for (int64_t g = 0; g < n_rows / 8; ++g)
        for (int64_t i = 0; i < nb; ++i) {
            Q80x8& o = out[g * nb + i];
            for (int r = 0; r < 8; ++r) {
                const auto& blk = reinterpret_cast<const block_q8_0*>(static_cast<const char*>(src) + (8 * g + r) * row_bytes)[i];
                o.d[r] = blk.d;
                for (int c = 0; c < 8; ++c) std::memcpy(&o.qs[c][4 * r], blk.qs + 4 * c, 4);
            }
        }
}

// Signed weights: vpmaddubsw takes |w| and the activations with w's signs. A pair of products reaches
// 2·128·127, so each one goes to 32 bits at once.
template <int NT>
void tile_q8_0x8(int64_t nb, const Q80x8* p, const ActRows& x, int64_t j0, float* out, size_t os) {
    const auto xa = act_rows<block_q8_0, NT>(x, j0);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const Q80x8& b = p[i];
        prefetch_ahead(&b);
        __m256i isum[NT];
        for (int j = 0; j < NT; ++j) isum[j] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int c = 0; c < 8; ++c) {
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs[c]));
            const __m256i aw = _mm256_sign_epi8(w, w);
            for (int j = 0; j < NT; ++j) {
                const __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast4(xa[j][i].qs + 4 * c), w));
                isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(p16, ones));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
        for (int j = 0; j < NT; ++j)
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(dw, _mm256_set1_ps(x.d[(j0 + j) * nb + i])), acc[j]);
    }
    store_tile(acc, out + j0 * os, os, 8);
}

// ---- Q4_K and Q5_K repacked at load: 8 rows interleaved; 6-bit scales and mins widened to bytes (+32
// bytes a group); Q5_K's fifth bits as Q50x8 keeps them, one 32-byte vector per sub-block ----

struct Q4Kx8 {
    uint16_t d[8], dmin[8];
    uint8_t sc[8][8], mn[8][8];  // [sub-block][row]
    uint8_t qs[32][32];          // chunk c: groups 2c (low nibbles) and 2c + 1 (high), as Q40x8's
    using Panel = Q4KP;
};
struct Q5Kx8 {
    uint16_t d[8], dmin[8];
    uint8_t sc[8][8], mn[8][8];
    uint8_t qh[8][32];  // sub-block sb: bit k of byte 4r + e is the fifth bit of group 8sb + k
    uint8_t qs[32][32];
    using Panel = Q5KP;
};

template <class X>
void repack_qK(const void* src, size_t row_bytes, int64_t n_rows, int64_t n, void* dst) {
    auto* out = static_cast<X*>(dst);
    const int64_t nb = n / kQK_K;
    std::vector<PanelK> panel(static_cast<size_t>(nb));
    const __m256i low4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    for (int64_t g = 0; g < n_rows / 8; ++g) {
        packk<typename X::Panel>(n, static_cast<const char*>(src) + 8 * g * row_bytes, row_bytes, 8, panel.data());
        for (int64_t i = 0; i < nb; ++i) {
            const PanelK& b = panel[static_cast<size_t>(i)];
            X& o = out[g * nb + i];
            floats_to_f16(b.d, o.d);
            floats_to_f16(b.dmin, o.dmin);
            for (int sb = 0; sb < 8; ++sb)
                for (int r = 0; r < 8; ++r) {
                    o.sc[sb][r] = static_cast<uint8_t>(b.sc[sb][2 * r]);
                    o.mn[sb][r] = static_cast<uint8_t>(b.mn[sb][2 * r]);
                }
            for (int c = 0; c < 32; ++c)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qs[c]), nibble_pair(b.q[2 * c], b.q[2 * c + 1], low4));
            if constexpr (std::is_same_v<X, Q5Kx8>)
                for (int sb = 0; sb < 8; ++sb) {
                    __m256i h = _mm256_setzero_si256();
                    for (int k = 0; k < 8; ++k) {
                        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q[8 * sb + k]));
                        h = _mm256_or_si256(h, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), one), k));
                    }
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qh[sb]), h);
                }
        }
    }
}

// 8 byte values (one per row) → lanes of two equal 16-bit halves, for vpmaddwd against 16-bit pair sums.
inline __m256i pairs_u8(const uint8_t* p) {
    const __m128i twice = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), twice));
}
// The 8 rows' bytes of two consecutive sub-blocks (p[0..7], p[8..15]) → lane r = (p[r], p[8 + r]) in 16 bits.
inline __m256i zip_u8(const uint8_t* p) {
    const __m128i zip = _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), zip));
}

// Q5_K's 5-bit values fill the 16-bit sums twice as fast: they are scaled every two chunks, not four.
template <class X, int NT>
void tile_qKx8(int64_t nb, const X* p, const ActRows& x, int64_t j0, float* out, size_t os) {
    constexpr bool five = std::is_same_v<X, Q5Kx8>;
    const auto xa = act_rows<block_q8_K, NT>(x, j0);
    const int32_t* xsums[NT];
    for (int j = 0; j < NT; ++j) xsums[j] = x.sum + (j0 + j) * 4 * nb;
    const __m256i low4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    __m256 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const X& b = p[i];
        prefetch_ahead(&b);
        __m256i isum[NT], msum[NT];
        for (int j = 0; j < NT; ++j) isum[j] = msum[j] = _mm256_setzero_si256();
        for (int sb = 0; sb < 8; ++sb) {
            const __m256i sc = pairs_u8(b.sc[sb]);
            __m256i hb = _mm256_setzero_si256();
            if constexpr (five) hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh[sb]));
            __m256i s16[NT];
            for (int j = 0; j < NT; ++j) s16[j] = _mm256_setzero_si256();
            for (int cc = 0; cc < 4; ++cc) {
                const int c = 4 * sb + cc;
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs[c]));
                __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
                if constexpr (five) {
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * cc), one), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * cc + 1), one), 4));
                }
                for (int j = 0; j < NT; ++j) {
                    s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(lo, bcast4(xa[j][i].qs + 8 * c)));
                    chain(s16[j]);
                    s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(hi, bcast4(xa[j][i].qs + 8 * c + 4)));
                    chain(s16[j]);
                }
                if (cc == 3 || (five && cc == 1))
                    for (int j = 0; j < NT; ++j) {
                        isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16[j], sc));
                        s16[j] = _mm256_setzero_si256();
                    }
            }
        }
        // The mins once per super-block: two sub-blocks' mins against their activation sums per vpmaddwd.
        for (int sp = 0; sp < 4; ++sp) {
            const __m256i mn = zip_u8(b.mn[2 * sp]);
            for (int j = 0; j < NT; ++j)
                msum[j] = _mm256_add_epi32(msum[j], _mm256_madd_epi16(mn, _mm256_set1_epi32(xsums[j][4 * i + sp])));
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.dmin)));
        for (int j = 0; j < NT; ++j) {
            const __m256 dx = _mm256_set1_ps(xa[j][i].d);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, dx), acc[j]);
            acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[j]), _mm256_mul_ps(dmin, dx), acc[j]);
        }
    }
    store_tile(acc, out + j0 * os, os, 8);
}

// ---- Q6_K repacked at load: 8 rows interleaved, the file's bytes ----

struct Q6Kx8 {
    uint16_t d[8];
    int8_t sc[16][8];    // [sub-block][row]
    uint8_t ql[32][32];  // low 4 bits: chunk c holds groups 2c (low nibbles) and 2c + 1 (high), as Q40x8's
    uint8_t qh[16][32];  // top 2 bits: byte 4r + e of qh[h] holds those of groups 4h + k at bits 2k
};
static_assert(sizeof(Q6Kx8) == 8 * sizeof(block_q6_K));

void repack_q6_K(const void* src, size_t row_bytes, int64_t n_rows, int64_t n, void* dst) {
    auto* out = static_cast<Q6Kx8*>(dst);
    const int64_t nb = n / kQK_K;
    std::vector<PanelK> panel(static_cast<size_t>(nb));
    const __m256i low4 = _mm256_set1_epi8(15), two = _mm256_set1_epi8(3);
    for (int64_t g = 0; g < n_rows / 8; ++g) {
        packk<Q6KP>(n, static_cast<const char*>(src) + 8 * g * row_bytes, row_bytes, 8, panel.data());
        for (int64_t i = 0; i < nb; ++i) {
            const PanelK& b = panel[static_cast<size_t>(i)];
            Q6Kx8& o = out[g * nb + i];
            for (int r = 0; r < 8; ++r) {
                const auto& blk = reinterpret_cast<const block_q6_K*>(static_cast<const char*>(src) + (8 * g + r) * row_bytes)[i];
                o.d[r] = blk.d;
                for (int sb = 0; sb < 16; ++sb) o.sc[sb][r] = blk.scales[sb];
            }
            for (int c = 0; c < 32; ++c)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.ql[c]), nibble_pair(b.q[2 * c], b.q[2 * c + 1], low4));
            for (int h = 0; h < 16; ++h) {
                __m256i bits = _mm256_setzero_si256();
                for (int k = 0; k < 4; ++k) {
                    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q[4 * h + k]));
                    bits = _mm256_or_si256(bits, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), two), 2 * k));
                }
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qh[h]), bits);
            }
        }
    }
}

// 16 signed bytes a[0..7], b[0..7] (one per row each) → 32-bit lanes holding a[r] and b[r] as 16-bit halves.
inline __m256i pairs_i8(const int8_t* ab) {
    const __m128i interleave = _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab)), interleave));
}
// 8 signed bytes → 32-bit lanes holding a[r] twice.
inline __m256i twice_i8(const int8_t* a) {
    const __m128i twice = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)), twice));
}

// Bits p and p + 1 of each byte, moved to bits 4 and 5 (a value's top bits) with one shift and one mask:
// the 16-bit shift carries bits across bytes, but never into the two kept.
inline __m256i top_bits(__m256i h, int p) {
    const __m256i m = _mm256_set1_epi8(0x30);
    if (p < 4) return _mm256_and_si256(_mm256_slli_epi16(h, 4 - p), m);
    if (p > 4) return _mm256_and_si256(_mm256_srli_epi16(h, p - 4), m);
    return _mm256_and_si256(h, m);
}

template <int NT>
void tile_q6_Kx8(int64_t nb, const Q6Kx8* p, const ActRows& x, int64_t j0, float* out, size_t os) {
    const auto xa = act_rows<block_q8_K, NT>(x, j0);
    const __m256i low4 = _mm256_set1_epi8(15);
    __m256 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const Q6Kx8& b = p[i];
        prefetch_ahead(&b);
        __m256i isum[NT], osum[NT];
        for (int j = 0; j < NT; ++j) isum[j] = osum[j] = _mm256_setzero_si256();
        for (int sb = 0; sb < 16; ++sb) {  // 16 elements: chunks 2sb and 2sb + 1, top bits qh[sb]
            const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh[sb]));
            const __m256i sc = twice_i8(b.sc[sb]);
            for (int cc = 0; cc < 2; ++cc) {
                const int c = 2 * sb + cc;
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql[c]));
                const __m256i lo = _mm256_or_si256(_mm256_and_si256(v, low4), top_bits(hb, 4 * cc));
                const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), top_bits(hb, 4 * cc + 2));
                for (int j = 0; j < NT; ++j) {
                    const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(xa[j][i].qs + 8 * c)),
                                                         _mm256_maddubs_epi16(hi, bcast4(xa[j][i].qs + 8 * c + 4)));
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16, sc));
                }
            }
        }
        for (int k = 0; k < 8; ++k) {  // the +32 of every value, through bsums
            const __m256i sc2 = pairs_i8(b.sc[2 * k]);  // sc[2k] and sc[2k + 1] are adjacent
            for (int j = 0; j < NT; ++j) osum[j] = _mm256_add_epi32(osum[j], _mm256_madd_epi16(sc2, bcast4(xa[j][i].bsums + 2 * k)));
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
        for (int j = 0; j < NT; ++j) {
            const __m256i s = _mm256_sub_epi32(isum[j], _mm256_slli_epi32(osum[j], 5));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, _mm256_set1_ps(xa[j][i].d)), acc[j]);
        }
    }
    store_tile(acc, out + j0 * os, os, 8);
}

// ---- Q2_K and Q3_K repacked at load: 8 rows interleaved; 2-bit fields four groups to a byte ----

// Q2_K: the file's bytes (scale in the low nibble of sc, min in the high one). Q3_K: its 6-bit signed scales
// widened to bytes (+16 bytes a row), the high bits eight groups to a byte.
struct Q2Kx8 {
    uint16_t d[8], dmin[8];
    uint8_t sc[16][8];   // [sub-block][row]
    uint8_t qs[16][32];  // sub-block s: bits 2k of byte 4r + e hold group 4s + k
};
struct Q3Kx8 {
    uint16_t d[8];
    int8_t sc[16][8];
    uint8_t qs[16][32];  // the low 2 bits, as Q2Kx8's
    uint8_t qh[8][32];   // the high bit: bit k of byte 4r + e of qh[h] is group 8h + k's
};
static_assert(sizeof(Q2Kx8) == 8 * sizeof(block_q2_K));

template <class X>
void repack_low_K(const void* src, size_t row_bytes, int64_t n_rows, int64_t n, void* dst) {
    constexpr bool q3 = std::is_same_v<X, Q3Kx8>;
    auto* out = static_cast<X*>(dst);
    const int64_t nb = n / kQK_K;
    std::vector<PanelK> panel(static_cast<size_t>(nb));
    const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    for (int64_t g = 0; g < n_rows / 8; ++g) {
        packk<std::conditional_t<q3, Q3KP, Q2KP>>(n, static_cast<const char*>(src) + 8 * g * row_bytes, row_bytes, 8, panel.data());
        for (int64_t i = 0; i < nb; ++i) {
            const PanelK& b = panel[static_cast<size_t>(i)];
            X& o = out[g * nb + i];
            for (int r = 0; r < 8; ++r) {
                const char* row = static_cast<const char*>(src) + (8 * g + r) * row_bytes;
                if constexpr (q3) {
                    o.d[r] = reinterpret_cast<const block_q3_K*>(row)[i].d;
                    for (int sb = 0; sb < 16; ++sb) o.sc[sb][r] = static_cast<int8_t>(b.sc[sb][2 * r]);
                } else {
                    const auto& blk = reinterpret_cast<const block_q2_K*>(row)[i];
                    o.d[r] = blk.d;
                    o.dmin[r] = blk.dmin;
                    for (int sb = 0; sb < 16; ++sb) o.sc[sb][r] = blk.scales[sb];
                }
            }
            auto group = [&](int gg) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q[gg])); };
            for (int sb = 0; sb < 16; ++sb) {
                __m256i low = _mm256_setzero_si256();
                for (int k = 0; k < 4; ++k) low = _mm256_or_si256(low, _mm256_slli_epi16(_mm256_and_si256(group(4 * sb + k), three), 2 * k));
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qs[sb]), low);
            }
            if constexpr (q3)
                for (int h = 0; h < 8; ++h) {
                    __m256i high = _mm256_setzero_si256();
                    for (int k = 0; k < 8; ++k)
                        high = _mm256_or_si256(high, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(group(8 * h + k), 2), one), k));
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qh[h]), high);
                }
        }
    }
}

// Bit k of each byte of h, moved to bit 2 (Q3_K's high bit above its 2-bit field).
template <int k>
inline __m256i high_bit(__m256i h) {
    const __m256i four = _mm256_set1_epi8(4);
    if constexpr (k < 2) return _mm256_and_si256(_mm256_slli_epi16(h, 2 - k), four);
    else if constexpr (k == 2) return _mm256_and_si256(h, four);
    else return _mm256_and_si256(_mm256_srli_epi16(h, k - 2), four);
}

// Per 16-element sub-block: 4 groups, their 16-bit products summed (at most 4·2·7·127, no overflow), then
// scaled by the sub-block's scale in 32 bits. Q2_K's mins and Q3_K's −4 come off through bsums.
template <class X, int NT>
void tile_low_Kx8(int64_t nb, const X* p, const ActRows& x, int64_t j0, float* out, size_t os) {
    constexpr bool q3 = std::is_same_v<X, Q3Kx8>;
    const auto xa = act_rows<block_q8_K, NT>(x, j0);
    const __m256i three = _mm256_set1_epi8(3), low4 = _mm256_set1_epi16(15);
    __m256 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const X& b = p[i];
        prefetch_ahead(&b);
        __m256i isum[NT], msum[NT];
        for (int j = 0; j < NT; ++j) isum[j] = msum[j] = _mm256_setzero_si256();
        auto subblock = [&]<int sb>() {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs[sb]));
            __m256i q[4] = {_mm256_and_si256(v, three), _mm256_and_si256(_mm256_srli_epi16(v, 2), three),
                            _mm256_and_si256(_mm256_srli_epi16(v, 4), three), _mm256_and_si256(_mm256_srli_epi16(v, 6), three)};
            __m256i sc;
            if constexpr (q3) {
                const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh[sb / 2]));
                constexpr int k0 = 4 * (sb % 2);
                q[0] = _mm256_or_si256(q[0], high_bit<k0>(h));
                q[1] = _mm256_or_si256(q[1], high_bit<k0 + 1>(h));
                q[2] = _mm256_or_si256(q[2], high_bit<k0 + 2>(h));
                q[3] = _mm256_or_si256(q[3], high_bit<k0 + 3>(h));
                sc = twice_i8(b.sc[sb]);
            } else {
                sc = _mm256_and_si256(pairs_u8(b.sc[sb]), low4);  // the scale: the byte's low nibble
            }
            for (int j = 0; j < NT; ++j) {
                const int8_t* xq = xa[j][i].qs + 16 * sb;
                __m256i s16 = _mm256_maddubs_epi16(q[0], bcast4(xq));
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(q[1], bcast4(xq + 4)));
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(q[2], bcast4(xq + 8)));
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(q[3], bcast4(xq + 12)));
                isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16, sc));
            }
        };
        [&]<int... sb>(std::integer_sequence<int, sb...>) { (subblock.template operator()<sb>(), ...); }(std::make_integer_sequence<int, 16>{});
        for (int k = 0; k < 8; ++k) {  // per row, the coefficients of bsums[2k] and bsums[2k + 1]
            __m256i c;
            if constexpr (q3) {
                c = pairs_i8(b.sc[2 * k]);
            } else {
                const __m128i interleave = _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
                c = _mm256_srli_epi16(_mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.sc[2 * k])), interleave)), 4);
            }
            for (int j = 0; j < NT; ++j) msum[j] = _mm256_add_epi32(msum[j], _mm256_madd_epi16(c, bcast4(xa[j][i].bsums + 2 * k)));
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
        for (int j = 0; j < NT; ++j) {
            const __m256 dx = _mm256_set1_ps(xa[j][i].d);
            if constexpr (q3) {
                const __m256i s = _mm256_sub_epi32(isum[j], _mm256_slli_epi32(msum[j], 2));
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, dx), acc[j]);
            } else {
                const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.dmin)));
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, dx), acc[j]);
                acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[j]), _mm256_mul_ps(dmin, dx), acc[j]);
            }
        }
    }
    store_tile(acc, out + j0 * os, os, 8);
}

// One group of 8 repacked rows against x_rows tokens, `tile` (a kernel template as a lambda) NT at a time.
template <class Block, int QK, auto tile>
void run_x8(int64_t n, const void* group, const ActRows& x, int64_t x_rows, float* out, size_t os) {
    token_tiles<4>(x_rows, [&]<int NT>(int64_t j) {
        tile.template operator()<NT>(n / QK, static_cast<const Block*>(group), x, j, out, os);
    });
}

// Q5_0, Q5_1: composing the fifth bits costs more than a packed panel's byte loads from ~16 tokens.
template <class X>
constexpr Repacked repacked32{X::kFifthBits ? 16 : 0, [](int64_t n) { return sizeof(X) * static_cast<size_t>(n / kQK); },
                              repack32<X, typename X::Panel>,
                              run_x8<X, kQK, []<int NT>(auto&&... a) { tile32x8<X, NT>(a...); }>};
constexpr Repacked repacked_q8_0{0, [](int64_t n) { return sizeof(Q80x8) * static_cast<size_t>(n / kQK); }, repack_q8_0,
                                 run_x8<Q80x8, kQK, []<int NT>(auto&&... a) { tile_q8_0x8<NT>(a...); }>};
// Q5_K: composing the fifth bits costs more than a packed panel's byte loads from ~96 tokens.
template <class X>
constexpr Repacked repackedK{std::is_same_v<X, Q5Kx8> ? 96 : 0, [](int64_t n) { return sizeof(X) * static_cast<size_t>(n / kQK_K); }, repack_qK<X>,
                             run_x8<X, kQK_K, []<int NT>(auto&&... a) { tile_qKx8<X, NT>(a...); }>};
// Composing 6-bit values costs more than a packed panel's byte loads once a batch has ~48 tokens.
// Packed panels beat composing the values here from ~96 tokens for Q3_K and ~256 for Q2_K (per CPU-second,
// 2048 × 2048: Q3_K 73 vs 63 GMAC/s at 64 tokens, 65 vs 79 at 512; Q2_K 84 vs 73 at 64, 76 vs 79 at 512).
template <class X>
constexpr Repacked repacked_low_K{std::is_same_v<X, Q3Kx8> ? 96 : 256, [](int64_t n) { return sizeof(X) * static_cast<size_t>(n / kQK_K); }, repack_low_K<X>,
                                  run_x8<X, kQK_K, []<int NT>(auto&&... a) { tile_low_Kx8<X, NT>(a...); }>};
constexpr Repacked repacked_q6_K{48, [](int64_t n) { return sizeof(Q6Kx8) * static_cast<size_t>(n / kQK_K); }, repack_q6_K,
                                 run_x8<Q6Kx8, kQK_K, []<int NT>(auto&&... a) { tile_q6_Kx8<NT>(a...); }>};

// Token counts from which each family beats the row kernels, measured per CPU-second at 2 to 8 tokens
// (AMD EPYC, AVX2): the 4- and 5-bit 32-blocks from 2, Q8_0 and the K types from 5, floats from 8.
template <class W>
constexpr PanelGemm gemm32{8, W::kSigned ? 5 : 2, panel32_bytes<W>, pack32<W>, run32<W>};
template <class W>
constexpr PanelGemm gemmk{8, 5, panelk_bytes<W>, packk<W>, runk<W>};
template <TensorType T>
constexpr PanelGemm gemmf{kFloatRows, 8, panelf_bytes<T>, packf<T>, runf<T>};
constexpr PanelGemm gemm_f16_columns{kFloatRows, 8, panelf_bytes<TensorType::F16>, packf16_columns, runf<TensorType::F16>};

}  // namespace

const PanelGemm* panel_gemm_f16_columns() noexcept { return &gemm_f16_columns; }

const Repacked* repacked(TensorType w) noexcept {
    switch (w) {
        case TensorType::Q4_0: return &repacked32<Q40x8>;
        case TensorType::Q4_1: return &repacked32<Q41x8>;
        case TensorType::Q5_0: return &repacked32<Q50x8>;
        case TensorType::Q5_1: return &repacked32<Q51x8>;
        case TensorType::Q8_0: return &repacked_q8_0;
        case TensorType::Q4_K: return &repackedK<Q4Kx8>;
        case TensorType::Q5_K: return &repackedK<Q5Kx8>;
        case TensorType::Q6_K: return &repacked_q6_K;
        case TensorType::Q2_K: return &repacked_low_K<Q2Kx8>;
        case TensorType::Q3_K: return &repacked_low_K<Q3Kx8>;
        default: return nullptr;
    }
}

const PanelGemm* panel_gemm(TensorType w) noexcept {
    switch (w) {
        case TensorType::Q4_0: return &gemm32<Q40P>;
        case TensorType::Q4_1: return &gemm32<Q41P>;
        case TensorType::Q5_0: return &gemm32<Q50P>;
        case TensorType::Q5_1: return &gemm32<Q51P>;
        case TensorType::Q8_0: return &gemm32<Q80P>;
        case TensorType::Q2_K: return &gemmk<Q2KP>;
        case TensorType::Q3_K: return &gemmk<Q3KP>;
        case TensorType::Q4_K: return &gemmk<Q4KP>;
        case TensorType::Q5_K: return &gemmk<Q5KP>;
        case TensorType::Q6_K: return &gemmk<Q6KP>;
        case TensorType::F32: return &gemmf<TensorType::F32>;
        case TensorType::F16: return &gemmf<TensorType::F16>;
        case TensorType::BF16: return &gemmf<TensorType::BF16>;
        default: return nullptr;
    }
}

}  // namespace ember::cpu::avx2
