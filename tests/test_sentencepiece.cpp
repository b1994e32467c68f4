// Hugging Face folders with only SentencePiece's tokenizer.model (lib/hf/sentencepiece.cpp): the keys are
// the ones llama.cpp's convert_hf_to_gguf.py writes for the same folder and the ids are the ones its GGUF
// gives (tests/data/hf/spm, made by make_spm_fixtures.py with sentencepiece and transformers); Llama 2's
// 32000-piece vocabulary written as a tokenizer.model encodes as its GGUF; a model folder runs with it; and
// hostile protobuf bytes end in ember::Error.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "ember/ember.hpp"
#include "gguf/reader.hpp"
#include "hf/folder.hpp"
#include "testdata.hpp"

using namespace ember;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

const char* const kKinds[] = {"llama", "llama-legacy", "gemma"};

std::string spm_dir(const std::string& kind) { return test::testdata("hf/spm/" + kind); }

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A protobuf writer, enough for a ModelProto.
struct Proto {
    std::string b;
    void varint(uint64_t v) {
        while (v >= 0x80) {
            b.push_back(static_cast<char>((v & 0x7F) | 0x80));
            v >>= 7;
        }
        b.push_back(static_cast<char>(v));
    }
    void key(uint32_t field, uint32_t wire) { varint(static_cast<uint64_t>(field) << 3 | wire); }
    void int_field(uint32_t field, int64_t v) {
        key(field, 0);
        varint(static_cast<uint64_t>(v));
    }
    void bytes_field(uint32_t field, const std::string& s) {
        key(field, 2);
        varint(s.size());
        b += s;
    }
    void float_field(uint32_t field, float f) {
        key(field, 5);
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>(bits >> (8 * i)));
    }
};

// A ModelProto (BPE) with these pieces.
std::string model_proto(const std::vector<std::string>& pieces, const std::vector<float>& scores, const std::vector<int64_t>& types,
                        int bos, int eos, int unk, bool dummy_prefix) {
    Proto m;
    for (size_t i = 0; i < pieces.size(); ++i) {
        Proto p;
        p.bytes_field(1, pieces[i]);
        p.float_field(2, scores[i]);
        if (types[i] != 1) p.int_field(3, types[i]);
        m.bytes_field(1, p.b);
    }
    Proto t;
    t.int_field(3, 2);  // BPE
    t.int_field(40, unk);
    t.int_field(41, bos);
    t.int_field(42, eos);
    t.int_field(43, -1);  // pad: none, ten bytes on the wire
    t.int_field(35, 1);   // byte_fallback
    m.bytes_field(2, t.b);
    Proto n;
    n.bytes_field(1, "identity");
    n.int_field(3, dummy_prefix ? 1 : 0);
    n.int_field(4, 0);
    m.bytes_field(3, n.b);
    return m.b;
}

// The texts of the tokens a text may hold that split it (control, user-defined, unknown).
std::vector<std::string> symbols(const Tokenizer& t) {
    std::vector<std::string> s;
    for (Token i = 0; i < t.n_vocab(); ++i)
        if (t.attributes(i) & (kTokenControl | kTokenUserDefined | kTokenUnknown)) s.push_back(t.piece(i, true));
    return s;
}

bool has_any(const std::string& text, const std::vector<std::string>& parts) {
    for (const auto& p : parts)
        if (!p.empty() && text.find(p) != std::string::npos) return true;
    return false;
}

Status keys_status(const std::string& model, const std::string& tcfg = "") {
    return test::status_of([&] {
        hf::Keys keys;
        hf::sentencepiece_keys(model, tcfg, "", keys);
    });
}

}  // namespace

