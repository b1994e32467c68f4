// matmul: out[t][n] = Σ_k w[n][k] · x[t][k], weights decoded from their GGUF blocks in the kernel
// (dequant.cuh), activations kept in F32. (The CPU backend rounds activations to 8 bits for quantized
// weights, as llama.cpp does; here they stay exact, so results sit between the CPU's and exact math.)
// Few tokens: a warp per weight row (GEMV), each weight element decoded once for every token. More tokens:
// 64×64 output tiles through shared memory. Both are the simple, obviously-correct forms; repacked weights,
// integer dot products and cuBLASLt/tensor-core GEMMs come with measuring on a GPU.
#include "dequant.cuh"
#include "kernels.hpp"

namespace ember::cuda {

namespace {

constexpr int kGemvMaxTokens = 8;
constexpr int kGemvWarps = 4;

template <TensorType T>
__global__ void gemv_kernel(const uint8_t* w, size_t row_bytes, const float* x, float* out, int64_t K, int64_t N, int T_) {
    const int lane = threadIdx.x % 32;
    const int64_t n = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / 32;
    if (n >= N) return;  // the whole warp leaves together
    const uint8_t* row = w + static_cast<size_t>(n) * row_bytes;
    float acc[kGemvMaxTokens];
    for (int t = 0; t < kGemvMaxTokens; ++t) acc[t] = 0.f;
    for (int64_t k = lane; k < K; k += 32) {
        const float wv = Decode<T>::at(row, k);
        for (int t = 0; t < kGemvMaxTokens; ++t)
            if (t < T_) acc[t] += wv * x[t * K + k];
    }
    for (int t = 0; t < kGemvMaxTokens && t < T_; ++t) {
        float v = acc[t];
        for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0) out[t * N + n] = v;
    }
}

constexpr int kTile = 64, kTileK = 32, kGemmThreads = 256;  // 16×16 threads, 4×4 outputs each

template <TensorType T>
__global__ void gemm_kernel(const uint8_t* w, size_t row_bytes, const float* x, float* out, int64_t K, int64_t N, int64_t T_) {
    __shared__ float ws[kTileK][kTile + 1];  // [k][weight row]; +1: no bank conflicts on the transposed stores
    __shared__ float xs[kTileK][kTile + 1];  // [k][token]
    const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTile, t0 = static_cast<int64_t>(blockIdx.y) * kTile;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4] = {};
    for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
        for (int e = threadIdx.x; e < kTile * kTileK; e += kGemmThreads) {
            const int r = e / kTileK, kk = e % kTileK;  // consecutive threads: consecutive k of one row
            const int64_t k = k0 + kk, n = n0 + r, t = t0 + r;
            ws[kk][r] = (n < N && k < K) ? Decode<T>::at(w + static_cast<size_t>(n) * row_bytes, k) : 0.f;
            xs[kk][r] = (t < T_ && k < K) ? x[t * K + k] : 0.f;
        }
        __syncthreads();
        for (int kk = 0; kk < kTileK; ++kk) {
            float a[4], b[4];
            for (int i = 0; i < 4; ++i) a[i] = ws[kk][tx + 16 * i];
            for (int j = 0; j < 4; ++j) b[j] = xs[kk][ty + 16 * j];
            for (int j = 0; j < 4; ++j)
                for (int i = 0; i < 4; ++i) acc[j][i] += a[i] * b[j];
        }
        __syncthreads();
    }
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 4; ++i) {
            const int64_t n = n0 + tx + 16 * i, t = t0 + ty + 16 * j;
            if (n < N && t < T_) out[t * N + n] = acc[j][i];
        }
}

}  // namespace

cudaError_t matmul(TensorType type, const void* w, size_t w_row_bytes, const float* x, float* out, int64_t K, int64_t N,
                   int64_t T, cudaStream_t s) {
    if (N <= 0 || T <= 0) return cudaSuccess;
    const auto* wb = static_cast<const uint8_t*>(w);
    bool known;
    if (T <= kGemvMaxTokens) {
        const int64_t blocks = (N + kGemvWarps - 1) / kGemvWarps;
        if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
        known = dispatch_type(type, [&](auto tag) {
            gemv_kernel<decltype(tag)::value><<<static_cast<unsigned>(blocks), 32 * kGemvWarps, 0, s>>>(wb, w_row_bytes, x, out, K, N,
                                                                                     static_cast<int>(T));
        });
    } else {
        const int64_t bx = (N + kTile - 1) / kTile, by = (T + kTile - 1) / kTile;
        if (bx > 0x7fffffff || by > 65535) return cudaErrorInvalidValue;
        const dim3 grid(static_cast<unsigned>(bx), static_cast<unsigned>(by));
        known = dispatch_type(type, [&](auto tag) {
            gemm_kernel<decltype(tag)::value><<<grid, kGemmThreads, 0, s>>>(wb, w_row_bytes, x, out, K, N, T);
        });
    }
    return known ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace ember::cuda
