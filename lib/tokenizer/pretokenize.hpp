// ember — byte-level BPE pre-tokenizers: split text into words the way llama.cpp's
// unicode_regex_split does for each `tokenizer.ggml.pre`, with hand-written matchers
// (no std::regex) that reproduce the regex semantics llama.cpp gets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember::detail {

enum class PreType {
    Default,        // no/unknown-as-"default" pre key: llama.cpp's default regex list
    Gpt2,           // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Llama3,         // Llama-3 pattern, \p{N}{1,3}
    Qwen2,          // Llama-3 pattern with single digits
    Qwen35,         // Qwen2's, letter runs taking combining marks too ([\p{L}\p{M}]+)
    Starcoder,      // \p{N} then the GPT-2 pattern (starcoder, refact, smollm, command-r, ...)
    DeepseekCoder,  // [\r\n], \s?\p{L}+, \s?\p{P}+, CJK runs, \p{N}
    Gemma4,         // no word split: runs of non-newlines and runs of newlines, raw UTF-8 (not byte-encoded)
    DeepseekLlm,    // [\r\n], \s?<cased letters>+, \s?<punctuation>+, \s+$, CJK runs, \p{N}+
    Falcon,         // [\p{P}$+<=>^~|`]+, the GPT-2 pattern, [0-9]{3}
    DeepseekV3,     // \p{N}{1,3}, CJK/kana runs, then ASCII-punct+ASCII-letters, [\p{L}\p{M}] and [\p{P}\p{S}] runs
    Gpt4o,          // cased letter words with contractions, \p{N}{1,3} (GPT-4o, Llama 4, MiniMax-M2, ...)
    Tekken,         // GPT-4o's without contractions, single digits (Mistral)
    KimiK2,         // Han runs, then Llama-3-like words over the other letters, contractions attached
};

// Splits `text` into pre-tokenizer words, each returned GPT-2 byte-encoded (every UTF-8 byte
// replaced by its printable stand-in), ready for BPE merges. Invalid UTF-8 becomes U+FFFD.
std::vector<std::string> pretokenize(std::string_view text, PreType pre);

}  // namespace ember::detail
