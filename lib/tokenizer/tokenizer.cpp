#include "ember/tokenizer.hpp"

#include <cctype>
#include <limits>

#include "ember/error.hpp"
#include "hf/folder.hpp"
#include "gguf/reader.hpp"
#include "tokenizer/encode.hpp"
#include "tokenizer/vocab.hpp"

namespace ember {
namespace {

using detail::Vocab;

// A piece of the input: either a special token or a stretch of raw text.
struct Fragment {
    Token token;  // -1 for text
    size_t off;
    size_t len;
};

// llama.cpp's tokenizer_st_partition: for each special token, longest first, split every text
// fragment at its exact occurrences. Control/unknown tokens only with parse_special;
// user-defined tokens always (as Hugging Face tokenizers do).
std::vector<Fragment> partition(const Vocab& v, std::string_view text, bool parse_special) {
    std::vector<Fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});
    std::vector<Fragment> next;
    for (Token id : v.special_tokens) {
        const auto& td = v.tokens[static_cast<size_t>(id)];
        if (!parse_special && (td.attr & (detail::AttrControl | detail::AttrUnknown))) continue;
        const std::string_view st = td.text;
        bool any = false;
        next.clear();
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t off = f.off;
            size_t len = f.len;
            for (;;) {
                const size_t m = text.substr(0, off + len).find(st, off);
                if (m == std::string_view::npos) {
                    if (len > 0) next.push_back({-1, off, len});
                    break;
                }
                any = true;
                size_t left_len = m - off;
                if (td.attr & detail::AttrLStrip) {
                    while (left_len > 0 && std::isspace(static_cast<unsigned char>(text[off + left_len - 1]))) --left_len;
                }
                if (left_len > 0) next.push_back({-1, off, left_len});
                next.push_back({id, 0, 0});
                size_t r_off = m + st.size();
                size_t r_len = off + len - r_off;
                if (td.attr & detail::AttrRStrip) {
                    while (r_len > 0 && std::isspace(static_cast<unsigned char>(text[r_off]))) {
                        ++r_off;
                        --r_len;
                    }
                }
                off = r_off;
                len = r_len;
                if (len == 0) break;
            }
        }
        if (any) frags.swap(next);
    }
    return frags;
}

void check_token(const Vocab& v, Token t) {
    if (!v.valid(t)) {
        throw Error(Status::InvalidArgument,
                    "token id " + std::to_string(t) + " out of range [0, " + std::to_string(v.n_tokens()) + ")");
    }
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const detail::Vocab> vocab) : vocab_(std::move(vocab)) {
    if (!vocab_) throw Error(Status::InvalidArgument, "Tokenizer: null vocabulary");
}

Tokenizer Tokenizer::from_gguf(const std::string& path) {
    const gguf::File file = hf::open_model_file(path, true, hf::Read::Tokenizer);
    return Tokenizer(detail::load_vocab(file));
}

std::vector<Token> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    const Vocab& v = *vocab_;
    if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 4)) {
        throw Error(Status::InvalidArgument, "encode: text too long");
    }
    std::vector<Token> out;
    out.reserve(text.size() / 3 + 4);
    const std::vector<Fragment> frags = partition(v, text, parse_special);

    if (add_special && v.add_bos) out.push_back(v.bos);
    switch (v.type) {
        case detail::VocabType::Spm: {
            bool prev_special = true;  // the text start counts as "after a special token"
            std::string buf;
            for (const Fragment& f : frags) {
                if (f.token >= 0) {
                    out.push_back(f.token);
                    prev_special = true;
                    continue;
                }
                buf.clear();
                const bool starts_with_space = text[f.off] == ' ';
                bool prefix = false;
                switch (v.space_prefix) {
                    case detail::SpacePrefix::EveryStretch: prefix = prev_special; break;
                    case detail::SpacePrefix::First: prefix = f.off == 0 && !starts_with_space; break;
                    case detail::SpacePrefix::Always: prefix = !starts_with_space; break;
                }
                if (v.add_space_prefix && prefix) buf += "\xE2\x96\x81";
                for (char c : text.substr(f.off, f.len)) {
                    if (c == ' ') {
                        buf += "\xE2\x96\x81";
                    } else {
                        buf.push_back(c);
                    }
                }
                detail::spm_tokenize(v, buf, out);
                prev_special = false;
            }
            break;
        }
        case detail::VocabType::Bpe:
            for (const Fragment& f : frags) {
                if (f.token >= 0) {
                    out.push_back(f.token);
                } else {
                    detail::bpe_tokenize(v, text.substr(f.off, f.len), out);
                }
            }
            break;
        case detail::VocabType::Wpm:
            for (const Fragment& f : frags) {
                if (f.token >= 0) {
                    out.push_back(f.token);
                } else {
                    detail::wpm_tokenize(v, text.substr(f.off, f.len), out);
                }
            }
            if (add_special && v.add_sep) out.push_back(v.sep);
            break;
    }
    if (add_special && v.add_eos) out.push_back(v.eos);
    return out;
}

