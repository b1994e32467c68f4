// ember — the tokenization algorithms over one stretch of plain text (special tokens already
// split off): SentencePiece-style bigram merging by score, byte-level BPE by merge rank,
// and WordPiece.
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/vocab.hpp"

namespace ember::detail {

// `text` already has spaces escaped to U+2581 and any prefix space added.
void spm_tokenize(const Vocab& v, std::string_view text, std::vector<Token>& out);
void bpe_tokenize(const Vocab& v, std::string_view text, std::vector<Token>& out);
void wpm_tokenize(const Vocab& v, std::string_view text, std::vector<Token>& out);

}  // namespace ember::detail
