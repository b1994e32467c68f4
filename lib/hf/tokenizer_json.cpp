// tokenizer.json (Hugging Face `tokenizers`) → tokenizer.ggml.* keys, as llama.cpp's converter writes
// them, for the two BPE families ember runs:
//   - byte-level BPE (GPT-2 bytes; Llama 3, Qwen, SmolLM): "gpt2" with the pre-tokenizer recognized from
//     its regex and named as tokenizer.ggml.pre would name it;
//   - SentencePiece-style BPE with byte fallback and ▁ for spaces (Llama 2, Mistral, Phi-3, Gemma):
//     "llama", merged by score, each token's score minus the rank of the first merge that makes it. For
//     files exported from a SentencePiece model (merges made from every split of every piece, ordered by
//     the piece's score) that is the same order the BPE merges follow.
// Unigram and WordPiece models are Unsupported. What llama.cpp's keys cannot say is written in ember's own
// keys (vocab.hpp): ignore_merges as the file gives it, Metaspace's prepend scheme, added tokens' lstrip
// and rstrip.
#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "ember/error.hpp"
#include "hf/json.hpp"
#include "hf/folder.hpp"
#include "hf/hf.hpp"

namespace ember::hf {

namespace {

using gguf::Value;

constexpr int64_t kMaxTokens = 1 << 24;  // ids beyond this are refused (the largest vocabularies are ~260k)
const std::string kWhat = "tokenizer.json";

// Pre-tokenizer regexes as tokenizer.json files spell them → tokenizer.ggml.pre.
struct KnownRegex {
    const char* regex;
    const char* pre;
};
constexpr KnownRegex kRegexes[] = {
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "llama-bpe"},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "qwen2"},
};

bool is_type(const Json& j, const char* type) { return j.is_object() && j.value("type", Json()) == type; }

// A byte-level ByteLevel step: GPT-2's own regex when use_regex, no prefix space.
bool byte_level(const Json& j, bool use_regex) {
    return is_type(j, "ByteLevel") && !get_bool(j, "add_prefix_space", false, kWhat) &&
           get_bool(j, "use_regex", true, kWhat) == use_regex;
}

// The tokenizer.ggml.pre name for a byte-level pre_tokenizer.
std::string byte_level_pre(const Json& pre) {
    if (byte_level(pre, true)) return "gpt-2";
    const Json* seq = is_type(pre, "Sequence") ? get_array(pre, "pretokenizers", kWhat) : nullptr;
    if (seq && seq->size() == 2) {
        const Json& a = (*seq)[0];
        const Json& b = (*seq)[1];
        if (is_type(a, "Digits") && get_bool(a, "individual_digits", false, kWhat) && byte_level(b, true)) return "smollm";
        if (is_type(a, "Split") && byte_level(b, false) && get_string(a, "behavior", "", kWhat) == "Isolated" &&
            !get_bool(a, "invert", false, kWhat)) {
            const Json* pattern = get_object(a, "pattern", kWhat);
            const std::string re = pattern ? get_string(*pattern, "Regex", "", kWhat) : "";
            for (const auto& k : kRegexes)
                if (re == k.regex) return k.pre;
        }
    }
    unsupported(kWhat, "a byte-level pre_tokenizer ember does not know: " + pre.dump().substr(0, 300));
}

bool replaces_space(const Json& j) {
    const Json* p = is_type(j, "Replace") ? get_object(j, "pattern", kWhat) : nullptr;
    return p && get_string(*p, "String", "", kWhat) == " " && get_string(j, "content", "", kWhat) == "\xE2\x96\x81";
}

struct SpaceHandling {
    bool add_prefix = false;
    std::string scheme;  // "" (llama.cpp's: before every stretch of text), "first", "always"
};

