// ember — text ↔ token ids. A Tokenizer is immutable and thread-safe; copies share one vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

using Token = int32_t;

// Token attribute bits (as llama.cpp's llama_token_attr numbers them).
enum TokenAttribute : uint32_t {
    kTokenUnknown = 1u << 0,
    kTokenUnused = 1u << 1,
    kTokenNormal = 1u << 2,
    kTokenControl = 1u << 3,      // BOS, EOS, <|im_start|>...: not printed unless rendered
    kTokenUserDefined = 1u << 4,  // added tokens matched as a whole in text
    kTokenByte = 1u << 5,         // <0xXX> byte fallback
    kTokenLStrip = 1u << 7,
    kTokenRStrip = 1u << 8,
};

// The vocabulary's special roles.
enum class SpecialToken { Bos, Eos, Eot, Eom, Unk, Sep, Pad, Mask, FimPre, FimSuf, FimMid, FimPad, FimRep, FimSep };

namespace detail {
class Vocab;
}

class Tokenizer {
public:
    // Loads only the vocabulary from a GGUF file (works on vocab-only files with no tensors), or from a
    // Hugging Face folder's tokenizer.json or, without one, tokenizer.model (+ tokenizer_config.json, config.json).
    static Tokenizer from_gguf(const std::string& path);

    // add_special: add BOS/EOS as the vocabulary's add_bos_token/add_eos_token flags say.
    // parse_special: text like "<|im_start|>" becomes its special token instead of plain text.
    std::vector<Token> encode(std::string_view text, bool add_special = true, bool parse_special = true) const;
    // Concatenated pieces; with render_special=false, control tokens (BOS, EOS, <|im_end|>...) print nothing.
    std::string decode(std::span<const Token> tokens, bool render_special = false) const;
    // The bytes of one token as decode would produce them.
    std::string piece(Token t, bool render_special = true) const;

    int32_t n_vocab() const noexcept;
    Token bos() const noexcept;            // -1 when the vocabulary has none
    Token eos() const noexcept;            // -1 when none
    Token eot() const noexcept;            // end of turn (e.g. <|im_end|>, <end_of_turn>); -1 when none
    bool is_end_of_generation(Token t) const noexcept;  // EOS, EOT and the like
    bool is_control(Token t) const noexcept;
    uint32_t attributes(Token t) const noexcept;  // TokenAttribute bits; 0 for an id out of range
    Token special(SpecialToken which) const noexcept;  // -1 when the vocabulary has none
    bool add_bos() const noexcept;
    bool add_eos() const noexcept;
    std::string model_name() const;        // "llama" (SentencePiece), "gpt2" (byte-level BPE), "bert"
    std::string pre_name() const;          // the pre-tokenizer, e.g. "smollm", "llama-bpe"; empty for SPM

    // For the library: a Tokenizer over an already-built vocabulary.
    explicit Tokenizer(std::shared_ptr<const detail::Vocab> vocab);
    const detail::Vocab& vocab() const noexcept { return *vocab_; }

private:
    std::shared_ptr<const detail::Vocab> vocab_;
};

}  // namespace ember
