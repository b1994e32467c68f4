// ember-make-model: each model's shapes and keys as published, at one or two layers and a 512-token
// vocabulary (--layers, --vocab) so the files stay small; ember loads each and runs a few tokens.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "ember/ember.hpp"
#include "gguf/reader.hpp"
#include "testdata.hpp"

#ifdef EMBER_MAKE_MODEL_BIN
namespace {

using namespace ember;

std::string make(const std::string& like, const std::string& type, int layers, const std::string& extra = "") {
    const std::string out = test::temp_path("make-model-" + like + "-" + type + ".gguf");
    const std::string cmd = std::string("'") + EMBER_MAKE_MODEL_BIN + "' -q -t 1 --like " + like + " --type " + type +
                            " --layers " + std::to_string(layers) + " --vocab 512 -o '" + out + "' " + extra + " > /dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return out;
}

std::vector<int64_t> shape(const gguf::File& f, const std::string& name) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (!t) return {};
    return std::vector<int64_t>(t->ne.begin(), t->ne.begin() + t->n_dims);
}

struct Expect {
    const char* like;
    const char* arch;
    const char* type;
    int layers;
    int64_t embd, heads, kv_heads, head_dim, ffn, ctx;
    double rope_base, eps;
    bool tied;
    uint64_t file_type;  // general.file_type of `type`
};

// The published configurations (config.json of each model), restated independently of the tool's table.
constexpr Expect kModels[] = {
    {"llama-3.2-1b", "llama", "Q4_K_M", 1, 2048, 32, 8, 64, 8192, 131072, 500000, 1e-5, true, 15},
    {"qwen3-0.6b", "qwen3", "Q4_0", 1, 1024, 16, 8, 128, 3072, 40960, 1e6, 1e-6, true, 2},
    {"qwen2.5-1.5b", "qwen2", "Q8_0", 1, 1536, 12, 2, 128, 8960, 32768, 1e6, 1e-6, true, 7},
    {"smollm2-135m", "llama", "F16", 2, 576, 9, 3, 64, 1536, 8192, 100000, 1e-5, true, 1},
    {"gemma3-270m", "gemma3", "q6_k", 2, 640, 4, 1, 256, 2048, 32768, 1e6, 1e-6, true, 18},
};

}  // namespace

TEST_CASE("ember-make-model: shapes, keys, and ember runs the file") {
    for (const Expect& e : kModels) {
        CAPTURE(e.like);
        const std::string path = make(e.like, e.type, e.layers);
        {
            const gguf::File f = gguf::File::open(path);
            const std::string a = std::string(e.arch) + ".";
            CHECK(f.get_string("general.architecture") == e.arch);
            CHECK(f.get_uint(a + "block_count") == static_cast<uint64_t>(e.layers));
            CHECK(f.get_uint(a + "embedding_length") == static_cast<uint64_t>(e.embd));
            CHECK(f.get_uint(a + "attention.head_count") == static_cast<uint64_t>(e.heads));
            CHECK(f.get_uint(a + "attention.head_count_kv") == static_cast<uint64_t>(e.kv_heads));
            CHECK(f.get_uint(a + "attention.key_length") == static_cast<uint64_t>(e.head_dim));
            CHECK(f.get_uint(a + "feed_forward_length") == static_cast<uint64_t>(e.ffn));
            CHECK(f.get_uint(a + "context_length") == static_cast<uint64_t>(e.ctx));
            CHECK(f.get_float(a + "rope.freq_base") == doctest::Approx(e.rope_base));
            CHECK(f.get_float(a + "attention.layer_norm_rms_epsilon") == doctest::Approx(e.eps));
            CHECK(f.get_uint("general.file_type") == e.file_type);
            CHECK(f.find("tokenizer.ggml.tokens")->size() == 512);
            CHECK(shape(f, "token_embd.weight") == std::vector<int64_t>{e.embd, 512});
            CHECK(shape(f, "blk.0.attn_q.weight") == std::vector<int64_t>{e.embd, e.heads * e.head_dim});
            CHECK(shape(f, "blk.0.attn_k.weight") == std::vector<int64_t>{e.embd, e.kv_heads * e.head_dim});
            CHECK(shape(f, "blk.0.ffn_down.weight") == std::vector<int64_t>{e.ffn, e.embd});
            CHECK((f.find_tensor("output.weight") == nullptr) == e.tied);
            CHECK((f.find_tensor("blk.0.attn_q.bias") != nullptr) == (std::string(e.arch) == "qwen2"));
            CHECK((f.find_tensor("blk.0.attn_q_norm.weight") != nullptr) == (std::string(e.arch) != "llama" && std::string(e.arch) != "qwen2"));
            CHECK((f.find_tensor("rope_freqs.weight") != nullptr) == (std::string(e.like) == "llama-3.2-1b"));
            if (std::string(e.arch) == "gemma3") CHECK(f.get_uint(a + "attention.sliding_window") == 512);
        }
        const Model m = Model::load(path);
        CHECK(m.n_vocab() == 512);
        Session s(m, {.n_ctx = 64, .n_threads = 1});
        s.prefill(m.tokenizer().encode("Hello world"));
        for (int i = 0; i < 3; ++i) s.decode(100 + i);
        bool finite = true;
        for (float x : s.logits()) finite &= std::isfinite(x);
        CHECK(finite);
        std::filesystem::remove(path);
    }
}

TEST_CASE("ember-make-model: the same seed gives the same file, another seed another") {
    auto bytes = [](const std::string& seed) {
        const std::string path = make("smollm2-135m", "Q4_0", 1, "--seed " + seed);
        const std::string b = test::read_file(path);
        std::filesystem::remove(path);
        return b;
    };
    const std::string a = bytes("7");
    CHECK(bytes("7") == a);
    const std::string c = bytes("8");
    CHECK(c.size() == a.size());
    CHECK(c != a);
}
#endif
