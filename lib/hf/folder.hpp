// Hugging Face model folders (config.json, *.safetensors, tokenizer.json, tokenizer_config.json) read
// as the GGUF file llama.cpp's converter would write for them: the same metadata keys, tensor names and
// layouts, the tokenizer as tokenizer.ggml.* keys. The rest of ember (vocabulary, architectures, model
// info) then reads a folder exactly as it reads a GGUF file. F32/F16/BF16 weights stay in the folder's
// mappings where they can; what the GGUF form changes (Llama's Q/K row order, Gemma's norm offset,
// experts stacked into one tensor, 1-D tensors as F32) is converted once, at load.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gguf/reader.hpp"

namespace ember::hf {

using Keys = std::vector<std::pair<std::string, gguf::Value>>;

// Whether `path` names a directory (a model folder) rather than a file.
bool is_folder(const std::string& path);

enum class Read { Everything, Layout, Tokenizer };
// Reads a folder. Throws ember::Error: Io (a file missing), BadFile (malformed or inconsistent files),
// Unsupported (an architecture, tokenizer or option ember does not run). Layout: the tensors' names,
// types and shapes without converting any (those have no data), for a summary of a large folder;
// Tokenizer: the keys alone, no weights opened.
gguf::File open_folder(const std::string& dir, bool use_mmap = true, Read what = Read::Everything);

// A GGUF file, or a folder read as one.
gguf::File open_model_file(const std::string& path, bool use_mmap = true, Read what = Read::Everything);

// What reading a PEFT adapter needs to know of the model it is for.
struct AdapterBase {
    std::string arch;  // ember's (GGUF's) architecture name
    int n_head = 0, n_head_kv = 0, head_dim = 0;
};
// A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) read as the GGUF adapter llama.cpp's
// convert_lora_to_gguf.py writes for it: general.type "adapter", adapter.type "lora", adapter.lora.alpha
// (× √r for rsLoRA), tensors "<GGUF name>.lora_a" [n_in, r] and ".lora_b" [r, n_out], Llama's Q/K rows
// reordered as in the base weights. Throws Io, BadFile (malformed files, a rank other than r),
// InvalidArgument (a module `base` does not have), Unsupported (DoRA, trained biases, embeddings, ...).
gguf::File open_peft_adapter(const std::string& dir, const AdapterBase& base, bool use_mmap = true);

// tokenizer.json (+ tokenizer_config.json's text, empty when absent, and config.json's for the special
// ids it may carry) as tokenizer.ggml.* keys, appended to `out`. Exposed for the tests and the fuzzer.
void tokenizer_keys(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                    std::string_view config_json, Keys& out);

// tokenizer.model (a SentencePiece ModelProto, for folders that ship no tokenizer.json) as the same keys,
// the way transformers converts it (LlamaTokenizer / GemmaTokenizer) and llama.cpp's converter writes it:
// pieces, scores and types from the model; add_dummy_prefix; tokenizer_config.json's added tokens, special
// tokens, flags and legacy (Metaspace "always") or not ("first"). Hostile bytes end in BadFile; Unigram
// models and options ember does not apply, Unsupported. Exposed for the tests and the fuzzer.
void sentencepiece_keys(std::string_view tokenizer_model, std::string_view tokenizer_config_json,
                        std::string_view config_json, Keys& out);

}  // namespace ember::hf
