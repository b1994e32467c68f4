// Every backend op against a plain double-precision reference written here (llama.cpp's test-backend-ops
// idea). Tolerances are normalized mean squared errors; each says where its size comes from.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <random>
#include <vector>

#include "backend/backend.hpp"
#include "cpu/kernels.hpp"
#include "ember/error.hpp"
#include "tensor/dequantize.hpp"
#include "tensor/fp16.hpp"
#include "tensor/quantize.hpp"
#include "testdata.hpp"

using namespace ember;
using namespace ember::backend;
using ember::tensor::TensorType;

namespace {

struct Fixture {
    std::unique_ptr<Device> dev = create_device(available_backends().front());
    std::unique_ptr<Stream> stream = dev->stream({2});
    std::vector<std::unique_ptr<Buffer>> keep;

    Tensor make(TensorType type, int64_t ne0, int64_t ne1) {
        Tensor t;
        t.type = type;
        t.ne = {ne0, ne1, 1, 1};
        keep.push_back(dev->alloc(t.n_bytes()));
        t.data = keep.back()->data();
        return t;
    }
    Tensor upload(const std::vector<float>& v, int64_t ne0, TensorType type = TensorType::F32) {
        const int64_t rows = static_cast<int64_t>(v.size()) / ne0;
        Tensor t = make(type, ne0, rows);
        std::vector<uint8_t> bytes(t.n_bytes());
        for (int64_t r = 0; r < rows; ++r) tensor::quantize_row(type, v.data() + r * ne0, bytes.data() + r * t.row_bytes(), ne0);
        stream->write(t, bytes.data(), bytes.size());
        return t;
    }
    std::vector<float> download(const Tensor& t) {
        std::vector<float> v(static_cast<size_t>(t.n_elements()));
        stream->read(t, v.data(), v.size() * 4);
        return v;
    }
};

using test::nmse;
using test::randn;

// Values as the device stores them: quantized then dequantized.
std::vector<float> stored(const std::vector<float>& v, int64_t ne0, TensorType type) {
    std::vector<uint8_t> q(tensor::row_bytes(type, ne0));
    std::vector<float> out(v.size());
    for (size_t r = 0; r < v.size() / static_cast<size_t>(ne0); ++r) {
        tensor::quantize_row(type, v.data() + r * ne0, q.data(), ne0);
        tensor::dequantize_row(type, q.data(), out.data() + r * ne0, ne0);
    }
    return out;
}

}  // namespace

TEST_CASE("matmul: every weight type against dequantized weights in double") {
    Fixture f;
    const int64_t K = 512, N = 37;
    const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
                                TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K,
                                TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
    for (TensorType type : types) {
        for (int64_t T : {1, 5}) {
            CAPTURE(tensor::type_name(type));
            CAPTURE(T);
            const auto wv = randn(static_cast<size_t>(K * N), 1), xv = randn(static_cast<size_t>(K * T), 2);
            Tensor w = f.upload(wv, K, type), x = f.upload(xv, K), out = f.make(TensorType::F32, N, T);
            f.stream->matmul(w, x, out);
            const auto wd = stored(wv, K, type);
            std::vector<double> ref(static_cast<size_t>(N * T));
            for (int64_t t = 0; t < T; ++t)
                for (int64_t n = 0; n < N; ++n) {
                    double s = 0;
                    for (int64_t k = 0; k < K; ++k) s += double(wd[n * K + k]) * xv[t * K + k];
                    ref[t * N + n] = s;
                }
            // Activations are rounded to the weights' partner format first: 8 bits (relative error
            // ~1/254 per element → NMSE ~2e-5 on a dot product), BF16 (~2^-9), F16 (~2^-12), F32 (none).
            const double tol = type == TensorType::F32 ? 1e-10 : type == TensorType::F16 ? 1e-6
                             : type == TensorType::BF16 ? 2e-5 : 2e-4;
            CHECK(nmse(f.download(out), ref) < tol);
        }
    }
}

