// LoRA adapters (tests/data/hf/*-lora*, made by make_lora.py with transformers + peft as the reference):
// a PEFT folder at scale 1.0 gives peft's merged logits; llama.cpp's GGUF form of it gives the same logits
// as the folder; scale 0 is the base model bit for bit; adapters combine, switch between prompts and differ
// between sessions of one model without a reload; hostile adapters end in ember::Error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "gguf/reader.hpp"
#include "gguf/writer.hpp"
#include "testdata.hpp"

using namespace ember;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

using test::max_diff;

std::string hf(const std::string& name) { return test::testdata("hf/" + name); }
json golden_of(const std::string& dir) { return json::parse(std::ifstream(dir + "/golden.json")); }

std::vector<std::vector<float>> rows_of(const json& j) { return j.get<std::vector<std::vector<float>>>(); }

float scale_of(const std::vector<std::vector<float>>& rows) {
    float s = 1.f;
    for (const auto& r : rows)
        for (float x : r) s = std::max(s, std::fabs(x));
    return s;
}

// The same tolerance as the base folders' test (test_hf_folder.cpp): the F16 KV cache moves the logits by a
// few 1e-4 of their scale; the adapter's F32 low-rank products add rounding far below that.
constexpr float kRelTol = 1e-3f;

bool same_bits(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
               return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
           });
}

}  // namespace

TEST_CASE("LoRA: a PEFT folder and its GGUF form at scale 1.0 give peft's merged logits") {
    for (const char* name : {"llama-lora", "llama-lora2", "qwen3-lora"}) {
        CAPTURE(std::string(name));
        const json g = golden_of(hf(name));
        const Model model = Model::load(hf(g["base"].get<std::string>()));
        const auto prompt = g["prompt_ids"].get<std::vector<Token>>();
        const auto want = rows_of(g["logits"]);

        const Adapter peft = Adapter::load(model, hf(name));
        const Adapter gguf = Adapter::load(model, hf(std::string(name) + "/adapter.gguf"));
        CHECK(peft.rank() == gguf.rank());
        CHECK(peft.alpha() == gguf.alpha());
        CHECK(peft.n_targets() == gguf.n_targets());
        CHECK(peft.n_targets() == (std::string(name) == "llama-lora2" ? 3 : 7) * model.n_layers());

        Session s(model);
        const auto base = test::prompt_logits(s, prompt);
        s.set_adapters({{peft, 1.f}});
        const auto with_peft = test::prompt_logits(s, prompt);
        s.set_adapters({{gguf, 1.f}});
        const auto with_gguf = test::prompt_logits(s, prompt);

        const float scale = scale_of(want), diff = max_diff(with_peft, want);
        MESSAGE(std::string(name) << ": max |logit diff| vs peft merged " << diff << " (scale " << scale << ", relative " << diff / scale
                     << "); the adapter moves the logits by " << max_diff(base, want));
        CHECK(diff <= kRelTol * scale);
        CHECK(max_diff(base, want) > 50 * kRelTol * scale);  // the adapter matters: the test can fail
        // llama.cpp's converter and ember's folder reader lay the same numbers out the same way.
        CHECK(same_bits(with_peft, with_gguf));

        std::vector<Token> got;
        Sampler greedy = Sampler::greedy();
        s.set_adapters({{peft, 1.f}});
        s.reset();
        s.prefill(prompt);
        for (size_t i = 0; i < g["greedy"].size(); ++i) {
            got.push_back(greedy.sample(s.logits()));
            s.decode(got.back());
        }
        CAPTURE(g["min_top2_margin"].get<float>());
        CHECK(got == g["greedy"].get<std::vector<Token>>());
    }
}

