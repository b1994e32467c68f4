// The pieces of quantize_model that loading with ModelParams::quantize shares: the mix's per-tensor type
// choice (llama-quantize's rules), the output metadata, and the multithreaded row conversion. One choice
// and one converter for both, so a model quantized at load holds exactly the tensors ember-quantize writes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ember/quantize.hpp"
#include "gguf/reader.hpp"
#include "tensor/types.hpp"

namespace ember::quantize {

struct Mix {
    const char* name;
    uint32_t ftype;  // llama_ftype: what general.file_type records
    tensor::TensorType base;
};

// The mix named as llama-quantize names it (any case; Q3_K, Q4_K and Q5_K are its aliases of the _M mixes).
// Throws InvalidArgument listing the names.
const Mix& find_mix(const std::string& name);

struct Plan {
    const Mix* mix = nullptr;
    std::vector<const gguf::TensorInfo*> order;  // llama-quantize's tensor order
    QuantizeResult result;                       // result.tensors[i]: order[i]'s type and sizes
    std::vector<tensor::TensorType> types;       // result.tensors[i]'s output type
};

// Each tensor's output type by the mix's rules; `from_folder`: convert_hf_to_gguf.py's rule that what is not
// quantized is F32. Throws InvalidArgument (unknown mix, a quantized tensor without allow_requantize),
// BadFile (an MoE tensor whose layer cannot be told).
Plan plan(const gguf::File& f, const QuantizeParams& params, bool from_folder);

// The output's metadata: the input's keys in order without the split keys, then
// general.quantization_version and general.file_type.
std::vector<std::pair<std::string, gguf::Value>> output_metadata(const gguf::File& f, const Mix& mix);

// 0: the hardware threads; at most 4× those.
int resolve_threads(int n);

// Converts tensor `t` to type `to` in slabs of about 32 MiB of rows, each split among up to n_threads
// threads: `out(r0, r1)` gives where rows [r0, r1) go, `done(r0, r1)` is called once they are there (it may
// throw, e.g. Cancelled). Throws BadFile on a non-finite weight, naming the tensor and row.
void convert_tensor(const gguf::TensorInfo& t, tensor::TensorType to, int n_threads,
                    const std::function<uint8_t*(int64_t r0, int64_t r1)>& out,
                    const std::function<void(int64_t r0, int64_t r1)>& done);

// The plan of quantize_in_memory: plan() with F32/F16/BF16 weights quantized and an already quantized one
// refused (InvalidArgument, in a load's words). Header only: estimate_memory sizes a load with it.
Plan plan_load(const gguf::File& f, const std::string& type, bool from_folder);

// The model in `f` quantized in memory to the mix `type`, as quantize_model would write it (same tensors,
// types, bytes, order and keys), tensor by tensor: each converted tensor gets a buffer of its own, the
// others stay where `f` holds them (the result keeps `f` alive). `progress` gets 0..1 (false: Cancelled).
// Throws as plan, and OutOfMemory when the converted tensors do not fit in the memory available.
gguf::File quantize_in_memory(gguf::File f, const std::string& type, int n_threads, bool from_folder,
                              const std::function<bool(float)>& progress);

}  // namespace ember::quantize
