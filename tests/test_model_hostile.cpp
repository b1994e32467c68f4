// Well-formed GGUF files whose model is wrong: every one must be refused with an ember::Error naming the
// problem, before any session could run on it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <vector>

#include "ember/ember.hpp"
#include "gguf/reader.hpp"
#include "gguf/writer.hpp"
#include "testdata.hpp"

using namespace ember;

namespace {

// stories260K rewritten with one change to its metadata or tensors, loaded, and the error returned.
std::string load_changed(const std::function<void(const gguf::File&, gguf::Writer&)>& change, bool keep_tensors = true) {
    const gguf::File f = gguf::File::open(test::testdata("models/stories260K.gguf"));
    gguf::Writer w(f.alignment());
    for (const auto& [k, v] : f.metadata())
        if (k != "general.alignment") w.set(k, v);
    if (keep_tensors)
        for (const auto& t : f.tensors())
            w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
    change(f, w);
    const auto path = (std::filesystem::temp_directory_path() / "ember-hostile-model.gguf").string();
    w.write(path);
    std::string err;
    try {
        Model m = Model::load(path);
        Session s(m);
        s.decode(1);
    } catch (const Error& e) {
        err = e.what();
    }
    std::filesystem::remove(path);
    return err;
}

}  // namespace

TEST_CASE("the unchanged rewrite loads (the harness itself works)") {
    CHECK(load_changed([](const gguf::File&, gguf::Writer&) {}).empty());
}

TEST_CASE("hyperparameters that contradict the tensors") {
    struct Case { const char* key; gguf::Value value; const char* needle; };
    const Case cases[] = {
        {"llama.block_count", gguf::Value::u32(6), "missing tensor 'blk.5."},
        {"llama.block_count", gguf::Value::u32(0), "hyperparameters"},
        {"llama.block_count", gguf::Value::u32(4000000000u), "hyperparameters"},
        {"llama.embedding_length", gguf::Value::u32(65), "hyperparameters"},
        {"llama.embedding_length", gguf::Value::u32(128), "shape"},
        {"llama.attention.head_count", gguf::Value::u32(0), "hyperparameters"},
        {"llama.attention.head_count_kv", gguf::Value::u32(3), "hyperparameters"},
        {"llama.attention.head_count_kv", gguf::Value::u32(8), "shape"},
        {"llama.feed_forward_length", gguf::Value::u32(171), "shape"},
        {"llama.attention.key_length", gguf::Value::u32(1u << 30), "shape"},
        {"llama.rope.dimension_count", gguf::Value::u32(9), "rope"},
        {"llama.block_count", gguf::Value::string("five"), "llama.block_count"},
        {"general.architecture", gguf::Value::string("no-such-arch"), "not supported"},
        {"llama.rope.scaling.type", gguf::Value::string("longrope"), "not supported"},
        {"llama.rope.scaling.type", gguf::Value::string("dynamic"), "not supported"},
        {"llama.rope.scaling.factor", gguf::Value::f32(-2.f), "rope.scaling.factor"},
        {"llama.rope.scaling.attn_factor", gguf::Value::f32(INFINITY), "rope.scaling.attn_factor"},
        {"llama.expert_count", gguf::Value::u32(4), "expert"},         // no expert_used_count, no expert tensors
        {"llama.expert_count", gguf::Value::u32(1u << 30), "expert"},
        {"llama.attn_logit_softcapping", gguf::Value::f32(-1.f), "soft-capping"},
        {"llama.final_logit_softcapping", gguf::Value::f32(NAN), "soft-capping"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.key);
        CAPTURE(c.needle);
        const std::string err = load_changed([&](const gguf::File&, gguf::Writer& w) { w.set(c.key, c.value); });
        CHECK_MESSAGE(err.find(c.needle) != std::string::npos, err);
    }
}

TEST_CASE("tensors missing, misshapen or of a type the backend cannot use") {
    // A vocabulary larger than the embedding table.
    std::string err = load_changed([](const gguf::File& f, gguf::Writer& w) {
        auto tokens = f.get("tokenizer.ggml.tokens").as_strings();
        tokens.push_back("extra");
        w.set("tokenizer.ggml.tokens", gguf::Value::strings(tokens));
        auto scores = f.get("tokenizer.ggml.scores").as_floats();
        scores.push_back(0.f);
        w.set("tokenizer.ggml.scores", gguf::Value::f32s(scores));
        std::vector<int32_t> types;
        for (auto t : f.get("tokenizer.ggml.token_type").as_ints()) types.push_back(static_cast<int32_t>(t));
        types.push_back(1);
        w.set("tokenizer.ggml.token_type", gguf::Value::i32s(types));
    });
    CHECK_MESSAGE(err.find("vocabulary") != std::string::npos, err);

    // No tensors at all.
    err = load_changed([](const gguf::File&, gguf::Writer&) {}, false);
    CHECK_MESSAGE(err.find("missing tensor 'token_embd.weight'") != std::string::npos, err);

    // A Q8_K weight (an activation-only format) is refused by the CPU backend.
    err = load_changed(
        [](const gguf::File& f, gguf::Writer& w) {
            for (const auto& t : f.tensors()) {
                if (t.name == "blk.0.ffn_down.weight") continue;
                w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
            }
            std::vector<uint8_t> q8k(292 * 64, 0);  // [256, 64]: a Q8_K ffn_down of the wrong width
            w.add_tensor("blk.0.ffn_down.weight", tensor::TensorType::Q8_K, {256, 64}, q8k.data(), q8k.size());
        },
        false);
    CHECK_MESSAGE(!err.empty(), "a Q8_K weight of the wrong shape loaded");
}

TEST_CASE("Llama 3.1 frequency factors: rope_freqs of 2 turn RoPE exactly as linear scaling by 2") {
    auto logits_of = [](const std::function<void(gguf::Writer&)>& change) {
        const gguf::File f = gguf::File::open(test::testdata("models/stories260K.gguf"));
        gguf::Writer w(f.alignment());
        for (const auto& [k, v] : f.metadata())
            if (k != "general.alignment") w.set(k, v);
        for (const auto& t : f.tensors())
            w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
        change(w);
        const auto path = (std::filesystem::temp_directory_path() / "ember-rope-model.gguf").string();
        w.write(path);
        Model m = Model::load(path);
        Session s(m);
        s.prefill(m.tokenizer().encode("Once upon a time, there was a little girl"));
        std::vector<float> out(s.logits().begin(), s.logits().end());
        std::filesystem::remove(path);
        return out;
    };
    const auto plain = logits_of([](gguf::Writer&) {});
    const auto linear = logits_of([](gguf::Writer& w) {
        w.set("llama.rope.scaling.type", gguf::Value::string("linear"));
        w.set("llama.rope.scaling.factor", gguf::Value::f32(2.f));
    });
    const auto factors = logits_of([](gguf::Writer& w) {
        const std::vector<float> two(4, 2.f);  // head size 8: 4 pairs
        w.add_tensor("rope_freqs.weight", tensor::TensorType::F32, {4}, two.data(), two.size() * sizeof(float));
        w.set("llama.rope.scaling.type", gguf::Value::string("llama3"));
    });
    CHECK(linear != plain);    // the scaling changes something
    CHECK(factors == linear);  // p·0.5 and p/2 are the same float
}
