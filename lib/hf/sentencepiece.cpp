// tokenizer.model → tokenizer.ggml.* keys. The file is a SentencePiece ModelProto in protobuf's wire format,
// read here by hand (no protobuf dependency) with every length and varint checked against the bytes left:
//   ModelProto      1: repeated SentencePiece pieces   2: TrainerSpec   3: NormalizerSpec
//   SentencePiece   1: piece (string)   2: score (float)   3: type (NORMAL 1, UNKNOWN 2, CONTROL 3,
//                   USER_DEFINED 4, UNUSED 5, BYTE 6 — the GGUF token types' own numbers)
//   TrainerSpec     3: model_type (UNIGRAM 1, BPE 2, WORD 3, CHAR 4; default UNIGRAM)
//                   24: treat_whitespace_as_suffix   40-43: unk/bos/eos/pad ids (defaults 0, 1, 2, -1)
//   NormalizerSpec  3: add_dummy_prefix (default true)   5: escape_whitespaces (default true)
// Unknown fields are skipped, as protobuf readers do. Like transformers' LlamaConverter / GemmaConverter and
// llama.cpp's converter, the normalizer's rules (name, precompiled_charsmap, remove_extra_whitespaces) are
// not applied: only the dummy prefix is.
#include <cmath>
#include <cstring>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "ember/error.hpp"
#include "hf/folder.hpp"
#include "hf/hf.hpp"
#include "hf/json.hpp"

namespace ember::hf {

namespace {

using gguf::Value;

const std::string kWhat = "tokenizer.model";
constexpr size_t kMaxPieces = 1u << 24;   // as tokenizer.json's id limit; the largest vocabularies are ~260k
constexpr size_t kMaxPieceBytes = 1024;   // sentencepiece's own pieces are at most 16 characters

// One message's fields, read one at a time. Every read is checked against the bytes left.
class Wire {
public:
    explicit Wire(std::span<const uint8_t> bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
    bool done() const { return p_ == end_; }

    struct Field {
        uint32_t number = 0;
        uint32_t wire = 0;                  // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
        uint64_t value = 0;                 // varint, fixed64, fixed32
        std::span<const uint8_t> bytes;     // length-delimited
    };

    Field next() {
        const uint64_t key = varint();
        Field f;
        f.wire = static_cast<uint32_t>(key & 7);
        if ((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) bad(kWhat, "a field number out of range");
        f.number = static_cast<uint32_t>(key >> 3);
        switch (f.wire) {
            case 0: f.value = varint(); break;
            case 1: f.value = fixed(8); break;
            case 5: f.value = fixed(4); break;
            case 2: {
                const uint64_t n = varint();
                if (n > static_cast<uint64_t>(end_ - p_)) bad(kWhat, "a length of " + std::to_string(n) + " past the end");
                f.bytes = {p_, static_cast<size_t>(n)};
                p_ += n;
                break;
            }
            default: bad(kWhat, "wire type " + std::to_string(f.wire) + " (groups or invalid)");
        }
        return f;
    }

private:
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ == end_) bad(kWhat, "a truncated varint");
            const uint8_t b = *p_++;
            if (shift == 63 && b > 1) bad(kWhat, "a varint over 64 bits");
            v |= static_cast<uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        bad(kWhat, "a varint over 10 bytes");
    }
    uint64_t fixed(int n) {
        if (end_ - p_ < n) bad(kWhat, "a truncated fixed-size field");
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
        p_ += n;
        return v;
    }

