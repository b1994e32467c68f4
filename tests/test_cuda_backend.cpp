// The CUDA backend against the CPU backend (and, for matmul, against exact math): every op and weight type
// on random data of awkward sizes, with normalized-mean-squared-error thresholds per op and type as
// llama.cpp's test-backend-ops uses (each threshold says where its size comes from); whole models with
// backend "cuda" against "cpu"; bad input as ember::Error.
//
// Two ctests (tests/CMakeLists.txt): cuda_backend runs the cases that need no GPU (the backend registered,
// a clean error for "cuda" without a device, "auto" falling back to the CPU); cuda_backend_gpu runs the
// "gpu: " cases, and without a visible CUDA device prints one line and exits 77, which ctest counts as
// skipped (EMBER_REQUIRE_CUDA=1 makes that a failure, for machines that have a GPU).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "ember.h"
#include "ember/ember.hpp"
#include "tensor/dequantize.hpp"
#include "tensor/fp16.hpp"
#include "tensor/quantize.hpp"
#include "testdata.hpp"

using namespace ember;
using namespace ember::backend;
using ember::tensor::TensorType;

namespace {

bool cuda_usable() {
    const auto names = available_backends();
    return std::find(names.begin(), names.end(), "cuda") != names.end();
}

// Every "gpu: " case starts here: the whole process ends as skipped when there is no device.
void require_gpu() {
    if (cuda_usable()) return;
    if (std::getenv("EMBER_REQUIRE_CUDA")) {
        std::fprintf(stderr, "FAILED: no CUDA device, and EMBER_REQUIRE_CUDA is set\n");
        std::exit(1);
    }
    std::fprintf(stderr, "no CUDA device: skipped (the CUDA backend's op and model tests need a GPU)\n");
    std::fflush(stderr);
    std::exit(test::kSkipped);
}

// One device with a stream, and the buffers made on it.
struct Side {
    std::unique_ptr<Device> dev;
    std::unique_ptr<Stream> stream;
    std::vector<std::unique_ptr<Buffer>> keep;

    explicit Side(const std::string& name) : dev(create_device(name)), stream(dev->stream({2})) {}

    Tensor make(TensorType type, int64_t ne0, int64_t ne1) {
        Tensor t;
        t.type = type;
        t.ne = {ne0, ne1, 1, 1};
        keep.push_back(dev->alloc(t.n_bytes()));
        t.data = keep.back()->data();
        return t;
    }
    Tensor upload_bytes(TensorType type, int64_t ne0, int64_t rows, const std::vector<uint8_t>& bytes) {
        Tensor t = make(type, ne0, rows);
        REQUIRE(bytes.size() == t.n_bytes());
        stream->write(t, bytes.data(), bytes.size());
        return t;
    }
    Tensor upload(const std::vector<float>& v, int64_t ne0) {
        std::vector<uint8_t> bytes(v.size() * 4);
        std::memcpy(bytes.data(), v.data(), bytes.size());
        return upload_bytes(TensorType::F32, ne0, static_cast<int64_t>(v.size()) / ne0, bytes);
    }
    std::vector<float> download(const Tensor& t) {
        std::vector<float> v(static_cast<size_t>(t.n_elements()));
        stream->read(t, v.data(), v.size() * 4);
        return v;
    }
    std::vector<uint8_t> download_bytes(const Tensor& t) {
        std::vector<uint8_t> v(t.n_bytes());
        stream->read(t, v.data(), v.size());
        return v;
    }
};

struct Both {
    Side cpu{"cpu"}, gpu{"cuda"};
};

using test::nmse;
using test::randn;

std::vector<uint8_t> quantized(const std::vector<float>& v, int64_t ne0, TensorType type) {
    const size_t rb = tensor::row_bytes(type, ne0), rows = v.size() / static_cast<size_t>(ne0);
    std::vector<uint8_t> q(rb * rows);
    for (size_t r = 0; r < rows; ++r) tensor::quantize_row(type, v.data() + r * ne0, q.data() + r * rb, ne0);
    return q;
}
std::vector<float> dequantized(const std::vector<uint8_t>& q, int64_t ne0, int64_t rows, TensorType type) {
    const size_t rb = tensor::row_bytes(type, ne0);
    std::vector<float> out(static_cast<size_t>(ne0 * rows));
    for (int64_t r = 0; r < rows; ++r) tensor::dequantize_row(type, q.data() + r * rb, out.data() + r * ne0, ne0);
    return out;
}

const TensorType kWeightTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
                                   TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::MXFP4, TensorType::Q2_K,
                                   TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

}  // namespace