// How a SentencePiece-style file turns spaces into ▁: Llama 2's normalizer (Prepend ▁ + Replace), Gemma's
// (Replace alone; its Split on " " then finds none), or transformers 5's Metaspace pre_tokenizer.
SpaceHandling spm_spaces(const Json& norm, const Json& pre) {
    SpaceHandling s;
    const bool pre_none = pre.is_null() ||
                          (is_type(pre, "Split") && get_object(pre, "pattern", kWhat) &&
                           get_string(*get_object(pre, "pattern", kWhat), "String", "", kWhat) == " ");
    if (replaces_space(norm) && pre_none) return s;
    if (is_type(norm, "Sequence") && pre_none) {
        const Json* n = get_array(norm, "normalizers", kWhat);
        if (n && n->size() == 2) {
            for (size_t i = 0; i < 2; ++i) {
                const Json& a = (*n)[i];
                if (is_type(a, "Prepend") && get_string(a, "prepend", "", kWhat) == "\xE2\x96\x81" && replaces_space((*n)[1 - i])) {
                    s.add_prefix = true;
                    return s;
                }
            }
        }
    }
    if (norm.is_null() && is_type(pre, "Metaspace") && get_string(pre, "replacement", "", kWhat) == "\xE2\x96\x81" &&
        !get_bool(pre, "split", false, kWhat)) {
        const std::string scheme =
            get_string(pre, "prepend_scheme", get_bool(pre, "add_prefix_space", true, kWhat) ? "always" : "never", kWhat);
        if (scheme == "first" || scheme == "always" || scheme == "never") {
            s.add_prefix = scheme != "never";
            s.scheme = scheme == "never" ? "" : scheme;
            return s;
        }
    }
    unsupported(kWhat, "a SentencePiece-style normalizer / pre_tokenizer ember does not know: " +
                           (norm.dump() + " / " + pre.dump()).substr(0, 300));
}

// A token id from JSON: an integer in [0, kMaxTokens).
int32_t token_id(const Json& j, const std::string& what) {
    if (!j.is_number_integer()) bad(what, "token id is not an integer");
    if (j.is_number_unsigned() ? j.get<uint64_t>() >= kMaxTokens : (j.get<int64_t>() < 0 || j.get<int64_t>() >= kMaxTokens))
        bad(what, "token id " + j.dump().substr(0, 30) + " is outside [0, " + std::to_string(kMaxTokens) + ")");
    return static_cast<int32_t>(j.get<int64_t>());
}

// A special token named in tokenizer_config.json: a string, or {"content": string}.
std::string token_text(const Json& cfg, const char* key) {
    const Json* v = cfg.is_object() && cfg.contains(key) ? &cfg[key] : nullptr;
    if (!v || v->is_null()) return {};
    if (v->is_string()) return v->get<std::string>();
    if (v->is_object()) return get_string(*v, "content", "", "tokenizer_config.json");
    bad("tokenizer_config.json", std::string("'") + key + "' is neither a string nor an object");
}

// The leading and trailing special tokens a post_processor adds around a single sequence.
void post_processor(const Json& post, Keys& out, int depth = 0) {
    if (post.is_null() || is_type(post, "ByteLevel")) return;
    if (is_type(post, "Sequence") && depth == 0) {
        const Json* procs = get_array(post, "processors", kWhat);
        if (!procs) bad(kWhat, "post_processor Sequence without processors");
        for (const Json& p : *procs) post_processor(p, out, 1);
        return;
    }
    if (!is_type(post, "TemplateProcessing")) unsupported(kWhat, "post_processor " + post.value("type", Json("?")).dump().substr(0, 40));
    const Json* single = get_array(post, "single", kWhat);
    const Json* specials = get_object(post, "special_tokens", kWhat);
    if (!single) bad(kWhat, "TemplateProcessing without 'single'");
    // The id of a template item that is a special token (-1 for the sequence itself).
    auto special = [&](const Json& item) -> int32_t {
        if (!item.is_object()) bad(kWhat, "TemplateProcessing item is not an object");
        const Json* st = get_object(item, "SpecialToken", kWhat);
        if (!st) {
            if (!get_object(item, "Sequence", kWhat)) bad(kWhat, "TemplateProcessing item of unknown kind");
            return -1;
        }
        const std::string name = get_string(*st, "id", "", kWhat);
        const Json* def = specials ? get_object(*specials, name.c_str(), kWhat) : nullptr;
        const Json* list = def ? get_array(*def, "ids", kWhat) : nullptr;
        if (!list || list->size() != 1) unsupported(kWhat, "a template special token that is not one token");
        return token_id((*list)[0], kWhat);
    };
    std::vector<int32_t> items;
    for (const Json& item : *single) items.push_back(special(item));
    const auto seq = std::find(items.begin(), items.end(), -1);
    if (seq == items.end() || std::count(items.begin(), items.end(), -1) != 1 || seq - items.begin() > 1 || items.end() - seq > 2)
        unsupported(kWhat, "a post_processor template other than [special] $A [special]");
    out.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(seq != items.begin()));
    out.emplace_back("tokenizer.ggml.add_eos_token", Value::boolean(seq + 1 != items.end()));
    if (seq != items.begin()) out.emplace_back("tokenizer.ggml.bos_token_id", Value::u32(static_cast<uint32_t>(items.front())));
    if (seq + 1 != items.end()) out.emplace_back("tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(items.back())));
}

