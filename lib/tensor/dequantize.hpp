// Reference (scalar) dequantization: the oracle every optimised kernel is checked against.
#pragma once

#include <cstdint>

#include "tensor/types.hpp"

namespace ember::tensor {

// Expands n elements of type t at src into n floats at dst. src holds row_bytes(t, n) bytes; it may have
// any alignment (blocks are copied out with memcpy). Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
// Throws ember::Error(InvalidArgument) when n < 0 or n is not a multiple of the type's block size.
void dequantize_row(TensorType t, const void* src, float* dst, int64_t n);

}  // namespace ember::tensor