TEST_CASE("the cuda backend is registered; without a device \"cuda\" is a clean error and \"auto\" the CPU") {
    const auto built = ember::backends();
    CHECK(std::find(built.begin(), built.end(), "cuda") != built.end());
    ModelParams cuda_params, auto_params;
    cuda_params.backend = "cuda";
    if (cuda_usable()) {
        MESSAGE("a CUDA device is visible: " << create_device("cuda")->description());
        CHECK(create_device("auto")->name() == "cuda");
        CHECK(Model::load(test::testdata("models/stories260K.gguf"), cuda_params).backend() == "cuda");
        CHECK(Model::load(test::testdata("models/stories260K.gguf"), auto_params).backend() == "cuda");
        return;
    }
    MESSAGE("no CUDA device visible: checking the fallbacks");
    try {
        create_device("cuda");
        FAIL("create_device(\"cuda\") without a device did not throw");
    } catch (const Error& e) {
        CHECK(e.status() == Status::Unsupported);
        CHECK(std::string(e.what()).find("cuda") != std::string::npos);
    }
    try {
        (void)Model::load(test::testdata("models/stories260K.gguf"), cuda_params);
        FAIL("loading with backend \"cuda\" without a device did not throw");
    } catch (const Error& e) {
        CHECK(e.status() == Status::Unsupported);
    }
    CHECK(create_device("auto")->name() == "cpu");
    // The C ABI says the same with a status code.
    ember_model_params cp;
    REQUIRE(ember_model_params_init(&cp) == EMBER_OK);
    cp.backend = "cuda";
    ember_model* cm = nullptr;
    CHECK(ember_model_load(test::testdata("models/stories260K.gguf").c_str(), &cp, &cm) == EMBER_ERR_UNSUPPORTED);
    CHECK(cm == nullptr);
    CHECK(std::string(ember_last_error()).find("cuda") != std::string::npos);
    const Model m = Model::load(test::testdata("models/stories260K.gguf"), auto_params);
    CHECK(m.backend() == "cpu");
    Session s(m);
    s.prefill(m.tokenizer().encode("Once upon a time", true, false));
    CHECK(s.logits().size() == static_cast<size_t>(m.n_vocab()));
}

