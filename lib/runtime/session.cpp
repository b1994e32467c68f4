#include "ember/session.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>

#include "ember/error.hpp"
#include "runtime/adapter_impl.hpp"
#include "runtime/model_impl.hpp"
#include "runtime/state_file.hpp"
#include "util/log.hpp"
#include "util/mapped_file.hpp"
#include "util/oom.hpp"

namespace ember {

namespace detail {

class SessionImpl {
public:
    SessionImpl(const Model& m, const SessionParams& p) : model(m), params(p) {
        const auto& mi = *m.impl();
        const auto& hp = mi.arch->hparams();
        n_ctx = p.n_ctx > 0 ? p.n_ctx : std::min(hp.n_ctx_train > 0 ? hp.n_ctx_train : 4096, 4096);
        if (p.n_ctx < 0 || n_ctx > (1 << 24)) throw Error(Status::InvalidArgument, "n_ctx out of range");
        n_batch = std::clamp(p.n_batch > 0 ? p.n_batch : 512, 1, n_ctx);
        if (detail::log_enabled()) {
            if (p.n_ctx == 0)
                detail::log(LogLevel::Info, "session: n_ctx 0 chose " + std::to_string(n_ctx) + " (the training context " +
                                                std::to_string(hp.n_ctx_train) + ", at most 4096)");
            if (p.n_batch > n_ctx)
                detail::log(LogLevel::Warn, "session: n_batch " + std::to_string(p.n_batch) + " is more than n_ctx; using " +
                                                std::to_string(n_batch));
        }
        backend::StreamParams sp;
        sp.n_threads = p.n_threads > 0 ? p.n_threads : mi.n_threads;
        stream = mi.device->stream(sp);
        ws = mi.arch->make_workspace(*mi.device, *stream, n_ctx, n_batch);
        n_vocab = m.n_vocab();  // the tokenizer's tokens; a padded embedding has more rows
        row_width = hp.n_vocab;
    }

    bool aborted() const { return cancel_flag.load(std::memory_order_relaxed) || (params.abort && params.abort()); }

    void prefill(std::span<const Token> toks, bool all_logits) {
        if (toks.empty()) throw Error(Status::InvalidArgument, "prefill: no tokens");
        if (toks.size() > static_cast<size_t>(n_ctx - position()))
            throw Error(Status::ContextFull, "prefill: " + std::to_string(toks.size()) + " tokens do not fit: " +
                                                 std::to_string(position()) + " of " + std::to_string(n_ctx) +
                                                 " context positions are used");
        for (Token t : toks)
            if (t < 0 || static_cast<size_t>(t) >= n_vocab)
                throw Error(Status::InvalidArgument, "token id " + std::to_string(t) + " is out of range [0, " +
                                                         std::to_string(n_vocab) + ")");
        const int start = position();
        // The KV rows past `start` may be overwritten; on failure they are simply not counted.
        // Results land in spare buffers, swapped in only on success (no allocation per decoded token).
        std::vector<float>& all = spare_all;
        all.resize(all_logits ? toks.size() * static_cast<size_t>(n_vocab) : 0);
        std::vector<float>& last = spare_last;
        last.resize(static_cast<size_t>(n_vocab));
        const auto& arch = *model.impl()->arch;
        auto check = [this] { return aborted(); };
        for (size_t off = 0; off < toks.size(); off += n_batch) {
            const size_t n = std::min<size_t>(n_batch, toks.size() - off);
            const bool is_last = off + n == toks.size();
            if (aborted()) throw Error(Status::Cancelled, "cancelled");
            arch.forward(ws, toks.subspan(off, n), start + static_cast<int>(off), all_logits, check);
            // Only the first n_vocab logits of a row belong to tokens: padding rows are never sampled.
            if (all_logits) {
                for (size_t i = 0; i < n; ++i)
                    stream->read(ws.logits, all.data() + (off + i) * n_vocab, n_vocab * sizeof(float),
                                 i * row_width * sizeof(float));
                if (is_last) std::copy_n(all.data() + (off + n - 1) * n_vocab, n_vocab, last.data());
            } else if (is_last) {
                stream->read(ws.logits, last.data(), last.size() * sizeof(float));
            }
        }
        cached.insert(cached.end(), toks.begin(), toks.end());
        logits_last.swap(last);
        logits_all.swap(all);
        n_all = all_logits ? static_cast<int>(toks.size()) : 0;
    }