    const uint8_t* p_;
    const uint8_t* end_;
};

// A field's value of the type the schema gives, or BadFile.
uint64_t varint_of(const Wire::Field& f, const char* name) {
    if (f.wire != 0) bad(kWhat, std::string(name) + " is not a varint");
    return f.value;
}
bool bool_of(const Wire::Field& f, const char* name) { return varint_of(f, name) != 0; }
// int32 fields are sign-extended to 64 bits on the wire (-1 takes ten bytes).
int32_t int32_of(const Wire::Field& f, const char* name) {
    const auto v = static_cast<int64_t>(varint_of(f, name));
    if (v < INT32_MIN || v > INT32_MAX) bad(kWhat, std::string(name) + " is out of the int32 range");
    return static_cast<int32_t>(v);
}

struct Piece {
    std::string text;
    float score = 0.f;
    int32_t type = 1;  // NORMAL
};

struct SpModel {
    std::vector<Piece> pieces;
    int32_t model_type = 1;  // UNIGRAM, the schema's default
    bool whitespace_suffix = false;
    int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
    bool add_dummy_prefix = true, escape_whitespaces = true;
};

Piece read_piece(std::span<const uint8_t> bytes) {
    Piece p;
    bool has_text = false;
    for (Wire w(bytes); !w.done();) {
        const Wire::Field f = w.next();
        if (f.number == 1) {
            if (f.wire != 2) bad(kWhat, "a piece's text is not a string");
            if (f.bytes.size() > kMaxPieceBytes) bad(kWhat, "a piece of " + std::to_string(f.bytes.size()) + " bytes");
            p.text.assign(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size());
            has_text = true;
        } else if (f.number == 2) {
            if (f.wire != 5) bad(kWhat, "a piece's score is not a float");
            const auto bits = static_cast<uint32_t>(f.value);
            std::memcpy(&p.score, &bits, sizeof p.score);
            if (!std::isfinite(p.score)) bad(kWhat, "a piece's score is not finite");
        } else if (f.number == 3) {
            const uint64_t t = varint_of(f, "a piece's type");
            if (t < 1 || t > 6) bad(kWhat, "a piece's type " + std::to_string(t) + " is not one of 1..6");
            p.type = static_cast<int32_t>(t);
        }
    }
    if (!has_text || p.text.empty()) bad(kWhat, "a piece without text");
    return p;
}

SpModel read_model(std::string_view bytes) {
    SpModel m;
    const std::span<const uint8_t> all(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    for (Wire w(all); !w.done();) {
        const Wire::Field f = w.next();
        if (f.number == 1) {
            if (f.wire != 2) bad(kWhat, "a piece is not a message");
            if (m.pieces.size() >= kMaxPieces) bad(kWhat, "more than " + std::to_string(kMaxPieces) + " pieces");
            m.pieces.push_back(read_piece(f.bytes));
        } else if (f.number == 2 || f.number == 3) {
            if (f.wire != 2) bad(kWhat, f.number == 2 ? "trainer_spec is not a message" : "normalizer_spec is not a message");
            // A message given twice merges field by field; later values win, as protobuf does.
            for (Wire s(f.bytes); !s.done();) {
                const Wire::Field g = s.next();
                if (f.number == 2) {
                    switch (g.number) {
                        case 3: m.model_type = int32_of(g, "model_type"); break;
                        case 24: m.whitespace_suffix = bool_of(g, "treat_whitespace_as_suffix"); break;
                        case 40: m.unk_id = int32_of(g, "unk_id"); break;
                        case 41: m.bos_id = int32_of(g, "bos_id"); break;
                        case 42: m.eos_id = int32_of(g, "eos_id"); break;
                        case 43: m.pad_id = int32_of(g, "pad_id"); break;
                        default: break;
                    }
                } else if (g.number == 3) {
                    m.add_dummy_prefix = bool_of(g, "add_dummy_prefix");
                } else if (g.number == 5) {
                    m.escape_whitespaces = bool_of(g, "escape_whitespaces");
                }
            }
        }
    }
    if (m.pieces.empty()) bad(kWhat, "no pieces (not a SentencePiece model?)");
    std::unordered_set<std::string_view> seen;  // sentencepiece refuses a model that defines a piece twice
    for (const Piece& p : m.pieces)
        if (!seen.insert(p.text).second) bad(kWhat, "piece '" + p.text.substr(0, 40) + "' is given twice");
    return m;
}

// A token id from tokenizer_config.json's added_tokens_decoder keys: decimal digits, below kMaxPieces.
int32_t added_id(const std::string& key) {
    if (key.empty() || key.size() > 8 || key.find_first_not_of("0123456789") != std::string::npos)
        bad("tokenizer_config.json", "added_tokens_decoder key '" + key.substr(0, 20) + "' is not a token id");
    const long id = std::stol(key);
    if (id >= static_cast<long>(kMaxPieces)) bad("tokenizer_config.json", "added token id " + key + " is too large");
    return static_cast<int32_t>(id);
}

}  // namespace

void sentencepiece_keys(std::string_view tokenizer_model, std::string_view tokenizer_config_json, std::string_view config_json,
                        Keys& out) {
    const SpModel m = read_model(tokenizer_model);
    if (m.model_type != 2)
        unsupported(kWhat, std::string(m.model_type == 1 ? "a Unigram" : "a word or character") +
                               " SentencePiece model (ember reads BPE ones)");
    if (m.whitespace_suffix) unsupported(kWhat, "treat_whitespace_as_suffix");
    if (!m.escape_whitespaces) unsupported(kWhat, "escape_whitespaces off (ember writes spaces as U+2581)");
    const Json tcfg = tokenizer_config_json.empty() ? Json::object() : parse_json(tokenizer_config_json, "tokenizer_config.json");
    const Json cfg = config_json.empty() ? Json::object() : parse_json(config_json, "config.json");
    if (!tcfg.is_object()) bad("tokenizer_config.json", "not a JSON object");

    std::vector<std::string> texts;
    std::vector<float> scores;
    std::vector<int32_t> types;
    texts.reserve(m.pieces.size());
    for (const Piece& p : m.pieces) {
        texts.push_back(p.text);
        scores.push_back(p.score);
        types.push_back(p.type);
    }
    // Added tokens (transformers ≥ 4.34 records them all here): a piece of the model re-typed, or a new id.
    // As llama.cpp's converter: special ones are CONTROL, the others USER_DEFINED, score -1000.
    std::vector<int32_t> lstrip, rstrip;
    if (const Json* added = get_object(tcfg, "added_tokens_decoder", "tokenizer_config.json")) {
        if (added->size() > kMaxPieces) bad("tokenizer_config.json", "too many added tokens");
        for (const auto& [key, a] : added->items()) {
            const int32_t id = added_id(key);
            if (!a.is_object()) bad("tokenizer_config.json", "added token " + key + " is not an object");
            const std::string content = get_string(a, "content", "", "tokenizer_config.json");
            if (content.empty()) bad("tokenizer_config.json", "added token " + key + " has no content");
            // Ids past the model's pieces leave no gap bigger than the file could fill (as tokenizer.json's).
            if (static_cast<size_t>(id) >= 2 * (m.pieces.size() + added->size()) + 1024)
                bad("tokenizer_config.json", "added token id " + key + " far past the vocabulary");
            if (static_cast<size_t>(id) >= texts.size()) {
                for (size_t i = texts.size(); i <= static_cast<size_t>(id); ++i) {
                    texts.push_back("[PAD" + std::to_string(i) + "]");  // an id nobody gave: unusable, as llama.cpp pads
                    scores.push_back(-1000.f);
                    types.push_back(5);
                }
            }
            texts[static_cast<size_t>(id)] = content;
            scores[static_cast<size_t>(id)] = -1000.f;
            types[static_cast<size_t>(id)] = get_bool(a, "special", false, "tokenizer_config.json") ? 3 : 4;
            if (get_bool(a, "lstrip", false, "tokenizer_config.json")) lstrip.push_back(id);
            if (get_bool(a, "rstrip", false, "tokenizer_config.json")) rstrip.push_back(id);
        }
    }
    std::unordered_map<std::string, int32_t> ids;
    for (size_t i = 0; i < texts.size(); ++i) ids.emplace(texts[i], static_cast<int32_t>(i));

    out.emplace_back("tokenizer.ggml.model", Value::string("llama"));
    out.emplace_back("tokenizer.ggml.pre", Value::string("default"));
    // As llama.cpp's converter writes it and its reader applies it: the dummy prefix before the text and after
    // every special token. (transformers 5 converts the same file to Metaspace, which adds none to text that
    // already starts with a space: the two disagree there, and ember follows the GGUF llama.cpp would run.)
    if (!m.add_dummy_prefix) out.emplace_back("tokenizer.ggml.add_space_prefix", Value::boolean(false));
    const size_t n = texts.size();
    out.emplace_back("tokenizer.ggml.tokens", Value::strings(std::move(texts)));
    out.emplace_back("tokenizer.ggml.scores", Value::f32s(scores));
    out.emplace_back("tokenizer.ggml.token_type", Value::i32s(types));
    out.emplace_back("tokenizer.ember.lstrip", Value::i32s(lstrip));
    out.emplace_back("tokenizer.ember.rstrip", Value::i32s(rstrip));
    // The model's own special ids (-1: none), then tokenizer_config.json's names and flags over them.
    const std::pair<int32_t, const char*> own[] = {{m.bos_id, "tokenizer.ggml.bos_token_id"},
                                                   {m.eos_id, "tokenizer.ggml.eos_token_id"},
                                                   {m.unk_id, "tokenizer.ggml.unknown_token_id"},
                                                   {m.pad_id, "tokenizer.ggml.padding_token_id"}};
    for (const auto& [id, key] : own)
        if (id >= 0 && static_cast<size_t>(id) < n) out.emplace_back(key, Value::u32(static_cast<uint32_t>(id)));
    // LlamaTokenizer and GemmaTokenizer add BOS and no EOS unless told otherwise.
    out.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(true));
    out.emplace_back("tokenizer.ggml.add_eos_token", Value::boolean(false));
    config_keys(tcfg, cfg, ids, out);
}

}  // namespace ember::hf
