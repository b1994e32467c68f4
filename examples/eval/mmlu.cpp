// ember-eval mmlu: the classic MMLU prompt, the answer as the argmax over the next-token logits of " A",
// " B", " C", " D". Questions of a subject share their start (the header and the shots): the session keeps
// the longest common token prefix of consecutive prompts and evaluates only the rest.
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ember/ember.hpp"
#include "eval.hpp"

extern char** environ;

namespace ember_eval {

namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;
using ember::Error;
using ember::Status;
using ember::Token;

const char* const kDefaultSubjects =
    "abstract_algebra,anatomy,astronomy,college_biology,computer_security,high_school_geography,marketing,"
    "nutrition,philosophy,world_religions";
constexpr const char* kLetters[4] = {"A", "B", "C", "D"};

struct Question {
    std::string text;
    std::array<std::string, 4> choices;
    int answer = 0;  // 0..3
};

// RFC 4180: fields may be quoted, a quoted field may hold commas, newlines and doubled quotes.
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(Status::Io, "cannot open " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string s = ss.str();
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (quoted) {
            if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') field += '"', ++i;
            else if (c == '"') quoted = false;
            else field += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            row.push_back(std::move(field)), field.clear();
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
            row.push_back(std::move(field)), field.clear();
            rows.push_back(std::move(row)), row.clear();
        } else {
            field += c;
        }
    }
    if (quoted) throw Error(Status::BadFile, path + ": a quoted field is not closed");
    if (!field.empty() || !row.empty()) row.push_back(std::move(field)), rows.push_back(std::move(row));
    return rows;
}

// question,choice0..3,answer (0-3 or A-D); the header row, when there is one, is skipped.
std::vector<Question> read_questions(const std::string& path) {
    std::vector<Question> qs;
    const auto rows = read_csv(path);
    for (size_t r = 0; r < rows.size(); ++r) {
        const auto& row = rows[r];
        if (r == 0 && !row.empty() && row[0] == "question") continue;
        if (row.size() == 1 && row[0].empty()) continue;  // blank line
        if (row.size() != 6) throw Error(Status::BadFile, path + ": row " + std::to_string(r + 1) + " has " +
                                                               std::to_string(row.size()) + " fields, not 6");
        Question q;
        q.text = row[0];
        for (int i = 0; i < 4; ++i) q.choices[i] = row[1 + i];
        const std::string& a = row[5];
        if (a.size() == 1 && a[0] >= '0' && a[0] <= '3') q.answer = a[0] - '0';
        else if (a.size() == 1 && a[0] >= 'A' && a[0] <= 'D') q.answer = a[0] - 'A';
        else throw Error(Status::BadFile, path + ": row " + std::to_string(r + 1) + " has answer '" + a + "'");
        qs.push_back(std::move(q));
    }
    return qs;
}

std::string block(const Question& q, bool with_answer) {
    std::string s = q.text + "\n";
    for (int i = 0; i < 4; ++i) s += std::string(kLetters[i]) + ". " + q.choices[i] + "\n";
    s += "Answer:";
    if (with_answer) s += std::string(" ") + kLetters[q.answer] + "\n\n";
    return s;
}

std::string prompt(const std::string& subject, const std::vector<Question>& shots, int k, const Question& q) {
    std::string name = subject;
    std::replace(name.begin(), name.end(), '_', ' ');
    std::string s = "The following are multiple choice questions (with answers) about " + name + ".\n\n";
    for (int i = 0; i < k; ++i) s += block(shots[i], true);
    return s + block(q, false);
}

std::vector<std::string> subject_list(const MmluOptions& o) {
    std::vector<std::string> out;
    if (o.subjects == "all") {
        for (const auto& e : fs::directory_iterator(o.data + "/test")) {
            const std::string f = e.path().filename().string();
            if (f.ends_with("_test.csv")) out.push_back(f.substr(0, f.size() - 9));
        }
        std::sort(out.begin(), out.end());
        if (out.empty()) throw Error(Status::Io, "no *_test.csv in " + o.data + "/test");
        return out;
    }
    std::stringstream ss(o.subjects.empty() ? kDefaultSubjects : o.subjects);
    for (std::string s; std::getline(ss, s, ',');)
        if (!s.empty()) out.push_back(s);
    if (out.empty()) throw Error(Status::InvalidArgument, "no subjects given");
    return out;
}

// The token the model emits for " A" after "Answer:", learnt from the tokenizer rather than assumed.
std::array<Token, 4> letter_tokens(const ember::Tokenizer& tok) {
    std::array<Token, 4> ids{};
    const auto base = tok.encode("Answer:", false, false);
    for (int i = 0; i < 4; ++i) {
        const auto with = tok.encode(std::string("Answer: ") + kLetters[i], false, false);
        if (with.size() <= base.size()) throw Error(Status::Unsupported, "cannot find the token for ' A'");
        ids[i] = with.back();
    }
    for (int i = 0; i < 4; ++i)
        for (int j = i + 1; j < 4; ++j)
            if (ids[i] == ids[j]) throw Error(Status::Unsupported, "the letters A-D share a token in this vocabulary");
    return ids;
}

