// ember-eval mt-bench: the 80 two-turn MT-Bench questions answered through ember::Chat (the model's own
// template, the KV cache reused from turn 1 to turn 2), or with --no-history each turn answered alone. The
// answers are then graded by any OpenAI-compatible endpoint with FastChat's single-answer prompts and its
// [[rating]] parsing. Answers and judgments are appended to JSONL files one finished item at a time, so a
// run killed midway resumes where it stopped; the report compares history on and off when both are there.
#include <curl/curl.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "ember/ember.hpp"
#include "eval.hpp"

namespace ember_eval {

namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;
using ember::Error;
using ember::Status;

// FastChat's choices: these categories are graded against a reference answer, and sampled at these
// temperatures (0: greedy).
const std::set<std::string> kNeedsReference = {"math", "reasoning", "coding"};
const std::map<std::string, float> kTemperature = {{"writing", 0.7f}, {"roleplay", 0.7f}, {"extraction", 0.f},
                                                   {"math", 0.f},     {"coding", 0.f},    {"reasoning", 0.f},
                                                   {"stem", 0.1f},    {"humanities", 0.1f}};

std::vector<json> read_jsonl(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(Status::Io, "cannot open " + path);
    std::vector<json> out;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw Error(Status::BadFile, path + ": a line is not a JSON object");
        out.push_back(std::move(j));
    }
    return out;
}

// What an earlier run finished: every record whose line is whole. A line cut short by a kill is dropped
// and the file rewritten without it (atomically), so later appends stay readable.
std::vector<json> read_finished(const std::string& path, const char* key) {
    std::ifstream in(path);
    std::vector<json> out;
    std::string kept;
    bool damaged = false;
    for (std::string line; std::getline(in, line);) {
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains(key)) {
            damaged |= !line.empty();
            continue;
        }
        kept += line + '\n';
        out.push_back(std::move(j));
    }
    if (damaged) {
        std::fprintf(stderr, "ember-eval: %s: dropping an unfinished line\n", path.c_str());
        const std::string tmp = path + ".tmp";
        std::ofstream(tmp, std::ios::trunc | std::ios::binary) << kept;
        fs::rename(tmp, path);
    }
    return out;
}

// A model's reply cut at max_tokens may end inside a UTF-8 character: such bytes become U+FFFD.
std::string to_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Appends one finished record as one line.
void append_jsonl(const std::string& path, const json& j) {
    std::ofstream out(path, std::ios::app | std::ios::binary);
    out << to_json(j) << '\n';
    out.flush();
    if (!out) throw Error(Status::Io, "cannot write " + path);
}

// FastChat's templates use Python's {name} fields; only these names occur.
std::string fill(std::string t, const std::map<std::string, std::string>& fields) {
    for (const auto& [k, v] : fields) {
        const std::string key = "{" + k + "}";
        for (size_t at = t.find(key); at != std::string::npos; at = t.find(key, at + v.size()))
            t.replace(at, key.size(), v);
    }
    return t;
}

// FastChat's parsing: "[[7]]", else "[7]"; -1 when neither is there.
double parse_rating(const std::string& judgment) {
    static const std::regex twice(R"(\[\[(\d+\.?\d*)\]\])"), once(R"(\[(\d+\.?\d*)\])");
    std::smatch m;
    if (std::regex_search(judgment, m, twice) || std::regex_search(judgment, m, once)) return std::stod(m[1]);
    return -1;
}

// One OpenAI-compatible chat completion per call, over libcurl; retried on transport errors, 429 and 5xx.
class JudgeClient {
public:
    JudgeClient(std::string url, std::string model, std::string key, int max_tokens)
        : model_(std::move(model)), key_(std::move(key)), max_tokens_(max_tokens) {
        while (!url.empty() && url.back() == '/') url.pop_back();
        url_ = url.ends_with("/chat/completions") ? url : url + "/chat/completions";
        curl_global_init(CURL_GLOBAL_DEFAULT);
    }
    ~JudgeClient() { curl_global_cleanup(); }
    JudgeClient(const JudgeClient&) = delete;
    JudgeClient& operator=(const JudgeClient&) = delete;