    int position() const { return static_cast<int>(cached.size()); }

    // State payload: u32 n_tokens, n_layer, kv_row_bytes, n_vocab, has_logits | tokens | logits | per layer
    // the K rows then the V rows of the used positions (F16, as the cache holds them).
    std::vector<uint8_t> state() const {
        const uint32_t hdr[5] = {static_cast<uint32_t>(cached.size()), static_cast<uint32_t>(ws.k_cache.size()),
                                 static_cast<uint32_t>(ws.k_cache.empty() ? 0 : ws.k_cache[0].row_bytes()),
                                 static_cast<uint32_t>(n_vocab), logits_last.empty() ? 0u : 1u};
        const size_t kv = static_cast<size_t>(hdr[0]) * hdr[2];
        std::vector<uint8_t> out(sizeof hdr + cached.size() * sizeof(Token) + logits_last.size() * sizeof(float) +
                                 2 * kv * ws.k_cache.size());
        uint8_t* p = out.data();
        auto put = [&](const void* src, size_t n) {
            if (n) std::memcpy(p, src, n);
            p += n;
        };
        put(hdr, sizeof hdr);
        put(cached.data(), cached.size() * sizeof(Token));
        put(logits_last.data(), logits_last.size() * sizeof(float));
        for (size_t l = 0; l < ws.k_cache.size(); ++l) {
            if (kv) stream->read(ws.k_cache[l], p, kv);
            p += kv;
            if (kv) stream->read(ws.v_cache[l], p, kv);
            p += kv;
        }
        return out;
    }

    // Everything is checked before anything changes: a refused state leaves the session as it was.
    void restore(std::span<const uint8_t> payload) {
        auto bad = [](const std::string& why) { throw Error(Status::BadFile, "session file: " + why); };
        uint32_t hdr[5];
        if (payload.size() < sizeof hdr) bad("payload too short");
        std::memcpy(hdr, payload.data(), sizeof hdr);
        const uint32_t n = hdr[0];
        const size_t row = ws.k_cache.empty() ? 0 : ws.k_cache[0].row_bytes();
        if (hdr[1] != ws.k_cache.size() || hdr[2] != row || hdr[3] != n_vocab || hdr[4] > 1)
            bad("its layers, KV rows or vocabulary do not match this session's model");
        if (n > static_cast<uint32_t>(n_ctx))
            bad(std::to_string(n) + " tokens do not fit this session's context of " + std::to_string(n_ctx));
        const size_t kv = static_cast<size_t>(n) * row;
        const size_t want = sizeof hdr + n * sizeof(Token) + (hdr[4] ? n_vocab * sizeof(float) : 0) + 2 * kv * ws.k_cache.size();
        if (payload.size() != want) bad("its size does not match its contents");
        const uint8_t* p = payload.data() + sizeof hdr;
        std::vector<Token> toks(n);
        if (n) std::memcpy(toks.data(), p, n * sizeof(Token));
        p += n * sizeof(Token);
        for (Token t : toks)
            if (t < 0 || static_cast<size_t>(t) >= n_vocab) bad("token id " + std::to_string(t) + " is out of range");
        std::vector<float> logits(hdr[4] ? n_vocab : 0);
        if (!logits.empty()) std::memcpy(logits.data(), p, logits.size() * sizeof(float));
        p += logits.size() * sizeof(float);
        for (size_t l = 0; l < ws.k_cache.size(); ++l) {
            if (kv) stream->write(ws.k_cache[l], p, kv);
            p += kv;
            if (kv) stream->write(ws.v_cache[l], p, kv);
            p += kv;
        }
        cached = std::move(toks);
        logits_last = std::move(logits);
        logits_all.clear();
        n_all = 0;
    }

