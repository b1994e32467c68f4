// Every op but matmul, as plain kernels: one thread per element (or per rotated pair), one block per row
// for reductions, one block per (query, head) for attention. Correctness first; each mirrors the CPU
// backend's arithmetic (backends/cpu/cpu_backend.cpp) where that decides bits, and says so.
#include <cfloat>
#include <cmath>

#include "dequant.cuh"
#include "kernels.hpp"

namespace ember::cuda {

namespace {

constexpr int kThreads = 256;

// Blocks for n elements at kThreads each, capped (the kernels loop over what the grid does not cover).
unsigned blocks_for(int64_t n) {
    const int64_t b = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(b < 1 ? 1 : b > 65535 * 16 ? 65535 * 16 : b);
}

#define EMBER_GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <TensorType T>
__global__ void get_rows_kernel(const uint8_t* table, size_t row_bytes, int64_t ne0, const int32_t* ids, float* out) {
    const int64_t i = blockIdx.x;
    const uint8_t* row = table + static_cast<size_t>(ids[i]) * row_bytes;
    for (int64_t k = threadIdx.x; k < ne0; k += blockDim.x) out[i * ne0 + k] = Decode<T>::at(row, k);
}

// One block per row; squares summed in double as the CPU backend does (llama.cpp too).
__global__ void rms_norm_kernel(const float* x, const float* w, float eps, float* out, int64_t ne0) {
    const float* xr = x + blockIdx.x * ne0;
    float* o = out + blockIdx.x * ne0;
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) sum += static_cast<double>(xr[i] * xr[i]);
    __shared__ double part[kThreads / 32];
    for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int i = 0; i < kThreads / 32; ++i) total += part[i];
        part[0] = total;
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf(static_cast<float>(part[0] / static_cast<double>(ne0)) + eps);
    // x·scale·w: two products, left to right (in place when out == x: each thread reads what it writes).
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) o[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

// One thread per (token, head, pair). The angle is built as the CPU backend builds it: θ = position,
// multiplied by theta_scale once per pair before this one (the same float products), then the frequency
// factor, the linear scale and YaRN's ramp.
__global__ void rope_kernel(float* x, RopeArgs a) {
    const int64_t pairs = a.n_rot / 2, n = a.n_tokens * a.n_heads * pairs;
    EMBER_GRID_STRIDE(idx, n) {
        const int p = static_cast<int>(idx % pairs);
        const int64_t h = (idx / pairs) % a.n_heads, t = idx / (pairs * a.n_heads);
        float theta = static_cast<float>(a.pos0 + t);
        for (int i = 0; i < p; ++i) theta = __fmul_rn(theta, a.theta_scale);
        const float extrap = a.freq_factors ? __fdiv_rn(theta, a.freq_factors[p]) : theta;
        float angle = __fmul_rn(a.freq_scale, extrap);
        if (a.ext_factor != 0.f) {
            const float y = __fdiv_rn(static_cast<float>(p) - a.corr_lo, fmaxf(0.001f, a.corr_hi - a.corr_lo));
            const float mix = __fmul_rn(1.f - fminf(1.f, fmaxf(0.f, y)), a.ext_factor);
            angle = __fadd_rn(__fmul_rn(angle, 1.f - mix), __fmul_rn(extrap, mix));
        }
        const float c = __fmul_rn(cosf(angle), a.mscale), s = __fmul_rn(sinf(angle), a.mscale);
        float* v = x + t * a.row_stride + h * a.head_dim;
        const int i0 = a.neox ? p : 2 * p, i1 = a.neox ? p + a.n_rot / 2 : 2 * p + 1;
        const float x0 = v[i0], x1 = v[i1];
        v[i0] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        v[i1] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
    }
}

// F32 → F16 with round to nearest even, as the CPU's store (F16C) rounds.
__global__ void store_f16_kernel(const float* src, int64_t ne0, int64_t rows, __half* cache, int64_t cache_stride,
                                 int64_t pos0) {
    EMBER_GRID_STRIDE(i, ne0 * rows) {
        const int64_t r = i / ne0, c = i % ne0;
        cache[(pos0 + r) * cache_stride + c] = __float2half_rn(src[i]);
    }
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

constexpr int kAttnWarps = 8;

// One block per (query, head): each warp walks every kAttnWarps-th key of the query's causal (and sliding)
// range with an online softmax (running max m, sum l, output o in its lanes, D values a lane), then the
// warps' partial results are merged. The query is rounded to F16 first, as the CPU (and llama.cpp) does
// before its F16 K·q product; scores are scaled, then soft-capped.
template <int D>
__global__ void attention_kernel(AttentionArgs a) {
    const int64_t qi = blockIdx.x / a.n_head;
    const int h = static_cast<int>(blockIdx.x % a.n_head), kvh = h / (a.n_head / a.n_head_kv);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t pos = a.n_past + qi, first = a.window > 0 ? max(static_cast<int64_t>(0), pos - a.window + 1) : 0;
    const float* q = a.q + qi * a.q_stride + h * a.head_dim;
    float qv[D], o[D];
    for (int i = 0; i < D; ++i) {
        const int d = lane + 32 * i;
        qv[i] = d < a.head_dim ? __half2float(__float2half_rn(q[d])) : 0.f;
        o[i] = 0.f;
    }
    const __half* kc = reinterpret_cast<const __half*>(a.k) + kvh * a.head_dim;
    const __half* vc = reinterpret_cast<const __half*>(a.v) + kvh * a.head_dim;
    float m = -INFINITY, l = 0.f;
    for (int64_t j = first + warp; j <= pos; j += kAttnWarps) {
        const __half* kr = kc + j * a.k_stride;
        float s = 0.f;
        for (int i = 0; i < D; ++i) {
            const int d = lane + 32 * i;
            if (d < a.head_dim) s += qv[i] * __half2float(kr[d]);
        }
        s = warp_sum(s) * a.scale;
        if (a.softcap > 0.f) s = a.softcap * tanhf(s / a.softcap);
        const float m_new = fmaxf(m, s), corr = expf(m - m_new), p = expf(s - m_new);
        l = l * corr + p;
        const __half* vr = vc + j * a.v_stride;
        for (int i = 0; i < D; ++i) {
            const int d = lane + 32 * i;
            if (d < a.head_dim) o[i] = o[i] * corr + p * __half2float(vr[d]);
        }
        m = m_new;
    }
    __shared__ float sm_m[kAttnWarps], sm_l[kAttnWarps], sm_o[kAttnWarps][D * 32];
    if (lane == 0) {
        sm_m[warp] = m;
        sm_l[warp] = l;
    }
    for (int i = 0; i < D; ++i) sm_o[warp][lane + 32 * i] = o[i];
    __syncthreads();
    float mx = -INFINITY;
    for (int w = 0; w < kAttnWarps; ++w) mx = fmaxf(mx, sm_m[w]);
    float sum = 0.f;
    for (int w = 0; w < kAttnWarps; ++w)
        if (sm_m[w] != -INFINITY) sum += sm_l[w] * expf(sm_m[w] - mx);
    float* out = a.out + qi * a.out_stride + h * a.head_dim;
    for (int d = threadIdx.x; d < a.head_dim; d += blockDim.x) {
        float acc = 0.f;
        for (int w = 0; w < kAttnWarps; ++w)
            if (sm_m[w] != -INFINITY) acc += sm_o[w][d] * expf(sm_m[w] - mx);
        out[d] = acc / sum;
    }
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n, int64_t period) {
    EMBER_GRID_STRIDE(i, n) out[i] = a[i] + b[period ? i % period : i];
}
__global__ void scale_kernel(const float* x, float v, float* out, int64_t n) {
    EMBER_GRID_STRIDE(i, n) out[i] = v * x[i];
}
__global__ void softcap_kernel(const float* x, float cap, float* out, int64_t n) {
    EMBER_GRID_STRIDE(i, n) out[i] = cap * tanhf(x[i] / cap);
}
__global__ void swiglu_kernel(const float* gate, const float* up, float* out, int64_t n) {
    EMBER_GRID_STRIDE(i, n) {
        const float g = gate[i];
        out[i] = __fmul_rn(g / (1.0f + expf(-g)), up[i]);
    }
}
// GELU (tanh form) as llama.cpp's CPU table, which the CPU backend copies: the input rounded to F16, the
// result computed in float and rounded to F16, exact outside ±10 (0 below, x above).
__global__ void geglu_kernel(const float* gate, const float* up, float* out, int64_t n) {
    EMBER_GRID_STRIDE(i, n) {
        const float x = gate[i];
        if (x <= -10.f) {
            out[i] = 0.f;
        } else if (x >= 10.f) {
            out[i] = x * up[i];
        } else {
            const float h = __half2float(__float2half_rn(x));
            constexpr float k = 0.7978845608028654f;  // sqrt(2/pi)
            const float cube = __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, h), h), h);
            const float y = __fmul_rn(__fmul_rn(0.5f, h), 1.0f + tanhf(__fmul_rn(k, __fadd_rn(h, cube))));
            out[i] = __half2float(__float2half_rn(y)) * up[i];
        }
    }
}
// ids are distinct: no two threads add into one element.
__global__ void add_rows_scaled_kernel(const float* src, const int32_t* ids, const float* w, int64_t n, int64_t ne0,
                                       float* dst) {
    EMBER_GRID_STRIDE(i, n * ne0) {
        const int64_t r = i / ne0, c = i % ne0;
        float* d = dst + static_cast<int64_t>(ids[r]) * ne0 + c;
        *d = __fadd_rn(*d, __fmul_rn(w[r], src[i]));
    }
}

}  // namespace