struct SubjectScore {
    int questions = 0, correct = 0;
};

struct ModelResult {
    std::string name, path, backend;
    int threads = 0;
    std::map<std::string, SubjectScore> subjects;
    std::array<int, 4> histogram{};
    int questions = 0, correct = 0;
    double load_s = 0, wall_s = 0, cpu_s = 0;
    long prompt_tokens = 0, reused_tokens = 0;
    int dropped_shots = 0;  // questions asked with fewer shots so they fit the context
};

// python3 from PATH (a venv with matplotlib), else Debian's, which has python3-matplotlib.
void run_plot(const std::string& dir) {
    std::string script = EMBER_EVAL_PLOT_SCRIPT;  // the source tree's copy
    for (const char* python : {"python3", "/usr/bin/python3"}) {
        std::string py = python;
        std::vector<char*> argv = {py.data(), script.data(), const_cast<char*>(dir.c_str()), nullptr};
        pid_t pid = 0;
        int status = 0;
        if (posix_spawnp(&pid, python, nullptr, nullptr, argv.data(), environ) != 0) continue;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    }
    std::fprintf(stderr, "ember-eval: no plots: %s needs python3 with matplotlib\n", script.c_str());
}

}  // namespace

int run_mmlu(const Common& c, const MmluOptions& o) {
    if (o.plot && o.out.empty()) throw Error(Status::InvalidArgument, "--plot needs --out DIR");
    const auto subjects = subject_list(o);
    // Read everything first: a missing file fails before any model is loaded.
    std::map<std::string, std::vector<Question>> tests, devs;
    int total = 0;
    for (const auto& s : subjects) {
        auto qs = read_questions(o.data + "/test/" + s + "_test.csv");
        if (o.limit > 0 && static_cast<int>(qs.size()) > o.limit) qs.resize(o.limit);
        total += static_cast<int>(qs.size());
        tests[s] = std::move(qs);
        if (o.shots > 0) {
            devs[s] = read_questions(o.data + "/dev/" + s + "_dev.csv");
            if (static_cast<int>(devs[s].size()) < o.shots)
                throw Error(Status::BadFile, s + "_dev.csv has fewer than " + std::to_string(o.shots) + " questions");
        }
    }
    std::printf("MMLU: %zu subjects, %d questions, %d-shot\n", subjects.size(), total, o.shots);

    std::ofstream answers;
    if (!o.out.empty()) {
        fs::create_directories(o.out);
        answers.open(o.out + "/answers.jsonl", std::ios::trunc);
        if (!answers) throw Error(Status::Io, "cannot write " + o.out + "/answers.jsonl");
    }

    std::vector<ModelResult> results;
    for (const auto& path : o.models) {
        ModelResult r;
        r.name = model_name(path);
        int same = 1;  // one file given twice (say, on two backends) is named apart in the results
        for (const auto& earlier : results) same += model_name(earlier.path) == r.name;
        if (same > 1) r.name.append("#").append(std::to_string(same));
        r.path = path;
        Stopwatch load_clock;
        ember::ModelParams mp;
        mp.backend = c.backend;
        mp.n_threads = c.threads;
        mp.quantize = c.quantize;
        const ember::Model model = ember::Model::load(path, mp);
        r.load_s = load_clock.wall_s();
        r.backend = model.backend();
        r.threads = c.threads;
        const auto& tok = model.tokenizer();
        const auto letters = letter_tokens(tok);
        ember::SessionParams sp;
        sp.n_ctx = o.n_ctx;
        ember::Session session(model, sp);

        std::printf("\n%s (%s): ", r.name.c_str(), r.backend.c_str());
        std::fflush(stdout);
        Stopwatch clock;
        for (const auto& subject : subjects) {
            const auto& qs = tests[subject];
            auto& score = r.subjects[subject];
            for (size_t qi = 0; qi < qs.size(); ++qi) {
                const Question& q = qs[qi];
                std::vector<Token> ids;
                for (int k = o.shots;; --k) {  // fewer shots until the prompt fits
                    ids = tok.encode(prompt(subject, devs[subject], k, q), true, false);
                    if (static_cast<int>(ids.size()) <= session.n_ctx()) break;
                    if (k == 0) throw Error(Status::ContextFull, subject + "/" + std::to_string(qi) +
                                                                     " does not fit the context; raise -c");
                    if (k == o.shots) ++r.dropped_shots;
                }
                r.reused_tokens += session.prefill_reusing(ids);  // the shared start stays cached
                r.prompt_tokens += static_cast<long>(ids.size());

                const auto logits = session.logits();
                std::array<float, 4> l{};
                int pred = 0;
                for (int i = 0; i < 4; ++i) {
                    l[i] = logits[letters[i]];
                    if (l[i] > l[pred]) pred = i;
                }
                const bool right = pred == q.answer;
                ++score.questions, ++r.questions;
                score.correct += right, r.correct += right;
                ++r.histogram[pred];
                if (o.verbose)
                    std::printf("\n[%s/%zu] %s\n  A. %s\n  B. %s\n  C. %s\n  D. %s\n  model: %s  correct: %s  %s\n",
                                subject.c_str(), qi, q.text.c_str(), q.choices[0].c_str(), q.choices[1].c_str(),
                                q.choices[2].c_str(), q.choices[3].c_str(), kLetters[pred], kLetters[q.answer],
                                right ? "right" : "WRONG");
                if (answers.is_open())
                    answers << json{{"model", r.name}, {"id", subject + "/" + std::to_string(qi)},
                                    {"answer", kLetters[q.answer]}, {"pred", kLetters[pred]},
                                    {"logits", l}}.dump()
                            << '\n';
            }
            if (!o.verbose) {
                std::printf("%s %d/%d  ", subject.c_str(), score.correct, score.questions);
                std::fflush(stdout);
            }
        }
        r.wall_s = clock.wall_s();
        r.cpu_s = clock.cpu_s();
        std::printf("\n");
        results.push_back(std::move(r));
    }

    // The summary: accuracy per subject per model, then the totals and timings.
    std::printf("\n%-28s", "subject");
    for (const auto& r : results) std::printf(" | %22.22s", r.name.c_str());
    std::printf("\n");
    for (const auto& s : subjects) {
        std::printf("%-28.28s", s.c_str());
        for (const auto& r : results) {
            const auto& sc = r.subjects.at(s);
            std::printf(" | %14.1f%% %3d/%-3d", 100.0 * sc.correct / std::max(1, sc.questions), sc.correct,
                        sc.questions);
        }
        std::printf("\n");
    }
    std::printf("\n| %-30s | backend | questions | accuracy | load s | wall s | CPU s | GPU s | prompt t/s | "
                "reused |\n|---|---|---|---|---|---|---|---|---|---|\n",
                "model");
    for (const auto& r : results)
        std::printf("| %-30s | %7s | %9d | %7.2f%% | %6.2f | %6.1f | %5.1f |   n/a | %10.1f | %5.1f%% |\n",
                    r.name.c_str(), r.backend.c_str(), r.questions, 100.0 * r.correct / std::max(1, r.questions),
                    r.load_s, r.wall_s, r.cpu_s, r.prompt_tokens / std::max(1e-9, r.wall_s),
                    100.0 * r.reused_tokens / std::max(1L, r.prompt_tokens));
    for (const auto& r : results)
        if (r.dropped_shots)
            std::printf("%s: %d questions asked with fewer than %d shots to fit -c %d\n", r.name.c_str(),
                        r.dropped_shots, o.shots, o.n_ctx);

    if (!o.out.empty()) {
        json models = json::array();
        for (const auto& r : results) {
            json subj = json::object();
            for (const auto& [s, sc] : r.subjects)
                subj[s] = {{"questions", sc.questions}, {"correct", sc.correct},
                           {"accuracy", static_cast<double>(sc.correct) / std::max(1, sc.questions)}};
            // GPU time is absent, not zero, when nothing ran on a GPU.
            json timing = {{"load_s", r.load_s},
                           {"wall_s", r.wall_s},
                           {"cpu_s", r.cpu_s},
                           {"prompt_tokens", r.prompt_tokens},
                           {"reused_tokens", r.reused_tokens},
                           {"evaluated_tokens", r.prompt_tokens - r.reused_tokens},
                           {"prompt_tokens_per_s", r.prompt_tokens / std::max(1e-9, r.wall_s)},
                           {"evaluated_tokens_per_s", (r.prompt_tokens - r.reused_tokens) / std::max(1e-9, r.wall_s)}};
            models.push_back({{"name", r.name},
                              {"path", r.path},
                              {"backend", r.backend},
                              {"threads", r.threads},
                              {"questions", r.questions},
                              {"correct", r.correct},
                              {"accuracy", static_cast<double>(r.correct) / std::max(1, r.questions)},
                              {"subjects", subj},
                              {"answer_histogram", {{"A", r.histogram[0]}, {"B", r.histogram[1]},
                                                    {"C", r.histogram[2]}, {"D", r.histogram[3]}}},
                              {"timing", timing}});
        }
        const json doc = {{"shots", o.shots}, {"subjects", subjects}, {"models", models}};
        std::ofstream(o.out + "/results.json") << doc.dump(2) << '\n';
        answers.close();
        std::printf("\nwrote %s/results.json and %s/answers.jsonl\n", o.out.c_str(), o.out.c_str());
        if (o.plot) {
            std::fflush(stdout);  // the table before the script's output
            run_plot(o.out);
        }
    }
    return 0;
}

}  // namespace ember_eval
