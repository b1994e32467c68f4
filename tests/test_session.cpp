// Sessions over a real tiny model: KV cache, rewinding, limits, cancellation, streaming, threads.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <thread>

#include "ember/ember.hpp"
#include "models.hpp"
#include "testdata.hpp"

using namespace ember;

namespace {
const Model& stories() { return test::stories_model(); }
float max_diff(std::span<const float> a, std::span<const float> b) {
    float d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
    return d;
}
}  // namespace

TEST_CASE("model metadata and backends") {
    const Model& m = stories();
    CHECK(m.n_vocab() == 512);
    CHECK(m.n_layers() == 5);
    CHECK(m.n_embd() == 64);
    CHECK(m.backend() == "cpu");
    CHECK(m.meta("general.architecture") == "llama");
    CHECK(!m.meta("no.such.key"));
    // Read into memory instead of mapped: the same model, the same logits.
    ModelParams read;
    read.use_mmap = false;
    Model copy = Model::load(test::testdata("models/stories260K.gguf"), read);
    Session a(m), b(copy);
    const std::vector<Token> prompt{1, 403, 407};
    a.prefill(prompt);
    b.prefill(prompt);
    CHECK(max_diff(a.logits(), b.logits()) == 0.f);
    ModelParams p;
    p.backend = "no-such-backend";
    CHECK_THROWS_AS(Model::load(test::testdata("models/stories260K.gguf"), p), Error);
}

TEST_CASE("token by token equals one batch; rewind replays exactly") {
    const Model& m = stories();
    const auto prompt = m.tokenizer().encode("Once upon a time, there was a little");
    Session batch(m);
    batch.prefill(prompt, true);
    Session step(m);
    for (size_t i = 0; i < prompt.size(); ++i) {
        step.decode(prompt[i]);
        // Same math, same rounding: a batch and single steps give the same logits (up to summation order).
        CHECK(max_diff(step.logits(), batch.logits_at(static_cast<int>(i))) < 1e-4f);
    }
    CHECK(step.position() == static_cast<int>(prompt.size()));
    CHECK(step.tokens() == prompt);

    const std::vector<float> at_end(step.logits().begin(), step.logits().end());
    step.rewind(3);
    CHECK(step.position() == 3);
    step.prefill(std::span<const Token>(prompt).subspan(3));
    CHECK(max_diff(step.logits(), at_end) < 1e-5f);
    step.reset();
    CHECK(step.position() == 0);
    CHECK_THROWS_AS(step.logits(), Error);
    CHECK_THROWS_AS(step.rewind(1), Error);
}

TEST_CASE("prefill_reusing evaluates only what the cache lacks, and agrees with a cold prefill") {
    const Model& m = stories();
    const auto a = m.tokenizer().encode("Once upon a time, there was a little dog");
    const auto b = m.tokenizer().encode("Once upon a time, there was a big cat who");
    Session cold(m);
    cold.prefill(b);
    Session s(m);
    CHECK(s.prefill_reusing(a) == 0);
    size_t shared = 0;
    while (a[shared] == b[shared]) ++shared;
    CHECK(s.prefill_reusing(b) == static_cast<int>(shared));
    CHECK(s.tokens() == b);
    CHECK(max_diff(s.logits(), cold.logits()) < 1e-4f);
    // The same prompt again: everything but the last token is reused, and the logits are fresh.
    CHECK(s.prefill_reusing(b) == static_cast<int>(b.size()) - 1);
    CHECK(max_diff(s.logits(), cold.logits()) < 1e-4f);
    // A prefix of the cache: the rest is forgotten.
    CHECK(s.prefill_reusing(std::span<const Token>(b).first(3)) == 2);
    CHECK(s.position() == 3);
    CHECK_THROWS_AS(s.prefill_reusing({}), Error);
    const std::vector<Token> bad = {b[0], 1 << 30};
    CHECK_THROWS_AS(s.prefill_reusing(bad), Error);
}