TEST_CASE("LoRA: scale 0 is the base model bit for bit; two adapters at once sum their updates") {
    const json g = golden_of(hf("llama-lora"));
    const Model model = Model::load(hf("llama"));
    const auto prompt = g["prompt_ids"].get<std::vector<Token>>();
    const Adapter a = Adapter::load(model, hf("llama-lora"));
    const Adapter b = Adapter::load(model, hf("llama-lora2/adapter.gguf"));

    Session s(model);
    const auto base = test::prompt_logits(s, prompt);
    s.set_adapters({{a, 0.f}, {b, 0.f}});
    CHECK(s.adapters().size() == 2);
    CHECK(same_bits(test::prompt_logits(s, prompt), base));

    // peft with both adapters active, the second's scaling × 0.5.
    const json& c = g["combined"];
    REQUIRE(c["adapters"][1][1].get<float>() == 0.5f);
    s.set_adapters({{a, 1.f}, {b, 0.5f}});
    const auto want = rows_of(c["logits"]);
    const float diff = max_diff(test::prompt_logits(s, prompt), want), scale = scale_of(want);
    MESSAGE("llama-lora × 1 + llama-lora2 × 0.5: max |logit diff| vs peft " << diff << " (relative " << diff / scale << ")");
    CHECK(diff <= kRelTol * scale);
    s.set_adapters({{a, 1.f}});
    CHECK(max_diff(test::prompt_logits(s, prompt), want) > 50 * kRelTol * scale);  // the second adapter counts

    s.set_adapters({});
    CHECK(s.adapters().empty());
    CHECK(same_bits(test::prompt_logits(s, prompt), base));
}

TEST_CASE("LoRA: sessions of one model use their own adapters; one session switches between prompts") {
    const Model model = Model::load(hf("llama"));
    const auto prompt = golden_of(hf("llama-lora"))["prompt_ids"].get<std::vector<Token>>();
    const Adapter a = Adapter::load(model, hf("llama-lora"));
    const Adapter b = Adapter::load(model, hf("llama-lora2"));

    Session plain(model), sa(model), sb(model);
    const auto base = test::prompt_logits(plain, prompt);
    sa.set_adapters({{a, 1.f}});
    sb.set_adapters({{b, 1.f}});
    const auto la = test::prompt_logits(sa, prompt), lb = test::prompt_logits(sb, prompt);
    CHECK(max_diff(la, lb) > 0.1f);
    CHECK(same_bits(test::prompt_logits(plain, prompt), base));  // other sessions' adapters leave it alone

    // One session: a, then b, then a again, then none: each prompt as a session of its own gives it.
    Session sw(model);
    sw.set_adapters({{a, 1.f}});
    CHECK(same_bits(test::prompt_logits(sw, prompt), la));
    sw.set_adapters({{b, 1.f}});
    CHECK(same_bits(test::prompt_logits(sw, prompt), lb));
    sw.set_adapters({{a, 1.f}});
    CHECK(same_bits(test::prompt_logits(sw, prompt), la));
    sw.set_adapters({});
    CHECK(same_bits(test::prompt_logits(sw, prompt), base));

    // The KV cache is kept on a switch: the cached prefix stays as computed under a.
    sw.set_adapters({{a, 1.f}});
    sw.reset();
    sw.prefill(std::span<const Token>(prompt).first(prompt.size() - 1));
    sw.set_adapters({{b, 1.f}});
    sw.decode(prompt.back());
    const std::vector<float> mixed(sw.logits().begin(), sw.logits().end());
    CHECK(sw.position() == static_cast<int>(prompt.size()));
    float d_a = 0.f, d_b = 0.f;
    for (size_t v = 0; v < mixed.size(); ++v) {
        d_a = std::max(d_a, std::fabs(mixed[v] - la.back()[v]));
        d_b = std::max(d_b, std::fabs(mixed[v] - lb.back()[v]));
    }
    CHECK(d_a > 1e-3f);
    CHECK(d_b > 1e-3f);

    // Sessions with different adapters in one batched step: each gets its own update.
    Session pa(model), pb(model), pn(model);
    pa.set_adapters({{a, 1.f}});
    pb.set_adapters({{b, 1.f}});
    const std::vector<Token> head(prompt.begin(), prompt.end() - 1);
    for (Session* s : {&pa, &pb, &pn}) s->prefill(head);
    Session* sessions[] = {&pn, &pa, &pb};
    const Token last[] = {prompt.back(), prompt.back(), prompt.back()};
    Session::decode_batch(sessions, last);
    for (auto [s, want] : {std::pair{&pn, &base.back()}, {&pa, &la.back()}, {&pb, &lb.back()}}) {
        float d = 0.f;
        for (size_t v = 0; v < want->size(); ++v) d = std::max(d, std::fabs(s->logits()[v] - (*want)[v]));
        CHECK(d <= 1e-4f * scale_of({*want}));
    }
    // A batch of sessions sharing one adapter set, the first without any (whose workspace holds the step).
    Session pa2(model);
    pa2.set_adapters({{a, 1.f}});
    for (Session* s : {&pa, &pn}) s->rewind(static_cast<int>(head.size()));
    pa2.prefill(head);
    Session* same[] = {&pn, &pa, &pa2};
    Session::decode_batch(same, last);
    CHECK(std::equal(pa.logits().begin(), pa.logits().end(), pa2.logits().begin()));
}