// The CPU kernels (row kernels for a few tokens, packed-panel kernels from 2 to 8 tokens by type) against the same products in
// double: weights dequantized, activations rounded exactly as the backend rounds them
// (cpu::quantize_activations), so only the float accumulation order differs. Its error is a few float
// ulps of Σ|w·x| (block sums are exact integers); 1e-5·Σ|w·x| is far above that and far below what one wrong
// group of 4 elements changes (about 4/K of it). Shapes: one row, rows past a panel (8, 16), token counts
// that leave every tile remainder, and the 1B models' longest rows (8192).
TEST_CASE("matmul: CPU kernels against double on awkward shapes") {
    if (available_backends().front() != "cpu") return;
    Fixture f;
    const auto& cpu = cpu::cpu_features();
    MESSAGE("CPU kernels in use: " << (cpu.avx2 ? "AVX2 row and packed-panel kernels" : "portable reference (dequantize + dot)"));
    const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
                                TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K,
                                TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::MXFP4};
    struct Shape { int64_t K, N, T; };
    // K = 14336: the longest rows of the generated models (Llama-3.1-8B's ffn_down), once per tile path.
    const Shape shapes[] = {{256, 1, 1},  {256, 1, 8},    {512, 9, 2},   {512, 9, 4},  {512, 9, 5},
                            {512, 17, 8}, {768, 25, 13},  {256, 8, 31},  {8192, 9, 9}, {512, 16, 1},
                            {256, 24, 3}, {2048, 8, 5},   {14336, 8, 1}, {14336, 16, 4}, {14336, 9, 57}};
    uint32_t seed = 10;
    for (TensorType type : types)
        for (const Shape& sh : shapes) {
            const std::string name(tensor::type_name(type));
            CAPTURE(name);
            CAPTURE(sh.K);
            CAPTURE(sh.N);
            CAPTURE(sh.T);
            const auto wv = randn(static_cast<size_t>(sh.K * sh.N), ++seed), xv = randn(static_cast<size_t>(sh.K * sh.T), ++seed);
            Tensor w = f.upload(wv, sh.K, type), x = f.upload(xv, sh.K), out = f.make(TensorType::F32, sh.N, sh.T);
            f.stream->matmul(w, x, out);
            auto got = f.download(out);
            // The same weights handed to the device as a model's are: types with a repacked layout get a copy
            // in it (whole groups of 8 rows), which the matmul then uses; both results must be right.
            f.stream->matmul(f.dev->weight(w, false), x, out);
            const auto got_as_weight = f.download(out);
            got.insert(got.end(), got_as_weight.begin(), got_as_weight.end());
            const auto wd = stored(wv, sh.K, type);
            const TensorType at = cpu::activation_type(type);
            std::vector<uint8_t> xq(tensor::row_bytes(at, sh.K));
            std::vector<float> xd(static_cast<size_t>(sh.K));
            int bad = 0;
            for (int64_t t = 0; t < sh.T; ++t) {
                if (at == TensorType::F32) {
                    std::copy_n(xv.begin() + t * sh.K, sh.K, xd.begin());
                } else {
                    cpu::quantize_activations(at, xv.data() + t * sh.K, xq.data(), sh.K);
                    tensor::dequantize_row(at, xq.data(), xd.data(), sh.K);
                }
                for (int64_t n = 0; n < sh.N; ++n) {
                    double s = 0, a = 0;
                    for (int64_t k = 0; k < sh.K; ++k) {
                        s += double(wd[n * sh.K + k]) * xd[k];
                        a += std::abs(double(wd[n * sh.K + k]) * xd[k]);
                    }
                    if (at == TensorType::Q8_1) {
                        // Q4_1/Q5_1: each block's min meets the activations through the block's stored
                        // s = d·Σq, rounded to F16 (llama.cpp's arithmetic), not through Σx itself.
                        const auto* wrow = static_cast<const uint8_t*>(w.row(n));
                        const size_t wb = tensor::info(type).block_bytes, xb = tensor::info(at).block_bytes;
                        for (int64_t i = 0; i < sh.K / 32; ++i) {
                            uint16_t m, sx;
                            std::memcpy(&m, wrow + i * wb + 2, 2);
                            std::memcpy(&sx, xq.data() + i * xb + 2, 2);
                            double xsum = 0;
                            for (int k = 0; k < 32; ++k) xsum += xd[i * 32 + k];
                            s += double(tensor::fp16_to_f32(m)) * (tensor::fp16_to_f32(sx) - xsum);
                        }
                    }
                    for (const size_t at_run : {size_t{0}, static_cast<size_t>(sh.N * sh.T)}) {
                        const float g = got[at_run + static_cast<size_t>(t * sh.N + n)];
                        if (std::abs(g - s) > 1e-5 * a + 1e-6 && bad++ < 3)
                            FAIL_CHECK((at_run ? "as a weight: " : "") << "token " << t << " row " << n << ": " << g << " vs " << s);
                    }
                }
            }
            CHECK(bad == 0);
        }
}

