#include "tensor/types.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace ember::tensor {

namespace {
constexpr std::array<TypeInfo, 15> kTypes = {{
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
}};
}  // namespace

std::optional<TypeInfo> type_info(uint32_t raw) noexcept {
    for (const auto& t : kTypes)
        if (static_cast<uint32_t>(t.type) == raw) return t;
    return std::nullopt;
}

const TypeInfo& info(TensorType t) noexcept {
    for (const auto& ti : kTypes)
        if (ti.type == t) return ti;
    return kTypes[0];  // unreachable for valid enum values
}

std::optional<TensorType> type_from_name(std::string_view name) noexcept {
    std::string up(name);
    std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (const auto& t : kTypes)
        if (up == t.name) return t.type;
    return std::nullopt;
}

}  // namespace ember::tensor