void set(Keys& keys, const std::string& key, Value v) {
    for (auto& [k, old] : keys)
        if (k == key) {
            old = std::move(v);
            return;
        }
    keys.emplace_back(key, std::move(v));
}

}  // namespace

void tokenizer_keys(std::string_view tokenizer_json, std::string_view tokenizer_config_json, std::string_view config_json,
                    Keys& out) {
    const Json tok = parse_json(tokenizer_json, kWhat);
    const Json tcfg = tokenizer_config_json.empty() ? Json::object() : parse_json(tokenizer_config_json, "tokenizer_config.json");
    const Json cfg = config_json.empty() ? Json::object() : parse_json(config_json, "config.json");
    if (!tok.is_object() || !tcfg.is_object()) bad(kWhat, "not a JSON object");
    const Json* model = get_object(tok, "model", kWhat);
    if (!model) bad(kWhat, "no model");
    const std::string type = get_string(*model, "type", "BPE", kWhat);  // older files leave BPE's type out
    if (type != "BPE") unsupported(kWhat, "a " + type.substr(0, 32) + " model (ember reads BPE tokenizers)");
    if (!get_string(*model, "continuing_subword_prefix", "", kWhat).empty() || !get_string(*model, "end_of_word_suffix", "", kWhat).empty())
        unsupported(kWhat, "BPE with a subword prefix or word suffix");
    const bool spm = get_bool(*model, "byte_fallback", false, kWhat);
    const Json null;
    const Json& norm = tok.contains("normalizer") ? tok["normalizer"] : null;
    const Json& pre = tok.contains("pre_tokenizer") ? tok["pre_tokenizer"] : null;

    // Tokens: the model's vocab, then added tokens (which may reuse an id or add one).
    const Json* vocab = get_object(*model, "vocab", kWhat);
    if (!vocab || vocab->empty()) bad(kWhat, "model.vocab is missing or empty");
    const Json* added = get_array(tok, "added_tokens", kWhat);
    // Ids may leave gaps (padded below), but not so many that a small file asks for a huge table.
    int64_t max_id = -1;
    for (const auto& [text, id] : vocab->items()) max_id = std::max<int64_t>(max_id, token_id(id, kWhat));
    if (added)
        for (const Json& a : *added)
            if (a.is_object() && a.contains("id")) max_id = std::max<int64_t>(max_id, token_id(a["id"], kWhat + " added_tokens"));
    const size_t given = vocab->size() + (added ? added->size() : 0);
    if (static_cast<size_t>(max_id) >= 2 * given + 1024)
        bad(kWhat, "token ids up to " + std::to_string(max_id) + " for " + std::to_string(given) + " tokens");
    std::vector<std::string> texts(static_cast<size_t>(max_id) + 1);
    std::vector<int32_t> types(texts.size(), 0);
    auto place = [&](int32_t id, const std::string& text, int32_t ttype, bool added_token) {
        if (types[static_cast<size_t>(id)] != 0 && !added_token) bad(kWhat, "token id " + std::to_string(id) + " given twice");
        texts[static_cast<size_t>(id)] = text;
        types[static_cast<size_t>(id)] = ttype;
    };
    for (const auto& [text, id] : vocab->items()) {
        const bool byte = spm && text.size() == 6 && text.starts_with("<0x") && text[5] == '>' &&
                          std::isxdigit(static_cast<unsigned char>(text[3])) && std::isxdigit(static_cast<unsigned char>(text[4]));
        place(token_id(id, kWhat), text, byte ? 6 : 1, false);
    }
    std::vector<int32_t> lstrip, rstrip;
    if (added) {
        for (const Json& a : *added) {
            if (!a.is_object()) bad(kWhat, "an added token is not an object");
            const int32_t id = token_id(a.contains("id") ? a["id"] : null, kWhat + " added_tokens");
            const std::string content = get_string(a, "content", "", kWhat);
            if (content.empty()) bad(kWhat, "an added token without content");
            place(id, content, get_bool(a, "special", false, kWhat) ? 3 : 4, true);
            if (get_bool(a, "lstrip", false, kWhat)) lstrip.push_back(id);
            if (get_bool(a, "rstrip", false, kWhat)) rstrip.push_back(id);
        }
    }
    std::unordered_map<std::string, int32_t> ids;
    for (size_t i = 0; i < texts.size(); ++i) {
        if (types[i] == 0) {  // an id nobody gave: unusable, as llama.cpp pads
            texts[i] = "[PAD" + std::to_string(i) + "]";
            types[i] = 5;
        }
        ids.emplace(texts[i], static_cast<int32_t>(i));
    }

    // Merges: "left right" strings, or [left, right] pairs (tokenizers ≥ 0.20).
    const Json* merges = get_array(*model, "merges", kWhat);
    std::vector<std::string> merge_lines;
    if (merges) {
        merge_lines.reserve(merges->size());
        for (const Json& m : *merges) {
            if (m.is_string()) {
                const std::string s = m.get<std::string>();
                if (s.find(' ', 1) == std::string::npos) bad(kWhat, "merge '" + s.substr(0, 60) + "' is not two tokens");
                merge_lines.push_back(s);
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                const std::string a = m[0].get<std::string>(), b = m[1].get<std::string>();
                if (a.empty() || b.empty() || a.find(' ') != std::string::npos || b.find(' ') != std::string::npos)
                    unsupported(kWhat, "a merge of tokens with spaces in them");
                merge_lines.push_back(a + " " + b);
            } else {
                bad(kWhat, "a merge is neither \"a b\" nor [a, b]");
            }
        }
    }

    out.emplace_back("tokenizer.ggml.model", Value::string(spm ? "llama" : "gpt2"));
    if (spm) {
        const SpaceHandling sp = spm_spaces(norm, pre);
        out.emplace_back("tokenizer.ggml.pre", Value::string("default"));
        if (!sp.add_prefix)  // true is the readers' default for "llama", and the converter then writes nothing
            out.emplace_back("tokenizer.ggml.add_space_prefix", Value::boolean(false));
        if (!sp.scheme.empty()) out.emplace_back("tokenizer.ember.prepend_scheme", Value::string(sp.scheme));
        std::vector<float> scores(texts.size(), -1e9f);  // no merge makes it: never preferred
        for (size_t r = 0; r < merge_lines.size(); ++r) {
            const std::string& m = merge_lines[r];
            const size_t space = m.find(' ', 1);
            auto it = ids.find(m.substr(0, space) + m.substr(space + 1));
            if (it != ids.end() && scores[static_cast<size_t>(it->second)] == -1e9f)
                scores[static_cast<size_t>(it->second)] = -static_cast<float>(r);
        }
        out.emplace_back("tokenizer.ggml.scores", Value::f32s(scores));
        const std::string unk = get_string(*model, "unk_token", "", kWhat);
        if (auto it = ids.find(unk); !unk.empty() && it != ids.end())
            out.emplace_back("tokenizer.ggml.unknown_token_id", Value::u32(static_cast<uint32_t>(it->second)));
    } else {
        if (!norm.is_null() && !is_type(norm, "NFC"))  // NFC: text already composed is unchanged (not applied)
            unsupported(kWhat, "normalizer " + norm.dump().substr(0, 200) + " on a byte-level BPE");
        out.emplace_back("tokenizer.ggml.pre", Value::string(byte_level_pre(pre)));
        out.emplace_back("tokenizer.ggml.merges", Value::strings(std::move(merge_lines)));
        out.emplace_back("tokenizer.ember.ignore_merges", Value::boolean(get_bool(*model, "ignore_merges", false, kWhat)));
    }
    out.emplace_back("tokenizer.ggml.tokens", Value::strings(std::move(texts)));
    out.emplace_back("tokenizer.ggml.token_type", Value::i32s(types));
    // Always written, even empty: the file's own flags replace llama.cpp's strip rules by model name.
    out.emplace_back("tokenizer.ember.lstrip", Value::i32s(lstrip));
    out.emplace_back("tokenizer.ember.rstrip", Value::i32s(rstrip));
    // Always written: llama.cpp's defaults (BOS added for SPM) do not hold for tokenizer.json, whose
    // post_processor template says.
    out.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(false));
    out.emplace_back("tokenizer.ggml.add_eos_token", Value::boolean(false));
    Keys post;
    post_processor(tok.contains("post_processor") ? tok["post_processor"] : null, post);
    for (auto& [k, v] : post) set(out, k, std::move(v));

    config_keys(tcfg, cfg, ids, out);
}

