// ember — re-quantizing a GGUF model into another GGUF (what llama.cpp's llama-quantize does), and
// converting a Hugging Face folder into one (what llama.cpp's convert_hf_to_gguf.py does).
//
// The target is named as llama-quantize names it: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S
// Q4_K_M Q5_K_S Q5_K_M Q6_K F16 BF16 F32 (any case). Each tensor's type is chosen by llama-quantize's rules
// for that mix: 1-D tensors, norms and MoE routers stay as they are; the output (and tied token embedding)
// is promoted to Q6_K; attn_v / ffn_down get more bits in some layers for the _M mixes; a tensor whose row
// length is not a multiple of the block size falls back to a type whose block fits. Metadata is copied with
// general.file_type and general.quantization_version set, and the tensors are written in llama-quantize's
// order, so for the plain types the file is byte-identical to llama-quantize's (no importance matrix).
//
// A Hugging Face folder (config.json, *.safetensors, tokenizer.json) as IN is read as the GGUF llama.cpp's
// convert_hf_to_gguf.py writes for it (the same keys, tensor names and layouts; see Model::load), and is
// then quantized like a GGUF file, with the converter's rule for what is not quantized: norms, biases, MoE
// routers and other 1-D tensors are written as F32 whatever the type. F32, F16, BF16 and Q8_0 are the
// converter's --outtype f32/f16/bf16/q8_0 (Q8_0: every matrix, token embedding and output included; a row
// length that is not a multiple of 32 falls back to F16, as there). ember's own tokenizer.ember.* keys
// (tokenizer.json behaviours llama.cpp's keys cannot say) are kept: ember needs them to tokenize as the
// folder does, and llama.cpp ignores keys it does not know.
//
// The output is written to a temporary file beside OUT and renamed into place at the end: an error or a
// cancellation never leaves a partial OUT.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ember {

struct QuantizeParams {
    std::string type = "Q8_0";        // the target mix, as llama-quantize names it (case-insensitive)
    int n_threads = 0;                // 0: the hardware threads; at most 4× hardware threads
    bool allow_requantize = false;    // quantized input tensors may be re-quantized (dequantized first)
    bool pure = false;                // every quantizable tensor gets the mix's base type (llama-quantize --pure)
    // Called from the calling thread with the fraction done (0..1); returning false cancels (Status::Cancelled).
    std::function<bool(float)> progress;
};

struct QuantizedTensor {
    std::string name;
    std::vector<int64_t> shape;       // ne[0] (row length) first
    std::string type_in, type_out;    // "F16", "Q4_K", ...
    uint64_t bytes_in = 0, bytes_out = 0;
    bool fallback = false;            // the mix's type did not fit the row length
};

struct QuantizeResult {
    std::string type;                 // the mix, upper case ("Q4_K_M")
    uint32_t file_type = 0;           // the general.file_type written (llama_ftype)
    std::vector<QuantizedTensor> tensors;  // in output order
    uint64_t n_elements = 0;
    uint64_t tensor_bytes_in = 0, tensor_bytes_out = 0;
    uint64_t file_bytes_in = 0, file_bytes_out = 0;
    int n_fallback = 0;
};

// The mix names quantize_model accepts, in llama-quantize's order.
std::vector<std::string> quantize_types();

// Reads IN (a GGUF file or a Hugging Face folder), writes OUT. Throws ember::Error: InvalidArgument (unknown
// type; a quantized tensor without allow_requantize, named), Io (IN unreadable, OUT a directory, OUT's folder
// missing or not writable), BadFile (IN malformed, non-finite weights), Unsupported (a folder of an
// architecture or tokenizer ember does not read), Cancelled (the progress callback returned false).
// file_bytes_in is a folder's tensor bytes.
QuantizeResult quantize_model(const std::string& in, const std::string& out, const QuantizeParams& params = {});

// quantize_model for a Hugging Face folder only (ember-convert): InvalidArgument when HF_DIR is not a folder.
// params.type is the output type ("F16" is what convert_hf_to_gguf.py --outtype f16 writes).
QuantizeResult convert_model(const std::string& hf_dir, const std::string& out, const QuantizeParams& params);

}  // namespace ember