bool kernel_supports(TensorType t) noexcept {
    return dispatch_type(t, [](auto) {});
}

cudaError_t get_rows(TensorType type, const void* table, size_t row_bytes, int64_t ne0, const int32_t* ids, int64_t n,
                     float* out, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    const bool known = dispatch_type(type, [&](auto tag) {
        get_rows_kernel<decltype(tag)::value><<<static_cast<unsigned>(n), kThreads, 0, s>>>(static_cast<const uint8_t*>(table), row_bytes, ne0,
                                                                          ids, out);
    });
    return known ? cudaGetLastError() : cudaErrorInvalidValue;
}

cudaError_t rms_norm(const float* x, const float* w, float eps, float* out, int64_t ne0, int64_t rows, cudaStream_t s) {
    if (rows <= 0) return cudaSuccess;
    rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, w, eps, out, ne0);
    return cudaGetLastError();
}

cudaError_t rope(float* x, const RopeArgs& a, cudaStream_t s) {
    const int64_t n = a.n_tokens * a.n_heads * (a.n_rot / 2);
    if (n <= 0) return cudaSuccess;
    rope_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, a);
    return cudaGetLastError();
}

cudaError_t store_f16(const float* src, int64_t ne0, int64_t rows, uint16_t* cache, int64_t cache_stride, int64_t pos0,
                      cudaStream_t s) {
    if (rows <= 0 || ne0 <= 0) return cudaSuccess;
    store_f16_kernel<<<blocks_for(ne0 * rows), kThreads, 0, s>>>(src, ne0, rows, reinterpret_cast<__half*>(cache),
                                                                 cache_stride, pos0);
    return cudaGetLastError();
}