    Model model;
    SessionParams params;
    int n_ctx = 0, n_batch = 0;
    size_t n_vocab = 0, row_width = 0;  // logits per position; floats per row of ws.logits
    std::unique_ptr<backend::Stream> stream;
    arch::Workspace ws;
    std::vector<Token> cached;
    std::vector<AdapterScale> adapters;  // as set; ws.loras holds those with a scale other than 0
    std::vector<float> logits_last, logits_all, spare_last, spare_all;
    int n_all = 0;
    std::atomic<bool> cancel_flag{false};  // sticky: set by cancel(), cleared only by clear_cancel()
    std::atomic<bool> busy{false};         // a call is running (re-entry from its callbacks is refused)
};

}  // namespace detail

namespace {
// Marks the session busy for one public call. A second call while one runs — from the running call's own
// callback (abort, on_text) or from another thread — is refused rather than corrupting the cache. A call
// on a cancelled session fails at once: a cancel stays until clear_cancel().
class Call {
public:
    Call(detail::SessionImpl& s, const char* what, bool refuse_if_cancelled = true) : s_(s) {
        if (s.busy.exchange(true, std::memory_order_acquire))
            throw Error(Status::InvalidArgument, std::string(what) +
                                                     ": the session is busy (called from one of its own callbacks, or "
                                                     "from a second thread while a call runs)");
        if (refuse_if_cancelled && s.cancel_flag.load(std::memory_order_relaxed)) {
            s.busy.store(false, std::memory_order_release);
            throw Error(Status::Cancelled, std::string(what) + ": the session is cancelled (clear_cancel() resumes it)");
        }
    }
    ~Call() { s_.busy.store(false, std::memory_order_release); }
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

private:
    detail::SessionImpl& s_;
};
}  // namespace

namespace {
// Length of the longest prefix of s that ends on a UTF-8 character boundary.
size_t complete_utf8_prefix(std::string_view s) {
    size_t i = s.size(), back = 0;
    while (i > 0 && back < 4) {
        const unsigned char c = static_cast<unsigned char>(s[i - 1]);
        ++back;
        if ((c & 0xC0) != 0x80) {  // a lead byte (or ASCII): is its sequence complete?
            const size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
            return back >= need ? s.size() : i - 1;
        }
        --i;
    }
    return s.size();  // only continuation bytes: invalid anyway, pass through
}
}  // namespace

Session::Session(const Model& model, const SessionParams& params)
    : impl_(as_ember_error("session", [&] { return std::make_unique<detail::SessionImpl>(model, params); })) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::prefill(std::span<const Token> tokens, bool all_logits) {
    Call call(*impl_, "prefill");
    as_ember_error("prefill", [&] { impl_->prefill(tokens, all_logits); });
}
int Session::prefill_reusing(std::span<const Token> prompt) {
    if (prompt.empty()) throw Error(Status::InvalidArgument, "prefill_reusing: the prompt is empty");
    const int keep = reuse_prefix(prompt);
    prefill(prompt.subspan(static_cast<size_t>(keep)));
    return keep;
}
int Session::reuse_prefix(std::span<const Token> prompt) {
    if (prompt.empty()) throw Error(Status::InvalidArgument, "reuse_prefix: the prompt is empty");
    const auto& cached = tokens();
    size_t keep = 0;
    while (keep < cached.size() && keep + 1 < prompt.size() && cached[keep] == prompt[keep]) ++keep;
    rewind(static_cast<int>(keep));
    return static_cast<int>(keep);
}

void Session::step_batch(std::span<Session* const> sessions, std::span<const std::span<const Token>> tokens) {
    step("step_batch", sessions, tokens);
}

void Session::decode_batch(std::span<Session* const> sessions, std::span<const Token> tokens) {
    if (sessions.size() != tokens.size())
        throw Error(Status::InvalidArgument, "decode_batch: give one token for each of at least one session");
    std::vector<std::span<const Token>> spans(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) spans[i] = tokens.subspan(i, 1);
    step("decode_batch", sessions, spans);
}

void Session::step(const char* what, std::span<Session* const> sessions,
                   std::span<const std::span<const Token>> tokens) {
    const std::string w = std::string(what) + ": ";
    if (sessions.empty() || sessions.size() != tokens.size())
        throw Error(Status::InvalidArgument, w + "give tokens for each of at least one session");
    for (Session* s : sessions)
        if (!s || !s->impl_) throw Error(Status::InvalidArgument, w + "a session is null or moved from");
    size_t total = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i].empty())
            throw Error(Status::InvalidArgument, w + "session " + std::to_string(i) + " has no tokens to evaluate");
        total += tokens[i].size();
    }
    detail::SessionImpl& first = *sessions[0]->impl_;
    if (total > static_cast<size_t>(first.n_batch))
        throw Error(Status::InvalidArgument, w + std::to_string(total) + " tokens exceed the first session's n_batch of " +
                                                 std::to_string(first.n_batch));
    for (size_t i = 0; i < sessions.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (sessions[i] == sessions[j]) throw Error(Status::InvalidArgument, w + "a session appears twice");
    // Each session is marked busy for the step (and a cancelled one refused).
    std::vector<std::unique_ptr<Call>> calls;
    for (Session* s : sessions) calls.push_back(std::make_unique<Call>(*s->impl_, what));
    std::vector<arch::Architecture::BatchSeq> seqs(sessions.size());
    for (size_t i = 0; i < sessions.size(); ++i) {
        detail::SessionImpl& s = *sessions[i]->impl_;
        if (s.model.impl() != first.model.impl())
            throw Error(Status::InvalidArgument, w + "the sessions belong to different models");
        for (Token t : tokens[i])
            if (t < 0 || static_cast<size_t>(t) >= s.n_vocab)
                throw Error(Status::InvalidArgument, w + "token id " + std::to_string(t) + " is out of range [0, " +
                                                         std::to_string(s.n_vocab) + ")");
        if (tokens[i].size() > static_cast<size_t>(s.n_ctx - s.position()))
            throw Error(Status::ContextFull, w + std::to_string(tokens[i].size()) + " tokens do not fit session " +
                                                 std::to_string(i) + ": " + std::to_string(s.position()) + " of " +
                                                 std::to_string(s.n_ctx) + " context positions are used");
        seqs[i] = {tokens[i], s.position(), &s.ws};
    }
    auto aborted = [&] {
        return std::any_of(sessions.begin(), sessions.end(), [](Session* s) { return s->impl_->aborted(); });
    };
    as_ember_error(what, [&] {
        if (aborted()) throw Error(Status::Cancelled, "cancelled");
        // Each session applies its own adapters to its rows, in the scratch of the workspace the step runs in.
        int rank = 0;
        for (Session* s : sessions)
            for (const arch::ActiveLora& a : s->impl_->ws.loras) rank = std::max(rank, a.weights->max_rank);
        if (rank > 0) first.ws.ensure_lora_rank(rank);
        // KV rows past each session's position may be overwritten; on failure they are simply not counted.
        first.model.impl()->arch->forward_batch(first.ws, seqs, aborted);
        // Results into spare buffers first, so a failure leaves every session as it was.
        for (size_t i = 0; i < sessions.size(); ++i) {
            detail::SessionImpl& s = *sessions[i]->impl_;
            s.spare_last.resize(s.n_vocab);
            first.stream->read(first.ws.logits, s.spare_last.data(), s.n_vocab * sizeof(float),
                               i * first.row_width * sizeof(float));
        }
        for (size_t i = 0; i < sessions.size(); ++i) {
            detail::SessionImpl& s = *sessions[i]->impl_;
            s.cached.insert(s.cached.end(), tokens[i].begin(), tokens[i].end());
            s.logits_last.swap(s.spare_last);
            s.logits_all.clear();
            s.n_all = 0;
        }
    });
}