// Weights through Device::weight (the upload a model's load does) on both sides; the same activations.
// Against the CPU: 5e-4, llama.cpp's threshold for quantized matmuls. The CPU rounds activations to 8 bits
// for quantized weights (error ~d/√12 an element with d = amax/127 of a block: NMSE ~2e-5 for 32-element
// blocks, ~4e-5 for Q8_K's 256), to BF16 for BF16 (~5e-6) and to F16 for F16 (~8e-8); the CUDA kernels keep
// F32 activations. Against exact math (the dequantized weights times the activations, in double): the
// kernels decode the same weights and differ by float accumulation only (~1e-12 over these lengths), so
// 1e-9 catches any element, scale or block decoded wrong (one bad element of K moves NMSE by ~1/K).
TEST_CASE("gpu: matmul, every weight type, awkward shapes, GEMV and tiled paths") {
    require_gpu();
    Both b;
    struct Shape { int64_t K, N, T; };
    // T ≤ 8: one warp a row (GEMV); more: 64×64 tiles, with partial tiles in both directions.
    const Shape shapes[] = {{256, 1, 1}, {512, 37, 1}, {256, 19, 3}, {768, 33, 8}, {512, 70, 9},
                            {1024, 129, 67}, {256, 5, 130}, {4096, 17, 2}, {14336, 9, 1}, {2304, 65, 17}};
    uint32_t seed = 100;
    for (TensorType type : kWeightTypes)
        for (const Shape& sh : shapes) {
            if (sh.K % tensor::info(type).block_size) continue;
            const std::string name(tensor::type_name(type));
            CAPTURE(name);
            CAPTURE(sh.K);
            CAPTURE(sh.N);
            CAPTURE(sh.T);
            const auto wv = randn(static_cast<size_t>(sh.K * sh.N), ++seed), xv = randn(static_cast<size_t>(sh.K * sh.T), ++seed);
            std::vector<uint8_t> wq = quantized(wv, sh.K, type);
            Tensor host;
            host.type = type;
            host.ne = {sh.K, sh.N, 1, 1};
            host.data = wq.data();
            std::vector<float> got[2];
            int side = 0;
            for (Side* s : {&b.cpu, &b.gpu}) {
                const Tensor w = s->dev->weight(host, false);
                Tensor x = s->upload(xv, sh.K), out = s->make(TensorType::F32, sh.N, sh.T);
                s->stream->matmul(w, x, out);
                got[side++] = s->download(out);
            }
            const auto wd = dequantized(wq, sh.K, sh.N, type);
            std::vector<double> exact(static_cast<size_t>(sh.N * sh.T));
            for (int64_t t = 0; t < sh.T; ++t)
                for (int64_t n = 0; n < sh.N; ++n) {
                    double s = 0;
                    for (int64_t k = 0; k < sh.K; ++k) s += double(wd[n * sh.K + k]) * xv[t * sh.K + k];
                    exact[t * sh.N + n] = s;
                }
            const double to_cpu = nmse(got[1], got[0]), to_exact = nmse(got[1], exact);
            CAPTURE(to_cpu);
            CAPTURE(to_exact);
            const double cpu_tol = type == TensorType::F32 ? 1e-10 : type == TensorType::F16 ? 1e-6
                                 : type == TensorType::BF16 ? 5e-5 : 5e-4;
            CHECK(to_cpu < cpu_tol);
            CHECK(to_exact < 1e-9);
        }
}

// get_rows decodes with the reference dequantizers' arithmetic (no fused multiply-adds), so every value
// equals the CPU's bit for bit; ids repeat and come in any order. Then ids out of range are an error that
// leaves the stream usable.
TEST_CASE("gpu: get_rows decodes every type exactly as the CPU; bad ids are errors") {
    require_gpu();
    Both b;
    for (TensorType type : kWeightTypes) {
        const std::string name(tensor::type_name(type));
        CAPTURE(name);
        const int64_t E = 768, V = 11;
        const auto table = randn(static_cast<size_t>(E * V), 7, 3.f);
        const auto bytes = quantized(table, E, type);
        const std::vector<int32_t> ids = {10, 0, 3, 3, 7, 10, 1};
        const int64_t n = static_cast<int64_t>(ids.size());
        std::vector<float> got[2];
        int side = 0;
        for (Side* s : {&b.cpu, &b.gpu}) {
            Tensor t = s->upload_bytes(type, E, V, bytes), out = s->make(TensorType::F32, E, n);
            s->stream->get_rows(t, ids.data(), n, out);
            got[side++] = s->download(out);
        }
        CHECK(got[0] == got[1]);
    }
    Tensor t = b.gpu.upload(randn(64 * 4, 8), 64), out = b.gpu.make(TensorType::F32, 64, 2);
    for (int32_t bad : {-1, 4, 1 << 30}) {
        const int32_t ids[2] = {0, bad};
        CHECK_THROWS_AS(b.gpu.stream->get_rows(t, ids, 2, out), Error);
    }
    const int32_t ok[2] = {3, 1};
    b.gpu.stream->get_rows(t, ok, 2, out);
    CHECK(b.gpu.download(out).size() == 128);
}

