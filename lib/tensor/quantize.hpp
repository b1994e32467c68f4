// Reference (scalar) row quantizers.
//
// Q8_0, Q8_1 and Q8_K quantize activations on the fly and reproduce ggml's reference rounding bit
// for bit (quantize_row_q8_0_ref / q8_1_ref / q8_K_ref), so dot products match ggml's.
// The other formats implement the same algorithms as ggml's reference quantizers (quantize_row_*_ref,
// i.e. without an importance matrix): Q4_0 .. Q5_1 by min/max or signed-absmax scaling, Q2_K .. Q6_K by
// a weighted least-squares search for sub-block scales (and mins), whose scales are then quantized to
// 4/6/8 bits. When written, the output bytes were checked identical to ggml's reference (ggml d99724f)
// on several random distributions; the unit tests here only rely on error bounds.
// Inputs must be finite.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/types.hpp"

namespace ember::tensor {

// Quantizes n floats from src into dst (row_bytes(t, n) bytes) and returns the bytes written.
// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
// Throws ember::Error(InvalidArgument) when n < 0, n is not a multiple of the block size, or t
// cannot be quantized.
size_t quantize_row(TensorType t, const float* src, void* dst, int64_t n);

}  // namespace ember::tensor