    std::string ask(const std::string& system, const std::string& user) {
        const json body = {{"model", model_},
                           {"messages", {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", user}}}},
                           {"temperature", 0},
                           {"max_tokens", max_tokens_}};
        std::string last_error;
        for (int attempt = 0; attempt < 4; ++attempt) {
            if (attempt) std::this_thread::sleep_for(std::chrono::seconds(1 << attempt));
            long status = 0;
            std::string reply;
            const CURLcode rc = post(to_json(body), status, reply);
            if (rc != CURLE_OK) {
                last_error = curl_easy_strerror(rc);
                continue;
            }
            if (status == 429 || status >= 500) {
                last_error = "HTTP " + std::to_string(status);
                continue;
            }
            const json j = json::parse(reply, nullptr, false);
            if (status != 200 || j.is_discarded())
                throw Error(Status::Io, "the judge answered HTTP " + std::to_string(status) + ": " + reply.substr(0, 300));
            try {
                return j.at("choices").at(0).at("message").at("content").get<std::string>();
            } catch (const json::exception&) {
                throw Error(Status::Io, "the judge's reply has no choices[0].message.content: " + reply.substr(0, 300));
            }
        }
        throw Error(Status::Io, "the judge at " + url_ + " failed 4 times; last: " + last_error);
    }

private:
    static size_t collect(char* p, size_t size, size_t n, void* out) {
        static_cast<std::string*>(out)->append(p, size * n);
        return size * n;
    }

    CURLcode post(const std::string& body, long& status, std::string& reply) {
        CURL* curl = curl_easy_init();
        if (!curl) return CURLE_FAILED_INIT;
        curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
        if (!key_.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + key_).c_str());
        curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 600L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        const CURLcode rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return rc;
    }

    std::string url_, model_, key_;
    int max_tokens_;
};

std::string mode_name(bool history) { return history ? "history" : "no-history"; }

void print_report(const std::string& out, const std::string& model, const std::string& judge_model) {
    // (mode, category, turn) → scores; modes whose judgments exist in the folder.
    std::map<std::string, std::map<std::string, std::map<int, std::vector<double>>>> scores;
    int unparsed = 0;
    for (const bool h : {true, false}) {
        const auto path = out + "/judgments-" + model_name(model) + "-" + mode_name(h) + ".jsonl";
        for (const auto& j : read_finished(path, "score")) {
            if (j.value("judge", "") != judge_model) continue;
            const double s = j.value("score", -1.0);
            if (s < 0) {
                ++unparsed;
                continue;
            }
            scores[mode_name(h)][j.value("category", "?")][j.value("turn", 0)].push_back(s);
        }
    }
    if (scores.empty()) {
        std::printf("no judgments yet (give --judge-url to grade the answers)\n");
        return;
    }
    auto mean = [](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return v.empty() ? NAN : s / static_cast<double>(v.size());
    };
    auto print_cell = [](const std::string& mode, double v) {  // "-": no rated judgment
        const int w = static_cast<int>(mode.size()) + 3;
        if (std::isnan(v)) std::printf(" %*s |", w, "-");
        else std::printf(" %*.2f |", w, v);
    };
    std::set<std::string> categories;
    for (const auto& [m, cats] : scores)
        for (const auto& [c, turns] : cats) categories.insert(c);
    std::printf("\nMT-Bench, %s judged by %s (score 1-10, mean)\n| category   |", model_name(model).c_str(),
                judge_model.c_str());
    for (const auto& [m, cats] : scores) std::printf(" %s t1 | %s t2 |", m.c_str(), m.c_str());
    std::printf("\n|---|");
    for (size_t i = 0; i < scores.size(); ++i) std::printf("---|---|");
    std::printf("\n");
    json report = json::object();
    for (const auto& c : categories) {
        std::printf("| %-10s |", c.c_str());
        for (auto& [m, cats] : scores)
            for (int t : {1, 2}) {
                const double v = mean(cats[c][t]);
                print_cell(m, v);
                report[m][c]["turn" + std::to_string(t)] = std::isnan(v) ? json(nullptr) : json(v);
            }
        std::printf("\n");
    }
    std::printf("| %-10s |", "overall");
    for (auto& [m, cats] : scores)
        for (int t : {1, 2}) {
            std::vector<double> all;
            for (auto& [c, turns] : cats) all.insert(all.end(), turns[t].begin(), turns[t].end());
            const double v = mean(all);
            print_cell(m, v);
            report[m]["overall"]["turn" + std::to_string(t)] = std::isnan(v) ? json(nullptr) : json(v);
            report[m]["overall"]["judgments_turn" + std::to_string(t)] = all.size();
        }
    std::printf("\n");
    if (unparsed) std::printf("%d judgments without a [[rating]] left out\n", unparsed);
    std::ofstream(out + "/report-" + model_name(model) + ".json")
        << json{{"model", model_name(model)}, {"judge", judge_model}, {"scores", report}}.dump(2) << '\n';
}

}  // namespace