TEST_CASE("activations: the CPU's Q8_K rounding equals the scalar reference byte for byte") {
    std::vector<std::vector<float>> rows;
    for (uint32_t seed = 1; seed <= 20; ++seed) rows.push_back(randn(1024, 100 + seed, seed % 2 ? 1.f : 1e-3f));
    std::vector<float> ties(512);
    for (size_t i = 0; i < ties.size(); ++i) ties[i] = static_cast<float>(static_cast<int>(i % 255) - 127) * 0.5f;
    ties[300] = -63.5f;  // the largest magnitude twice, with both signs: the first one sets the scale
    ties[301] = 63.5f;
    rows.push_back(ties);
    rows.push_back(std::vector<float>(256, 0.f));
    std::vector<float> one_hot(256, 0.f);
    one_hot[77] = -3.f;
    rows.push_back(one_hot);
    for (const auto& row : rows) {
        const int64_t n = static_cast<int64_t>(row.size());
        std::vector<uint8_t> got(tensor::row_bytes(TensorType::Q8_K, n)), want(got.size());
        cpu::quantize_activations(TensorType::Q8_K, row.data(), got.data(), n);
        tensor::quantize_row(TensorType::Q8_K, row.data(), want.data(), n);
        CHECK(got == want);
    }
}

TEST_CASE("get_rows, rms_norm, add, swiglu, geglu") {
    Fixture f;
    const int64_t E = 64, V = 10, T = 3;
    const auto table = randn(static_cast<size_t>(E * V), 3);
    Tensor tq = f.upload(table, E, TensorType::Q8_0), x = f.make(TensorType::F32, E, T);
    const int32_t ids[T] = {7, 0, 7};
    f.stream->get_rows(tq, ids, T, x);
    const auto deq = stored(table, E, TensorType::Q8_0);
    const auto got = f.download(x);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < E; ++i) CHECK(got[t * E + i] == deq[ids[t] * E + i]);
    const int32_t bad[1] = {V};
    CHECK_THROWS_AS(f.stream->get_rows(tq, bad, 1, x), Error);

    const auto wv = randn(static_cast<size_t>(E), 4);
    Tensor w = f.upload(wv, E), h = f.make(TensorType::F32, E, T);
    f.stream->rms_norm(x, w, 1e-5f, h);
    std::vector<double> ref(static_cast<size_t>(E * T));
    for (int64_t t = 0; t < T; ++t) {
        double ss = 0;
        for (int64_t i = 0; i < E; ++i) ss += double(got[t * E + i]) * got[t * E + i];
        const double sc = 1.0 / std::sqrt(ss / E + 1e-5);
        for (int64_t i = 0; i < E; ++i) ref[t * E + i] = got[t * E + i] * sc * wv[i];
    }
    CHECK(nmse(f.download(h), ref) < 1e-12);  // float rounding only

    const auto a = randn(200, 5), b = randn(200, 6);
    Tensor ta = f.upload(a, 200), tb = f.upload(b, 200), o = f.make(TensorType::F32, 200, 1);
    f.stream->add(ta, tb, o);
    auto r = f.download(o);
    for (int i = 0; i < 200; ++i) CHECK(r[i] == a[i] + b[i]);
    // A one-row b is a bias added to every row.
    Tensor rows = f.upload(a, 20), bias = f.upload(std::vector<float>(b.begin(), b.begin() + 20), 20),
           sum = f.make(TensorType::F32, 20, 10);
    f.stream->add(rows, bias, sum);
    const auto bs = f.download(sum);
    for (int i = 0; i < 200; ++i) CHECK(bs[i] == a[i] + b[i % 20]);
    f.stream->swiglu(ta, tb, o);
    r = f.download(o);
    std::vector<double> sw(200), gg(200);
    for (int i = 0; i < 200; ++i) {
        sw[i] = a[i] / (1 + std::exp(-double(a[i]))) * b[i];
        // GELU as llama.cpp's CPU table gives it: input and result rounded to F16, exact outside ±10.
        const double x = ember::tensor::fp16_to_f32(ember::tensor::f32_to_fp16(a[i]));
        const double g = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        gg[i] = double(ember::tensor::fp16_to_f32(ember::tensor::f32_to_fp16(static_cast<float>(g)))) * b[i];
    }
    CHECK(nmse(r, sw) < 1e-12);
    // Far tails (e^-g overflows a float below -88) and NaN, through the vector lanes and the tail.
    const std::vector<float> far = {-1000.f, -100.f, -88.5f, -20.f, 0.f, -0.f, 20.f, 100.f, 1000.f, NAN};
    Tensor tg = f.upload(far, 10), tu = f.upload(std::vector<float>(10, 1.f), 10), to = f.make(TensorType::F32, 10, 1);
    f.stream->swiglu(tg, tu, to);
    const auto fr = f.download(to);
    for (size_t i = 0; i + 1 < far.size(); ++i) {
        CAPTURE(far[i]);
        const double want = far[i] / (1 + std::exp(-double(far[i])));
        CHECK(std::abs(fr[i] - want) <= 1e-6 * std::abs(want) + 1e-30);  // e^-g is floored at e^-87
    }
    CHECK(std::isnan(fr[9]));
    f.stream->geglu(ta, tb, o);
    CHECK(nmse(f.download(o), gg) < 1e-12);
}