TEST_CASE("decode_batch: several sessions in one step equal each decoding alone") {
    const Model& m = stories();
    const char* prompts[] = {"Once upon a time", "The little dog ran to the park and", "Lily"};
    const Token next[] = {300, 42, 7};
    std::vector<std::unique_ptr<Session>> alone, together;
    for (const char* p : prompts) {
        const auto ids = m.tokenizer().encode(p);
        alone.push_back(std::make_unique<Session>(m));
        together.push_back(std::make_unique<Session>(m));
        alone.back()->prefill(ids);
        together.back()->prefill(ids);
    }
    std::vector<Session*> batch;
    for (auto& s : together) batch.push_back(s.get());
    for (int step = 0; step < 3; ++step) {  // three steps: positions keep advancing per session
        for (size_t i = 0; i < alone.size(); ++i) alone[i]->decode(next[i] + step);
        std::vector<Token> toks;
        for (size_t i = 0; i < alone.size(); ++i) toks.push_back(next[i] + step);
        Session::decode_batch(batch, toks);
        for (size_t i = 0; i < alone.size(); ++i) {
            CAPTURE(i);
            CHECK(together[i]->tokens() == alone[i]->tokens());
            CHECK(max_diff(together[i]->logits(), alone[i]->logits()) < 1e-4f);
        }
    }

    // Misuse is refused and leaves every session as it was.
    const auto before = together[0]->tokens();
    std::vector<Session*> two = {batch[0], batch[1]};
    CHECK_THROWS_AS(Session::decode_batch(two, std::vector<Token>{1}), Error);           // sizes differ
    CHECK_THROWS_AS(Session::decode_batch({}, {}), Error);                               // nothing
    std::vector<Session*> dup = {batch[0], batch[0]};
    CHECK_THROWS_AS(Session::decode_batch(dup, std::vector<Token>{1, 2}), Error);        // twice
    CHECK_THROWS_AS(Session::decode_batch(two, std::vector<Token>{1, 1 << 30}), Error);  // bad token
    std::vector<Session*> with_null = {batch[0], nullptr};
    CHECK_THROWS_AS(Session::decode_batch(with_null, std::vector<Token>{1, 2}), Error);
    const Model other = Model::load(test::testdata("models/stories260K.gguf"));
    Session foreign(other);
    foreign.decode(1);
    std::vector<Session*> mixed = {batch[0], &foreign};
    CHECK_THROWS_AS(Session::decode_batch(mixed, std::vector<Token>{1, 2}), Error);      // another model
    SessionParams tiny;
    tiny.n_ctx = 2;
    Session full(m, tiny);
    full.prefill(std::vector<Token>{1, 2});
    std::vector<Session*> with_full = {batch[0], &full};
    CHECK_THROWS_AS(Session::decode_batch(with_full, std::vector<Token>{1, 2}), Error);  // no room
    batch[1]->cancel();
    CHECK_THROWS_AS(Session::decode_batch(two, std::vector<Token>{1, 2}), Error);        // cancelled
    batch[1]->clear_cancel();
    CHECK(together[0]->tokens() == before);
    Session::decode_batch(two, std::vector<Token>{1, 2});
    CHECK(together[0]->position() == static_cast<int>(before.size()) + 1);
}

TEST_CASE("bit-identical logits whatever the thread count") {
    // Every output element is computed by one thread in a fixed order, so threads only change speed.
    const Model& m = stories();
    const auto prompt = m.tokenizer().encode("One day, a little fox found a shiny stone");
    std::vector<std::vector<float>> runs;
    for (int threads : {1, 2, 3}) {
        SessionParams p;
        p.n_threads = threads;
        Session s(m, p);
        s.prefill(prompt);
        s.decode(42);
        runs.emplace_back(s.logits().begin(), s.logits().end());
    }
    CHECK(runs[0] == runs[1]);
    CHECK(runs[0] == runs[2]);
}