int run_mt_bench(const Common& c, const MtBenchOptions& o) {
    auto questions = read_jsonl(o.data + "/question.jsonl");
    if (o.limit > 0 && static_cast<int>(questions.size()) > o.limit) questions.resize(o.limit);
    std::map<int, json> references;
    if (fs::exists(o.data + "/reference_answer_gpt-4.jsonl"))
        for (const auto& r : read_jsonl(o.data + "/reference_answer_gpt-4.jsonl"))
            references[r.at("question_id").get<int>()] = r.at("choices").at(0).at("turns");
    std::map<std::string, json> prompts;
    for (const auto& p : read_jsonl(o.data + "/judge_prompts.jsonl")) prompts[p.at("name")] = p;
    for (const char* n : {"single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn"})
        if (!prompts.count(n)) throw Error(Status::BadFile, "judge_prompts.jsonl has no '" + std::string(n) + "'");
    for (const auto& q : questions)
        if (!q.contains("question_id") || !q.contains("category") || !q.contains("turns") || q["turns"].size() != 2)
            throw Error(Status::BadFile, "question.jsonl: each question needs question_id, category and two turns");

    fs::create_directories(o.out);
    const std::string name = model_name(o.model);
    const std::string answers_path = o.out + "/answers-" + name + "-" + mode_name(o.history) + ".jsonl";
    const std::string judgments_path = o.out + "/judgments-" + name + "-" + mode_name(o.history) + ".jsonl";

    // 1. Answers: each question not answered yet, both turns, then one line.
    std::map<int, json> answers;
    for (auto& a : read_finished(answers_path, "turns")) answers[a.at("question_id").get<int>()] = a;
    int todo = 0;
    for (const auto& q : questions) todo += !answers.count(q["question_id"].get<int>());
    std::printf("MT-Bench %s, %s: %zu questions, %zu answered before, %d to answer\n", name.c_str(),
                mode_name(o.history).c_str(), questions.size(), questions.size() - todo, todo);
    if (todo > 0) {
        ember::ModelParams mp;
        mp.backend = c.backend;
        mp.n_threads = c.threads;
        mp.quantize = c.quantize;
        const ember::Model model = ember::Model::load(o.model, mp);
        ember::SessionParams sp;
        sp.n_ctx = o.n_ctx;
        ember::ChatParams cp;
        cp.history = o.history;
        cp.reserve = std::min(o.max_tokens, o.n_ctx / 2);
        ember::GenerateParams gp;
        gp.max_tokens = o.max_tokens;
        Stopwatch clock;
        long generated = 0;
        for (const auto& q : questions) {
            const int id = q["question_id"].get<int>();
            if (answers.count(id)) continue;
            const std::string category = q["category"];
            ember::SamplerParams samp;
            samp.temperature = kTemperature.count(category) ? kTemperature.at(category) : 0.7f;
            samp.seed = 42;
            samp.top_k = 0, samp.top_p = 1.f, samp.min_p = 0.f;  // plain temperature sampling, as FastChat
            ember::Sampler sampler = samp.temperature <= 0 ? ember::Sampler::greedy() : ember::Sampler(samp);
            ember::Chat chat(model, sp, cp);
            json turns = json::array();
            for (const auto& t : q["turns"]) {
                const auto turn = chat.say(t.get<std::string>(), sampler, gp);
                turns.push_back(turn.reply.text);
                generated += static_cast<long>(turn.reply.tokens.size());
            }
            json a = {{"question_id", id}, {"category", category}, {"model", name},
                      {"history", o.history}, {"turns", turns}};
            append_jsonl(answers_path, a);
            answers[id] = a;
            std::printf("  answered %d (%s), %ld tokens so far, %.1f tokens/s\n", id, category.c_str(), generated,
                        generated / std::max(1e-9, clock.wall_s()));
            std::fflush(stdout);
        }
    }

    // 2. Judgments: each (question, turn) not judged yet by this judge model.
    if (o.judge_url.empty()) {
        std::printf("no --judge-url: nothing judged now; answers in %s\n", answers_path.c_str());
    } else {
        std::set<std::pair<int, int>> judged;
        for (const auto& j : read_finished(judgments_path, "score"))
            if (j.value("judge", "") == o.judge_model) judged.insert({j.at("question_id").get<int>(), j.at("turn").get<int>()});
        JudgeClient judge(o.judge_url, o.judge_model, o.judge_key, o.judge_max_tokens);
        int asked = 0;
        for (const auto& q : questions) {
            const int id = q["question_id"].get<int>();
            const std::string category = q["category"];
            const json& a = answers.at(id);
            const bool ref = kNeedsReference.count(category) && references.count(id);
            for (int turn : {1, 2}) {
                if (judged.count({id, turn})) continue;
                const json& p = prompts.at(std::string(ref ? "single-math-v1" : "single-v1") + (turn == 2 ? "-multi-turn" : ""));
                std::map<std::string, std::string> f = {
                    {"question", q["turns"][0]}, {"answer", a["turns"][0]},
                    {"question_1", q["turns"][0]}, {"question_2", q["turns"][1]},
                    {"answer_1", a["turns"][0]}, {"answer_2", a["turns"][1]}};
                if (ref) {
                    f["ref_answer_1"] = references[id][0];
                    f["ref_answer_2"] = references[id][1];
                }
                const std::string judgment = judge.ask(p.at("system_prompt"), fill(p.at("prompt_template"), f));
                const double score = parse_rating(judgment);
                append_jsonl(judgments_path, {{"question_id", id}, {"category", category}, {"turn", turn},
                                              {"model", name}, {"history", o.history}, {"judge", o.judge_model},
                                              {"prompt", p.at("name")}, {"score", score}, {"judgment", judgment}});
                ++asked;
            }
        }
        std::printf("judged %d turns now, %zu before\n", asked, judged.size());
    }
    print_report(o.out, o.model, o.judge_model);  // whatever the folder holds for this judge
    return 0;
}

}  // namespace ember_eval
