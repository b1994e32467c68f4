#include "tokenizer/encode.hpp"

#include <algorithm>
#include <queue>
#include <unordered_map>

#include "tokenizer/pretokenize.hpp"
#include "tokenizer/unicode.hpp"

namespace ember::detail {
namespace {

struct Symbol {
    int prev;
    int next;
    size_t off;    // into the text; symbols stay contiguous, merges grow the left one
    uint32_t n;    // bytes; 0 once merged away
};

// Splits `text` into one symbol per UTF-8 character; each byte of a malformed sequence is a symbol
// of its own (llama.cpp goes by the lead byte alone), so SPM byte fallback restores the input exactly.
void split_chars(std::string_view text, std::vector<Symbol>& syms) {
    syms.clear();
    size_t off = 0;
    int index = 0;
    while (off < text.size()) {
        const size_t len = unicode::utf8_seq_len(text, off);
        syms.push_back(Symbol{index - 1, off + len == text.size() ? -1 : index + 1, off,
                              static_cast<uint32_t>(len)});
        off += len;
        ++index;
    }
}

// Merges symbol `right` into `left` if the queued pair is still current; false for a stale entry.
// Sizes only grow, so an unchanged total means both sides are unchanged (llama.cpp compares texts).
bool merge_pair(std::vector<Symbol>& syms, int left, int right, uint32_t size) {
    Symbol& l = syms[static_cast<size_t>(left)];
    Symbol& r = syms[static_cast<size_t>(right)];
    if (l.n == 0 || r.n == 0 || l.n + r.n != size) return false;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = left;
    return true;
}

// --- SentencePiece (llama.cpp's llm_tokenizer_spm) ----------------------------------------------

struct SpmBigram {
    int left;
    int right;
    float score;
    uint32_t size;
};
struct SpmLess {
    bool operator()(const SpmBigram& l, const SpmBigram& r) const {
        return l.score < r.score || (l.score == r.score && l.left > r.left);
    }
};

// --- BPE (llama.cpp's llm_tokenizer_bpe) --------------------------------------------------------

struct BpeBigram {
    int left;
    int right;
    int32_t rank;
    uint32_t size;
};
struct BpeGreater {
    bool operator()(const BpeBigram& l, const BpeBigram& r) const {
        return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
    }
};

void spm_chunk(const Vocab& v, std::string_view text, std::vector<Symbol>& syms, std::vector<Token>& out) {
    split_chars(text, syms);
    if (syms.empty()) return;

    std::priority_queue<SpmBigram, std::vector<SpmBigram>, SpmLess> queue;
    auto try_add = [&](int l, int r) {
        if (l < 0 || r < 0) return;
        const uint32_t size = syms[static_cast<size_t>(l)].n + syms[static_cast<size_t>(r)].n;
        const Token id = v.find(text.substr(syms[static_cast<size_t>(l)].off, size));
        if (id < 0) return;
        queue.push(SpmBigram{l, r, v.tokens[static_cast<size_t>(id)].score, size});
    };
    for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
        const SpmBigram b = queue.top();
        queue.pop();
        if (!merge_pair(syms, b.left, b.right, b.size)) continue;
        try_add(syms[static_cast<size_t>(b.left)].prev, b.left);
        try_add(b.left, syms[static_cast<size_t>(b.left)].next);
    }

    for (int i = 0; i != -1; i = syms[static_cast<size_t>(i)].next) {
        const Symbol& s = syms[static_cast<size_t>(i)];
        const std::string_view piece = text.substr(s.off, s.n);
        const Token id = v.find(piece);
        if (id >= 0) {
            out.push_back(id);
            continue;
        }
        // Byte fallback: <0xXX> per byte (the unknown token when the vocabulary has none).
        for (unsigned char c : piece) {
            const Token bt = v.byte_tokens[c];
            if (bt >= 0) {
                out.push_back(bt);
            } else if (v.unk >= 0) {
                out.push_back(v.unk);
            }
        }
    }
}

}  // namespace

void spm_tokenize(const Vocab& v, std::string_view text, std::vector<Token>& out) {
    std::vector<Symbol> syms;
    if (!v.spm_split_at_space) {
        spm_chunk(v, text, syms, out);
        return;
    }
    // No token has a ▁ that follows anything but another ▁, so no merge can cross the start of
    // a "word" (a ▁ after a non-▁ character): merging word by word gives the same tokens as
    // merging the whole text at once, with small heaps instead of one huge one.
    static constexpr std::string_view kSpace = "\xE2\x96\x81";
    size_t chunk = 0;
    bool prev_space = false;
    for (size_t off = 0; off < text.size();) {
        const size_t len = unicode::utf8_seq_len(text, off);
        const bool space = text.substr(off, len) == kSpace;
        if (space && !prev_space && off > chunk) {
            spm_chunk(v, text.substr(chunk, off - chunk), syms, out);
            chunk = off;
        }
        prev_space = space;
        off += len;
    }
    spm_chunk(v, text.substr(chunk), syms, out);
}

static void merge_word(const Vocab& v, const std::string& word, std::vector<Symbol>& syms,
                       std::vector<BpeBigram>& heap, std::string& scratch, std::vector<Token>& out);

