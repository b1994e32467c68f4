#include "tokenizer/vocab.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "ember/error.hpp"
#include "gguf/reader.hpp"
#include "tokenizer/unicode.hpp"
#include "util/mapped_file.hpp"

namespace ember::detail {
namespace {

[[noreturn]] void bad(const std::string& msg) { throw Error(Status::BadFile, "tokenizer: " + msg); }

std::string ascii_lower(std::string_view s) {
    std::string r(s);
    for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

uint32_t attr_from_type(int64_t type) {
    switch (static_cast<TokenType>(type)) {
        case TokenType::Normal: return AttrNormal;
        case TokenType::Unknown: return AttrUnknown;
        case TokenType::Control: return AttrControl;
        case TokenType::UserDefined: return AttrUserDefined;
        case TokenType::Unused: return AttrUnused;
        case TokenType::Byte: return AttrByte;
        default: return AttrUndefined;
    }
}

void add_merge(Vocab& v, std::string_view line, int32_t rank) {
    const size_t pos = line.find(' ', 1);
    if (pos == std::string_view::npos) return;  // llama.cpp keeps an unusable ("", "") entry
    std::string key;
    key.reserve(line.size());
    key.append(line.substr(0, pos));
    key.push_back('\0');
    key.append(line.substr(pos + 1));
    v.merge_rank.emplace(std::move(key), rank);  // the first rank of a duplicate wins
}

// The token text as decode renders it, special tokens shown.
std::string render_piece(const Vocab& v, Token id) {
    const TokenData& t = v.tokens[static_cast<size_t>(id)];
    if (t.attr & (AttrUnknown | AttrControl | AttrUserDefined)) return t.text;
    if (t.attr & AttrByte) {
        // <0xXX>; anything else marked as a byte token renders as its text
        if (t.text.size() == 6 && t.text.compare(0, 3, "<0x") == 0 && t.text[5] == '>' &&
            std::isxdigit(static_cast<unsigned char>(t.text[3])) && std::isxdigit(static_cast<unsigned char>(t.text[4]))) {
            return std::string(1, static_cast<char>(std::stoi(t.text.substr(3, 2), nullptr, 16)));
        }
        return t.text;
    }
    if (!(t.attr & AttrNormal)) return {};
    if (v.type == VocabType::Bpe && !v.escape_spaces) {
        std::string out;
        for (uint32_t cpt : unicode::cpts_from_utf8(t.text)) {
            const int b = unicode::utf8_cpt_to_byte(cpt);
            if (b >= 0) {
                out.push_back(static_cast<char>(b));
            } else {
                unicode::append_utf8(out, cpt);  // not a byte-level token text: keep it as is
            }
        }
        return out;
    }
    // SPM / WPM: ▁ -> space
    std::string out;
    out.reserve(t.text.size());
    const std::string_view s = t.text;
    for (size_t i = 0; i < s.size();) {
        if (s.compare(i, 3, "\xE2\x96\x81") == 0) {
            out.push_back(' ');
            i += 3;
        } else {
            out.push_back(s[i++]);
        }
    }
    return out;
}

Token read_id(const gguf::File& f, std::string_view key, Token def, int32_t n_tokens) {
    if (def >= n_tokens) def = -1;
    const gguf::Value* v = f.find(key);
    if (!v || !v->is_integer()) return def;
    int64_t id = -1;
    try {
        id = v->as_int();
    } catch (const Error&) {
        return def;  // e.g. UINT64_MAX
    }
    if (id < 0 || id >= n_tokens) return def;  // llama.cpp: "bad special token", keep default
    return static_cast<Token>(id);
}

bool read_bool(const gguf::File& f, std::string_view key, bool def) {
    const gguf::Value* v = f.find(key);
    if (!v) return def;
    if (v->type() == gguf::ValueType::Bool) return v->as_bool();
    if (v->is_integer()) return v->as_int() != 0;
    bad(std::string(key) + " is not a bool");
}

// --- a minimal JSON reader for a flat {"string": integer, ...} object -------------------------

class FlatJson {
public:
    explicit FlatJson(std::string_view s) : s_(s) {}

    template <class F>
    void parse(F&& on_pair) {
        ws();
        expect('{');
        ws();
        if (peek() == '}') return;
        for (;;) {
            ws();
            std::string key = string();
            ws();
            expect(':');
            ws();
            const int64_t value = integer();
            on_pair(std::move(key), value);
            ws();
            const char c = next();
            if (c == '}') break;
            if (c != ',') fail("expected ',' or '}'");
        }
        ws();
        if (i_ != s_.size()) fail("trailing data");
    }

private:
    [[noreturn]] void fail(const char* what) const {
        bad(std::string("encoder.json: ") + what + " at byte " + std::to_string(i_));
    }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    char next() {
        if (i_ >= s_.size()) fail("unexpected end");
        return s_[i_++];
    }
    void expect(char c) {
        if (next() != c) fail("unexpected character");
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    }
    uint32_t hex4() {
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = next();
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string string() {
        expect('"');
        std::string out;
        for (;;) {
            const char c = next();
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            const char e = next();
            switch (e) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    uint32_t cpt = hex4();
                    if (cpt >= 0xD800 && cpt <= 0xDBFF && i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
                        const size_t save = i_;
                        i_ += 2;
                        const uint32_t lo = hex4();
                        if (lo >= 0xDC00 && lo <= 0xDFFF) {
                            cpt = 0x10000 + ((cpt - 0xD800) << 10) + (lo - 0xDC00);
                        } else {
                            i_ = save;
                        }
                    }
                    unicode::append_utf8(out, cpt);
                    break;
                }
                default: fail("bad escape");
            }
        }
    }
    int64_t integer() {
        bool neg = false;
        if (peek() == '-') {
            neg = true;
            ++i_;
        }
        if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected an integer");
        int64_t v = 0;
        while (std::isdigit(static_cast<unsigned char>(peek()))) {
            v = v * 10 + (next() - '0');
            if (v > std::numeric_limits<int32_t>::max()) fail("integer out of range");
        }
        return neg ? -v : v;
    }

    std::string_view s_;
    size_t i_ = 0;
};

std::string read_file(const std::string& path) {
    const MappedFile f(path, false);  // regular files only, never blocking on a FIFO
    return std::string(reinterpret_cast<const char*>(f.bytes().data()), f.bytes().size());
}

}  // namespace

int32_t Vocab::rank(std::string_view left, std::string_view right, std::string& scratch) const {
    scratch.assign(left);
    scratch.push_back('\0');
    scratch.append(right);
    auto it = merge_rank.find(std::string_view(scratch));
    return it == merge_rank.end() ? -1 : it->second;
}

void apply_pre_type(Vocab& v, std::string_view pre) {
    auto any = [&](std::initializer_list<std::string_view> names) {
        return std::find(names.begin(), names.end(), pre) != names.end();
    };
    v.clean_spaces = true;
    if (pre.empty() || pre == "default") {
        v.pre = PreType::Default;
    } else if (any({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                    "jina-v5-nano"})) {
        v.pre = PreType::Llama3;
        v.ignore_merges = true;
        v.add_bos = true;
    } else if (any({"dbrx", "smaug-bpe"})) {
        v.pre = PreType::Llama3;
    } else if (pre == "chatglm-bpe") {
        v.pre = PreType::Llama3;
        v.bos = -1;
    } else if (any({"glm4", "glm5"})) {
        v.pre = PreType::Llama3;
        v.bos = -1;
        v.ignore_merges = true;
    } else if (any({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
                    "mellum", "modern-bert", "exaone4", "mpt", "olmo", "jais", "gpt-neox"})) {
        v.pre = PreType::Gpt2;
    } else if (any({"jina-v1-en", "jina-v2-code", "roberta-bpe"})) {
        v.pre = PreType::Gpt2;
        v.add_sep = true;
    } else if (any({"trillion", "granite-docling"})) {
        v.pre = PreType::Gpt2;
        v.clean_spaces = false;
    } else if (any({"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"})) {
        v.pre = PreType::Starcoder;
    } else if (any({"smollm", "command-r"})) {
        v.pre = PreType::Starcoder;
        v.clean_spaces = false;
    } else if (any({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"})) {
        v.pre = PreType::Qwen2;
        v.clean_spaces = false;
    } else if (pre == "qwen35") {
        v.pre = PreType::Qwen35;
        v.clean_spaces = false;
    } else if (any({"stablelm2", "megrez"})) {
        v.pre = PreType::Qwen2;
    } else if (pre == "falcon") {
        v.pre = PreType::Falcon;
    } else if (pre == "deepseek-llm") {
        v.pre = PreType::DeepseekLlm;
        v.clean_spaces = false;
    } else if (pre == "deepseek-coder") {
        v.pre = PreType::DeepseekCoder;
        v.clean_spaces = false;
    } else if (any({"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"})) {
        v.pre = PreType::DeepseekV3;
        v.clean_spaces = false;
    } else if (any({"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"})) {
        v.pre = PreType::Gpt4o;
        v.clean_spaces = false;
    } else if (pre == "tekken") {
        v.pre = PreType::Tekken;
        v.clean_spaces = false;
        v.ignore_merges = true;
        v.add_bos = true;
    } else if (pre == "kimi-k2") {
        v.pre = PreType::KimiK2;
        v.clean_spaces = false;
    } else {
        throw Error(Status::Unsupported, "tokenizer: unsupported pre-tokenizer '" + std::string(pre) + "'");
    }
}

void Vocab::finalize(std::string_view general_name) {
    if (tokens.empty()) bad("empty vocabulary");
    if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) bad("vocabulary too large");

    token_to_id.clear();
    token_to_id.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i].text.empty()) continue;
        token_to_id.emplace(tokens[i].text, static_cast<Token>(i));  // first id of a duplicate wins
    }

    const int32_t n = n_tokens();
    for (Token* id : {&bos, &eos, &eot, &eom, &unk, &sep, &pad, &mask, &fim_pre, &fim_suf, &fim_mid, &fim_pad,
                      &fim_rep, &fim_sep}) {
        if (*id >= n || *id < -1) *id = -1;
    }

    auto mark_control = [&](Token id) {
        if (valid(id)) tokens[static_cast<size_t>(id)].attr |= AttrControl;
    };
    auto first_of = [&](std::initializer_list<std::string_view> texts) -> Token {
        for (auto t : texts) {
            const Token id = find(t);
            if (id >= 0) return id;
        }
        return -1;
    };

    // Auto-detect end-of-turn and FIM tokens by text, as llama.cpp does.
    if (eot < 0) {
        eot = first_of({"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                        "<EOT>", "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
                        "<end_of_utterance>"});
        mark_control(eot);
    }
    if (eom < 0) {
        eom = first_of({"<|eom_id|>"});
        mark_control(eom);
    }
    if (fim_pad < 0) {
        fim_pad = first_of({"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
        mark_control(fim_pad);
    }
    if (fim_rep < 0) {
        fim_rep = first_of({"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
        mark_control(fim_rep);
    }
    if (fim_sep < 0) {
        fim_sep = first_of({"<|file_sep|>"});
        mark_control(fim_sep);
    }

    // Control tokens named "unused" are unused.
    for (auto& t : tokens) {
        if ((t.attr & AttrControl) && t.text.find("unused") != std::string::npos) t.attr |= AttrUnused;
    }

    // End of generation.
    eog.assign(tokens.size(), 0);
    auto set_eog = [&](Token id) {
        if (valid(id)) eog[static_cast<size_t>(id)] = 1;
    };
    for (Token id : {fim_pad, fim_rep, fim_sep, eos, eot, eom}) set_eog(id);
    static constexpr std::string_view kEogTexts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
        "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>",
        "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
    };
    for (auto text : kEogTexts) {
        const Token id = find(text);
        if (id >= 0) {
            set_eog(id);
            mark_control(id);
        }
    }
    // o200k_harmony / solar-open: "<|end|>" does not end generation there.
    {
        const Token end_id = find("<|end|>");
        const bool has_return = find("<|return|>") >= 0, has_call = find("<|call|>") >= 0 || find("<|calls|>") >= 0,
                   has_flush = find("<|flush|>") >= 0;
        if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
            eog[static_cast<size_t>(end_id)] = 0;
            tokens[static_cast<size_t>(end_id)].attr = AttrUserDefined;
            if (eot == end_id) eot = -1;
        }
    }

    // Special tokens, longest text first (ties by id, so the order is deterministic).
    special_tokens.clear();
    for (Token id = 0; id < n; ++id) {
        const auto& t = tokens[static_cast<size_t>(id)];
        if ((t.attr & (AttrControl | AttrUserDefined | AttrUnknown)) && !t.text.empty()) special_tokens.push_back(id);
    }
    std::stable_sort(special_tokens.begin(), special_tokens.end(), [&](Token a, Token b) {
        return tokens[static_cast<size_t>(a)].text.size() > tokens[static_cast<size_t>(b)].text.size();
    });

    pieces.resize(tokens.size());
    for (Token id = 0; id < n; ++id) pieces[static_cast<size_t>(id)] = render_piece(*this, id);

    // Phi-3 strips whitespace to the right of its special tokens (llama.cpp's per-model attrs).
    const std::string name = ascii_lower(general_name);
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (Token id : special_tokens) tokens[static_cast<size_t>(id)].attr |= AttrRStrip;
        auto set = [&](std::string_view text, bool on) {
            const Token id = find(text);
            if (id < 0) return;
            auto& a = tokens[static_cast<size_t>(id)].attr;
            a = on ? (a | AttrRStrip) : (a & ~static_cast<uint32_t>(AttrRStrip));
        };
        set("</s>", true);
        set("<unk>", false);
        set("<s>", false);
        set("<|endoftext|>", false);
    }

    for (int b = 0; b < 256; ++b) {
        static const char* hex = "0123456789ABCDEF";
        const char buf[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        Token id = find(buf);
        if (id < 0 && type == VocabType::Spm) id = find(std::string(1, static_cast<char>(b)));
        byte_tokens[b] = id;
    }

    max_token_len = 0;
    for (const auto& t : tokens) max_token_len = std::max(max_token_len, t.text.size());

    spm_split_at_space = type == VocabType::Spm;
    for (const auto& t : tokens) {
        if (!spm_split_at_space) break;
        for (size_t p = t.text.find("\xE2\x96\x81", 1); p != std::string::npos; p = t.text.find("\xE2\x96\x81", p + 1)) {
            if (p < 3 || t.text.compare(p - 3, 3, "\xE2\x96\x81") != 0) {
                spm_split_at_space = false;
                break;
            }
        }
    }

    if (add_bos && bos < 0) add_bos = false;  // llama.cpp refuses such a file; we just add nothing
    if (add_eos && eos < 0) add_eos = false;
    if (add_sep && sep < 0) add_sep = false;
}

std::shared_ptr<const Vocab> load_vocab(const gguf::File& f) {
    auto v = std::make_shared<Vocab>();
    v->model_name = f.get_string("tokenizer.ggml.model", "");
    const std::string pre = f.get_string("tokenizer.ggml.pre", "");
    if (v->model_name.empty()) bad("missing tokenizer.ggml.model");

    if (v->model_name == "llama") {
        v->type = VocabType::Spm;
        v->bos = 1;
        v->eos = 2;
        v->unk = 0;
        v->add_space_prefix = true;
        v->add_bos = true;
    } else if (v->model_name == "gpt2") {
        v->type = VocabType::Bpe;
        v->pre_name = pre;
        apply_pre_type(*v, pre);
    } else if (v->model_name == "gemma4") {
        // SentencePiece-style BPE: spaces become ▁, merges run over raw UTF-8 split only at newlines.
        v->type = VocabType::Bpe;
        v->pre = PreType::Gemma4;
        v->pre_name = "gemma4";
        v->escape_spaces = true;
        v->clean_spaces = true;
    } else if (v->model_name == "bert") {
        v->type = VocabType::Wpm;
        v->bos = 101;
        v->unk = 100;
        v->sep = 102;
        v->pad = 0;
        v->mask = 103;
        v->add_bos = true;
        v->add_sep = true;
        v->clean_spaces = true;
        v->pre_name = pre;
    } else {
        throw Error(Status::Unsupported, "tokenizer: unsupported tokenizer model '" + v->model_name + "'");
    }
    v->add_space_prefix = read_bool(f, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);

    const gguf::Value& tok = f.get("tokenizer.ggml.tokens");
    if (!tok.is_array() || tok.elem_type() != gguf::ValueType::String) bad("tokenizer.ggml.tokens is not a string array");
    const auto& texts = tok.as_strings();
    const size_t n = texts.size();
    if (n == 0) bad("tokenizer.ggml.tokens is empty");
    if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) bad("too many tokens");

    std::vector<float> scores;
    if (const gguf::Value* s = f.find("tokenizer.ggml.scores")) {
        if (!s->is_array()) bad("tokenizer.ggml.scores is not an array");
        if (s->elem_type() == gguf::ValueType::F32 || s->elem_type() == gguf::ValueType::F64) {
            scores = s->as_floats();
        } else {
            for (int64_t x : s->as_ints()) scores.push_back(static_cast<float>(x));
        }
        if (scores.size() < n) bad("tokenizer.ggml.scores has fewer entries than tokens");
    }
    std::vector<int64_t> types;
    if (const gguf::Value* t = f.find("tokenizer.ggml.token_type")) {
        if (!t->is_array()) bad("tokenizer.ggml.token_type is not an array");
        types = t->as_ints();
        if (types.size() < n) bad("tokenizer.ggml.token_type has fewer entries than tokens");
    }

    v->tokens.resize(n);
    for (size_t i = 0; i < n; ++i) {
        TokenData& td = v->tokens[i];
        td.text = texts[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : texts[i];
        td.score = scores.empty() ? 0.0f : scores[i];
        td.attr = types.empty() ? AttrNormal : attr_from_type(types[i]);
    }

    if (v->type == VocabType::Bpe) {
        const gguf::Value* m = f.find("tokenizer.ggml.merges");
        if (m) {
            if (!m->is_array() || m->elem_type() != gguf::ValueType::String)
                bad("tokenizer.ggml.merges is not a string array");
            const auto& merges = m->as_strings();
            v->merge_rank.reserve(merges.size());
            for (size_t i = 0; i < merges.size(); ++i) add_merge(*v, merges[i], static_cast<int32_t>(i));
        } else if (v->pre != PreType::KimiK2) {  // as llama.cpp, which lets Kimi-K2 files go without
            bad("missing tokenizer.ggml.merges");
        }
    }

    const auto nt = static_cast<int32_t>(n);
    v->bos = read_id(f, "tokenizer.ggml.bos_token_id", v->bos, nt);
    v->eos = read_id(f, "tokenizer.ggml.eos_token_id", v->eos, nt);
    v->eot = read_id(f, "tokenizer.ggml.eot_token_id", v->eot, nt);
    v->eom = read_id(f, "tokenizer.ggml.eom_token_id", v->eom, nt);
    v->unk = read_id(f, "tokenizer.ggml.unknown_token_id", v->unk, nt);
    v->sep = read_id(f, "tokenizer.ggml.seperator_token_id", v->sep, nt);
    v->pad = read_id(f, "tokenizer.ggml.padding_token_id", v->pad, nt);
    v->mask = read_id(f, "tokenizer.ggml.mask_token_id", v->mask, nt);
    v->fim_pre = read_id(f, "tokenizer.ggml.fim_pre_token_id", read_id(f, "tokenizer.ggml.prefix_token_id", -1, nt), nt);
    v->fim_suf = read_id(f, "tokenizer.ggml.fim_suf_token_id", read_id(f, "tokenizer.ggml.suffix_token_id", -1, nt), nt);
    v->fim_mid = read_id(f, "tokenizer.ggml.fim_mid_token_id", read_id(f, "tokenizer.ggml.middle_token_id", -1, nt), nt);
    v->fim_pad = read_id(f, "tokenizer.ggml.fim_pad_token_id", -1, nt);
    v->fim_rep = read_id(f, "tokenizer.ggml.fim_rep_token_id", -1, nt);
    v->fim_sep = read_id(f, "tokenizer.ggml.fim_sep_token_id", -1, nt);

    v->add_bos = read_bool(f, "tokenizer.ggml.add_bos_token", v->add_bos);
    if (v->pre == PreType::Gemma4) v->add_bos = true;  // as llama.cpp: Gemma 4 files say false but need BOS
    v->add_eos = read_bool(f, "tokenizer.ggml.add_eos_token", v->add_eos);
    v->add_sep = read_bool(f, "tokenizer.ggml.add_sep_token", v->add_sep);

    v->lowercase = read_bool(f, "tokenizer.ggml.normalizer.lowercase", true);
    v->strip_accents = read_bool(f, "tokenizer.ggml.normalizer.strip_accents", v->lowercase);

    v->ignore_merges = read_bool(f, "tokenizer.ember.ignore_merges", v->ignore_merges);
    const std::string scheme = f.get_string("tokenizer.ember.prepend_scheme", "");
    if (scheme == "first") v->space_prefix = SpacePrefix::First;
    else if (scheme == "always") v->space_prefix = SpacePrefix::Always;
    else if (!scheme.empty()) bad("unknown tokenizer.ember.prepend_scheme");
    const gguf::Value* lstrip = f.find("tokenizer.ember.lstrip");
    const gguf::Value* rstrip = f.find("tokenizer.ember.rstrip");
    const bool explicit_strip = lstrip || rstrip;
    v->finalize(explicit_strip ? "" : f.get_string("general.name", ""));
    for (const auto& [list, attr] : {std::pair{lstrip, AttrLStrip}, std::pair{rstrip, AttrRStrip}}) {
        if (!list) continue;
        if (!list->is_array()) bad("tokenizer.ember.lstrip / rstrip is not an array");
        for (int64_t id : list->as_ints())
            if (id >= 0 && id < v->n_tokens()) v->tokens[static_cast<size_t>(id)].attr |= attr;
    }
    return v;
}

std::shared_ptr<const Vocab> load_bpe_vocab(const std::string& encoder_json_path, const std::string& merges_path,
                                            std::string_view pre) {
    auto v = std::make_shared<Vocab>();
    v->type = VocabType::Bpe;
    v->model_name = "gpt2";
    v->pre_name = std::string(pre);
    apply_pre_type(*v, pre);

    const std::string json = read_file(encoder_json_path);
    std::vector<std::pair<std::string, int64_t>> entries;
    int64_t max_id = -1;
    FlatJson(json).parse([&](std::string key, int64_t id) {
        if (id < 0) bad("encoder.json: negative token id");
        max_id = std::max(max_id, id);
        entries.emplace_back(std::move(key), id);
    });
    if (max_id < 0) bad("encoder.json: no tokens");
    v->tokens.resize(static_cast<size_t>(max_id) + 1);
    for (auto& t : v->tokens) t.attr = AttrUndefined;  // ids the file skips stay unusable
    for (auto& [text, id] : entries) {
        TokenData& td = v->tokens[static_cast<size_t>(id)];
        td.text = std::move(text);
        td.attr = AttrNormal;
    }

    const std::string merges = read_file(merges_path);
    int32_t rank = 0;
    size_t pos = 0;
    bool first = true;
    while (pos < merges.size()) {
        size_t end = merges.find('\n', pos);
        if (end == std::string::npos) end = merges.size();
        std::string_view line(merges.data() + pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (first && line.rfind("#version", 0) == 0) {
            first = false;
            continue;
        }
        first = false;
        if (line.empty()) continue;
        add_merge(*v, line, rank++);
    }

    v->finalize();
    return v;
}

}  // namespace ember::detail