cudaError_t attention(const AttentionArgs& a, cudaStream_t s) {
    const int64_t blocks = a.n_queries * a.n_head;
    if (blocks <= 0) return cudaSuccess;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    const unsigned grid = static_cast<unsigned>(blocks), threads = 32 * kAttnWarps;
    if (a.head_dim <= 64) attention_kernel<2><<<grid, threads, 0, s>>>(a);
    else if (a.head_dim <= 128) attention_kernel<4><<<grid, threads, 0, s>>>(a);
    else if (a.head_dim <= kMaxHeadDim) attention_kernel<8><<<grid, threads, 0, s>>>(a);
    else return cudaErrorInvalidValue;
    return cudaGetLastError();
}

cudaError_t add(const float* a, const float* b, float* out, int64_t n, int64_t b_period, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    add_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, out, n, b_period);
    return cudaGetLastError();
}
cudaError_t scale(const float* x, float v, float* out, int64_t n, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    scale_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, v, out, n);
    return cudaGetLastError();
}
cudaError_t softcap(const float* x, float cap, float* out, int64_t n, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    softcap_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, cap, out, n);
    return cudaGetLastError();
}
cudaError_t swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    swiglu_kernel<<<blocks_for(n), kThreads, 0, s>>>(gate, up, out, n);
    return cudaGetLastError();
}
cudaError_t geglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    geglu_kernel<<<blocks_for(n), kThreads, 0, s>>>(gate, up, out, n);
    return cudaGetLastError();
}
cudaError_t add_rows_scaled(const float* src, const int32_t* ids, const float* weights, int64_t n, int64_t ne0, float* dst,
                            cudaStream_t s) {
    if (n <= 0 || ne0 <= 0) return cudaSuccess;
    add_rows_scaled_kernel<<<blocks_for(n * ne0), kThreads, 0, s>>>(src, ids, weights, n, ne0, dst);
    return cudaGetLastError();
}

cudaError_t probe_kernels() {
    cudaFuncAttributes attr;
    return cudaFuncGetAttributes(&attr, scale_kernel);
}

}  // namespace ember::cuda
