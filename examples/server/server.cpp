// ember-server: an OpenAI-compatible HTTP server over one model and N slots (sessions). Each request takes
// the free slot whose cache shares the longest prefix with its prompt, so a client resending the whole
// conversation pays only for the new turn. One scheduler thread then runs every slot in batched steps
// (continuous batching, Session::step_batch): each step evaluates the next token of every generating slot
// and, within a budget of --batch tokens, chunks of the prompts waiting to be evaluated, so a long prompt
// neither stalls the streams already running nor waits for them. HTTP from cpp-httplib, JSON from
// nlohmann-json.
//   ember-server -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel 4] [-c 4096] [-b 128] [-t N]
//                [--api-key KEY] [--queue 16] [--max-tokens 4096] [--timeout 600]
//                [--lora FILE]... [--lora-scaled FILE SCALE]...
// Endpoints: POST /v1/chat/completions, POST /v1/completions (both with "stream": true as server-sent
// events), GET /v1/models, GET /health, GET /metrics, POST /tokenize, POST /detokenize, GET /lora-adapters.
// LoRA adapters are loaded once at start; a request picks their scales with "lora": [{"id": 0, "scale": 0.5}]
// as llama-server's do (adapters it does not list get 0; no "lora": the command line's scales). Each slot's
// session carries its request's adapters, and a batched step applies each session's own to its rows, so
// requests with different adapters share steps. A slot whose adapters change forgets its cached prompt.
#include <httplib.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "../common.hpp"
#include "ember/ember.hpp"

using json = nlohmann::json;
using namespace ember;

namespace ember_server {
extern const char kChatPage[];  // page.html, compiled in
}

namespace {

struct Options {
    std::string model, host = "127.0.0.1", api_key, quantize;
    std::vector<ember_examples::LoraArg> loras;  // --lora / --lora-scaled, in command-line order
    int port = 8080, parallel = 4, n_ctx = 4096, batch = 128, threads = 0, queue = 16, max_tokens = 4096, timeout = 600;
};

// An error in OpenAI's shape, with its HTTP status.
struct ApiError {
    int status;
    std::string message, type;
};

// With the charset, cpp-httplib does not brotli/gzip-compress API replies: they are small, and some
// client stacks fail on br (httpx's decoder with Debian's python3-brotli 1.0.9: "process() takes no
// keyword arguments").
constexpr const char* kJson = "application/json; charset=utf-8";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    if (e.status == 503) res.set_header("Retry-After", "1");
    res.set_content(dump({{"error", {{"message", e.message}, {"type", e.type}, {"code", e.status}}}}),
                     kJson);
}

ApiError bad_request(const std::string& m) { return {400, m, "invalid_request_error"}; }

bool equal_constant_time(const std::string& a, const std::string& b) {
    unsigned char diff = a.size() != b.size();
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i)
        diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

struct Slot {
    std::unique_ptr<Session> session;
    bool busy = false;
    std::vector<float> lora_scales;  // the scales its session's adapters were set with (one per adapter)
};

struct Metrics {
    std::atomic<long> requests{0}, errors{0}, prompt_tokens{0}, reused_tokens{0}, generated_tokens{0};
    std::atomic<long> decode_us{0}, steps{0}, step_tokens_max{0};
};

// What one request asks for, validated.
struct Request {
    std::vector<Token> prompt;
    SamplerParams sampling;
    int max_tokens = 0;
    std::vector<std::string> stop;
    std::vector<std::pair<Token, float>> logit_bias;
    int logprobs = -1;  // -1: none; else the top alternatives per token
    bool stream = false, include_usage = false, chat = false;
    bool ignore_eos = false;  // llama-server's extension: generate max_tokens whatever the model says
    std::vector<float> lora_scales;  // one per loaded adapter
    std::string grammar;  // GBNF the output must follow ("" none): grammar, json_schema or response_format
};

class Server {
public:
    explicit Server(Options o) : o_(std::move(o)) {}
    ~Server() {
        {
            std::lock_guard lock(sched_mu_);
            stopping_ = true;
        }
        sched_cv_.notify_one();
        if (scheduler_.joinable()) scheduler_.join();
    }

    void load() {
        ModelParams mp;
        mp.n_threads = o_.threads;
        mp.quantize = o_.quantize;
        model_.emplace(Model::load(o_.model, mp));
        name_ = std::filesystem::path(o_.model).filename().string();
        adapters_ = ember_examples::load_adapters(*model_, o_.loras);
        SessionParams sp;
        sp.n_ctx = o_.n_ctx;
        sp.n_batch = std::max(o_.batch, o_.parallel);  // a step always holds every generating slot's token
        for (int i = 0; i < o_.parallel; ++i) {
            slots_.push_back({std::make_unique<Session>(*model_, sp), false, {}});
            set_adapters(slots_.back(), default_scales());
        }
        budget_ = slots_[0].session->n_batch();  // at most n_ctx
        if (budget_ < o_.parallel)
            throw Error(Status::InvalidArgument, "--parallel " + std::to_string(o_.parallel) + " needs -c of at least as many tokens");
        for (Token t = 0; t < model_->n_vocab(); ++t)
            if (model_->tokenizer().is_end_of_generation(t)) eog_.push_back(t);
        scheduler_ = std::thread([this] { schedule(); });
        ready_ = true;
    }