// Float element ops: same formulas, so NMSE ~1e-14 (a last-bit difference of exp/tanh here and there);
// 1e-10 still catches any wrong element (one in 10⁴ moves NMSE by ~1e-4). rms_norm sums squares in double
// on both sides. GELU's table form rounds input and result to F16 on both sides.
TEST_CASE("gpu: rms_norm, add, bias add, scale, softcap, swiglu, geglu, add_rows_scaled") {
    require_gpu();
    Both b;
    const int64_t E = 1000, R = 7;  // rows longer than a block of threads, not a multiple of it
    const auto xv = randn(static_cast<size_t>(E * R), 1, 4.f), wv = randn(static_cast<size_t>(E), 2), yv = randn(xv.size(), 3);
    auto run = [&](const std::function<void(Side&, Tensor&, Tensor&, Tensor&, Tensor&)>& op) {
        std::vector<float> got[2];
        int side = 0;
        for (Side* s : {&b.cpu, &b.gpu}) {
            Tensor x = s->upload(xv, E), y = s->upload(yv, E), w = s->upload(wv, E), out = s->make(TensorType::F32, E, R);
            op(*s, x, y, w, out);
            got[side++] = s->download(out);
        }
        return nmse(got[1], got[0]);
    };
    CHECK(run([](Side& s, Tensor& x, Tensor&, Tensor& w, Tensor& out) { s.stream->rms_norm(x, w, 1e-5f, out); }) < 1e-12);
    CHECK(run([](Side& s, Tensor& x, Tensor&, Tensor& w, Tensor& out) {  // in place, as the post-norms run
        s.stream->rms_norm(x, w, 1e-6f, x);
        s.stream->scale(x, 1.f, out);
    }) < 1e-12);
    CHECK(run([](Side& s, Tensor& x, Tensor& y, Tensor&, Tensor& out) { s.stream->add(x, y, out); }) == 0);
    CHECK(run([](Side& s, Tensor& x, Tensor&, Tensor& w, Tensor& out) { s.stream->add(x, w, out); }) == 0);  // bias
    CHECK(run([](Side& s, Tensor& x, Tensor&, Tensor&, Tensor& out) { s.stream->scale(x, -0.37f, out); }) == 0);
    CHECK(run([](Side& s, Tensor& x, Tensor&, Tensor&, Tensor& out) { s.stream->softcap(x, 2.5f, out); }) < 1e-12);
    CHECK(run([](Side& s, Tensor& x, Tensor& y, Tensor&, Tensor& out) { s.stream->swiglu(x, y, out); }) < 1e-10);
    CHECK(run([](Side& s, Tensor& x, Tensor& y, Tensor&, Tensor& out) { s.stream->geglu(x, y, out); }) < 1e-10);
    CHECK(run([](Side& s, Tensor& x, Tensor& y, Tensor&, Tensor& out) {  // rows 0..2 of y into rows 6, 0, 3
        const int32_t ids[3] = {6, 0, 3};
        const float w[3] = {0.25f, -1.5f, 2.f};
        s.stream->scale(x, 1.f, out);
        s.stream->add_rows_scaled(y, ids, w, 3, out);
    }) < 1e-12);
    // GELU and SiLU far out and at the edges of the table.
    const std::vector<float> far = {-1000.f, -100.f, -88.5f, -10.f, -9.99f, -0.f, 0.f, 9.99f, 10.f, 20.f, 100.f, 1000.f};
    std::vector<float> got[2][2];
    int side = 0;
    for (Side* s : {&b.cpu, &b.gpu}) {
        const int64_t n = static_cast<int64_t>(far.size());
        Tensor g = s->upload(far, n), u = s->upload(std::vector<float>(far.size(), 1.5f), n), out = s->make(TensorType::F32, n, 1);
        s->stream->geglu(g, u, out);
        got[side][0] = s->download(out);
        s->stream->swiglu(g, u, out);
        got[side][1] = s->download(out);
        ++side;
    }
    CHECK(got[0][0] == got[1][0]);
    CHECK(nmse(got[1][1], got[0][1]) < 1e-12);
}