TEST_CASE("LoRA: set_adapters refuses what does not fit and keeps its adapters") {
    const Model model = Model::load(hf("llama"));
    const Model other = Model::load(hf("llama"));
    const Adapter a = Adapter::load(model, hf("llama-lora"));
    const Adapter foreign = Adapter::load(other, hf("llama-lora"));
    Session s(model);
    s.set_adapters({{a, 0.5f}});
    using test::status_of;
    CHECK(status_of([&] { s.set_adapters({{foreign, 1.f}}); }) == Status::InvalidArgument);
    CHECK(status_of([&] { s.set_adapters({{a, std::nanf("")}}); }) == Status::InvalidArgument);
    CHECK(status_of([&] { s.set_adapters({{a, INFINITY}}); }) == Status::InvalidArgument);
    CHECK(status_of([&] { s.set_adapters({{a, 1e6f}}); }) == Status::InvalidArgument);
    CHECK(status_of([&] { s.set_adapters({{a, 1.f}, {a, 2.f}}); }) == Status::InvalidArgument);
    std::vector<AdapterScale> many(65, AdapterScale{a, 1.f});
    CHECK(status_of([&] { s.set_adapters(many); }) == Status::InvalidArgument);
    REQUIRE(s.adapters().size() == 1);
    CHECK(s.adapters()[0].scale == 0.5f);
    // An adapter keeps its model alive; a session outlives the Adapter object it was given.
    {
        const Adapter tmp = Adapter::load(model, hf("llama-lora2"));
        s.set_adapters({{tmp, 1.f}});
    }
    s.prefill(std::vector<Token>{1, 2, 3});
    CHECK(s.adapters()[0].adapter.rank() == 8);
}

namespace {

using test::status_of;

// The llama adapter's GGUF file, rewritten after `edit` changes its keys or tensors.
struct GgufAdapter {
    struct Tensor {
        std::string name;
        tensor::TensorType type;
        std::vector<int64_t> shape;
        std::vector<uint8_t> data;
    };
    std::vector<std::pair<std::string, gguf::Value>> kv;
    std::vector<Tensor> tensors;