void bpe_tokenize(const Vocab& v, std::string_view text, std::vector<Token>& out) {
    std::string escaped;
    if (v.escape_spaces) {  // spaces as ▁ before the merges (Gemma 4)
        escaped.reserve(text.size() + text.size() / 4);
        for (char c : text) {
            if (c == ' ') escaped += "\xE2\x96\x81";
            else escaped.push_back(c);
        }
        text = escaped;
    }
    const std::vector<std::string> words = pretokenize(text, v.pre);
    std::vector<Symbol> syms;
    std::vector<BpeBigram> heap;
    std::string scratch;
    // Long texts repeat words: remember where each word's tokens went the first time.
    const bool use_cache = words.size() >= 64;
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;

    for (const std::string& word : words) {
        if (use_cache) {
            auto it = cache.find(word);
            if (it != cache.end()) {
                const auto [at, n] = it->second;
                for (size_t k = 0; k < n; ++k) {
                    const Token t = out[at + k];
                    out.push_back(t);
                }
                continue;
            }
        }
        const size_t first = out.size();
        merge_word(v, word, syms, heap, scratch, out);
        if (use_cache) cache.emplace(word, std::make_pair(first, out.size() - first));
    }
}

static void merge_word(const Vocab& v, const std::string& word, std::vector<Symbol>& syms,
                       std::vector<BpeBigram>& heap, std::string& scratch, std::vector<Token>& out) {
    {
        // Llama-3 takes a whole word that is a token as is; Gemma 4 a run of newlines.
        if (v.ignore_merges || (v.escape_spaces && word.find_first_not_of('\n') == std::string::npos)) {
            const Token id = v.find(word);
            if (id >= 0) {
                out.push_back(id);
                return;
            }
        }
        const std::string_view w = word;
        split_chars(w, syms);
        heap.clear();
        auto try_add = [&](int l, int r) {
            if (l < 0 || r < 0) return;
            const Symbol& a = syms[static_cast<size_t>(l)];
            const Symbol& b = syms[static_cast<size_t>(r)];
            const int32_t rank = v.rank(w.substr(a.off, a.n), w.substr(b.off, b.n), scratch);
            if (rank < 0) return;
            heap.push_back(BpeBigram{l, r, rank, a.n + b.n});
            std::push_heap(heap.begin(), heap.end(), BpeGreater{});
        };
        for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_add(i - 1, i);

        while (!heap.empty()) {
            std::pop_heap(heap.begin(), heap.end(), BpeGreater{});
            const BpeBigram b = heap.back();
            heap.pop_back();
            if (!merge_pair(syms, b.left, b.right, b.size)) continue;
            try_add(syms[static_cast<size_t>(b.left)].prev, b.left);
            try_add(b.left, syms[static_cast<size_t>(b.left)].next);
        }

        for (int i = syms.empty() ? -1 : 0; i != -1; i = syms[static_cast<size_t>(i)].next) {
            const Symbol& s = syms[static_cast<size_t>(i)];
            const std::string_view piece = w.substr(s.off, s.n);
            const Token id = v.find(piece);
            if (id >= 0) {
                out.push_back(id);
                continue;
            }
            // llama.cpp's fallback: each byte of the piece on its own, when it is a token (the byte-encoded
            // character, or <0xXX> for raw UTF-8 vocabularies).
            for (char c : piece) {
                const Token bt = v.escape_spaces ? v.byte_tokens[static_cast<uint8_t>(c)] : v.find(std::string_view(&c, 1));
                if (bt >= 0) out.push_back(bt);
            }
        }
    }
}

namespace {

bool is_chinese_char(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B920 && c <= 0x2CEAF) ||  // sic: Hugging Face's range, kept by llama.cpp
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// BERT's BasicTokenizer as llama.cpp does it: NFD (first codepoint) + drop accents, lowercase,
// split on whitespace, punctuation, ASCII symbols and CJK ideographs, drop controls.
std::vector<std::string> wpm_words(const Vocab& v, std::string_view text) {
    std::vector<std::string> words(1);
    for (uint32_t cpt : unicode::cpts_from_utf8(text)) {
        if (v.strip_accents) cpt = unicode::nfd_first(cpt);
        const uint16_t f = unicode::flags(cpt);
        if (f & unicode::Whitespace) {
            if (!words.back().empty()) words.emplace_back();
            continue;
        }
        if (cpt == 0 || cpt == unicode::kReplacement || (f & unicode::Control)) continue;
        if (v.strip_accents && (f & unicode::Mark)) continue;
        std::string s;
        unicode::append_utf8(s, v.lowercase ? unicode::to_lower(cpt) : cpt);
        if ((f & unicode::Punctuation) || (cpt < 0x7F && (f & unicode::Symbol)) || is_chinese_char(cpt)) {
            if (!words.back().empty()) words.emplace_back();
            words.back() = std::move(s);
            words.emplace_back();
        } else {
            words.back() += s;
        }
    }
    if (words.back().empty()) words.pop_back();
    return words;
}

}  // namespace

void wpm_tokenize(const Vocab& v, std::string_view text, std::vector<Token>& out) {
    for (const std::string& word : wpm_words(v, text)) {
        const std::string w = "\xE2\x96\x81" + word;  // phantom space: word-initial pieces carry ▁
        const size_t n = w.size();
        const size_t before = out.size();
        for (size_t i = 0; i < n; ++i) {
            bool match = false;
            for (size_t j = std::min(n, i + v.max_token_len + 1); j > i; --j) {
                const Token id = v.find(std::string_view(w).substr(i, j - i));
                if (id >= 0) {
                    out.push_back(id);
                    match = true;
                    i = j - 1;
                    break;
                }
            }
            if (!match) {  // one unknown piece makes the whole word unknown
                out.resize(before);
                break;
            }
        }
        if (out.size() == before && v.unk >= 0) out.push_back(v.unk);
    }
}

}  // namespace ember::detail