// Angles are built from the same float products on both sides; cos/sin may differ in the last bit (NMSE
// ~1e-14). Positions reach 5000, where one ulp of the angle is ~5e-4 rad: 1e-9 allows that, and a wrong
// pairing or frequency still moves NMSE by ~1e-1.
TEST_CASE("gpu: rope, normal and NeoX pairs, partial rotation, frequency factors, YaRN") {
    require_gpu();
    Both b;
    struct Case { int hd, n_rot; RopeMode mode; bool factors; float ext; float freq_scale; int pos0; };
    const Case cases[] = {{64, 64, RopeMode::Normal, false, 0.f, 1.f, 0},     {64, 64, RopeMode::NeoX, false, 0.f, 1.f, 17},
                          {80, 32, RopeMode::Normal, false, 0.f, 1.f, 5},     {128, 128, RopeMode::NeoX, true, 0.f, 0.25f, 4990},
                          {128, 96, RopeMode::Normal, true, 0.f, 1.f, 300},   {64, 64, RopeMode::NeoX, false, 1.f, 0.25f, 1000},
                          {256, 256, RopeMode::Normal, true, 0.5f, 0.5f, 77}, {8, 8, RopeMode::Normal, false, 0.f, 1.f, 3}};
    for (const Case& c : cases) {
        CAPTURE(c.hd);
        CAPTURE(c.n_rot);
        CAPTURE(c.pos0);
        const int heads = 5, T = 9;
        const auto xv = randn(static_cast<size_t>(c.hd * heads * T), 11);
        std::vector<float> ffv(static_cast<size_t>(c.n_rot / 2));
        for (size_t i = 0; i < ffv.size(); ++i) ffv[i] = 1.f + 0.37f * static_cast<float>(i % 5);
        std::vector<float> got[2];
        int side = 0;
        for (Side* s : {&b.cpu, &b.gpu}) {
            Tensor x = s->upload(xv, c.hd * heads), ff = s->upload(ffv, c.n_rot / 2);
            RopeParams p;
            p.n_rot = c.n_rot;
            p.freq_base = 500000.f;
            p.freq_scale = c.freq_scale;
            p.mode = c.mode;
            if (c.factors) p.freq_factors = ff;
            p.ext_factor = c.ext;
            p.attn_factor = c.ext != 0.f ? 0.9f : 1.f;
            p.n_ctx_orig = 256;
            s->stream->rope(x, c.hd, c.pos0, p);
            got[side++] = s->download(x);
        }
        CHECK(nmse(got[1], got[0]) < 1e-9);
    }
}

