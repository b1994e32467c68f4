#include "kernels.hpp"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "tensor/fp16.hpp"
#include "tensor/quantize.hpp"

namespace ember::cpu {

const CpuFeatures& cpu_features() noexcept {
    static const CpuFeatures f = [] {
        CpuFeatures r;
#if defined(__x86_64__)
        __builtin_cpu_init();
        // F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c".
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
        r.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#endif
        return r;
    }();
    return f;
}

TensorType activation_type(TensorType w) noexcept {
    switch (w) {
        case TensorType::F32: return TensorType::F32;
        case TensorType::F16: return TensorType::F16;
        case TensorType::BF16: return TensorType::BF16;
        case TensorType::Q4_0: case TensorType::Q5_0: case TensorType::Q8_0: case TensorType::MXFP4: return TensorType::Q8_0;
        case TensorType::Q4_1: case TensorType::Q5_1: return TensorType::Q8_1;
        default: return TensorType::Q8_K;
    }
}

FusedDot fused_dot(TensorType w) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) {
        switch (w) {
            case TensorType::Q4_0: return avx2::dot_q4_0_q8_0;
            case TensorType::Q4_1: return avx2::dot_q4_1_q8_1;
            case TensorType::Q8_0: return avx2::dot_q8_0_q8_0;
            case TensorType::Q5_0: return avx2::dot_q5_0_q8_0;
            case TensorType::Q5_1: return avx2::dot_q5_1_q8_1;
            case TensorType::F16: return avx2::dot_f16_f16;
            case TensorType::BF16: return avx2::dot_bf16_bf16;
            case TensorType::Q4_K: return avx2::dot_q4_K_q8_K;
            case TensorType::Q5_K: return avx2::dot_q5_K_q8_K;
            case TensorType::Q2_K: return avx2::dot_q2_K_q8_K;
            case TensorType::Q3_K: return avx2::dot_q3_K_q8_K;
            case TensorType::Q6_K: return avx2::dot_q6_K_q8_K;
            default: break;
        }
    }
#endif
    (void)w;
    return nullptr;
}

const PanelGemm* panel_gemm(TensorType w) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::panel_gemm(w);
#endif
    (void)w;
    return nullptr;
}

const Repacked* repacked(TensorType w) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::repacked(w);
#endif
    (void)w;
    return nullptr;
}

const PanelGemm* panel_gemm_f16_columns() noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::panel_gemm_f16_columns();
#endif
    return nullptr;
}

void quantize_activations(TensorType type, const float* x, void* dst, int64_t n) {
#if defined(__x86_64__)
    if (cpu_features().avx2 && type == TensorType::Q8_0) return avx2::quantize_q8_0(x, dst, n);
    if (cpu_features().avx2 && type == TensorType::Q8_1) return avx2::quantize_q8_1(x, dst, n);
    if (cpu_features().avx2 && type == TensorType::Q8_K) return avx2::quantize_q8_K(x, dst, n);
    if (cpu_features().avx2 && type == TensorType::F16) return avx2::to_f16(x, static_cast<uint16_t*>(dst), n);
#endif
    tensor::quantize_row(type, x, dst, n);
}

void to_f16(const float* x, uint16_t* y, int64_t n) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::to_f16(x, y, n);
#endif
    for (int64_t i = 0; i < n; ++i) y[i] = tensor::f32_to_fp16(x[i]);
}

namespace {
struct GeluTable {
    float value[1 << 16];
    GeluTable() noexcept {
        for (uint32_t h = 0; h < (1u << 16); ++h) {
            const float x = tensor::fp16_to_f32(static_cast<uint16_t>(h));
            constexpr float k = 0.7978845608028654f;  // sqrt(2/pi)
            const float y = 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
            value[h] = tensor::fp16_to_f32(tensor::f32_to_fp16(y));
        }
    }
};
}  // namespace

void geglu(const float* gate, const float* up, float* out, int64_t n) noexcept {
    static const GeluTable table;  // 256 KiB, built on first use
    uint16_t h[64];
    for (int64_t b = 0; b < n; b += 64) {
        const int64_t m = std::min<int64_t>(64, n - b);
        to_f16(gate + b, h, m);
        for (int64_t i = 0; i < m; ++i) {
            const float x = gate[b + i];
            out[b + i] = x <= -10.f ? 0.f : x >= 10.f ? x * up[b + i] : table.value[h[i]] * up[b + i];
        }
    }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::swiglu(gate, up, out, n);
#endif
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void round_to_f16(float* x, int64_t n) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::round_to_f16(x, n);
#endif
    for (int64_t i = 0; i < n; ++i) x[i] = tensor::fp16_to_f32(tensor::f32_to_fp16(x[i]));
}

double exp_shifted(float* x, int64_t n, float max) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) {
        avx2::exp_shifted(x, n, max);
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += x[i];
        return sum;
    }
#endif
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += x[i] = std::exp(x[i] - max);
    return sum;
}

float dot_f32(const float* a, const float* b, int64_t n) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::dot_f32(a, b, n);
#endif
    float s = 0.f;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::axpy_f32(a, x, y, n);
#endif
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::dot_f16_f32(a, b, n);
#endif
    float s = 0.f;
    for (int64_t i = 0; i < n; ++i) s += tensor::fp16_to_f32(a[i]) * b[i];
    return s;
}

void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::axpy_f16(a, x, y, n);
#endif
    for (int64_t i = 0; i < n; ++i) y[i] += a * tensor::fp16_to_f32(x[i]);
}

void dot_f16_rows(const uint16_t* k, size_t stride, int64_t n_keys, const float* q, int64_t n, float* out) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::dot_f16_rows(k, stride, n_keys, q, n, out);
#endif
    for (int64_t j = 0; j < n_keys; ++j) out[j] = dot_f16_f32(k + j * stride, q, n);
}

void axpy_f16_rows(const float* w, const uint16_t* v, size_t stride, int64_t n_keys, float* y, int64_t n) noexcept {
#if defined(__x86_64__)
    if (cpu_features().avx2) return avx2::axpy_f16_rows(w, v, stride, n_keys, y, n);
#endif
    for (int64_t j = 0; j < n_keys; ++j) axpy_f16(w[j], v + j * stride, y, n);
}

}  // namespace ember::cpu