void Session::set_adapters(const std::vector<AdapterScale>& adapters) {
    Call call(*impl_, "set_adapters", false);  // evaluates nothing: allowed on a cancelled session
    as_ember_error("set_adapters", [&] {
        constexpr size_t kMaxAdapters = 64;
        const std::string w = "set_adapters: ";
        if (adapters.size() > kMaxAdapters)
            throw Error(Status::InvalidArgument, w + std::to_string(adapters.size()) + " adapters (at most " +
                                                     std::to_string(kMaxAdapters) + ")");
        std::vector<arch::ActiveLora> active;
        int rank = 0;
        for (size_t i = 0; i < adapters.size(); ++i) {
            const AdapterScale& a = adapters[i];
            const std::string which = "adapter " + std::to_string(i);
            if (!a.adapter.impl()) throw Error(Status::InvalidArgument, w + which + " is moved from");
            if (a.adapter.model().impl() != impl_->model.impl())
                throw Error(Status::InvalidArgument, w + which + " (" + a.adapter.path() + ") was loaded for another model");
            if (!std::isfinite(a.scale) || std::fabs(a.scale) > 1000.f)
                throw Error(Status::InvalidArgument, w + which + " has scale " + std::to_string(a.scale) +
                                                         " (finite, in [-1000, 1000])");
            for (size_t j = 0; j < i; ++j)
                if (adapters[j].adapter.impl() == a.adapter.impl())
                    throw Error(Status::InvalidArgument, w + which + " is adapter " + std::to_string(j) + " again");
            if (a.scale == 0.f) continue;  // no op at all: the base model's result, bit for bit
            active.push_back({&a.adapter.impl()->weights, a.scale});
            rank = std::max(rank, a.adapter.rank());
        }
        if (rank > 0) impl_->ws.ensure_lora_rank(rank);
        impl_->adapters = adapters;
        impl_->ws.loras = std::move(active);
    });
}