TEST_CASE("scale, softcap, add_rows_scaled") {
    Fixture f;
    const auto a = randn(120, 7);
    Tensor ta = f.upload(a, 12), o = f.make(TensorType::F32, 12, 10);
    f.stream->scale(ta, 3.5f, o);
    std::vector<double> ref(120);
    for (int i = 0; i < 120; ++i) ref[i] = 3.5 * a[i];
    CHECK(nmse(f.download(o), ref) < 1e-14);
    f.stream->softcap(ta, 0.7f, o);
    for (int i = 0; i < 120; ++i) ref[i] = 0.7 * std::tanh(a[i] / 0.7);
    CHECK(nmse(f.download(o), ref) < 1e-12);
    // Rows 0..2 of src scattered into rows 7, 2 and 9 of dst with weights.
    const auto d0 = randn(120, 8);
    Tensor dst = f.upload(d0, 12);
    const int32_t ids[3] = {7, 2, 9};
    const float w[3] = {0.25f, -1.5f, 2.f};
    f.stream->add_rows_scaled(ta, ids, w, 3, dst);
    for (int i = 0; i < 120; ++i) ref[i] = d0[i];
    for (int k = 0; k < 3; ++k)
        for (int j = 0; j < 12; ++j) ref[ids[k] * 12 + j] += double(w[k]) * a[k * 12 + j];
    CHECK(nmse(f.download(dst), ref) < 1e-12);
    const int32_t bad[1] = {10};
    CHECK_THROWS_AS(f.stream->add_rows_scaled(ta, bad, w, 1, dst), Error);
}

TEST_CASE("rope: normal and NeoX pairs, partial rotation") {
    Fixture f;
    const int hd = 16, heads = 3, T = 4, pos0 = 5;
    for (RopeMode mode : {RopeMode::Normal, RopeMode::NeoX}) {
        for (int n_rot : {16, 8}) {
            const auto xv = randn(static_cast<size_t>(hd * heads * T), 7);
            Tensor x = f.upload(xv, hd * heads);
            RopeParams p;
            p.n_rot = n_rot;
            p.freq_base = 10000.f;
            p.mode = mode;
            f.stream->rope(x, hd, pos0, p);
            std::vector<double> ref(xv.begin(), xv.end());
            for (int t = 0; t < T; ++t)
                for (int h = 0; h < heads; ++h)
                    for (int i = 0; i < n_rot / 2; ++i) {
                        const double theta = (pos0 + t) * std::pow(10000.0, -2.0 * i / n_rot);
                        const int a = mode == RopeMode::Normal ? 2 * i : i, c = mode == RopeMode::Normal ? 2 * i + 1 : i + n_rot / 2;
                        const size_t base = static_cast<size_t>(t * hd * heads + h * hd);
                        const double x0 = xv[base + a], x1 = xv[base + c];
                        ref[base + a] = x0 * std::cos(theta) - x1 * std::sin(theta);
                        ref[base + c] = x0 * std::sin(theta) + x1 * std::cos(theta);
                    }
            CHECK(nmse(f.download(x), ref) < 1e-10);  // float angles vs double: ~1e-7 relative
        }
    }
    // Llama 3.1's frequency factors divide each pair's angle; linear scaling multiplies every angle.
    const int n_rot = 16;
    const auto xv = randn(static_cast<size_t>(hd * heads * T), 9);
    const std::vector<float> factors = {1.f, 1.f, 1.5f, 2.f, 4.f, 8.f, 8.f, 32.f};
    Tensor x = f.upload(xv, hd * heads), ff = f.upload(factors, n_rot / 2);
    RopeParams p;
    p.n_rot = n_rot;
    p.freq_base = 500000.f;
    p.freq_scale = 0.25f;
    p.mode = RopeMode::Normal;
    p.freq_factors = ff;
    f.stream->rope(x, hd, pos0, p);
    std::vector<double> ref(xv.begin(), xv.end());
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < heads; ++h)
            for (int i = 0; i < n_rot / 2; ++i) {
                const double theta = 0.25 * (pos0 + t) * std::pow(500000.0, -2.0 * i / n_rot) / factors[i];
                const size_t base = static_cast<size_t>(t * hd * heads + h * hd);
                const double x0 = xv[base + 2 * i], x1 = xv[base + 2 * i + 1];
                ref[base + 2 * i] = x0 * std::cos(theta) - x1 * std::sin(theta);
                ref[base + 2 * i + 1] = x0 * std::sin(theta) + x1 * std::cos(theta);
            }
    CHECK(nmse(f.download(x), ref) < 1e-10);
}

