// The CUDA backend's kernels as host functions (ops.cu, matmul.cu), called by cuda_backend.cpp on a stream.
// Each launches one or more kernels and returns the launch status (cudaGetLastError); shapes were checked
// by the caller. Tensors are device pointers; row strides are in elements of the pointer's type unless said.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "tensor/types.hpp"

namespace ember::cuda {

using tensor::TensorType;

// Weight types the kernels decode (GGUF block layouts as the file has them, lib/tensor/blocks.hpp).
bool kernel_supports(TensorType t) noexcept;

// Largest head size attention takes (each lane of a warp holds head_dim / 32 of a query's values).
constexpr int kMaxHeadDim = 256;

// out[t][n] = Σ_k w[n][k] · x[t][k]; w: N rows of K elements of type `type`, `w_row_bytes` apart.
cudaError_t matmul(TensorType type, const void* w, size_t w_row_bytes, const float* x, float* out, int64_t K, int64_t N,
                   int64_t T, cudaStream_t s);
// out[i] = table[ids[i]] as F32 (ids: device, n of them, already checked against the table's rows).
cudaError_t get_rows(TensorType type, const void* table, size_t row_bytes, int64_t ne0, const int32_t* ids, int64_t n,
                     float* out, cudaStream_t s);
cudaError_t rms_norm(const float* x, const float* w, float eps, float* out, int64_t ne0, int64_t rows, cudaStream_t s);

struct RopeArgs {
    int head_dim, n_rot, pos0;
    int64_t n_heads, n_tokens, row_stride;  // row_stride: floats from one token's row to the next
    bool neox;
    float theta_scale, freq_scale, ext_factor, corr_lo, corr_hi, mscale;
    const float* freq_factors;  // device, n_rot / 2 values, or nullptr
};
cudaError_t rope(float* x, const RopeArgs& a, cudaStream_t s);

// cache rows pos0 .. pos0 + rows - 1 (F16, cache_stride elements apart) = src rows (F32, ne0 apart).
cudaError_t store_f16(const float* src, int64_t ne0, int64_t rows, uint16_t* cache, int64_t cache_stride, int64_t pos0,
                      cudaStream_t s);

struct AttentionArgs {
    const float* q;       // the sequence's first query row
    float* out;           // its first output row
    int64_t q_stride, out_stride;     // floats between rows
    const uint16_t* k; const uint16_t* v;  // F16 caches
    int64_t k_stride, v_stride;       // F16 elements between cache rows
    int64_t n_queries;
    int n_head, n_head_kv, head_dim, n_past, window;
    float scale, softcap;
};
cudaError_t attention(const AttentionArgs& a, cudaStream_t s);

cudaError_t add(const float* a, const float* b, float* out, int64_t n, int64_t b_period, cudaStream_t s);  // b[i % period]
cudaError_t scale(const float* x, float v, float* out, int64_t n, cudaStream_t s);
cudaError_t softcap(const float* x, float cap, float* out, int64_t n, cudaStream_t s);
cudaError_t swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t s);
cudaError_t geglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t s);
// dst[ids[i]] += weights[i] · src[i] for i < n rows of ne0 (ids, weights: device).
cudaError_t add_rows_scaled(const float* src, const int32_t* ids, const float* weights, int64_t n, int64_t ne0, float* dst,
                            cudaStream_t s);

// Whether this binary holds kernels the current device can run (CMAKE_CUDA_ARCHITECTURES vs the GPU).
cudaError_t probe_kernels();

}  // namespace ember::cuda