const std::vector<AdapterScale>& Session::adapters() const noexcept { return impl_->adapters; }

void Session::decode(Token token) {
    Call call(*impl_, "decode");
    as_ember_error("decode", [&] { impl_->prefill(std::span<const Token>(&token, 1), false); });
}

std::span<const float> Session::logits() const {
    if (impl_->logits_last.empty()) throw Error(Status::InvalidArgument, "logits: nothing has been evaluated yet");
    return impl_->logits_last;
}

std::span<const float> Session::logits_at(int i) const {
    if (i < 0 || i >= impl_->n_all)
        throw Error(Status::InvalidArgument, "logits_at: index " + std::to_string(i) + " is not a token of the last all-logits prefill");
    return std::span<const float>(impl_->logits_all).subspan(static_cast<size_t>(i) * impl_->n_vocab, impl_->n_vocab);
}

GenerateResult Session::generate(Sampler& sampler, const GenerateParams& params,
                                 const std::function<bool(std::string_view, Token)>& on_text) {
    GenerateResult r;
    generate(sampler, params, on_text, r);
    return r;
}

namespace {

// The length of the longest suffix of `text` that is a proper prefix of one of `stops` (text that may
// still become a stop string).
size_t stop_prefix_tail(std::string_view text, const std::vector<std::string>& stops) {
    size_t best = 0;
    for (const std::string& s : stops)
        for (size_t k = std::min(text.size(), s.size() - 1); k > best; --k)
            if (text.substr(text.size() - k) == std::string_view(s).substr(0, k)) {
                best = k;
                break;
            }
    return best;
}

}  // namespace

GeneratedText::GeneratedText(std::vector<std::string> stop) : stop_(std::move(stop)) {
    for (const std::string& st : stop_)
        if (st.empty()) throw Error(Status::InvalidArgument, "generate: a stop string is empty");
}

std::string GeneratedText::push(std::string_view bytes) {
    if (stopped()) return {};
    pending_.append(bytes);
    const size_t n = complete_utf8_prefix(pending_);
    held_.append(pending_, 0, n);
    pending_.erase(0, n);
    size_t cut = std::string::npos;
    for (size_t i = 0; i < stop_.size(); ++i)
        if (const size_t at = held_.find(stop_[i]); at < cut) {
            cut = at;
            stop_index_ = static_cast<int>(i);
        }
    if (cut != std::string::npos) {  // the stop string and what follows are dropped
        std::string out = held_.substr(0, cut);
        held_.clear();
        pending_.clear();
        return out;
    }
    const size_t keep = stop_prefix_tail(held_, stop_);
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
}

