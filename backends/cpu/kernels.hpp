// CPU kernels: the dot products under matmul and attention, chosen at run time from what the CPU can run.
#pragma once

#include <cstdint>

#include "tensor/types.hpp"

namespace ember::cpu {

using tensor::TensorType;

struct CpuFeatures {
    bool avx2 = false;  // with FMA and F16C
};
const CpuFeatures& cpu_features() noexcept;

// The format activations are rounded to before a dot product with weights of type w — the same choice
// llama.cpp makes, so results agree with it (F32→F32, F16→F16, Q4_0/Q5_0/Q8_0→Q8_0, Q4_1/Q5_1→Q8_1, K→Q8_K).
TensorType activation_type(TensorType w) noexcept;

// Activation rows in their quantized blocks (q, `stride` bytes apart). For Q8_0/Q8_1, each block's
// scale d and scaled sum s = d·Σq (Q8_1: its stored F16 value) are also given widened to float (nb values
// per row), so the conversions happen once per matmul instead of once per weight row; Q8_K carries float
// scales already.
struct ActRows {
    const void* q = nullptr;
    size_t stride = 0;
    const float* d = nullptr;
    const float* s = nullptr;
    // Q8_0: Σq of each block (nb per row), for weights stored with a zero point. Q8_K: Σq of each 32-element
    // sub-block, two to an int32 (sub-block 2p in the low 16 bits, 2p + 1 in the high; 4 per super-block),
    // for the K-quants' mins: one vpmaddwd takes two sub-blocks.
    const int32_t* sum = nullptr;
};

// A tile of dot products: out[j·out_stride + r] = Σ w_r·x_j over n elements, for w_rows weight rows
// (w + r·w_stride bytes, in their own format) and x_rows activation rows (in activation_type(w)), at most
// kMaxTileRows each. nullptr when this CPU has no fused kernel for the type; callers then dequantize both
// sides and use dot_f32.
constexpr int kMaxTileRows = 4;
using FusedDot = void (*)(int64_t n, const void* w, size_t w_stride, int w_rows, const ActRows& x, int x_rows,
                          float* out, size_t out_stride);
FusedDot fused_dot(TensorType w) noexcept;

// Prefill matmul over packed weight panels: `rows` weight rows at a time are rewritten into a panel laid out
// for the kernel (values widened to bytes and interleaved across rows, scales widened), once per panel,
// then every token runs against it. pack: w_rows ≤ rows rows (w + r·w_stride) over n elements into `panel`
// (panel_bytes(n) bytes); run: out[j·out_stride + r] for the x_rows activation rows (any count; for float
// weights, rows of floats already rounded to the weights' activation format).
struct PanelGemm {
    int rows;
    int min_tokens;  // from here it beats the row kernels (packing is paid once per panel, not per token)
    size_t (*panel_bytes)(int64_t n);
    void (*pack)(int64_t n, const void* w, size_t w_stride, int w_rows, void* panel);
    void (*run)(int64_t n, const void* panel, const ActRows& x, int64_t x_rows, float* out, size_t out_stride, int w_rows);
};
// nullptr when this CPU has no packed kernel for the type.
const PanelGemm* panel_gemm(TensorType w) noexcept;
// The F16 kernel with a panel made of columns instead of rows: pack reads element k of column r at
// w + k·w_stride (bytes) + r (F16 elements), for `w_rows` ≤ rows columns (attention's P·V, V being
// keys × dimensions). nullptr where panel_gemm(F16) is.
const PanelGemm* panel_gemm_f16_columns() noexcept;

// Weights rewritten once at load into groups of 8 interleaved rows (about the file's bytes), for kernels
// that do the float work of 8 rows at once and need no per-matmul packing: decode then reads each weight
// byte once at a fraction of the row kernels' instructions. repack: n_rows (a multiple of 8) rows of n
// elements, `row_bytes` apart, into dst (n_rows / 8 groups of group_bytes(n)); run: one group against
// x_rows activation rows (as for the row kernels), out[j·out_stride + r] for its 8 rows.
struct Repacked {
    int64_t max_tokens;  // from here the packed panels over the mapping are faster (0: never)
    size_t (*group_bytes)(int64_t n);
    void (*repack)(const void* src, size_t row_bytes, int64_t n_rows, int64_t n, void* dst);
    void (*run)(int64_t n, const void* group, const ActRows& x, int64_t x_rows, float* out, size_t out_stride);
};
// nullptr when this CPU has no repacked kernel for the type.
const Repacked* repacked(TensorType w) noexcept;

// Rounds one row of activations to `type` (activation_type of some weight). On x86, Q8_0/Q8_1 follow
// llama.cpp's AVX2 quantizers (scale 127/amax, ties to even), which differ from the scalar reference
// (1/d, ties away from zero) in the last bit often enough to matter when comparing logits; Q8_K is the
// scalar reference's bytes exactly (llama.cpp has no other on x86).
void quantize_activations(TensorType type, const float* x, void* dst, int64_t n);

// F32 → F16, round to nearest even (the KV cache store).
void to_f16(const float* x, uint16_t* y, int64_t n) noexcept;
// x[i] rounded to the nearest F16 value, in place (the query before its F16 product with K).
void round_to_f16(float* x, int64_t n) noexcept;
// x[i] = exp(x[i] - max) in place; returns Σ x[i] (the softmax numerator and denominator).
double exp_shifted(float* x, int64_t n, float max) noexcept;

// out = gelu(gate) · up with llama.cpp's CPU GELU: a table over every F16 input holding the result
// rounded to F16 (exact outside ±10). Matching it matters on Gemma, whose GELU inputs are large; the
// table is also several times faster than evaluating tanh.
void geglu(const float* gate, const float* up, float* out, int64_t n) noexcept;
// out = silu(gate) · up = gate / (1 + e^-gate) · up.
void swiglu(const float* gate, const float* up, float* out, int64_t n) noexcept;

float dot_f32(const float* a, const float* b, int64_t n) noexcept;
// y += a·x
void axpy_f32(float a, const float* x, float* y, int64_t n) noexcept;
// The same with one side in F16 (the KV cache).
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) noexcept;
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) noexcept;
// Decode attention over n_keys cache rows `stride` elements apart: out[j] = dot_f16_f32(k_j, q, n), and
// y += Σ_j w[j]·v_j, each with the same bits as the one-row functions.
void dot_f16_rows(const uint16_t* k, size_t stride, int64_t n_keys, const float* q, int64_t n, float* out) noexcept;
void axpy_f16_rows(const float* w, const uint16_t* v, size_t stride, int64_t n_keys, float* y, int64_t n) noexcept;

