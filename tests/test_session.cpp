// Sessions over a real tiny model: KV cache, rewinding, limits, cancellation, streaming, threads.
#include <doctest/doctest.h>

#include <algorithm>
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
    // Only the suffix is evaluated, as a smaller batch, and the kernels' float order depends on the batch
    // size (measured 1.4e-4 in the ThreadSanitizer build, where the compiler orders float work differently).
    CHECK(max_diff(s.logits(), cold.logits()) < 1e-3f);
    // The same prompt again: everything but the last token is reused, and the logits are fresh.
    CHECK(s.prefill_reusing(b) == static_cast<int>(b.size()) - 1);
    CHECK(max_diff(s.logits(), cold.logits()) < 1e-3f);
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

namespace {

// Everything a failed step_batch must leave as it was.
struct Snapshot {
    std::vector<Token> tokens;
    std::vector<float> logits;
    explicit Snapshot(const Session& s) : tokens(s.tokens()) {
        if (s.position() > 0) logits.assign(s.logits().begin(), s.logits().end());
    }
    bool operator==(const Snapshot&) const = default;
};

// step_batch with spans of different lengths (a decode, a fresh prompt, a chunk that fills its context
// exactly, a chunk after a reused prefix) against each session evaluating the same tokens alone.
// Not bit-identical: a step of one token runs the row matmul kernels and a step of several the
// packed-panel ones, which add each dot product's blocks in another order (float rounding). In a float
// model that stays around 1e-4 (stories260K: 3e-5), hence 2e-2 as in "small batches give the same result
// as one big batch". In a quantized model each layer rounds its activations to 8 bits, and a rounding
// that flips passes the difference on, so over 30 layers the same session's prefill token by token and
// all at once differ by ~0.8 in SmolLM2's logits (which span about -35..30). The bound is therefore
// 2e-2 plus twice that difference, measured here on the same tokens; a batching bug (a wrong position, a
// token against another session's cache) moves logits by whole units. (The top token is not compared: at
// a near tie, 13.88 against 13.79 in one of SmolLM2's, such noise may swap it.)
void check_step_batch(const Model& m) {
    const auto text = m.tokenizer().encode(
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun with her "
        "dog, who was big and brown and liked to run after the ball in the park near the old tree.");
    REQUIRE(text.size() >= 30);
    auto part = [&](size_t first, size_t n) { return std::vector<Token>(text.begin() + first, text.begin() + first + n); };
    float noise = 0.f;  // the kernels' own disagreement: one session, token by token against all at once
    {
        SessionParams one;
        one.n_ctx = 32;
        one.n_batch = 1;
        Session by_token(m, one), at_once(m);
        by_token.prefill(part(0, 24));
        at_once.prefill(part(0, 24));
        noise = max_diff(by_token.logits(), at_once.logits());
    }
    const float tol = 2e-2f + 2 * noise;
    SessionParams p, first;  // the first session's n_batch holds the step: n_batch is at most n_ctx
    p.n_ctx = 24;
    first.n_ctx = first.n_batch = 32;
    // Before the step (prefilled alone) and the step's span, per session.
    const std::vector<std::vector<Token>> before = {part(0, 5), {}, part(0, 10), part(0, 3)};
    const std::vector<std::vector<Token>> span = {part(5, 1), part(3, 7), part(10, 14) /* fills 24 */, part(12, 3)};
    std::vector<std::unique_ptr<Session>> alone, together;
    std::vector<Session*> batch;
    std::vector<std::span<const Token>> spans;
    for (size_t i = 0; i < span.size(); ++i) {
        alone.push_back(std::make_unique<Session>(m, i == 0 ? first : p));
        together.push_back(std::make_unique<Session>(m, i == 0 ? first : p));
        if (!before[i].empty()) {
            alone.back()->prefill(before[i]);
            together.back()->prefill(before[i]);
        }
        alone.back()->prefill(span[i]);
        batch.push_back(together.back().get());
        spans.emplace_back(span[i]);
    }
    Session::step_batch(batch, spans);
    float worst = 0.f;
    for (size_t i = 0; i < span.size(); ++i) {
        CAPTURE(i);
        CHECK(together[i]->tokens() == alone[i]->tokens());
        worst = std::max(worst, max_diff(together[i]->logits(), alone[i]->logits()));
    }
    CHECK(together[2]->position() == together[2]->n_ctx());
    // The keys and values it stored are right too: one more token each (the full session sits out).
    std::vector<Session*> next = {batch[0], batch[1], batch[3]};
    const std::vector<Token> toks = {text[20], text[21], text[22]};
    Session::decode_batch(next, toks);
    for (size_t k = 0; k < next.size(); ++k) {
        const size_t i = k < 2 ? k : 3;
        alone[i]->decode(toks[k]);
        CAPTURE(i);
        CHECK(together[i]->tokens() == alone[i]->tokens());
        worst = std::max(worst, max_diff(together[i]->logits(), alone[i]->logits()));
    }
    MESSAGE("step_batch against each session alone: largest logit difference ", worst, " (prefill token by token "
            "against all at once: ", noise, ")");
    CHECK(worst < tol);

    // Prefix reuse: reuse_prefix keeps what the cache shares with a new prompt, and a step evaluates the
    // rest, as prefill_reusing would.
    const std::vector<Token> prompt = part(0, 9);
    Session cold(m, p);
    cold.prefill_reusing(prompt);
    size_t shared = 0;  // it holds text[0..3), then text[12..15) and text[22]
    while (prompt[shared] == batch[3]->tokens()[shared]) ++shared;
    REQUIRE(shared >= 3);
    CHECK(batch[3]->reuse_prefix(prompt) == static_cast<int>(shared));
    CHECK(batch[3]->position() == static_cast<int>(shared));
    const std::vector<std::span<const Token>> rest = {std::span<const Token>(prompt).subspan(shared), toks};
    std::vector<Session*> pair = {batch[3], batch[0]};
    const int pos0 = batch[0]->position();
    Session::step_batch(pair, rest);
    CHECK(batch[3]->tokens() == prompt);
    CHECK(batch[0]->position() == pos0 + 3);
    CHECK(max_diff(batch[3]->logits(), cold.logits()) < tol);
}

}  // namespace