// The caches are stored F32 → F16 with round to nearest even on both sides: equal bit for bit. Attention
// reads the same F16 keys and values and rounds q to F16 the same way; what differs is float summation
// order and exp's last bit (NMSE ~1e-13); 1e-7 is far below what one key too many or too few changes.
TEST_CASE("gpu: kv_store and attention: GQA, windows, softcap, head sizes, several sequences") {
    require_gpu();
    Both b;
    struct Shape { int hd, n_head, n_kv, T, n_past; };
    struct Case { int window; float softcap; };
    const int n_ctx = 300;
    for (Shape sh : {Shape{64, 4, 2, 1, 0}, Shape{64, 8, 2, 1, 250}, Shape{80, 6, 1, 21, 5}, Shape{128, 8, 8, 9, 40},
                     Shape{256, 4, 1, 3, 100}, Shape{8, 8, 4, 13, 0}, Shape{96, 2, 2, 40, 200}})
        for (Case c : {Case{0, 0.f}, Case{7, 0.f}, Case{0, 30.f}, Case{64, 50.f}}) {
            CAPTURE(sh.hd);
            CAPTURE(sh.n_head);
            CAPTURE(sh.n_kv);
            CAPTURE(sh.T);
            CAPTURE(sh.n_past);
            CAPTURE(c.window);
            CAPTURE(c.softcap);
            const int kvw = sh.hd * sh.n_kv, rows = sh.n_past + sh.T;
            const auto kv_k = randn(static_cast<size_t>(kvw * rows), 8), kv_v = randn(kv_k.size(), 9);
            const auto qv = randn(static_cast<size_t>(sh.hd * sh.n_head * sh.T), 10, 2.f);
            std::vector<float> got[2];
            std::vector<uint8_t> caches[2];
            int side = 0;
            for (Side* s : {&b.cpu, &b.gpu}) {
                Tensor kc = s->make(TensorType::F16, kvw, n_ctx), vc = s->make(TensorType::F16, kvw, n_ctx);
                Tensor kin = s->upload(kv_k, kvw), vin = s->upload(kv_v, kvw);
                // Stored in two steps, as a prompt then its continuation.
                Tensor k0 = kin, v0 = vin, k1 = kin, v1 = vin;
                k0.ne[1] = v0.ne[1] = sh.n_past;
                k1.ne[1] = v1.ne[1] = sh.T;
                k1.data = kin.row(sh.n_past);
                v1.data = vin.row(sh.n_past);
                if (sh.n_past) s->stream->kv_store(k0, v0, kc, vc, 0);
                s->stream->kv_store(k1, v1, kc, vc, sh.n_past);
                Tensor q = s->upload(qv, sh.hd * sh.n_head), out = s->make(TensorType::F32, sh.hd * sh.n_head, sh.T);
                AttentionParams p;
                p.n_head = sh.n_head;
                p.n_head_kv = sh.n_kv;
                p.head_dim = sh.hd;
                p.n_past = sh.n_past;
                p.scale = 1.f / std::sqrt(float(sh.hd));
                p.window = c.window;
                p.softcap = c.softcap;
                s->stream->attention(q, kc, vc, p, out);
                got[side] = s->download(out);
                // The rows written (the rest of the caches was never set).
                const auto kb = s->download_bytes(kc), vb = s->download_bytes(vc);
                const auto used = static_cast<ptrdiff_t>(kc.row_bytes()) * rows;
                caches[side].assign(kb.begin(), kb.begin() + used);
                caches[side].insert(caches[side].end(), vb.begin(), vb.begin() + used);
                ++side;
            }
            CHECK(caches[0] == caches[1]);
            CHECK(nmse(got[1], got[0]) < 1e-7);
        }

    // A batched step: sequences with their own caches and positions in one op, equal to each alone.
    const int hd = 64, n_head = 8, n_kv = 2;
    struct Seq { int n_past, count; };
    const std::vector<Seq> seqs{{7, 1}, {0, 3}, {120, 1}, {2, 9}, {31, 1}, {0, 0}};
    int rows = 0;
    for (const Seq& s : seqs) rows += s.count;
    const auto qv = randn(static_cast<size_t>(hd * n_head * rows), 20);
    std::vector<float> got[2];
    int side = 0;
    for (Side* s : {&b.cpu, &b.gpu}) {
        Tensor q = s->upload(qv, hd * n_head), out = s->make(TensorType::F32, hd * n_head, rows);
        std::vector<Tensor> kc, vc;
        std::vector<SequenceAttention> att;
        int first = 0;
        for (size_t i = 0; i < seqs.size(); ++i) {
            const int n = std::max(1, seqs[i].n_past + seqs[i].count);
            kc.push_back(s->make(TensorType::F16, hd * n_kv, 160));
            vc.push_back(s->make(TensorType::F16, hd * n_kv, 160));
            Tensor kin = s->upload(randn(static_cast<size_t>(hd * n_kv * n), 30 + uint32_t(i)), hd * n_kv);
            Tensor vin = s->upload(randn(static_cast<size_t>(hd * n_kv * n), 40 + uint32_t(i)), hd * n_kv);
            s->stream->kv_store(kin, vin, kc.back(), vc.back(), 0);
            att.push_back({first, seqs[i].count, seqs[i].n_past, nullptr, nullptr});
            first += seqs[i].count;
        }
        for (size_t i = 0; i < seqs.size(); ++i) att[i].k_cache = &kc[i], att[i].v_cache = &vc[i];
        AttentionParams p;
        p.n_head = n_head;
        p.n_head_kv = n_kv;
        p.head_dim = hd;
        p.scale = 0.125f;
        p.window = 16;
        s->stream->attention(q, att.data(), att.size(), p, out);
        got[side++] = s->download(out);
    }
    CHECK(nmse(got[1], got[0]) < 1e-7);
}