    void routes(httplib::Server& http) {
        http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            if (req.path == "/" || req.path == "/health" || req.path == "/metrics" || o_.api_key.empty())
                return httplib::Server::HandlerResponse::Unhandled;
            const std::string auth = req.get_header_value("Authorization");
            if (!equal_constant_time(auth, "Bearer " + o_.api_key)) {
                send_error(res, {401, "invalid API key", "authentication_error"});
                return httplib::Server::HandlerResponse::Handled;
            }
            return httplib::Server::HandlerResponse::Unhandled;
        });
        http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
            if (!ready_) return send_error(res, {503, "loading the model", "unavailable"});
            res.set_content(R"({"status":"ok"})", kJson);
        });
        http.Get("/", [](const httplib::Request&, httplib::Response& res) {
            res.set_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
            res.set_content(ember_server::kChatPage, "text/html; charset=utf-8");
        });
        http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { metrics(res); });
        http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
            if (!ready_) return send_error(res, {503, "loading the model", "unavailable"});
            res.set_content(dump({{"object", "list"},
                                  {"data", {{{"id", name_}, {"object", "model"}, {"created", created_}, {"owned_by", "ember"}}}}}),
                            kJson);
        });
        http.Get("/lora-adapters", [this](const httplib::Request&, httplib::Response& res) {
            if (!ready_) return send_error(res, {503, "loading the model", "unavailable"});
            json list = json::array();  // llama-server's shape
            for (size_t i = 0; i < adapters_.size(); ++i)
                list.push_back({{"id", i}, {"path", adapters_[i].adapter.path()}, {"scale", adapters_[i].scale},
                                {"task_name", ""}, {"prompt_prefix", ""}});
            res.set_content(dump(list), kJson);
        });
        http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) { complete(q, r, true); });
        http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) { complete(q, r, false); });
        http.Post("/tokenize", [this](const httplib::Request& q, httplib::Response& r) {
            handle(r, [&] {
                const json j = parse(q.body);
                if (!j.contains("content") || !j["content"].is_string()) throw bad_request("'content' must be a string");
                const bool special = j.value("add_special", false);
                r.set_content(dump({{"tokens", model_->tokenizer().encode(j["content"].get<std::string>(), special, true)}}),
                              kJson);
            });
        });
        http.Post("/detokenize", [this](const httplib::Request& q, httplib::Response& r) {
            handle(r, [&] {
                const json j = parse(q.body);
                if (!j.contains("tokens") || !j["tokens"].is_array()) throw bad_request("'tokens' must be an array");
                std::vector<Token> ids;
                for (const auto& t : j["tokens"]) ids.push_back(token_id(t));
                r.set_content(dump({{"content", model_->tokenizer().decode(ids)}}), kJson);
            });
        });
        http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
            if (res.body.empty()) {
                const ApiError e{res.status, res.status == 413 ? "request body too large" : "not found",
                                 res.status == 404 ? "not_found_error" : "invalid_request_error"};
                send_error(res, e);
            }
        });
    }