TEST_CASE("tokenizer.model: the keys llama.cpp's converter writes for the folder") {
    for (const char* kind : kKinds) {
        CAPTURE(std::string(kind));
        const std::string dir = spm_dir(kind);
        hf::Keys keys;
        hf::sentencepiece_keys(test::read_file(dir + "/tokenizer.model"), test::read_file(dir + "/tokenizer_config.json"),
                               test::read_file(dir + "/config.json"), keys);
        const gguf::File ours = gguf::File::assemble(std::move(keys), {}, nullptr);
        const gguf::File theirs = gguf::File::open(dir + "/llama.cpp-vocab.gguf");
        const auto& tok = ours.get("tokenizer.ggml.tokens").as_strings();
        const auto& ref = theirs.get("tokenizer.ggml.tokens").as_strings();
        const auto scores = ours.get("tokenizer.ggml.scores").as_floats(), ref_scores = theirs.get("tokenizer.ggml.scores").as_floats();
        const auto types = ours.get("tokenizer.ggml.token_type").as_ints(), ref_types = theirs.get("tokenizer.ggml.token_type").as_ints();
        REQUIRE(tok.size() <= ref.size());  // llama.cpp pads to config.json's vocab_size
        int user_defined = 0;
        for (size_t i = 0; i < ref.size(); ++i) {
            CAPTURE(i);
            if (i >= tok.size()) {
                CHECK(ref_types[i] == 5);  // its padding: unused
                continue;
            }
            CHECK(tok[i] == ref[i]);
            CHECK(scores[i] == ref_scores[i]);
            // llama.cpp's converter types a user-defined piece (sentencepiece's user_defined_symbols) as normal,
            // so its GGUF spells "<|user|>" out of smaller pieces; ember keeps it whole, as sentencepiece and
            // transformers do.
            if (types[i] == 4 && ref_types[i] == 1) ++user_defined;
            else CHECK(types[i] == ref_types[i]);
        }
        CHECK(user_defined == (std::string(kind) == "gemma" ? 0 : 2));
        for (const char* k : {"tokenizer.ggml.model", "tokenizer.ggml.pre"})
            CHECK(ours.get_string(k) == theirs.get_string(k));
        for (const char* k : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"})
            CHECK(ours.get_uint(k) == theirs.get_uint(k));
        for (const char* k : {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix"})
            CHECK(ours.get_bool(k, true) == theirs.get_bool(k, true));
    }
}

TEST_CASE("tokenizer.model: encodes as llama.cpp's GGUF of the same folder, and as transformers where the two agree") {
    for (const char* kind : kKinds) {
        CAPTURE(std::string(kind));
        const std::string dir = spm_dir(kind);
        const Tokenizer model = Tokenizer::from_gguf(dir);
        const Tokenizer gguf = Tokenizer::from_gguf(dir + "/llama.cpp-vocab.gguf");
        const std::vector<std::string> user = {"<|user|>", "<|assistant|>"};  // normal text in llama.cpp's GGUF
        const std::vector<std::string> splitters = symbols(model);
        const json g = json::parse(std::ifstream(dir + "/golden.json"));
        REQUIRE(g["cases"].size() >= 300);
        int compared = 0, with_transformers = 0, agree = 0;
        for (const json& c : g["cases"]) {
            const std::string text = c["text"].get<std::string>();
            CAPTURE(text);
            const auto ids = model.encode(text, false, true);
            if (!has_any(text, user)) {
                ++compared;
                CHECK(ids == gguf.encode(text, false, true));
                CHECK(model.encode(text, true, true) == gguf.encode(text, true, true));
                CHECK(model.encode(text, false, false) == gguf.encode(text, false, false));
            }
            // transformers 5 converts the same file to Metaspace: it adds no ▁ in front of text that already
            // starts with one (a space), and none (or one only when needed) after a special token. Away from
            // those places it must give the same ids.
            const bool differs = !text.empty() && (text[0] == ' ' || text.starts_with("\xE2\x96\x81"));
            if (!differs && !has_any(text, splitters)) {
                ++with_transformers;
                CHECK(ids == c["ids"].get<std::vector<Token>>());
                CHECK(model.encode(text, true, true) == c["ids_special"].get<std::vector<Token>>());
            }
            agree += ids == c["ids"].get<std::vector<Token>>();
        }
        MESSAGE(std::string(kind) << ": " << compared << " strings against llama.cpp's GGUF, " << with_transformers
                     << " against transformers; transformers agrees on " << agree << " of " << g["cases"].size());
        CHECK(compared >= 250);
        CHECK(with_transformers >= 150);
    }
}

TEST_CASE("tokenizer.model: Llama 2's vocabulary as a tokenizer.model encodes as its GGUF (llama.cpp's cases)") {
    const std::string vocab = test::testdata("vocab/ggml-vocab-llama-spm.gguf");
    const gguf::File f = gguf::File::open(vocab);
    const auto& pieces = f.get("tokenizer.ggml.tokens").as_strings();
    const auto scores = f.get("tokenizer.ggml.scores").as_floats();
    const auto types = f.get("tokenizer.ggml.token_type").as_ints();
    const TempDir tmp("spm-llama2");
    write_file(tmp / "config.json", "{}");
    write_file(tmp / "tokenizer.model", model_proto(pieces, scores, types, 1, 2, 0, true));
    const Tokenizer from_model = Tokenizer::from_gguf(tmp.path);
    const Tokenizer from_gguf = Tokenizer::from_gguf(vocab);
    REQUIRE(from_model.n_vocab() == 32000);
    CHECK(from_model.bos() == from_gguf.bos());
    CHECK(from_model.eos() == from_gguf.eos());
    // llama.cpp's own test strings, then the lines of a text.
    const std::string inp = test::read_file(vocab + ".inp");
    std::vector<std::string> texts;
    const std::string sep = "\n__ggml_vocab_test__\n";
    for (size_t pos = 0, at; (at = inp.find(sep, pos)) != std::string::npos; pos = at + sep.size()) texts.push_back(inp.substr(pos, at - pos));
    REQUIRE(texts.size() > 30);
    std::mt19937 rng(5);
    const std::string alphabet = "abc XYZ 019 .,'\n\t\xC3\xA9\xE6\x97\xA5\xF0\x9F\x99\x82<s></s>";
    for (int i = 0; i < 300; ++i) {
        std::string s;
        for (int n = static_cast<int>(rng() % 30); n-- > 0;) s += alphabet[rng() % alphabet.size()];
        texts.push_back(s);  // may cut a UTF-8 sequence: invalid bytes are text too
    }
    for (const std::string& t : texts) {
        CAPTURE(t);
        CHECK(from_model.encode(t, true, true) == from_gguf.encode(t, true, true));
        CHECK(from_model.encode(t, false, false) == from_gguf.encode(t, false, false));
    }
}

TEST_CASE("tokenizer.model: a model folder runs with it as with its tokenizer.json") {
    // phi3's fixture, its tokenizer.json replaced by the tokenizer.model it was exported from.
    const TempDir tmp("spm-phi3");
    for (const auto& e : fs::directory_iterator(test::testdata("hf/phi3")))
        if (e.path().filename() != "tokenizer.json") fs::copy(e.path(), tmp / e.path().filename().string());
    fs::copy(spm_dir("llama-legacy") + "/tokenizer.model", tmp / "tokenizer.model");
    const json g = json::parse(std::ifstream(test::testdata("hf/phi3/golden.json")));
    const auto prompt = g["prompt_ids"].get<std::vector<Token>>();
    const Model with_model = Model::load(tmp.path), with_json = Model::load(test::testdata("hf/phi3"));
    // The same ids; BOS apart: phi3's tokenizer.json template adds none, and without it the tokenizer.model's
    // default (LlamaTokenizer's, and llama.cpp's for the GGUF of this folder) is to add one.
    CHECK(with_model.tokenizer().encode(g["prompt"].get<std::string>(), false, true) == prompt);
    CHECK(with_model.tokenizer().add_bos());
    Session a(with_model), b(with_json);
    a.prefill(prompt);
    b.prefill(prompt);
    const auto la = a.logits(), lb = b.logits();
    REQUIRE(la.size() == lb.size());
    CHECK(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)) == 0);
    CHECK(with_model.chat_template() == with_json.chat_template());
}

TEST_CASE("tokenizer.model: hostile bytes end in ember::Error") {
    const std::string good = test::read_file(spm_dir("llama") + "/tokenizer.model");
    CHECK(keys_status(good) == Status::Ok);
    // Every truncation: a varint or a length cut short, a message missing its end.
    for (size_t n = 0; n < good.size(); n += n < 4096 ? 1 : 997) {
        const Status s = keys_status(good.substr(0, n));  // before the trainer spec: Unigram, the default
        CHECK((s == Status::BadFile || s == Status::Unsupported));
    }
    auto piece_msg = [](const std::string& inner) {
        Proto m;
        m.bytes_field(1, inner);
        return m.b;
    };
    Proto p;
    p.bytes_field(1, "a");
    const std::string one = piece_msg(p.b);
    CHECK(keys_status("") == Status::BadFile);                                   // no pieces
    CHECK(keys_status(std::string("\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)) == Status::BadFile);  // length 2^64-1
    CHECK(keys_status(std::string("\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12)) == Status::BadFile);  // 11-byte varint
    CHECK(keys_status(std::string("\x0a\xff\xff\xff\xff\x0f", 6)) == Status::BadFile);  // 4 GiB past the end
    CHECK(keys_status(std::string("\x0b", 1) + one) == Status::BadFile);          // a group (wire type 3)
    CHECK(keys_status(std::string("\x00\x00", 2) + one) == Status::BadFile);      // field number 0
    CHECK(keys_status(std::string("\x08\x01", 2) + one) == Status::BadFile);      // pieces as a varint
    Proto bad_type;
    bad_type.bytes_field(1, "a");
    bad_type.int_field(3, 9);
    CHECK(keys_status(piece_msg(bad_type.b)) == Status::BadFile);               // type 9
    Proto nan;
    nan.bytes_field(1, "a");
    nan.float_field(2, std::numeric_limits<float>::quiet_NaN());
    CHECK(keys_status(piece_msg(nan.b)) == Status::BadFile);
    CHECK(keys_status(piece_msg("")) == Status::BadFile);                         // a piece without text
    CHECK(keys_status(one + one) == Status::BadFile);                             // a piece twice
    CHECK(keys_status(one) == Status::Unsupported);                               // Unigram (the schema's default)
    // Many pieces: each costs bytes, so a count is bounded by the file's size.
    Proto unigram_many;
    for (int i = 0; i < 1000; ++i) {
        Proto q;
        q.bytes_field(1, std::to_string(i));
        unigram_many.bytes_field(1, q.b);
    }
    CHECK(keys_status(unigram_many.b) == Status::Unsupported);
    // Added tokens from tokenizer_config.json: ids bounded.
    CHECK(keys_status(good, R"({"added_tokens_decoder": {"99999999": {"content": "x"}}})") == Status::BadFile);
    CHECK(keys_status(good, R"({"added_tokens_decoder": {"-1": {"content": "x"}}})") == Status::BadFile);
    CHECK(keys_status(good, R"({"added_tokens_decoder": {"5": {"content": ""}}})") == Status::BadFile);
    CHECK(keys_status(good, R"({"added_tokens_decoder": {"500": {"content": "<new>", "special": true}}})") == Status::Ok);
    // Random byte flips: never a crash.
    std::mt19937 rng(7);
    for (int i = 0; i < 300; ++i) {
        std::string m = good.substr(0, 4096 + rng() % 8192);
        for (int k = 0; k < 4; ++k) m[rng() % m.size()] = static_cast<char>(rng());
        const Status s = keys_status(m);
        CHECK((s == Status::BadFile || s == Status::Ok || s == Status::Unsupported));
    }
}