std::string GeneratedText::flush() {
    std::string rest = std::move(held_) + std::move(pending_);
    held_.clear();
    pending_.clear();
    return rest;
}

// One generation's progress, shared by generate() (which streams it to a callback) and Generation (which
// hands it out a piece at a time).
struct Generation::State {
    Session* session;
    detail::SessionImpl* impl;
    Sampler* sampler;
    GenerateParams params;
    GenerateResult own;
    GenerateResult* r = &own;  // generate() points this at its caller's result
    GeneratedText text;
    std::vector<float> biased;
    Token to_evaluate = -1;    // the token of the piece last handed out, evaluated on the next step
    int position = 0;          // where the session must stand at the next step
    bool ended = false;

    State(Session& s, detail::SessionImpl& i, Sampler& smp, GenerateParams p)
        : session(&s), impl(&i), sampler(&smp), params(std::move(p)), text(params.stop), position(i.position()) {
        const Tokenizer& tok = impl->model.tokenizer();
        for (const auto& [id, bias] : params.logit_bias)
            if (id < 0 || id >= tok.n_vocab() || std::isnan(bias))
                throw Error(Status::InvalidArgument, "generate: logit_bias for token " + std::to_string(id) +
                                                         " (ids are in [0, " + std::to_string(tok.n_vocab()) +
                                                         "), NaN is no bias)");
    }

    // Ends generation for `why`, handing out what text is left.
    std::optional<Generation::Piece> finish(GenerateResult::Stop why) {
        r->stop = why;
        ended = true;
        std::string rest = text.flush();
        if (rest.empty()) return std::nullopt;
        r->text += rest;
        return Generation::Piece{std::move(rest), r->tokens.empty() ? -1 : r->tokens.back()};
    }

    // A failure ends the generation: its last token was handed out but never reached the cache, so going
    // on would continue a text the session does not hold.
    void evaluate(Token t) {
        try {
            as_ember_error("generate", [&] { impl->prefill(std::span<const Token>(&t, 1), false); });
        } catch (...) {
            ended = true;
            throw;
        }
    }

    // The next piece of text, or nullopt once generation has ended. No Call taken: the caller holds one.
    std::optional<Generation::Piece> step() {
        if (ended) return std::nullopt;
        if (impl->position() != position) {
            ended = true;
            throw Error(Status::InvalidArgument, "generate: the session changed since this generation started");
        }
        if (to_evaluate >= 0) {
            const Token t = to_evaluate;
            to_evaluate = -1;
            evaluate(t);
            position = impl->position();
        }
        const Tokenizer& tok = impl->model.tokenizer();
        for (;;) {
            if (params.max_tokens >= 0 && static_cast<int>(r->tokens.size()) >= params.max_tokens)
                return finish(GenerateResult::Stop::Length);
            if (impl->position() >= impl->n_ctx) return finish(GenerateResult::Stop::ContextFull);
            // A grammar whose text is complete, with nothing that may follow, ends the generation.
            if (sampler->grammar_done()) return finish(GenerateResult::Stop::EndOfGeneration);
            std::span<const float> logits = session->logits();
            if (!params.logit_bias.empty()) {
                biased.assign(logits.begin(), logits.end());
                for (const auto& [id, bias] : params.logit_bias) biased[static_cast<size_t>(id)] += bias;
                logits = biased;
            }
            const Token t = sampler->sample(logits);
            r->tokens.push_back(t);
            if (params.stop_at_eog && tok.is_end_of_generation(t)) return finish(GenerateResult::Stop::EndOfGeneration);
            std::string out = text.push(tok.piece(t, false));
            if (text.stopped()) {  // t, which completed the stop string, is not evaluated
                r->stop = GenerateResult::Stop::StopString;
                r->stop_index = text.stop_index();
                ended = true;
                if (out.empty()) return std::nullopt;
                r->text += out;
                return Generation::Piece{std::move(out), t};
            }
            if (sampler->grammar_done()) {  // t completed the grammar: hand out the rest, t not evaluated
                r->stop = GenerateResult::Stop::EndOfGeneration;
                ended = true;
                out += text.flush();
                if (out.empty()) return std::nullopt;
                r->text += out;
                return Generation::Piece{std::move(out), t};
            }
            if (!out.empty()) {
                r->text += out;
                to_evaluate = t;
                return Generation::Piece{std::move(out), t};
            }
            evaluate(t);  // nothing to hand out yet (a split character, a possible stop string): go on
            position = impl->position();
        }
    }
};