// YaRN (backend.hpp, RopeParams): each pair's angle mixes the interpolated θ·freq_scale with the
// unscaled θ by a ramp over the correction dims, and cos/sin carry attn_factor·(1 + 0.1·ln(1/freq_scale)).
// The reference computes the correction dims in double; the cases keep them away from integers, where
// floor/ceil could part from the float computation (lo = 0 in both, hi = 3 and 2).
TEST_CASE("rope: YaRN ramp, magnitude and ext_factor, both pairings, with frequency factors") {
    Fixture f;
    struct Case { int n_rot; float base; int n_ctx_orig; float ext; bool factors; RopeMode mode; };
    const Case cases[] = {{16, 10000.f, 64, 1.f, false, RopeMode::Normal},   {16, 10000.f, 64, 0.5f, true, RopeMode::NeoX},
                          {32, 1000000.f, 32, 1.f, false, RopeMode::NeoX},   {32, 1000000.f, 32, 1.f, true, RopeMode::Normal}};
    const int heads = 3, T = 5, pos0 = 200;  // far past n_ctx_orig, where the ramp decides the angle
    for (const Case& c : cases) {
        CAPTURE(c.n_rot);
        CAPTURE(c.ext);
        const int hd = c.n_rot;
        const auto xv = randn(static_cast<size_t>(hd * heads * T), 11);
        std::vector<float> ffv(static_cast<size_t>(c.n_rot / 2));
        for (size_t i = 0; i < ffv.size(); ++i) ffv[i] = c.factors ? 1.f + 0.5f * static_cast<float>(i % 3) : 1.f;
        Tensor x = f.upload(xv, hd * heads), ff = f.upload(ffv, c.n_rot / 2);
        RopeParams p;
        p.n_rot = c.n_rot;
        p.freq_base = c.base;
        p.freq_scale = 0.25f;
        p.mode = c.mode;
        if (c.factors) p.freq_factors = ff;
        p.ext_factor = c.ext;
        p.attn_factor = 0.9f;
        p.n_ctx_orig = c.n_ctx_orig;
        f.stream->rope(x, hd, pos0, p);

        auto corr_dim = [&](double beta) {
            return c.n_rot * std::log(c.n_ctx_orig / (2 * std::numbers::pi * beta)) / (2 * std::log(double(c.base)));
        };
        const double lo = std::max(0.0, std::floor(corr_dim(32))), hi = std::min(c.n_rot - 1.0, std::ceil(corr_dim(1)));
        const double mag = 0.9 * (1 + 0.1 * std::log(4.0));
        std::vector<double> ref(xv.begin(), xv.end());
        for (int t = 0; t < T; ++t)
            for (int h = 0; h < heads; ++h)
                for (int i = 0; i < c.n_rot / 2; ++i) {
                    const double theta = (pos0 + t) * std::pow(double(c.base), -2.0 * i / c.n_rot) / ffv[i];
                    const double ramp = 1 - std::clamp((i - lo) / std::max(0.001, hi - lo), 0.0, 1.0);
                    const double mix = ramp * c.ext, angle = 0.25 * theta * (1 - mix) + theta * mix;
                    const int a = c.mode == RopeMode::Normal ? 2 * i : i, b = c.mode == RopeMode::Normal ? 2 * i + 1 : i + c.n_rot / 2;
                    const size_t base = static_cast<size_t>(t * hd * heads + h * hd);
                    const double x0 = xv[base + a], x1 = xv[base + b];
                    ref[base + a] = mag * (x0 * std::cos(angle) - x1 * std::sin(angle));
                    ref[base + b] = mag * (x0 * std::sin(angle) + x1 * std::cos(angle));
                }
        CHECK(nmse(f.download(x), ref) < 1e-10);  // measured ≤ 2e-12
    }
    // Without the ramp (ext_factor 0) attn_factor alone scales cos/sin.
    const auto xv = randn(16 * 2, 12);
    Tensor x = f.upload(xv, 16);
    RopeParams p;
    p.n_rot = 16;
    p.attn_factor = 0.5f;
    f.stream->rope(x, 16, 0, p);  // position 0: no turn
    const auto got = f.download(x);
    for (size_t i = 0; i < 16; ++i) CHECK(got[i] == 0.5f * xv[i]);
    p.ext_factor = 1.f;  // YaRN without an original context is refused
    CHECK_THROWS_AS(f.stream->rope(x, 16, 0, p), Error);
}