private:
    json parse(const std::string& body) const {
        if (!ready_) throw ApiError{503, "loading the model", "unavailable"};
        json j = json::parse(body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw bad_request("the body is not a JSON object");
        return j;
    }

    Token token_id(const json& t) const {
        if (!t.is_number_integer()) throw bad_request("token ids must be integers");
        const auto v = t.get<long long>();
        if (v < 0 || v >= model_->n_vocab()) throw bad_request("token id " + std::to_string(v) + " is out of range");
        return static_cast<Token>(v);
    }

    template <typename F>
    void handle(httplib::Response& res, F&& f) {
        try {
            f();
        } catch (const ApiError& e) {
            ++m_.errors;
            send_error(res, e);
        } catch (const json::exception& e) {
            ++m_.errors;
            send_error(res, bad_request(std::string("bad field: ") + e.what()));
        } catch (const Error& e) {
            ++m_.errors;
            const bool client = e.status() == Status::InvalidArgument || e.status() == Status::ContextFull;
            send_error(res, {client ? 400 : 500, e.what(), client ? "invalid_request_error" : "server_error"});
        } catch (const std::exception& e) {
            ++m_.errors;
            send_error(res, {500, e.what(), "server_error"});
        }
    }

    // llama-server's "grammar" (GBNF) and "json_schema", or OpenAI's "response_format" ({"type": "json_object"}
    // or {"type": "json_schema", "json_schema": {"schema": {...}}}): at most one. A bad one is a 400.
    static std::string read_grammar(const json& j) {
        auto given = [&](const char* k) { return j.contains(k) && !j[k].is_null(); };
        std::string gbnf;
        int n = 0;
        if (given("grammar")) {
            if (!j["grammar"].is_string()) throw bad_request("'grammar' must be a string (GBNF)");
            gbnf = j["grammar"].get<std::string>();
            n += !gbnf.empty();
        }
        if (given("json_schema")) {
            if (!j["json_schema"].is_object() && !j["json_schema"].is_boolean()) throw bad_request("'json_schema' must be an object");
            gbnf = json_schema_to_grammar(dump(j["json_schema"]));
            ++n;
        }
        if (given("response_format")) {
            const json& rf = j["response_format"];
            const std::string type = rf.is_object() && rf.contains("type") && rf["type"].is_string() ? rf["type"].get<std::string>() : "";
            if (type == "json_object") {
                // llama-server also takes a "schema" here.
                gbnf = rf.contains("schema") && !rf["schema"].is_null() ? json_schema_to_grammar(dump(rf["schema"])) : json_grammar(true);
                ++n;
            } else if (type == "json_schema") {
                const json* js = rf.contains("json_schema") && rf["json_schema"].is_object() ? &rf["json_schema"] : nullptr;
                if (!js || !js->contains("schema")) throw bad_request("response_format: 'json_schema' needs a 'schema'");
                gbnf = json_schema_to_grammar(dump((*js)["schema"]));
                ++n;
            } else if (type != "text") {
                throw bad_request("response_format: 'type' must be \"text\", \"json_object\" or \"json_schema\"");
            }
        }
        if (n > 1) throw bad_request("give only one of 'grammar', 'json_schema' and 'response_format'");
        if (!gbnf.empty()) check_grammar(gbnf);  // InvalidArgument, with line and column: a 400
        return gbnf;
    }

    static float number(const json& j, const char* key, float def, float lo, float hi) {
        if (!j.contains(key) || j[key].is_null()) return def;
        if (!j[key].is_number()) throw bad_request(std::string("'") + key + "' must be a number");
        const double v = j[key].get<double>();
        if (!std::isfinite(v) || v < lo || v > hi)
            throw bad_request(std::string("'") + key + "' must be within [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return static_cast<float>(v);
    }

    Request read_request(const json& j, bool chat) const {
        Request r;
        r.chat = chat;
        const Tokenizer& tok = model_->tokenizer();
        if (chat) {
            if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
                throw bad_request("'messages' must be a non-empty array");
            std::vector<ChatMessage> msgs;
            for (const auto& m : j["messages"]) {
                if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) throw bad_request("each message needs a 'role'");
                std::string content;
                if (m.contains("content") && m["content"].is_string()) content = m["content"];
                else if (m.contains("content") && m["content"].is_array())  // [{"type":"text","text":...}]
                    for (const auto& part : m["content"])
                        if (part.is_object() && part.value("type", "") == "text") content += part.value("text", "");
                msgs.push_back({m["role"], content});
            }
            r.prompt = tokenize_chat_prompt(tok, apply_chat_template(*model_, msgs, true));
        } else {
            if (!j.contains("prompt") || !j["prompt"].is_string()) throw bad_request("'prompt' must be a string");
            r.prompt = tok.encode(j["prompt"].get<std::string>(), true, false);
        }
        if (r.prompt.empty()) throw bad_request("the prompt is empty");
        if (static_cast<int>(r.prompt.size()) >= o_.n_ctx)
            throw bad_request("the prompt has " + std::to_string(r.prompt.size()) + " tokens; the context holds " +
                              std::to_string(o_.n_ctx));
        if (j.contains("n") && !(j["n"].is_number_integer() && j["n"].get<long long>() == 1))
            throw bad_request("only n = 1 is supported");
        const char* mt = j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        r.max_tokens = o_.max_tokens;
        if (j.contains(mt) && !j[mt].is_null()) {
            if (!j[mt].is_number_integer() || j[mt].get<long long>() < 1) throw bad_request(std::string("'") + mt + "' must be a positive integer");
            r.max_tokens = static_cast<int>(std::min<long long>(j[mt].get<long long>(), o_.max_tokens));
        }
        SamplerParams& s = r.sampling;
        s.temperature = number(j, "temperature", 1.0f, 0.f, 100.f);
        s.top_p = number(j, "top_p", 1.0f, 0.f, 1.f);
        s.top_k = static_cast<int>(number(j, "top_k", 0.f, 0.f, 1e6f));
        s.min_p = number(j, "min_p", 0.f, 0.f, 1.f);
        s.presence_penalty = number(j, "presence_penalty", 0.f, -2.f, 2.f);
        s.frequency_penalty = number(j, "frequency_penalty", 0.f, -2.f, 2.f);
        s.repeat_penalty = number(j, "repeat_penalty", 1.f, 0.f, 10.f);
        if (j.contains("seed") && !j["seed"].is_null()) {
            if (!j["seed"].is_number_integer()) throw bad_request("'seed' must be an integer");
            s.seed = static_cast<uint64_t>(j["seed"].get<long long>()) & 0xFFFFFFFEull;
        }
        if (j.contains("stop") && !j["stop"].is_null()) {
            const json& st = j["stop"];
            if (st.is_string()) r.stop.push_back(st);
            else if (st.is_array() && st.size() <= 16)
                for (const auto& x : st) {
                    if (!x.is_string() || x.get<std::string>().empty()) throw bad_request("'stop' entries must be non-empty strings");
                    r.stop.push_back(x);
                }
            else throw bad_request("'stop' must be a string or a list of at most 16");
        }
        if (j.contains("logit_bias") && !j["logit_bias"].is_null()) {
            if (!j["logit_bias"].is_object()) throw bad_request("'logit_bias' must be an object");
            for (const auto& [k, v] : j["logit_bias"].items()) {
                char* end = nullptr;
                const long id = std::strtol(k.c_str(), &end, 10);
                if (k.empty() || *end || id < 0 || id >= model_->n_vocab()) throw bad_request("logit_bias: bad token id '" + k + "'");
                if (!v.is_number() || !std::isfinite(v.get<double>())) throw bad_request("logit_bias values must be numbers");
                r.logit_bias.push_back({static_cast<Token>(id), std::clamp(v.get<float>(), -100.f, 100.f)});
            }
        }
        const bool want_logprobs = chat ? j.value("logprobs", false) : j.contains("logprobs") && !j["logprobs"].is_null();
        if (want_logprobs) {
            const json& n = chat ? j.value("top_logprobs", json(0)) : j["logprobs"];
            if (!n.is_number_integer() || n.get<long long>() < 0 || n.get<long long>() > 20)
                throw bad_request("top_logprobs must be an integer in [0, 20]");
            r.logprobs = static_cast<int>(n.get<long long>());
        }
        r.grammar = read_grammar(j);
        r.lora_scales = default_scales();
        if (j.contains("lora") && !j["lora"].is_null()) {  // llama-server's: listed ids get their scale, others 0
            const json& l = j["lora"];
            if (!l.is_array()) throw bad_request("'lora' must be a list of {\"id\", \"scale\"}");
            if (!l.empty()) std::fill(r.lora_scales.begin(), r.lora_scales.end(), 0.f);
            for (const auto& e : l) {
                if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer())
                    throw bad_request("each 'lora' entry needs an integer 'id'");
                const long long id = e["id"].get<long long>();
                if (id < 0 || id >= static_cast<long long>(adapters_.size()))
                    throw bad_request("lora id " + std::to_string(id) + " is not one of the " + std::to_string(adapters_.size()) +
                                      " adapters loaded (GET /lora-adapters)");
                r.lora_scales[static_cast<size_t>(id)] = number(e, "scale", 0.f, -1000.f, 1000.f);
            }
        }
        r.stream = j.value("stream", false);
        r.ignore_eos = j.value("ignore_eos", false);
        r.include_usage = j.contains("stream_options") && j["stream_options"].is_object() &&
                          j["stream_options"].value("include_usage", false);
        return r;
    }

    // Waits for a free slot (bounded queue), preferring the one whose cache shares most with the prompt
    // under the same adapters (another slot's cache would be forgotten).
    int acquire(const Request& r) {
        const std::vector<Token>& prompt = r.prompt;
        std::unique_lock lock(mu_);
        if (waiting_ >= o_.queue && std::none_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; }))
            throw ApiError{503, "the server is busy; retry later", "server_busy"};
        ++waiting_;
        const bool got = cv_.wait_for(lock, std::chrono::seconds(o_.timeout), [&] {
            return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; });
        });
        --waiting_;
        if (!got) throw ApiError{503, "no slot became free in time; retry later", "server_busy"};
        int best = -1;
        size_t best_len = 0;
        for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
            if (slots_[i].busy) continue;
            const auto& have = slots_[i].session->tokens();
            size_t n = 0;
            while (slots_[i].lora_scales == r.lora_scales && n < have.size() && n < prompt.size() && have[n] == prompt[n]) ++n;
            if (best < 0 || n > best_len) best = i, best_len = n;
        }
        slots_[best].busy = true;
        return best;
    }

    std::vector<float> default_scales() const {
        std::vector<float> s;
        for (const AdapterScale& a : adapters_) s.push_back(a.scale);
        return s;
    }

    // The slot's session with the adapters at these scales. Its cached prompt was computed under the ones
    // before, so it is forgotten (as llama-server clears a slot's cache when its adapters change).
    void set_adapters(Slot& slot, const std::vector<float>& scales) {
        if (scales == slot.lora_scales) return;
        std::vector<AdapterScale> list = adapters_;
        for (size_t i = 0; i < list.size(); ++i) list[i].scale = scales[i];
        slot.session->set_adapters(list);
        slot.session->reset();
        slot.lora_scales = scales;
    }

    void release(int i) {
        {
            std::lock_guard lock(mu_);
            slots_[i].busy = false;
        }
        cv_.notify_one();
    }

    // What one request produced.
    struct Outcome {
        std::string text, finish = "length";
        json logprobs = json::array();
        int prompt_tokens = 0, completion_tokens = 0, reused = 0;
    };

    // One request being evaluated and generated: its slot's session belongs to the scheduler until `done`.
    struct Job {
        const Request* r = nullptr;
        int slot = 0;
        std::span<const Token> pending;  // the prompt past the reused prefix, evaluated a chunk per step
        size_t fed = 0;                  // how much of it is in the cache
        bool over = false;               // the scheduler has finished it
        bool prefilling() const { return fed < pending.size(); }
        std::optional<Sampler> sampler;
        std::optional<GeneratedText> text;  // holds back an unfinished character or a possible stop string
        Outcome out;
        std::mutex mu;
        std::condition_variable cv;
        std::deque<std::pair<std::string, json>> events;  // text and logprob entries for the client
        bool done = false;
        std::string error;
        std::string sample_error;  // why sampling failed (no token can continue the grammar)
        std::atomic<bool> cancelled{false};
    };

    // The request's thread: keep what the slot's cache shares with the prompt, hand the slot to the
    // scheduler (which evaluates the rest of the prompt, then generates), pass what it produces to `emit`
    // (false: the client left, generation stops), and wait until it lets go. While nothing comes for
    // kIdleProbe (a long prompt being read), `alive` (when given) says whether the client is still there,
    // so one that left stops its prompt at the next step rather than at its first token.
    static constexpr auto kIdleProbe = std::chrono::milliseconds(500);
    Outcome run(const Request& r, int slot, const std::function<bool(const std::string&, const json&)>& emit,
                const std::function<bool()>& alive = {}) {
        Session& s = *slots_[slot].session;
        s.clear_cancel();
        auto job = std::make_shared<Job>();
        job->r = &r;
        job->text.emplace(r.stop);
        job->slot = slot;
        job->out.prompt_tokens = static_cast<int>(r.prompt.size());
        set_adapters(slots_[slot], r.lora_scales);
        job->out.reused = s.reuse_prefix(r.prompt);
        job->pending = std::span<const Token>(r.prompt).subspan(static_cast<size_t>(job->out.reused));
        m_.prompt_tokens += job->out.prompt_tokens;
        m_.reused_tokens += job->out.reused;
        job->sampler.emplace(r.sampling.temperature <= 0 ? Sampler::greedy() : Sampler(r.sampling));
        for (size_t i = r.prompt.size() > 64 ? r.prompt.size() - 64 : 0; i < r.prompt.size(); ++i)
            job->sampler->accept(r.prompt[i]);
        // After the prompt's tokens: those are for the penalties, not text the grammar should match.
        if (!r.grammar.empty()) job->sampler->set_grammar(model_->tokenizer(), r.grammar);
        {
            std::lock_guard lock(sched_mu_);
            jobs_.push_back(job);
        }
        sched_cv_.notify_one();
        std::unique_lock lock(job->mu);
        while (true) {
            if (!job->cv.wait_for(lock, kIdleProbe, [&] { return job->done || !job->events.empty(); })) {
                if (alive && !job->cancelled) {
                    lock.unlock();
                    const bool ok = alive();
                    lock.lock();
                    if (!ok) job->cancelled = true;
                }
                continue;
            }
            while (!job->events.empty()) {
                auto [text, lp] = std::move(job->events.front());
                job->events.pop_front();
                lock.unlock();
                const bool ok = job->cancelled || emit(text, lp);
                lock.lock();
                if (!ok) job->cancelled = true;
            }
            if (job->done) break;
        }
        if (!job->error.empty()) throw Error(Status::Internal, job->error);
        if (job->cancelled) job->out.finish = "cancelled";
        return job->out;
    }

    // Continuous batching: one thread steps every slot together, so each step reads the weights once for
    // all of them. A step holds the next token of every generating job, then chunks of the prompts still to
    // evaluate, first come first served, up to budget_ tokens in all (llama-server's n_batch): the streams'
    // steps stay short while a long prompt is split over several. Jobs join and leave between steps.
    void schedule() {
        std::vector<std::shared_ptr<Job>> active;  // in arrival order
        std::vector<Session*> sessions;
        std::vector<std::span<const Token>> spans;
        std::vector<Job*> stepping;
        std::vector<Token> next;
        while (true) {
            {
                std::unique_lock lock(sched_mu_);
                sched_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty() || !active.empty(); });
                if (stopping_) return;
                for (auto& j : jobs_) active.push_back(std::move(j));
                jobs_.clear();
            }
            const auto t0 = std::chrono::steady_clock::now();
            sessions.clear();
            spans.clear();
            stepping.clear();
            next.assign(active.size(), 0);  // sized first: the spans point into it
            int left = budget_;
            for (size_t i = 0; i < active.size(); ++i) {
                Job& j = *active[i];
                if (j.prefilling()) continue;
                if (const auto t = advance(j)) {
                    next[i] = *t;
                    sessions.push_back(slots_[j.slot].session.get());
                    spans.emplace_back(&next[i], 1);
                    stepping.push_back(&j);
                    --left;
                } else {
                    finish(j, j.sample_error);
                }
            }
            for (auto& jp : active) {
                Job& j = *jp;
                if (!j.prefilling() || j.over || left <= 0) continue;
                if (j.cancelled) {
                    finish(j, "");
                    continue;
                }
                const size_t n = std::min(static_cast<size_t>(left), j.pending.size() - j.fed);
                sessions.push_back(slots_[j.slot].session.get());
                spans.push_back(j.pending.subspan(j.fed, n));
                stepping.push_back(&j);
                left -= static_cast<int>(n);
            }
            if (!sessions.empty()) {
                step(sessions, spans, stepping);
                long tokens = budget_ - left, seen = m_.step_tokens_max.load();
                while (tokens > seen && !m_.step_tokens_max.compare_exchange_weak(seen, tokens)) {}
                ++m_.steps;
            }
            std::erase_if(active, [](const std::shared_ptr<Job>& j) { return j->over; });
            m_.decode_us += std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        }
    }

    // One batched step. Should it fail, each job is stepped alone (a failed step changes no session), so
    // a fault of one request does not end the others.
    void step(const std::vector<Session*>& sessions, const std::vector<std::span<const Token>>& spans,
              const std::vector<Job*>& jobs) {
        auto done = [&](size_t i) {
            if (jobs[i]->prefilling()) jobs[i]->fed += spans[i].size();
        };
        try {
            Session::step_batch(sessions, spans);
            for (size_t i = 0; i < jobs.size(); ++i) done(i);
            return;
        } catch (const std::exception& e) {
            if (jobs.size() == 1) return finish(*jobs[0], e.what());
        }
        for (size_t i = 0; i < jobs.size(); ++i) {
            try {
                Session::step_batch(std::span<Session* const>(&sessions[i], 1), std::span(&spans[i], 1));
                done(i);
            } catch (const std::exception& e) {
                finish(*jobs[i], e.what());
            }
        }
    }

    void finish(Job& j, const std::string& error) {
        if (error.empty()) {  // what was held back is part of the answer ("" after a stop string)
            if (const std::string rest = j.text->flush(); !rest.empty()) {
                j.out.text += rest;
                push(j, rest, json());
            }
        }
        m_.generated_tokens += j.out.completion_tokens;
        j.over = true;
        {
            std::lock_guard lock(j.mu);
            j.error = error;
            j.done = true;
        }
        j.cv.notify_one();
    }

    void push(Job& j, const std::string& text, const json& lp) {
        {
            std::lock_guard lock(j.mu);
            j.events.emplace_back(text, lp);
        }
        j.cv.notify_one();
    }

    // Samples the job's next token and hands its text on; the token to evaluate, or nothing when it ends.
    std::optional<Token> advance(Job& j) {
        const Request& r = *j.r;
        Session& s = *slots_[j.slot].session;
        Outcome& out = j.out;
        if (j.cancelled) return std::nullopt;
        if (out.completion_tokens >= r.max_tokens || s.position() >= s.n_ctx()) return std::nullopt;
        const auto l = s.logits();
        logits_.assign(l.begin(), l.end());
        for (const auto& [id, b] : r.logit_bias) logits_[id] += b;
        if (r.ignore_eos)
            for (Token e : eog_) logits_[e] = -INFINITY;
        Token t = -1;
        try {
            t = j.sampler->sample(logits_);
        } catch (const Error& e) {
            j.sample_error = e.what();
            return std::nullopt;
        }
        ++out.completion_tokens;
        const Tokenizer& tok = model_->tokenizer();
        if (tok.is_end_of_generation(t)) {
            out.finish = "stop";
            return std::nullopt;
        }
        json lp;
        if (r.logprobs >= 0) lp = logprob_entry(logits_, t, r.logprobs);
        const std::string ready = j.text->push(tok.piece(t, false));
        out.text += ready;
        if (!lp.is_null()) out.logprobs.push_back(lp);
        if (!ready.empty() || !lp.is_null()) push(j, ready, lp);
        if (j.text->stopped() || j.sampler->grammar_done()) {  // a finished grammar: nothing more may follow
            out.finish = "stop";
            return std::nullopt;
        }
        return t;
    }

    json logprob_entry(const std::vector<float>& logits, Token t, int top) const {
        const float mx = *std::max_element(logits.begin(), logits.end());
        double sum = 0;
        for (float x : logits) sum += std::exp(static_cast<double>(x) - mx);
        const double lse = mx + std::log(sum);
        const Tokenizer& tok = model_->tokenizer();
        auto entry = [&](Token id) {
            const std::string p = tok.piece(id, false);
            std::vector<int> bytes(p.begin(), p.end());
            for (int& b : bytes) b &= 0xFF;
            return json{{"token", p}, {"logprob", logits[id] - lse}, {"bytes", bytes}};
        };
        json e = entry(t);
        json alts = json::array();
        if (top > 0) {
            std::vector<Token> ids(logits.size());
            for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<Token>(i);
            std::partial_sort(ids.begin(), ids.begin() + top, ids.end(), [&](Token a, Token b) { return logits[a] > logits[b]; });
            for (int i = 0; i < top; ++i) alts.push_back(entry(ids[i]));
        }
        e["top_logprobs"] = alts;
        return e;
    }

    json usage(const Outcome& o) const {
        return {{"prompt_tokens", o.prompt_tokens}, {"completion_tokens", o.completion_tokens},
                {"total_tokens", o.prompt_tokens + o.completion_tokens},
                {"prompt_tokens_details", {{"cached_tokens", o.reused}}}};
    }

    void complete(const httplib::Request& req, httplib::Response& res, bool chat) {
        ++m_.requests;
        handle(res, [&] {
            const Request r = read_request(parse(req.body), chat);
            const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++next_id_);
            const long created = static_cast<long>(std::time(nullptr));
            const char* object = chat ? "chat.completion" : "text_completion";
            if (!r.stream) {
                const int slot = acquire(r);
                Outcome o;
                try {
                    o = run(r, slot, [](const std::string&, const json&) { return true; });
                } catch (...) {
                    release(slot);
                    throw;
                }
                release(slot);
                json choice = {{"index", 0}, {"finish_reason", o.finish}};
                if (chat) {
                    choice["message"] = {{"role", "assistant"}, {"content", o.text}};
                    choice["logprobs"] = r.logprobs >= 0 ? json{{"content", o.logprobs}} : json(nullptr);
                } else {
                    choice["text"] = o.text;
                    choice["logprobs"] = r.logprobs >= 0 ? completion_logprobs(o.logprobs) : json(nullptr);
                }
                res.set_content(dump({{"id", id}, {"object", object}, {"created", created}, {"model", name_},
                                      {"choices", {choice}}, {"usage", usage(o)}}),
                                kJson);
                return;
            }
            // Streaming: the slot is taken before the headers go out, so a busy server still answers 503.
            const int slot = acquire(r);
            auto released = std::make_shared<std::atomic<bool>>(false);
            auto free_slot = [this, slot, released] {
                if (!released->exchange(true)) release(slot);
            };
            const char* chunk_object = chat ? "chat.completion.chunk" : "text_completion";
            res.set_chunked_content_provider(
                "text/event-stream",
                [this, r, id, created, chunk_object, chat, slot, free_slot](size_t, httplib::DataSink& sink) {
                    auto send = [&](const json& j) {
                        const std::string line = "data: " + dump(j) + "\n\n";
                        return sink.is_writable() && sink.write(line.data(), line.size());
                    };
                    auto chunk = [&](const json& delta_or_text, const json& finish, const json& lp) {
                        json c = {{"index", 0}, {"finish_reason", finish}};
                        if (chat) c["delta"] = delta_or_text, c["logprobs"] = lp.is_null() ? json(nullptr) : json{{"content", {lp}}};
                        else c["text"] = delta_or_text, c["logprobs"] = lp.is_null() ? json(nullptr) : completion_logprobs(json::array({lp}));
                        json j = {{"id", id}, {"object", chunk_object}, {"created", created}, {"model", name_}, {"choices", {c}}};
                        if (r.include_usage) j["usage"] = nullptr;
                        return send(j);
                    };
                    try {
                        if (chat && !chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr, json())) {
                            free_slot();
                            return false;
                        }
                        // An SSE comment line, which clients skip: writing is how a gone client shows.
                        const auto alive = [&] { return sink.is_writable() && sink.write(":\n\n", 3); };
                        const Outcome o = run(r, slot, [&](const std::string& text, const json& lp) {
                            return chunk(chat ? json{{"content", text}} : json(text), nullptr, lp);
                        }, alive);
                        free_slot();
                        if (o.finish == "cancelled") return false;
                        chunk(chat ? json::object() : json(""), o.finish, json());
                        if (r.include_usage)
                            send({{"id", id}, {"object", chunk_object}, {"created", created}, {"model", name_},
                                  {"choices", json::array()}, {"usage", usage(o)}});
                        const std::string done = "data: [DONE]\n\n";
                        sink.write(done.data(), done.size());
                        sink.done();
                    } catch (const std::exception& e) {
                        free_slot();
                        send({{"error", {{"message", e.what()}, {"type", "server_error"}}}});
                        sink.done();
                    }
                    return true;
                },
                [free_slot](bool) { free_slot(); });  // a connection dropped before the provider ran
        });
    }

    static json completion_logprobs(const json& entries) {
        json tokens = json::array(), lps = json::array(), tops = json::array();
        for (const auto& e : entries) {
            tokens.push_back(e["token"]);
            lps.push_back(e["logprob"]);
            json t = json::object();
            for (const auto& a : e["top_logprobs"]) t[a["token"].get<std::string>()] = a["logprob"];
            tops.push_back(t);
        }
        return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}};
    }

    void metrics(httplib::Response& res) {
        int busy = 0, waiting = 0;
        {
            std::lock_guard lock(mu_);
            for (const auto& s : slots_) busy += s.busy;
            waiting = waiting_;
        }
        const double secs = m_.decode_us.load() / 1e6;
        std::string t;
        auto metric = [&](const char* name, const char* type, const char* help, double v) {
            t += std::string("# HELP ember_") + name + " " + help + "\n# TYPE ember_" + name + " " + type + "\nember_" + name +
                 " " + std::to_string(v) + "\n";
        };
        metric("requests_total", "counter", "completion requests received", m_.requests.load());
        metric("request_errors_total", "counter", "requests answered with an error", m_.errors.load());
        metric("prompt_tokens_total", "counter", "prompt tokens of completed requests", m_.prompt_tokens.load());
        metric("prompt_tokens_reused_total", "counter", "prompt tokens found in a slot's cache", m_.reused_tokens.load());
        metric("tokens_generated_total", "counter", "tokens generated", m_.generated_tokens.load());
        metric("tokens_per_second", "gauge", "tokens generated per second the batched steps ran",
               secs > 0 ? m_.generated_tokens.load() / secs : 0.0);
        metric("batch_steps_total", "counter", "batched steps run (generating slots' tokens and prompt chunks)",
               m_.steps.load());
        metric("batch_step_tokens_max", "gauge", "the most tokens one step evaluated", m_.step_tokens_max.load());
        metric("batch_size", "gauge", "tokens a step may evaluate (--batch)", ready_ ? budget_ : 0);
        metric("slots_busy", "gauge", "slots serving a request", busy);
        metric("slots_total", "gauge", "slots", static_cast<double>(slots_.size()));
        metric("queue_depth", "gauge", "requests waiting for a slot", waiting);
        res.set_content(t, "text/plain; version=0.0.4");
    }

    Options o_;
    std::optional<Model> model_;
    std::vector<AdapterScale> adapters_;  // --lora / --lora-scaled, with the command line's scales
    std::string name_;
    long created_ = static_cast<long>(std::time(nullptr));
    std::atomic<bool> ready_{false};
    std::vector<Slot> slots_;
    std::vector<Token> eog_;  // end-of-generation tokens (for ignore_eos)
    std::mutex sched_mu_;     // jobs_ and stopping_
    std::condition_variable sched_cv_;
    std::vector<std::shared_ptr<Job>> jobs_;  // handed over, not yet stepped
    bool stopping_ = false;
    std::vector<float> logits_;  // the scheduler's scratch
    int budget_ = 0;             // tokens per step
    std::thread scheduler_;
    std::mutex mu_;
    std::condition_variable cv_;
    int waiting_ = 0;
    std::atomic<long> next_id_{0};
    Metrics m_;
};

