// ember — the vocabulary behind ember::Tokenizer: token texts, scores and attributes, merges,
// special ids and flags, read from a GGUF (`tokenizer.ggml.*`) or from encoder.json + vocab.bpe.
// Immutable once built; shared between Tokenizer copies and threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ember/tokenizer.hpp"
#include "tokenizer/pretokenize.hpp"

namespace ember::gguf {
class File;
}

namespace ember::detail {

enum class VocabType { Spm, Bpe, Wpm };

// Where SPM adds the prefix space (add_space_prefix): llama.cpp's way, before every stretch of text (the
// text's start and after each special token, as Llama 2's Prepend normalizer does); or as a Metaspace
// pre-tokenizer does (tokenizer.ember.prepend_scheme): "first", only at the very start of the text,
// and "always", before every stretch — both only where the stretch does not already start with a space.
enum class SpacePrefix { EveryStretch, First, Always };

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// Per-token attribute bits: the public TokenAttribute values (llama.cpp's llama_token_attr numbering).
enum TokenAttr : uint32_t {
    AttrUndefined = 0,
    AttrUnknown = kTokenUnknown,
    AttrUnused = kTokenUnused,
    AttrNormal = kTokenNormal,
    AttrControl = kTokenControl,
    AttrUserDefined = kTokenUserDefined,
    AttrByte = kTokenByte,
    AttrLStrip = kTokenLStrip,
    AttrRStrip = kTokenRStrip,
};

struct TokenData {
    std::string text;
    float score = 0.0f;
    uint32_t attr = AttrNormal;
};

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

class Vocab {
public:
    // --- what the loaders fill in -----------------------------------------------------------
    VocabType type = VocabType::Spm;
    PreType pre = PreType::Default;
    std::string model_name;  // tokenizer.ggml.model
    std::string pre_name;    // tokenizer.ggml.pre (empty for SPM)

    std::vector<TokenData> tokens;
    StringMap<int32_t> merge_rank;  // key: left + '\0' + right

    Token bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
    Token fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;

    bool add_bos = false;
    bool add_eos = false;
    bool add_sep = false;
    bool add_space_prefix = false;  // SPM: prepend a space (-> ▁) to the text
    SpacePrefix space_prefix = SpacePrefix::EveryStretch;
    bool ignore_merges = false;     // BPE: a whole word that is a token is taken as is (Llama-3)
    bool escape_spaces = false;     // BPE over raw UTF-8 with spaces as ▁ and <0xXX> byte tokens (Gemma 4)
    bool clean_spaces = false;      // HF clean_up_tokenization_spaces (recorded; decode is lossless)
    bool lowercase = true;          // WordPiece normalizer
    bool strip_accents = true;

    // --- derived by finalize() ---------------------------------------------------------------
    StringMap<Token> token_to_id;
    std::vector<Token> special_tokens;  // control / user-defined / unknown, longest text first
    std::vector<uint8_t> eog;           // per token: ends generation
    std::vector<std::string> pieces;    // per token: bytes as decode renders them (special shown)
    Token byte_tokens[256] = {};        // SPM: <0xXX> ids (-1 when absent)
    bool spm_split_at_space = false;
    size_t max_token_len = 0;    // SPM: no token has a ▁ after a non-▁ character

    int32_t n_tokens() const noexcept { return static_cast<int32_t>(tokens.size()); }
    bool valid(Token t) const noexcept { return t >= 0 && t < n_tokens(); }
    Token find(std::string_view text) const noexcept {
        auto it = token_to_id.find(text);
        return it == token_to_id.end() ? -1 : it->second;
    }
    int32_t rank(std::string_view left, std::string_view right, std::string& scratch) const;

    // Builds the lookups, EOG set, special-token list and piece cache; checks ids. Throws BadFile.
    void finalize(std::string_view general_name = {});
};

// From a GGUF's tokenizer.ggml.* keys. Throws ember::Error(BadFile / Unsupported). Files made from a
// Hugging Face tokenizer.json (lib/hf) add what llama.cpp's keys cannot say: tokenizer.ember.ignore_merges
// (bool: the BPE model's own flag, whatever the pre-tokenizer), tokenizer.ember.prepend_scheme (string,
// SpacePrefix), tokenizer.ember.lstrip / rstrip (token ids whose added token strips spaces on that side;
// either key present replaces llama.cpp's per-model-name strip rules).
std::shared_ptr<const Vocab> load_vocab(const gguf::File& file);

// A byte-level BPE vocabulary from Hugging Face / OpenAI-style files: `encoder.json` (a flat
// {"token": id} object) and `vocab.bpe` (one "left right" merge per line, optional #version
// header). `pre` names the pre-tokenizer as tokenizer.ggml.pre would (e.g. "llama-bpe").
std::shared_ptr<const Vocab> load_bpe_vocab(const std::string& encoder_json_path, const std::string& merges_path,
                                            std::string_view pre);

// Maps a tokenizer.ggml.pre name to the pre-tokenizer and its flags; throws Unsupported.
void apply_pre_type(Vocab& v, std::string_view pre);

}  // namespace ember::detail