std::string Tokenizer::decode(std::span<const Token> tokens, bool render_special) const {
    const Vocab& v = *vocab_;
    for (Token t : tokens) check_token(v, t);
    std::string out;
    // SentencePiece: the encoder put one space in front of the text and after every special
    // token; take it back off the first piece that follows (as llama.cpp strips the first).
    bool strip = v.add_space_prefix;
    for (Token t : tokens) {
        const auto& td = v.tokens[static_cast<size_t>(t)];
        const bool special = td.attr & (detail::AttrControl | detail::AttrUnknown | detail::AttrUserDefined);
        if (special) {
            if (render_special || (td.attr & detail::AttrUserDefined)) out += v.pieces[static_cast<size_t>(t)];
            strip = v.add_space_prefix;
            continue;
        }
        const std::string& p = v.pieces[static_cast<size_t>(t)];
        if (strip && !p.empty() && p[0] == ' ') {
            out.append(p, 1, std::string::npos);
        } else {
            out += p;
        }
        strip = false;
    }
    return out;
}

std::string Tokenizer::piece(Token t, bool render_special) const {
    const Vocab& v = *vocab_;
    check_token(v, t);
    const auto& td = v.tokens[static_cast<size_t>(t)];
    if (!render_special && (td.attr & (detail::AttrControl | detail::AttrUnknown))) return {};
    return v.pieces[static_cast<size_t>(t)];
}

int32_t Tokenizer::n_vocab() const noexcept { return vocab_->n_tokens(); }
Token Tokenizer::bos() const noexcept { return vocab_->bos; }
Token Tokenizer::eos() const noexcept { return vocab_->eos; }
Token Tokenizer::eot() const noexcept { return vocab_->eot; }
bool Tokenizer::is_end_of_generation(Token t) const noexcept {
    return vocab_->valid(t) && vocab_->eog[static_cast<size_t>(t)] != 0;
}
bool Tokenizer::is_control(Token t) const noexcept {
    return vocab_->valid(t) && (vocab_->tokens[static_cast<size_t>(t)].attr & detail::AttrControl) != 0;
}
uint32_t Tokenizer::attributes(Token t) const noexcept {
    return vocab_->valid(t) ? vocab_->tokens[static_cast<size_t>(t)].attr : 0;
}
Token Tokenizer::special(SpecialToken which) const noexcept {
    const detail::Vocab& v = *vocab_;
    switch (which) {
        case SpecialToken::Bos: return v.bos;
        case SpecialToken::Eos: return v.eos;
        case SpecialToken::Eot: return v.eot;
        case SpecialToken::Eom: return v.eom;
        case SpecialToken::Unk: return v.unk;
        case SpecialToken::Sep: return v.sep;
        case SpecialToken::Pad: return v.pad;
        case SpecialToken::Mask: return v.mask;
        case SpecialToken::FimPre: return v.fim_pre;
        case SpecialToken::FimSuf: return v.fim_suf;
        case SpecialToken::FimMid: return v.fim_mid;
        case SpecialToken::FimPad: return v.fim_pad;
        case SpecialToken::FimRep: return v.fim_rep;
        case SpecialToken::FimSep: return v.fim_sep;
    }
    return -1;
}
bool Tokenizer::add_bos() const noexcept { return vocab_->add_bos; }
bool Tokenizer::add_eos() const noexcept { return vocab_->add_eos; }
std::string Tokenizer::model_name() const { return vocab_->model_name; }
std::string Tokenizer::pre_name() const { return vocab_->pre_name; }

}  // namespace ember