// Short batches take the per-query path; from 8 tokens the prompt runs in blocks of queries (two packed
// GEMMs around the softmax): 21 tokens leave a partial block, head sizes of 32 and 80 a partial panel.
TEST_CASE("attention: causal, grouped-query, sliding window, softcap") {
    Fixture f;
    struct Shape { int hd, n_head, n_kv, T; };
    struct Case { int window; float softcap; };
    const int n_past = 5, n_ctx = 32;
    for (Shape sh : {Shape{32, 4, 2, 3}, Shape{32, 4, 2, 21}, Shape{80, 6, 1, 21}, Shape{80, 3, 3, 9}})
        for (Case c : {Case{0, 0.f}, Case{4, 0.f}, Case{0, 5.f}}) {
            const int hd = sh.hd, n_head = sh.n_head, n_kv = sh.n_kv, T = sh.T;
            CAPTURE(hd);
            CAPTURE(n_head);
            CAPTURE(T);
            CAPTURE(c.window);
            const auto kv_k = randn(static_cast<size_t>(hd * n_kv * (n_past + T)), 8), kv_v = randn(kv_k.size(), 9);
            const auto qv = randn(static_cast<size_t>(hd * n_head * T), 10);
            Tensor kc = f.make(TensorType::F16, hd * n_kv, n_ctx), vc = f.make(TensorType::F16, hd * n_kv, n_ctx);
            Tensor kin = f.upload(kv_k, hd * n_kv), vin = f.upload(kv_v, hd * n_kv);
            f.stream->kv_store(kin, vin, kc, vc, 0);
            Tensor q = f.upload(qv, hd * n_head), out = f.make(TensorType::F32, hd * n_head, T);
            AttentionParams p;
            p.n_head = n_head;
            p.n_head_kv = n_kv;
            p.head_dim = hd;
            p.n_past = n_past;
            p.scale = 1.f / std::sqrt(float(hd));
            p.window = c.window;
            p.softcap = c.softcap;
            f.stream->attention(q, kc, vc, p, out);
            const auto ks = stored(kv_k, hd * n_kv, TensorType::F16), vs = stored(kv_v, hd * n_kv, TensorType::F16);
            std::vector<double> ref(static_cast<size_t>(hd * n_head * T));
            for (int t = 0; t < T; ++t)
                for (int h = 0; h < n_head; ++h) {
                    const int kvh = h / (n_head / n_kv), pos = n_past + t;
                    const int first = c.window ? std::max(0, pos - c.window + 1) : 0;
                    std::vector<double> s;
                    for (int j = first; j <= pos; ++j) {
                        double d = 0;
                        for (int i = 0; i < hd; ++i) d += qv[t * hd * n_head + h * hd + i] * ks[j * hd * n_kv + kvh * hd + i];
                        d *= p.scale;
                        if (c.softcap > 0) d = c.softcap * std::tanh(d / c.softcap);
                        s.push_back(d);
                    }
                    const double mx = *std::max_element(s.begin(), s.end());
                    double sum = 0;
                    for (auto& x : s) sum += x = std::exp(x - mx);
                    for (int i = 0; i < hd; ++i) {
                        double o = 0;
                        for (int j = first; j <= pos; ++j) o += s[j - first] / sum * vs[j * hd * n_kv + kvh * hd + i];
                        ref[t * hd * n_head + h * hd + i] = o;
                    }
                }
            CHECK(nmse(f.download(out), ref) < 1e-6);  // q is rounded to F16 (2^-11 relative) as llama.cpp does
        }
}