namespace avx2 {
const PanelGemm* panel_gemm(TensorType w) noexcept;
const Repacked* repacked(TensorType w) noexcept;
const PanelGemm* panel_gemm_f16_columns() noexcept;
float dot_f32(const float* a, const float* b, int64_t n) noexcept;
void axpy_f32(float a, const float* x, float* y, int64_t n) noexcept;
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) noexcept;
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) noexcept;
void dot_f16_rows(const uint16_t* k, size_t stride, int64_t n_keys, const float* q, int64_t n, float* out) noexcept;
void axpy_f16_rows(const float* w, const uint16_t* v, size_t stride, int64_t n_keys, float* y, int64_t n) noexcept;
void to_f16(const float* x, uint16_t* y, int64_t n) noexcept;
void exp_shifted(float* x, int64_t n, float max) noexcept;
void swiglu(const float* gate, const float* up, float* out, int64_t n) noexcept;
void round_to_f16(float* x, int64_t n) noexcept;
void quantize_q8_0(const float* x, void* dst, int64_t n) noexcept;
void quantize_q8_1(const float* x, void* dst, int64_t n) noexcept;
void quantize_q8_K(const float* x, void* dst, int64_t n) noexcept;
void dot_q4_0_q8_0(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q4_1_q8_1(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q8_0_q8_0(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q5_0_q8_0(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q5_1_q8_1(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_f16_f16(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_bf16_bf16(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q4_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q5_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q2_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q3_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
void dot_q6_K_q8_K(int64_t n, const void* w, size_t ws, int wr, const ActRows& x, int xr, float* out, size_t os);
}  // namespace avx2

}  // namespace ember::cpu
