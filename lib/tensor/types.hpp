// Tensor element types as GGUF numbers them, with their block geometry.
// Quantization is a property of the tensor: kernels dispatch on TensorType, model code never does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ember::tensor {

enum class TensorType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,
    MXFP4 = 39,  // OCP microscaling FP4: 32 E2M1 values sharing one power-of-two (E8M0) scale
};

struct TypeInfo {
    TensorType type;
    const char* name;
    int64_t block_size;  // elements per block
    size_t block_bytes;  // bytes per block
    bool quantized;
};

// Info for a raw GGUF type number, or nullopt when ember does not know the type.
std::optional<TypeInfo> type_info(uint32_t raw) noexcept;
const TypeInfo& info(TensorType t) noexcept;
inline const char* type_name(TensorType t) noexcept { return info(t).name; }
std::optional<TensorType> type_from_name(std::string_view name) noexcept;  // "q4_0", "Q4_K", "f16"...

// Bytes of a row of n elements; n must be a multiple of the block size (checked by callers).
inline size_t row_bytes(TensorType t, int64_t n) noexcept {
    const TypeInfo& ti = info(t);
    return static_cast<size_t>(n / ti.block_size) * ti.block_bytes;
}

}  // namespace ember::tensor
