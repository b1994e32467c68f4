#include "tensor/types.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace ember::tensor {

namespace {
constexpr std::array<TypeInfo, 16> kTypes = {{
    {TensorType::F32, "F32", 1, 4, false},
    {TensorType::F16, "F16", 1, 2, false},
    {TensorType::Q4_0, "Q4_0", 32, 18, true},
    {TensorType::Q4_1, "Q4_1", 32, 20, true},
    {TensorType::Q5_0, "Q5_0", 32, 22, true},
    {TensorType::Q5_1, "Q5_1", 32, 24, true},
    {TensorType::Q8_0, "Q8_0", 32, 34, true},
    {TensorType::Q8_1, "Q8_1", 32, 36, true},
    {TensorType::Q2_K, "Q2_K", 256, 84, true},
    {TensorType::Q3_K, "Q3_K", 256, 110, true},
    {TensorType::Q4_K, "Q4_K", 256, 144, true},
    {TensorType::Q5_K, "Q5_K", 256, 176, true},
    {TensorType::Q6_K, "Q6_K", 256, 210, true},
    {TensorType::Q8_K, "Q8_K", 256, 292, true},
    {TensorType::BF16, "BF16", 1, 2, false},
    {TensorType::MXFP4, "MXFP4", 32, 17, true},
}};

// GGUF type number → index in kTypes (-1: unknown). info() sits under every row access in the kernels'
// loops (Tensor::row → row_bytes), so it is a table lookup, not a search.
constexpr uint32_t kRawLimit = 40;
constexpr std::array<int8_t, kRawLimit> kIndex = [] {
    std::array<int8_t, kRawLimit> a{};
    a.fill(-1);
    for (size_t i = 0; i < kTypes.size(); ++i) a[static_cast<uint32_t>(kTypes[i].type)] = static_cast<int8_t>(i);
    return a;
}();
}  // namespace

std::optional<TypeInfo> type_info(uint32_t raw) noexcept {
    if (raw >= kRawLimit || kIndex[raw] < 0) return std::nullopt;
    return kTypes[static_cast<size_t>(kIndex[raw])];
}

const TypeInfo& info(TensorType t) noexcept {
    const auto raw = static_cast<uint32_t>(t);
    return raw < kRawLimit && kIndex[raw] >= 0 ? kTypes[static_cast<size_t>(kIndex[raw])] : kTypes[0];
}

std::optional<TensorType> type_from_name(std::string_view name) noexcept {
    std::string up(name);
    std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (const auto& t : kTypes)
        if (up == t.name) return t.type;
    return std::nullopt;
}

}  // namespace ember::tensor