// A model run with backend "cuda" against "cpu": every prompt position's logits, then greedy decoding.
// Float models differ by summation order only (logit NMSE ~1e-10): 1e-6. Quantized weights: the CPU also
// rounds activations to 8 bits (see the matmul case), which moves these small random models' logits more:
// 2e-3. Greedy tokens must agree up to the first step where the CPU's top two logits are closer than
// `margin` (there either may win).
namespace {
void compare_model(const std::string& path, double tol, float margin) {
    CAPTURE(path);
    ModelParams pc, pg;
    pc.backend = "cpu";
    pg.backend = "cuda";
    const Model mc = Model::load(path, pc), mg = Model::load(path, pg);
    REQUIRE(mg.backend() == "cuda");
    SessionParams sp;
    sp.n_ctx = 256;
    sp.n_batch = 64;  // a 40-token prompt: one step of many tokens (tiled matmuls, prompt attention)
    Session sc(mc, sp), sg(mg, sp);
    auto prompt = mc.tokenizer().encode("Once upon a time, there was a little girl who lived in a village near the forest. "
                                        "She liked to play with her friends",
                                        true, false);
    if (prompt.size() > 40) prompt.resize(40);
    sc.prefill(prompt, true);
    sg.prefill(prompt, true);
    double worst = 0;
    for (int i = 0; i < static_cast<int>(prompt.size()); ++i) {
        const auto a = sc.logits_at(i), g = sg.logits_at(i);
        worst = std::max(worst, nmse(std::vector<float>(g.begin(), g.end()), std::vector<float>(a.begin(), a.end())));
    }
    CHECK(worst < tol);
    Sampler greedy = Sampler::greedy();
    int matched = 0, steps = 24;
    for (int i = 0; i < steps; ++i) {
        std::vector<float> l(sc.logits().begin(), sc.logits().end());
        const double step = nmse(std::vector<float>(sg.logits().begin(), sg.logits().end()), l);
        worst = std::max(worst, step);
        std::partial_sort(l.begin(), l.begin() + 2, l.end(), std::greater<float>());
        const Token tc = greedy.sample(sc.logits()), tg = greedy.sample(sg.logits());
        if (tc != tg) {
            CHECK_MESSAGE(l[0] - l[1] < margin, "greedy tokens part at step " << i << ": " << tc << " vs " << tg);
            break;
        }
        ++matched;
        sc.decode(tc);
        sg.decode(tg);
    }
    CHECK(worst < tol);
    MESSAGE(path << ": worst logit NMSE " << worst << ", greedy " << matched << "/" << steps << " tokens equal");
}
}  // namespace

TEST_CASE("gpu: whole models, backend cuda against cpu") {
    require_gpu();
    compare_model(test::testdata("models/stories260K.gguf"), 1e-6, 0.01f);           // F32, head size 8
    compare_model(test::testdata("models/llama-2-tiny-random.gguf"), 1e-6, 0.01f);   // F16
    compare_model(test::testdata("models/qwen3moe-mxfp4.gguf"), 2e-3, 0.05f);        // MoE: MXFP4 and Q8_0
    // The architecture fixtures, when present ($EMBER_TESTDATA/arch): every architecture and weight type.
    const char* env = std::getenv("EMBER_TESTDATA");
    const std::filesystem::path arch = std::filesystem::path(env ? env : EMBER_TESTDATA_DEFAULT) / "arch";
    if (!std::filesystem::is_directory(arch)) {
        MESSAGE("no " << arch.string() << ": the architecture fixtures were not compared");
        return;
    }
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(arch))
        if (e.path().extension() == ".gguf") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        const bool exact = f.find("-f32") != std::string::npos || f.find("-f16") != std::string::npos;
        compare_model(f, exact ? 1e-5 : 2e-3, exact ? 0.01f : 0.1f);
    }
}