TEST_CASE("small batches give the same result as one big batch") {
    const Model& m = stories();
    const auto prompt = m.tokenizer().encode("The little bird flew over the tall green tree and sang a song");
    Session big(m);
    big.prefill(prompt);
    SessionParams p;
    p.n_batch = 3;
    Session small(m, p);
    small.prefill(prompt);
    // Not bit-identical: from 8 tokens on, matmuls run packed-panel kernels that add each dot product's
    // blocks in another order than the row kernels do (float rounding, ~1e-3 here). A batching bug (a wrong
    // position, a lost token) moves logits by whole units.
    CHECK(max_diff(big.logits(), small.logits()) < 2e-2f);
}

TEST_CASE("context limits and bad tokens leave the session as it was") {
    const Model& m = stories();
    SessionParams p;
    p.n_ctx = 8;
    Session s(m, p);
    const std::vector<Token> five{1, 2, 3, 4, 5};
    s.prefill(five);
    const std::vector<float> before(s.logits().begin(), s.logits().end());
    try {
        s.prefill(five);
        FAIL("expected ContextFull");
    } catch (const Error& e) {
        CHECK(e.status() == Status::ContextFull);
    }
    CHECK(s.position() == 5);
    CHECK_THROWS_AS(s.decode(-1), Error);
    CHECK_THROWS_AS(s.decode(512), Error);
    CHECK_THROWS_AS(s.prefill(std::vector<Token>{}), Error);
    CHECK(s.position() == 5);
    CHECK(max_diff(s.logits(), before) == 0.f);
    s.decode(6);  // still usable
    CHECK(s.position() == 6);

    SessionParams bad;
    bad.n_ctx = -5;
    CHECK_THROWS_AS(Session(m, bad), Error);
    bad.n_ctx = (1 << 24) + 1;  // over the limit
    CHECK_THROWS_AS(Session(m, bad), Error);
}

TEST_CASE("oversized requests end in ember::Error or succeed, never in another exception") {
    const Model& m = stories();
    SessionParams huge;
    huge.n_ctx = 1 << 24;  // 16M positions: the KV cache alone is gigabytes
    try {
        Session s(m, huge);
        s.decode(1);  // if the memory was promised, one token still works
        CHECK(s.position() == 1);
    } catch (const Error& e) {
        CHECK(e.status() == Status::OutOfMemory);
    }
}

TEST_CASE("generation streams whole UTF-8 characters and stops where asked") {
    const Model& m = stories();
    Session s(m);
    s.prefill(m.tokenizer().encode("Once upon a time"));
    Sampler g = Sampler::greedy();
    std::string streamed;
    int calls = 0;
    GenerateParams gp;
    gp.max_tokens = 20;
    const auto r = s.generate(g, gp, [&](std::string_view text, Token) {
        streamed += text;
        ++calls;
        return true;
    });
    CHECK(r.tokens.size() == 20);
    CHECK(streamed == r.text);
    CHECK(calls > 0);
    CHECK(s.position() == 4 + 1 + 20);  // BOS + 4 prompt tokens + 20 generated

    // A callback returning false stops at once.
    Session s2(m);
    s2.prefill(m.tokenizer().encode("Once upon a time"));
    const auto r2 = s2.generate(g, gp, [](std::string_view, Token) { return false; });
    CHECK(r2.stop == GenerateResult::Stop::Callback);
    CHECK(r2.tokens.size() == 1);
}