TEST_CASE("step_batch: sessions evaluating spans of any length in one step equal each evaluating alone") {
    check_step_batch(stories());
}

TEST_CASE("SmolLM2: step_batch equals each session alone (quantized packed kernels)") {
    check_step_batch(Model::load(test::smollm2_path()));
}

TEST_CASE("step_batch: misuse is refused and leaves every session as it was") {
    const Model& m = stories();
    SessionParams p;
    p.n_ctx = 16;
    p.n_batch = 8;
    Session a(m, p), b(m, p), full(m, p);
    a.prefill(std::vector<Token>{1, 2, 3});
    full.prefill(std::vector<Token>(16, 7));
    const std::vector<Token> three{4, 5, 6}, two{8, 9}, six{1, 2, 3, 4, 5, 6}, none;
    auto snap = [&] { return std::vector<Snapshot>{Snapshot(a), Snapshot(b), Snapshot(full)}; };
    const auto was = snap();
    auto refused = [&](std::vector<Session*> ss, std::vector<std::vector<Token>> ts, Status why) {
        std::vector<std::span<const Token>> spans(ts.begin(), ts.end());
        try {
            Session::step_batch(ss, spans);
            FAIL("expected a refusal");
        } catch (const Error& e) {
            CHECK(e.status() == why);
        }
        CHECK(snap() == was);
    };
    refused({&a, &b}, {three, none}, Status::InvalidArgument);            // an empty span
    refused({&a, &a}, {three, two}, Status::InvalidArgument);             // a session twice
    refused({&a, &b}, {three, six}, Status::InvalidArgument);             // 9 tokens, n_batch is 8
    refused({&a, &full}, {three, {1}}, Status::ContextFull);              // no room left
    refused({&a, &b}, {std::vector<Token>(14, 1), two}, Status::InvalidArgument);  // over n_batch as well
    refused({&a, &b}, {three, {2, 512}}, Status::InvalidArgument);        // an id out of range
    refused({&a, &b}, {three, {2, -1}}, Status::InvalidArgument);
    refused({&a, &b}, {three}, Status::InvalidArgument);                  // sizes differ
    refused({}, {}, Status::InvalidArgument);                             // nothing
    refused({&a, nullptr}, {three, two}, Status::InvalidArgument);        // null
    b.cancel();
    refused({&a, &b}, {three, two}, Status::Cancelled);                   // cancelled
    b.clear_cancel();
    // Overflowing the context by more than the room, on a session with some room.
    SessionParams small = p;
    small.n_ctx = 5;
    Session c(m, small);
    c.prefill(std::vector<Token>{1, 2});
    const std::vector<Token> c_before = c.tokens();
    std::vector<Session*> ac = {&a, &c};
    std::vector<std::span<const Token>> ac_spans = {two, std::span<const Token>(three).subspan(0, 3)};
    Session::step_batch(ac, ac_spans);  // 2 + 3 = 5: fits exactly
    CHECK(c.position() == 5);
    c.rewind(2);
    ac_spans[1] = six;
    ac_spans[0] = std::span<const Token>(two).subspan(0, 1);
    try {
        Session::step_batch(ac, ac_spans);  // 6 tokens into 3 positions
        FAIL("expected ContextFull");
    } catch (const Error& e) {
        CHECK(e.status() == Status::ContextFull);
    }
    CHECK(c.tokens() == c_before);
    CHECK(a.position() == 5);
    // Still usable after all that.
    std::vector<Session*> ab = {&a, &b};
    const std::vector<std::span<const Token>> ok = {two, three};
    Session::step_batch(ab, ok);
    CHECK(a.position() == 7);
    CHECK(b.tokens() == three);
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