void Session::generate(Sampler& sampler, const GenerateParams& params,
                       const std::function<bool(std::string_view, Token)>& on_text, GenerateResult& r) {
    Call call(*impl_, "generate");
    r = GenerateResult{};
    Generation::State st(*this, *impl_, sampler, params);
    st.r = &r;
    while (std::optional<Generation::Piece> p = st.step()) {
        if (on_text && !on_text(p->text, p->token)) {
            // The token whose text the caller refused is not evaluated. Refusing the very last text of a
            // generation that ended otherwise changes nothing.
            if (!st.ended || r.stop == GenerateResult::Stop::Length) r.stop = GenerateResult::Stop::Callback;
            return;
        }
    }
}

Generation Session::start_generation(Sampler& sampler, const GenerateParams& params) {
    Call call(*impl_, "generate");  // refuses a busy or cancelled session now rather than at the first piece
    Generation g;
    g.s_ = std::make_unique<Generation::State>(*this, *impl_, sampler, params);
    return g;
}

Generation::Generation() = default;
Generation::~Generation() = default;
Generation::Generation(Generation&&) noexcept = default;
Generation& Generation::operator=(Generation&&) noexcept = default;

std::optional<Generation::Piece> Generation::next() {
    if (!s_) throw Error(Status::InvalidArgument, "generation: moved from");
    Call call(*s_->impl, "generate");
    return s_->step();
}

const GenerateResult& Generation::result() const {
    if (!s_) throw Error(Status::InvalidArgument, "generation: moved from");
    return *s_->r;
}

bool Generation::done() const noexcept { return !s_ || s_->ended; }

std::vector<uint8_t> Session::save_state() const {
    return as_ember_error("save", [&] { return detail::wrap_state(impl_->model.impl()->identity, impl_->state()); });
}

void Session::load_state(std::span<const uint8_t> bytes) {
    Call call(*impl_, "load", false);
    as_ember_error("load", [&] { impl_->restore(detail::unwrap_state(bytes, impl_->model.impl()->identity)); });
}

void Session::save(const std::string& path) const {
    const std::vector<uint8_t> bytes = save_state();
    as_ember_error("save", [&] { detail::write_file_atomic(path, bytes); });
}

void Session::load(const std::string& path) {
    as_ember_error("load", [&] {
        const MappedFile f(path, false);  // read, not mapped: the file may be replaced while we look
        load_state(f.bytes());
    });
}

int Session::position() const noexcept { return impl_->position(); }
int Session::n_ctx() const noexcept { return impl_->n_ctx; }
int Session::n_batch() const noexcept { return impl_->n_batch; }
const std::vector<Token>& Session::tokens() const noexcept { return impl_->cached; }

void Session::rewind(int position) {
    Call call(*impl_, "rewind", false);  // evaluates nothing: allowed on a cancelled session
    if (position < 0 || position > impl_->position())
        throw Error(Status::InvalidArgument, "rewind: position " + std::to_string(position) + " is outside [0, " +
                                                 std::to_string(impl_->position()) + "]");
    impl_->cached.resize(static_cast<size_t>(position));
    impl_->logits_last.clear();
    impl_->logits_all.clear();
    impl_->n_all = 0;
}

void Session::reset() { rewind(0); }
void Session::cancel() noexcept { impl_->cancel_flag.store(true, std::memory_order_relaxed); }
void Session::clear_cancel() noexcept { impl_->cancel_flag.store(false, std::memory_order_relaxed); }
bool Session::cancelled() const noexcept { return impl_->cancel_flag.load(std::memory_order_relaxed); }
const Model& Session::model() const noexcept { return impl_->model; }

}  // namespace ember