void config_keys(const Json& tcfg, const Json& cfg, const std::unordered_map<std::string, int32_t>& ids, Keys& out) {
    // Special tokens by name (tokenizer_config.json), else by id (config.json).
    const struct {
        const char* name;
        const char* config_id;
        const char* key;
    } kSpecial[] = {{"bos_token", "bos_token_id", "tokenizer.ggml.bos_token_id"},
                    {"eos_token", "eos_token_id", "tokenizer.ggml.eos_token_id"},
                    {"unk_token", nullptr, "tokenizer.ggml.unknown_token_id"},
                    {"sep_token", "sep_token_id", "tokenizer.ggml.seperator_token_id"},  // llama.cpp's spelling
                    {"pad_token", "pad_token_id", "tokenizer.ggml.padding_token_id"},
                    {"cls_token", "cls_token_id", "tokenizer.ggml.cls_token_id"},
                    {"mask_token", "mask_token_id", "tokenizer.ggml.mask_token_id"}};
    for (const auto& s : kSpecial) {
        const std::string text = token_text(tcfg, s.name);
        if (!text.empty()) {
            auto it = ids.find(text);
            if (it == ids.end()) {
                // The ones ember reads must be tokens; the others (sep, cls, mask) are only recorded.
                if (s.key == std::string_view("tokenizer.ggml.seperator_token_id") ||
                    s.key == std::string_view("tokenizer.ggml.cls_token_id") || s.key == std::string_view("tokenizer.ggml.mask_token_id"))
                    continue;
                bad("tokenizer_config.json", std::string(s.name) + " is not a token");
            }
            set(out, s.key, Value::u32(static_cast<uint32_t>(it->second)));
        } else if (s.config_id && cfg.is_object() && cfg.contains(s.config_id) && !cfg[s.config_id].is_null()) {
            const Json& v = cfg[s.config_id];
            const int32_t id = token_id(v.is_array() && !v.empty() ? v[0] : v, std::string("config.json ") + s.config_id);
            if (static_cast<size_t>(id) < ids.size()) set(out, s.key, Value::u32(static_cast<uint32_t>(id)));
        }
    }
    // transformers 4 rebuilds the template from these flags when they are given.
    for (const char* k : {"add_bos_token", "add_eos_token"})
        if (tcfg.contains(k) && !tcfg[k].is_null())
            set(out, std::string("tokenizer.ggml.") + k, Value::boolean(get_bool(tcfg, k, false, "tokenizer_config.json")));

    // The chat template: a string, or a list of {name, template} (the one named "default").
    if (tcfg.contains("chat_template")) {
        const Json& t = tcfg["chat_template"];
        if (t.is_string()) {
            out.emplace_back("tokenizer.chat_template", Value::string(t.get<std::string>()));
        } else if (t.is_array()) {
            for (const Json& named : t)
                if (named.is_object() && get_string(named, "name", "", "tokenizer_config.json") == "default")
                    out.emplace_back("tokenizer.chat_template",
                                     Value::string(get_string(named, "template", "", "tokenizer_config.json")));
        } else if (!t.is_null()) {
            bad("tokenizer_config.json", "chat_template is neither a string nor a list");
        }
    }
}

}  // namespace ember::hf