// Several sessions stepped together (a server's batched decode) on the GPU equal the CPU's.
TEST_CASE("gpu: batched decode across sessions") {
    require_gpu();
    ModelParams pc, pg;
    pc.backend = "cpu";
    pg.backend = "cuda";
    const std::string path = test::testdata("models/stories260K.gguf");
    const Model mc = Model::load(path, pc), mg = Model::load(path, pg);
    SessionParams sp;
    sp.n_ctx = 128;
    std::vector<std::unique_ptr<Session>> cs, gs;
    const char* prompts[] = {"Once upon a time", "The little dog", "Lily and Tom went to the park and"};
    for (const char* p : prompts) {
        cs.push_back(std::make_unique<Session>(mc, sp));
        gs.push_back(std::make_unique<Session>(mg, sp));
        cs.back()->prefill(mc.tokenizer().encode(p, true, false));
        gs.back()->prefill(mg.tokenizer().encode(p, true, false));
    }
    std::vector<Session*> cp, gp;
    for (size_t i = 0; i < cs.size(); ++i) cp.push_back(cs[i].get()), gp.push_back(gs[i].get());
    const std::vector<Token> next = {10, 20, 30};
    Session::decode_batch(cp, next);
    Session::decode_batch(gp, next);
    for (size_t i = 0; i < cs.size(); ++i) {
        CAPTURE(i);
        const auto a = cs[i]->logits(), g = gs[i]->logits();
        CHECK(nmse(std::vector<float>(g.begin(), g.end()), std::vector<float>(a.begin(), a.end())) < 1e-6);
    }
}

TEST_CASE("gpu: bad input is an ember::Error, and the stream stays usable") {
    require_gpu();
    Side g("cuda");
    try {
        (void)g.dev->alloc(size_t{1} << 60);
        FAIL("a 2^60-byte allocation did not throw");
    } catch (const Error& e) {
        CHECK(e.status() == Status::OutOfMemory);
    }
    Tensor w = g.upload(randn(64 * 8, 1), 64), x = g.upload(randn(32 * 2, 2), 32), out = g.make(TensorType::F32, 8, 2);
    CHECK_THROWS_AS(g.stream->matmul(w, x, out), Error);  // K 64 against rows of 32
    Tensor q = g.make(TensorType::F32, 512, 1), kc = g.make(TensorType::F16, 512, 4), o = g.make(TensorType::F32, 512, 1);
    AttentionParams p;
    p.n_head = 1;
    p.n_head_kv = 1;
    p.head_dim = 512;
    try {
        g.stream->attention(q, kc, kc, p, o);
        FAIL("heads of 512 did not throw");
    } catch (const Error& e) {
        CHECK(e.status() == Status::Unsupported);
    }
    p.n_past = 4;  // past the cache
    p.head_dim = 256;
    p.n_head = 2;
    CHECK_THROWS_AS(g.stream->attention(q, kc, kc, p, o), Error);
    Tensor q8 = g.make(TensorType::Q8_K, 256, 1);
    CHECK_THROWS_AS(g.stream->matmul(q8, x, out), Error);
    CHECK_FALSE(g.dev->supports(TensorType::Q8_K));
    // The stream still works.
    Tensor x64 = g.upload(randn(64 * 2, 2), 64);
    g.stream->matmul(w, x64, out);
    CHECK(g.download(out).size() == 16);
    // A context no GPU holds is OutOfMemory before anything is allocated; token ids out of range are
    // InvalidArgument, as on the CPU.
    ModelParams mp;
    mp.backend = "cuda";
    const Model m = Model::load(test::testdata("models/stories260K.gguf"), mp);
    SessionParams huge;
    huge.n_ctx = 1 << 30;
    try {
        Session s(m, huge);
        FAIL("a 2^30-token context did not throw");
    } catch (const Error& e) {
        CHECK((e.status() == Status::OutOfMemory || e.status() == Status::InvalidArgument));
    }
    Session s(m);
    const std::vector<Token> bad = {1, m.n_vocab() + 5};
    try {
        s.prefill(bad);
        FAIL("a token id past the vocabulary did not throw");
    } catch (const Error& e) {
        CHECK(e.status() == Status::InvalidArgument);
    }
    s.prefill(m.tokenizer().encode("Once upon a time", true, false));
    CHECK(s.logits().size() == static_cast<size_t>(m.n_vocab()));
}