TEST_CASE("cancellation: abort callback and cancel()") {
    const Model& m = stories();
    SessionParams p;
    std::atomic<int> polls{0};
    p.abort = [&] { return ++polls > 2; };
    Session s(m, p);
    try {
        s.prefill(m.tokenizer().encode("Once upon a time there was"));
        FAIL("expected Cancelled");
    } catch (const Error& e) {
        CHECK(e.status() == Status::Cancelled);
    }
    CHECK(s.position() == 0);  // nothing was committed

    // cancel() from another thread stops a running generate(), even between tokens.
    Session g(m);
    g.prefill(m.tokenizer().encode("Once upon a time"));
    Sampler sampler = Sampler::greedy();
    GenerateParams gp;
    gp.max_tokens = -1;
    gp.stop_at_eog = false;
    std::atomic<int> seen{0};
    std::thread canceller([&] {
        while (seen.load() < 5) std::this_thread::yield();
        g.cancel();
    });
    try {
        (void)g.generate(sampler, gp, [&](std::string_view, Token) {
            ++seen;
            return true;
        });
        FAIL("expected Cancelled");
    } catch (const Error& e) {
        CHECK(e.status() == Status::Cancelled);
    }
    canceller.join();
    CHECK(g.position() < g.n_ctx());
}

TEST_CASE("cancel() sticks until clear_cancel(); callbacks cannot re-enter their session") {
    const Model& m = stories();
    Session s(m);
    s.cancel();
    CHECK(s.cancelled());
    CHECK_THROWS_AS(s.prefill(m.tokenizer().encode("Once")), Error);
    CHECK(s.position() == 0);
    s.reset();  // evaluates nothing: allowed while cancelled
    s.clear_cancel();
    s.prefill(m.tokenizer().encode("Once upon a time"));
    Sampler greedy = Sampler::greedy();
    Status nested = Status::Ok;
    const auto r = s.generate(greedy, {.max_tokens = 4}, [&](std::string_view, Token) {
        try {
            s.rewind(0);
        } catch (const Error& e) {
            nested = e.status();
        }
        return true;
    });
    CHECK(nested == Status::InvalidArgument);
    CHECK(r.tokens.size() == 4);
}

TEST_CASE("sessions on one model from several threads agree") {
    const Model& m = stories();
    const auto prompt = m.tokenizer().encode("Lily and Ben went to the park");
    auto run = [&] {
        Session s(m);
        s.prefill(prompt);
        Sampler g = Sampler::greedy();
        GenerateParams gp;
        gp.max_tokens = 24;
        return s.generate(g, gp).tokens;
    };
    const auto expected = run();
    std::vector<std::vector<Token>> got(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { got[static_cast<size_t>(i)] = run(); });
    for (auto& t : threads) t.join();
    for (const auto& g : got) CHECK(g == expected);
}

TEST_CASE("bad model files are errors") {
    CHECK_THROWS_AS(Model::load(test::testdata("README.md")), Error);
    CHECK_THROWS_AS(Model::load("/nonexistent/model.gguf"), Error);
    try {
        Model::load(test::testdata("vocab/ggml-vocab-llama-spm.gguf"));  // a llama vocabulary, no weights
        FAIL("expected an error");
    } catch (const Error& e) {
        CHECK(e.status() == Status::BadFile);
    }
}

TEST_CASE("GeneratedText: whole characters only, stop strings held back and cut") {
    ember::GeneratedText plain;
    CHECK(plain.push("a\xE2\x82") == "a");  // "€" split across tokens waits for its last byte
    CHECK(plain.push("\xAC!") == "\xE2\x82\xAC!");
    CHECK(plain.push("\xF0") == "");
    CHECK(plain.flush() == "\xF0");  // at the end, what is held goes out as it is

    ember::GeneratedText t({"STOP", "</s>"});
    CHECK(t.push("hello S") == "hello ");  // "S" may begin "STOP"
    CHECK(t.push("T") == "");
    CHECK(t.push("ay") == "STay");          // it did not
    CHECK(t.push(" x</") == " x");
    CHECK_FALSE(t.stopped());
    CHECK(t.push("s> tail") == "");         // the stop string and what follows are dropped
    CHECK(t.stopped());
    CHECK(t.stop_index() == 1);
    CHECK(t.push("more") == "");
    CHECK(t.flush() == "");

    CHECK_THROWS_AS(ember::GeneratedText({""}), ember::Error);
}