httplib::Server* g_http = nullptr;
void on_signal(int) {
    if (g_http) g_http->stop();
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    o.model = ember_examples::default_model();
    if (const char* k = std::getenv("EMBER_API_KEY")) o.api_key = k;
    CLI::App app{"ember-server: an OpenAI-compatible HTTP server"};
    app.add_option("-m,--model", o.model, "GGUF model")->capture_default_str();
    app.add_option("--host", o.host, "address to listen on")->capture_default_str();
    app.add_option("--port", o.port, "port")->check(CLI::Range(0, 65535))->capture_default_str();
    app.add_option("--parallel,--np", o.parallel, "slots: requests served at once")->check(CLI::Range(1, 256))->capture_default_str();
    app.add_option("-c,--ctx", o.n_ctx, "context per slot")->check(CLI::Range(64, 1 << 20))->capture_default_str();
    app.add_option("-b,--batch", o.batch,
                   "tokens one batched step evaluates at most: every generating slot's next token, then chunks of "
                   "waiting prompts (smaller: steadier streams while a long prompt is read; larger: faster prompts)")
        ->check(CLI::Range(1, 1 << 16))->capture_default_str();
    app.add_option("-t,--threads", o.threads, "threads (0: hardware)")->check(CLI::Range(0, 1024));
    app.add_option("--quantize", o.quantize, ember_examples::kQuantizeHelp);
    app.add_option("--api-key", o.api_key, "required bearer key (default: $EMBER_API_KEY)");
    app.add_option("--queue", o.queue, "requests that may wait for a slot; more get 503")->check(CLI::Range(0, 100000))->capture_default_str();
    app.add_option("--max-tokens", o.max_tokens, "cap on tokens per reply")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--timeout", o.timeout, "seconds for reads, writes and waiting for a slot")->check(CLI::Range(1, 86400))->capture_default_str();
    std::vector<std::string> lora;
    std::vector<std::pair<std::string, std::string>> lora_scaled;  // CLI11 2.1 warns on a float second
    CLI::Option* lora_opt = app.add_option("--lora", lora, "LoRA adapter (GGUF file or PEFT folder) at scale 1; repeatable");
    CLI::Option* scaled_opt = app.add_option("--lora-scaled", lora_scaled, "LoRA adapter FILE with its SCALE; repeatable");
    CLI11_PARSE(app, argc, argv);
    // The adapters' ids follow the command line, --lora and --lora-scaled interleaved.
    size_t next_lora = 0, next_scaled = 0;
    for (const CLI::Option* opt : app.parse_order()) {
        if (opt == lora_opt && next_lora < lora.size()) o.loras.push_back({lora[next_lora++], 1.f});
        else if (opt == scaled_opt && next_scaled < lora_scaled.size()) {
            const auto& [path, scale] = lora_scaled[next_scaled++];
            try {
                o.loras.push_back({path, ember_examples::lora_scale(scale)});
            } catch (const Error& e) {
                return ember_examples::fail(e);
            }
        }
    }

    Server server(o);
    httplib::Server http;
    // Enough workers that /health answers while every slot is busy and the queue is full.
    const size_t workers = static_cast<size_t>(o.parallel + o.queue + 4);
    http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    http.set_payload_max_length(4u << 20);
    http.set_read_timeout(o.timeout);
    http.set_write_timeout(o.timeout);
    // One request per connection: an idle keep-alive client would otherwise hold a worker, and with enough
    // of them /health would wait for one (seen: 4.9 s under 24 pooled clients).
    http.set_keep_alive_max_count(1);
    server.routes(http);
    g_http = &http;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);

    // cpp-httplib listens with a backlog of 5: under a burst of new connections the kernel drops SYNs and
    // clients (a /health probe included) wait a 1 s retransmission. Keep the socket and widen its backlog.
    int listen_fd = -1;
    http.set_socket_options([&listen_fd](socket_t sock) {
        httplib::default_socket_options(sock);
        listen_fd = static_cast<int>(sock);
    });
    const int port = o.port == 0 ? http.bind_to_any_port(o.host) : (http.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port < 0) {
        std::fprintf(stderr, "ember-server: cannot listen on %s:%d\n", o.host.c_str(), o.port);
        return 1;
    }
    if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
    std::atomic<bool> listener_done{false};
    std::thread listener([&] {  // /health says 503 while the model loads
        http.listen_after_bind();
        listener_done = true;
    });
    try {
        server.load();
    } catch (const std::exception& e) {
        // stop() before the listener runs would be lost, and join() would wait forever.
        while (!http.is_running() && !listener_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        http.stop();
        listener.join();
        return ember_examples::fail(e);
    }
    std::printf("ember-server: listening on http://%s:%d (%d slots of %d tokens)\n", o.host.c_str(), port, o.parallel, o.n_ctx);
    std::fflush(stdout);
    listener.join();
    return 0;
}