    GgufAdapter() {
        const gguf::File f = gguf::File::open(hf("llama-lora/adapter.gguf"));
        for (const auto& [k, v] : f.metadata())
            if (k != "general.alignment") kv.emplace_back(k, v);
        for (const auto& t : f.tensors())
            tensors.push_back({t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                               std::vector<uint8_t>(t.data, t.data + t.n_bytes)});
    }
    void set(const std::string& key, gguf::Value v) {
        std::erase_if(kv, [&](const auto& p) { return p.first == key; });
        kv.emplace_back(key, std::move(v));
    }
    Tensor& tensor(const std::string& name) {
        for (Tensor& t : tensors)
            if (t.name == name) return t;
        FAIL("no tensor " << name);
        return tensors[0];
    }
    std::string write(const std::string& tag) const {
        gguf::Writer w;
        for (const auto& [k, v] : kv) w.set(k, v);
        for (const Tensor& t : tensors) w.add_tensor(t.name, t.type, t.shape, t.data.data(), t.data.size());
        const std::string path = test::temp_path("lora-" + tag + ".gguf");
        w.write(path);
        return path;
    }
};

// A copy of a PEFT folder in the temporary folder, with adapter_config.json changed by `edit`.
struct PeftCopy {
    std::string path;
    PeftCopy(const std::string& tag, const std::function<void(json&)>& edit) : path(test::temp_path("lora-" + tag)) {
        fs::remove_all(path);
        fs::create_directories(path);
        fs::copy_file(hf("llama-lora/adapter_model.safetensors"), path + "/adapter_model.safetensors");
        json cfg = json::parse(std::ifstream(hf("llama-lora/adapter_config.json")));
        edit(cfg);
        std::ofstream(path + "/adapter_config.json") << cfg.dump();
    }
    ~PeftCopy() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("LoRA: hostile and mismatched adapters end in ember::Error") {
    const Model model = Model::load(hf("llama"));
    auto load = [&](const std::string& path) { return status_of([&] { (void)Adapter::load(model, path); }); };
    REQUIRE(load(GgufAdapter().write("good")) == Status::Ok);

    // Made for another model: the qwen3 adapters on a llama model, an architecture key that differs.
    CHECK(load(hf("qwen3-lora/adapter.gguf")) == Status::InvalidArgument);
    CHECK(load(hf("qwen3-lora")) == Status::InvalidArgument);
    const Model qwen = Model::load(hf("qwen3"));
    CHECK(status_of([&] { (void)Adapter::load(qwen, hf("llama-lora")); }) == Status::InvalidArgument);
    CHECK(status_of([&] { (void)Adapter::load(qwen, hf("llama-lora/adapter.gguf")); }) == Status::InvalidArgument);
    {
        GgufAdapter g;
        g.set("general.architecture", gguf::Value::string("qwen3"));
        CHECK(load(g.write("arch")) == Status::InvalidArgument);
    }
    // Not an adapter: a model file, another adapter type, a bad alpha.
    CHECK(load(test::testdata("models/stories260K.gguf")) == Status::BadFile);
    {
        GgufAdapter g;
        g.set("adapter.type", gguf::Value::string("control_vector"));
        CHECK(load(g.write("type")) == Status::Unsupported);
        GgufAdapter n;
        n.set("adapter.lora.alpha", gguf::Value::f32(std::nanf("")));
        CHECK(load(n.write("alpha")) == Status::BadFile);
        GgufAdapter s;
        s.set("adapter.lora.alpha", gguf::Value::string("8"));
        CHECK(load(s.write("alpha-str")) == Status::BadFile);
    }
    // Tensors: a lora_a without its lora_b, ranks that disagree, rank 0, a shape the model does not have,
    // a tensor the model lacks, one LoRA cannot change, an unknown suffix.
    {
        GgufAdapter g;
        std::erase_if(g.tensors, [](const auto& t) { return t.name == "blk.1.attn_q.weight.lora_b"; });
        CHECK(load(g.write("missing-b")) == Status::BadFile);
    }
    {
        GgufAdapter g;
        auto& b = g.tensor("blk.0.ffn_up.weight.lora_b");  // [4, 128] → [2, 256]: same bytes, rank 2
        b.shape = {2, 256};
        CHECK(load(g.write("rank-mismatch")) == Status::BadFile);
    }
    {
        GgufAdapter g;
        auto& a = g.tensor("blk.0.ffn_up.weight.lora_a");
        auto& b = g.tensor("blk.0.ffn_up.weight.lora_b");
        a.shape = {64, 0};
        a.data.clear();
        b.shape = {0, 128};
        b.data.clear();
        CHECK(load(g.write("rank0")) == Status::BadFile);
    }
    {
        GgufAdapter g;
        auto& a = g.tensor("blk.0.ffn_up.weight.lora_a");  // [64, 4] → [32, 8]: n_in 32 for a 64-wide model
        auto& b = g.tensor("blk.0.ffn_up.weight.lora_b");  // [4, 128] → [8, 64]
        a.shape = {32, 8};
        b.shape = {8, 64};
        CHECK(load(g.write("shape")) == Status::InvalidArgument);
    }
    {
        GgufAdapter g;
        for (auto& t : g.tensors)
            if (t.name.starts_with("blk.1.")) t.name.replace(4, 1, "7");  // a layer the model lacks
        CHECK(load(g.write("layer")) == Status::InvalidArgument);
    }
    for (const char* name : {"token_embd.weight", "blk.0.attn_norm.weight"}) {
        GgufAdapter g;
        for (auto& t : g.tensors)
            if (t.name.starts_with("blk.0.ffn_up.weight.")) t.name = name + t.name.substr(std::string("blk.0.ffn_up.weight").size());
        CHECK(load(g.write("target")) == Status::Unsupported);
    }
    {
        GgufAdapter g;
        g.tensors[0].name += "x";
        CHECK(load(g.write("suffix")) == Status::BadFile);
        GgufAdapter n;
        n.tensors.push_back({"blk.0.attn_norm.weight", tensor::TensorType::F32, {64}, std::vector<uint8_t>(256)});
        CHECK(load(n.write("norm")) == Status::Unsupported);
        GgufAdapter e;
        e.tensors.clear();
        CHECK(load(e.write("empty")) == Status::BadFile);
    }
    // Truncated files: the GGUF adapter and the PEFT weights.
    {
        const std::string good = test::read_file(hf("llama-lora/adapter.gguf"));
        for (size_t keep : {size_t{0}, size_t{10}, good.size() / 2, good.size() - 1}) {
            const std::string path = test::temp_path("lora-cut.gguf");
            std::ofstream(path, std::ios::binary | std::ios::trunc).write(good.data(), static_cast<std::streamsize>(keep));
            CAPTURE(keep);
            CHECK(load(path) == Status::BadFile);
        }
        PeftCopy p("cut", [](json&) {});
        const std::string st = test::read_file(p.path + "/adapter_model.safetensors");
        std::ofstream(p.path + "/adapter_model.safetensors", std::ios::binary | std::ios::trunc)
            .write(st.data(), static_cast<std::streamsize>(st.size() - 100));
        CHECK(load(p.path) == Status::BadFile);
    }
    // adapter_config.json: huge or zero rank claims, options ember does not run, not JSON, absent.
    CHECK(load(PeftCopy("ok", [](json&) {}).path) == Status::Ok);
    CHECK(load(PeftCopy("r-huge", [](json& c) { c["r"] = 1000000000; }).path) == Status::BadFile);
    CHECK(load(PeftCopy("r-8", [](json& c) { c["r"] = 8; }).path) == Status::BadFile);
    CHECK(load(PeftCopy("r-0", [](json& c) { c["r"] = 0; }).path) == Status::BadFile);
    CHECK(load(PeftCopy("alpha", [](json& c) { c["lora_alpha"] = "eight"; }).path) == Status::BadFile);
    CHECK(load(PeftCopy("dora", [](json& c) { c["use_dora"] = true; }).path) == Status::Unsupported);
    CHECK(load(PeftCopy("bias", [](json& c) { c["bias"] = "all"; }).path) == Status::Unsupported);
    CHECK(load(PeftCopy("save", [](json& c) { c["modules_to_save"] = {"lm_head"}; }).path) == Status::Unsupported);
    CHECK(load(PeftCopy("type", [](json& c) { c["peft_type"] = "IA3"; }).path) == Status::Unsupported);
    {
        PeftCopy p("nojson", [](json&) {});
        std::ofstream(p.path + "/adapter_config.json", std::ios::trunc) << "{\"r\": 4,";
        CHECK(load(p.path) == Status::BadFile);
        fs::remove(p.path + "/adapter_config.json");
        CHECK(load(p.path) == Status::Io);
    }
    CHECK(load(test::temp_path("no-such-adapter")) == Status::Io);
}

TEST_CASE("LoRA: rsLoRA scales by alpha / sqrt(r)") {
    // The same tensors read with use_rslora: alpha / √r = 8 / 2 = 4 instead of alpha / r = 2, i.e. the plain
    // adapter at scale 2.
    const Model model = Model::load(hf("llama"));
    const auto prompt = golden_of(hf("llama-lora"))["prompt_ids"].get<std::vector<Token>>();
    const Adapter plain = Adapter::load(model, hf("llama-lora"));
    PeftCopy rs("rslora", [](json& c) { c["use_rslora"] = true; });
    const Adapter rslora = Adapter::load(model, rs.path);
    Session s(model);
    s.set_adapters({{plain, 2.f}});
    const auto want = test::prompt_logits(s, prompt);
    s.set_adapters({{rslora, 1.f}});
    CHECK(max_diff(test::prompt_logits(s, prompt), want) <= 1e-5f * scale_of(want));
}