// A batched step's attention (one op over several sequences, each with its own cache and position)
// equals each sequence's own attention bit for bit: single queries share one dispatch, a sequence of 8 or
// more runs in blocks as alone.
TEST_CASE("attention over several sequences at once") {
    Fixture f;
    const int hd = 32, n_head = 4, n_kv = 2, n_ctx = 48;
    struct Seq { int n_past, count; };
    const std::vector<Seq> seqs{{7, 1}, {0, 3}, {20, 1}, {2, 9}, {31, 1}};
    int rows = 0;
    for (const Seq& s : seqs) rows += s.count;
    AttentionParams p;
    p.n_head = n_head;
    p.n_head_kv = n_kv;
    p.head_dim = hd;
    p.scale = 1.f / std::sqrt(float(hd));
    p.window = 16;
    const auto qv = randn(static_cast<size_t>(hd * n_head * rows), 20);
    Tensor q = f.upload(qv, hd * n_head), batched = f.make(TensorType::F32, hd * n_head, rows);
    std::vector<Tensor> kc, vc;
    std::vector<SequenceAttention> att;
    int first = 0;
    for (size_t i = 0; i < seqs.size(); ++i) {
        const int n = seqs[i].n_past + seqs[i].count;
        kc.push_back(f.make(TensorType::F16, hd * n_kv, n_ctx));
        vc.push_back(f.make(TensorType::F16, hd * n_kv, n_ctx));
        Tensor kin = f.upload(randn(static_cast<size_t>(hd * n_kv * n), 30 + int(i)), hd * n_kv);
        Tensor vin = f.upload(randn(static_cast<size_t>(hd * n_kv * n), 40 + int(i)), hd * n_kv);
        f.stream->kv_store(kin, vin, kc.back(), vc.back(), 0);
        att.push_back({first, seqs[i].count, seqs[i].n_past, nullptr, nullptr});
        first += seqs[i].count;
    }
    for (size_t i = 0; i < seqs.size(); ++i) att[i].k_cache = &kc[i], att[i].v_cache = &vc[i];
    f.stream->attention(q, att.data(), att.size(), p, batched);
    const auto got = f.download(batched);
    for (size_t i = 0; i < seqs.size(); ++i) {
        CAPTURE(i);
        const int64_t n = seqs[i].count, width = hd * n_head;
        std::vector<float> qi(qv.begin() + att[i].first * width, qv.begin() + (att[i].first + n) * width);
        Tensor qs = f.upload(qi, width), alone = f.make(TensorType::F32, width, n);
        p.n_past = seqs[i].n_past;
        f.stream->attention(qs, kc[i], vc[i], p, alone);
        const auto want = f.download(alone);
        CHECK(std::equal(want.begin(), want.end(), got.begin() + att[i].first * width));
    }
    // A sequence past its cache, outside q's rows or without a cache is refused.
    for (auto bad : {SequenceAttention{0, 1, n_ctx, &kc[0], &vc[0]}, SequenceAttention{rows - 1, 2, 0, &kc[0], &vc[0]},
                     SequenceAttention{-1, 1, 0, &kc[0], &vc[0]}, SequenceAttention{0, 1, 0, nullptr, &vc[0]}})
        CHECK_THROWS_AS(f.stream->attention(q, &bad, 1, p, batched), Error);
}

TEST_CASE("the registry") {
    const auto names = available_backends();
    REQUIRE(!names.empty());
    CHECK(std::find(names.begin(), names.end(), "cpu") != names.end());
    CHECK_THROWS_AS(create_device("no-such-device"), Error);
    CHECK(create_device("auto")->name() == names.front());
    BackendInfo wrong;
    wrong.api_version = kApiVersion + 1;
    wrong.name = "future";
    CHECK_THROWS_AS(register_backend(wrong), Error);
}
