// ember-tokenize: text -> token ids (and back) with a model's vocabulary, like llama.cpp's llama-tokenize.
//   ember-tokenize -m MODEL.gguf -p "Hello world"          one line per token: id -> 'piece'
//   ember-tokenize -m MODEL.gguf -f prompt.txt --ids       [1, 15043, 3186]
//   ember-tokenize -m MODEL.gguf -p "Hello world" --json   [1,15043,3186]
//   ember-tokenize -m MODEL.gguf --decode "1 15043 3186"   <s>Hello world (control tokens shown unless --no-parse-special)
// Any GGUF with tokenizer.ggml.* keys works, vocab-only files included.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "common.hpp"
#include "ember/error.hpp"
#include "ember/tokenizer.hpp"

namespace {

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s -m MODEL.gguf (-p TEXT | -f FILE | --stdin | --decode IDS) [options]\n"
                 "  -m, --model FILE      GGUF file with a vocabulary (a vocab-only file is enough)\n"
                 "  -p, --prompt TEXT     text to tokenize\n"
                 "  -f, --file FILE       read the text from FILE\n"
                 "      --stdin           read the text from standard input\n"
                 "      --decode IDS      token ids (\"1 2 3\", \"1,2,3\" or \"[1, 2, 3]\") back to text\n"
                 "      --no-bos          do not add the BOS/EOS tokens the vocabulary asks for\n"
                 "      --no-parse-special  text like <|im_start|> stays plain text (and decode hides control tokens)\n"
                 "      --ids             print only the ids, as a Python-like list [1, 2, 3]\n"
                 "      --json            print only the ids, as one JSON list [1,2,3]\n"
                 "      --show-count      print the number of tokens at the end\n",
                 argv0);
}

// A piece between quotes: printable UTF-8 as is; quotes, backslashes, control characters and
// bytes that are not valid UTF-8 (byte-level BPE may split characters) escaped.
std::string quote(const std::string& s) {
    static const char* hex = "0123456789abcdef";
    std::string out = "'";
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : 99;
        bool ok = n != 99 && i + n < s.size();
        for (size_t k = 1; ok && k <= n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (!ok) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
            ++i;
            continue;
        }
        if (n > 0) {
            out.append(s, i, n + 1);
            i += n + 1;
            continue;
        }
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            case '\'': out += "\\'"; break;
            case '\\': out += "\\\\"; break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    out += "\\x";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
    return out + "'";
}

std::vector<ember::Token> parse_ids(const std::string& s) {
    std::vector<ember::Token> ids;
    size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (c == ' ' || c == ',' || c == '[' || c == ']' || c == '\t' || c == '\n' || c == '\r') {
            ++i;
            continue;
        }
        const char* begin = s.c_str() + i;
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(begin, &end, 10);
        if (end == begin || errno == ERANGE || v < std::numeric_limits<ember::Token>::min() ||
            v > std::numeric_limits<ember::Token>::max()) {
            throw ember::Error(ember::Status::InvalidArgument, "--decode: not a token id at \"" + s.substr(i, 16) + "\"");
        }
        ids.push_back(static_cast<ember::Token>(v));
        i += static_cast<size_t>(end - begin);
    }
    return ids;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ember::Error(ember::Status::Io, "cannot read " + path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
    std::string model, prompt, file, decode_ids;
    bool have_prompt = false, have_file = false, use_stdin = false, have_decode = false;
    bool add_special = true, parse_special = true, ids_only = false, json = false, show_count = false;

    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
                std::exit(1);
            }
            return argv[++i];
        };
        if (a == "-m" || a == "--model") {
            model = value();
        } else if (a == "-p" || a == "--prompt") {
            prompt = value();
            have_prompt = true;
        } else if (a == "-f" || a == "--file") {
            file = value();
            have_file = true;
        } else if (a == "--stdin") {
            use_stdin = true;
        } else if (a == "--decode") {
            decode_ids = value();
            have_decode = true;
        } else if (a == "--no-bos") {
            add_special = false;
        } else if (a == "--no-parse-special") {
            parse_special = false;
        } else if (a == "--ids") {
            ids_only = true;
        } else if (a == "--json") {
            json = true;
        } else if (a == "--show-count") {
            show_count = true;
        } else if (a == "-h" || a == "--help") {
            usage(argv[0]);
            return 0;
        } else {
            std::fprintf(stderr, "error: unknown argument %s\n", a.c_str());
            usage(argv[0]);
            return 1;
        }
    }
    if (model.empty()) {
        std::fprintf(stderr, "error: -m MODEL.gguf is required\n");
        usage(argv[0]);
        return 1;
    }
    if (have_prompt + have_file + use_stdin + have_decode != 1) {
        std::fprintf(stderr, "error: give exactly one of -p, -f, --stdin, --decode\n");
        usage(argv[0]);
        return 1;
    }

    try {
        const ember::Tokenizer tok = ember::Tokenizer::from_gguf(model);
        if (have_decode) {
            const std::string text = tok.decode(parse_ids(decode_ids), parse_special);
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fputc('\n', stdout);
            return 0;
        }
        std::string text;
        if (have_prompt) {
            text = prompt;
        } else if (have_file) {
            text = read_file(file);
        } else {
            text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        }
        const std::vector<ember::Token> ids = tok.encode(text, add_special, parse_special);
        if (ids_only || json) {
            const char* sep = json ? "," : ", ";
            std::string line = "[";
            for (size_t i = 0; i < ids.size(); ++i) {
                if (i) line += sep;
                line += std::to_string(ids[i]);
            }
            line += "]\n";
            std::fputs(line.c_str(), stdout);
        } else {
            for (ember::Token t : ids) std::printf("%6d -> %s\n", t, quote(tok.piece(t)).c_str());
        }
        if (show_count) std::printf("Total number of tokens: %zu\n", ids.size());
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
    return 0;
}
