#!/usr/bin/env python3
"""ember-eval end to end: MMLU (answers against the CSVs, prefix reuse against a cold cache, bad input),
perplexity against llama-perplexity's goldens, MT-Bench against a stub judge speaking OpenAI's format
(answers, judgments, report, resume after SIGKILL, judge failures).

    test_eval.py EMBER_EVAL TESTDATA {mmlu|perplexity|perplexity-smollm2|mt-bench}

Only the standard library. Exit 77 (ctest's skip) when a fetched model is missing and fixtures are not
required (EMBER_REQUIRE_FIXTURES unset)."""
import csv
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

EVAL, DATA, WHAT = sys.argv[1], sys.argv[2], sys.argv[3]
STORIES = os.path.join(DATA, "models", "stories260K.gguf")
TMP = tempfile.mkdtemp(prefix="ember-eval-test-")


def run(*args, ok=True, timeout=300):
    p = subprocess.run([EVAL, *args], capture_output=True, text=True, timeout=timeout)
    if ok and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    if not ok and p.returncode == 0:
        raise AssertionError(f"{args} should have failed:\n{p.stdout}")
    return p


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fixture(path):
    if os.path.exists(path):
        return path
    if os.environ.get("EMBER_REQUIRE_FIXTURES"):
        raise AssertionError(f"missing fixture {path} (scripts/test.sh fetches it)")
    print(f"skipped: {path} is not there (scripts/test.sh fetches it)")
    sys.exit(77)


# ---------------------------------------------------------------------------------------------- MMLU
def test_mmlu():
    mmlu = os.path.join(DATA, "eval", "mmlu")
    out = os.path.join(TMP, "mmlu")
    # The same model twice: the answers must agree to the bit (the cache of the first run is gone).
    p = run("mmlu", "-m", STORIES, "-m", STORIES, "--data", mmlu, "--subjects", "abstract_algebra,anatomy",
            "-t", "2", "--out", out, "--verbose")
    check("model: " in p.stdout and "correct: " in p.stdout, "--verbose prints each question's answers")
    results = json.load(open(os.path.join(out, "results.json")))
    answers = read_jsonl(os.path.join(out, "answers.jsonl"))
    check(len(results["models"]) == 2 and len(answers) == 16, f"2 models x 8 questions, got {len(answers)}")
    truth = {}
    for subj in ("abstract_algebra", "anatomy"):
        rows = list(csv.reader(open(os.path.join(mmlu, "test", f"{subj}_test.csv"), newline="")))[1:]
        for i, r in enumerate(rows):
            truth[f"{subj}/{i}"] = "ABCD"[int(r[5])]
    check(results["models"][1]["name"] == "stories260K#2", "a model given twice is named apart")
    for k, m in enumerate(results["models"]):
        mine = [a for a in answers if a["model"] == m["name"]]
        check({a["id"] for a in mine} == set(truth), "every question answered once")
        right = 0
        for a in mine:
            check(a["answer"] == truth[a["id"]], f"{a['id']}: the correct letter comes from the CSV")
            check(a["pred"] == "ABCD"[max(range(4), key=lambda i: a["logits"][i])], "pred is the argmax")
            right += a["pred"] == a["answer"]
        check(m["correct"] == right and abs(m["accuracy"] - right / 8) < 1e-12, "accuracy counts the answers")
        check(sum(m["answer_histogram"].values()) == 8, "the histogram counts every answer")
        t = m["timing"]
        check("gpu_s" not in t, "no GPU time on the CPU")
        check(t["wall_s"] > 0 and t["cpu_s"] > 0 and t["prompt_tokens"] > t["reused_tokens"] > 0,
              "timings and prefix reuse are recorded")
    first, second = answers[:8], answers[8:]
    check([x["logits"] for x in first] == [x["logits"] for x in second], "two runs of one model agree exactly")

    # Prefix reuse against a cold cache: question 2 asked after questions 0-1 (the header reused) and asked
    # first (nothing reused) gives the same logits.
    cold = os.path.join(TMP, "mmlu-cold")
    os.makedirs(os.path.join(cold, "test"))
    rows = list(csv.reader(open(os.path.join(mmlu, "test", "anatomy_test.csv"), newline="")))
    with open(os.path.join(cold, "test", "anatomy_test.csv"), "w", newline="") as f:
        csv.writer(f).writerows([rows[0], rows[3]])
    run("mmlu", "-m", STORIES, "--data", cold, "--subjects", "anatomy", "--out", os.path.join(TMP, "cold"))
    cold_logits = read_jsonl(os.path.join(TMP, "cold", "answers.jsonl"))[0]["logits"]
    warm_logits = next(x for x in first if x["id"] == "anatomy/2")["logits"]
    check(max(abs(x - y) for x, y in zip(cold_logits, warm_logits)) < 1e-4,
          f"reused prefix changes the answer: {cold_logits} vs {warm_logits}")

    # Shots: 2 dev examples in the prompt; a context too small for them drops shots, too small for the
    # question alone is an error naming -c.
    p = run("mmlu", "-m", STORIES, "--data", mmlu, "--subjects", "anatomy", "-k", "2", "--limit", "2")
    check("2-shot" in p.stdout, "shots are used")
    p = run("mmlu", "-m", STORIES, "--data", mmlu, "--subjects", "anatomy", "-k", "5", "-c", "400", "--limit", "2")
    check("fewer than 5 shots" in p.stdout, "shots are dropped to fit the context")
    p = run("mmlu", "-m", STORIES, "--data", mmlu, "--subjects", "anatomy", "-c", "64", ok=False)
    check("raise -c" in p.stderr, "a question longer than the context is a clear error")

    # Bad input: each a message and a non-zero exit, never a crash.
    bad = os.path.join(TMP, "bad")
    os.makedirs(os.path.join(bad, "test"))
    cases = {
        "unclosed": 'question,choice0,choice1,choice2,choice3,answer\n"open quote,a,b,c,d,0\n',
        "fields": "question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,0\n",
        "answer": "question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,7\n",
        "binary": "\x00\xff\xfe,,,\n\x01",
    }
    for name, text in cases.items():
        with open(os.path.join(bad, "test", f"{name}_test.csv"), "w", encoding="latin-1") as f:
            f.write(text)
        p = run("mmlu", "-m", STORIES, "--data", bad, "--subjects", name, ok=False)
        check(p.returncode == 1 and "error" in p.stderr and "Traceback" not in p.stderr, f"{name}: {p.stderr}")
    for args, needle in [(["--subjects", "no_such_subject"], "cannot open"),
                         (["--plot"], "--plot needs --out"),
                         (["-k", "9"], "shots"),
                         (["-t", "-3"], "threads"),
                         (["--subjects", ","], "no subjects")]:
        p = run("mmlu", "-m", STORIES, "--data", mmlu, *args, ok=False)
        check(needle in p.stderr, f"{args}: expected '{needle}' in {p.stderr!r}")
    p = run("mmlu", "-m", os.path.join(TMP, "missing.gguf"), "--data", mmlu, "--subjects", "anatomy", ok=False)
    check("missing.gguf" in p.stderr, "a missing model is named")


# ---------------------------------------------------------------------------------------------- perplexity
def golden(model):
    g = json.load(open(os.path.join(DATA, "eval", "perplexity-golden.json")))
    return next(r for r in g["runs"] if r["model"] == model)


def check_perplexity(model_path, g, tolerance):
    text = os.path.join(DATA, "eval", "wiki-excerpt.txt")
    p = run("perplexity", "-m", model_path, "-f", text, "-c", str(g["ctx"]), "-t", "2")
    line = next(l for l in p.stdout.splitlines() if l.startswith("Final estimate"))
    ppl, err = float(line.split()[4]), float(line.split()[6])
    print(f"{os.path.basename(model_path)} -c {g['ctx']}: {ppl} +/- {err}; llama-perplexity {g['ppl']} +/- {g['stderr']}")
    check(f"{g['chunks']} chunks" in p.stdout, f"{g['chunks']} chunks as llama-perplexity")
    check(abs(ppl / g["ppl"] - 1) < tolerance, f"PPL {ppl} vs llama-perplexity {g['ppl']}")
    check(abs(err / g["stderr"] - 1) < 5 * tolerance, f"error {err} vs {g['stderr']}")


def test_perplexity():
    check_perplexity(STORIES, golden("stories260K.gguf"), 1e-4)  # F32 weights: only summation order differs
    text = os.path.join(DATA, "eval", "wiki-excerpt.txt")
    p = run("perplexity", "-m", STORIES, "-f", text, "-c", "64", "--chunks", "3")
    check("3 chunks" in p.stdout, "--chunks limits the chunks")
    p = run("perplexity", "-m", STORIES, "-f", text, "-c", "8192", ok=False)
    check("needs at least" in p.stderr, "a text shorter than two chunks is refused")
    for args in (["-c", "0"], ["-c", "nan"], ["--chunks", "-1"], ["-f", os.path.join(TMP, "none.txt")]):
        p = run("perplexity", "-m", STORIES, "-f", text, *args, ok=False)
        check("Traceback" not in p.stderr and p.stderr, f"{args} is refused with a message")


def test_perplexity_smollm2():
    models = os.environ.get("EMBER_MODELS", os.path.expanduser("~/.cache/ember/models"))
    path = fixture(os.path.join(models, "SmolLM2-135M-Instruct.Q4_1.gguf"))
    check_perplexity(path, golden("SmolLM2-135M-Instruct.Q4_1.gguf"), 0.01)  # the bound: 1%


# ---------------------------------------------------------------------------------------------- MT-Bench
class Judge(http.server.ThreadingHTTPServer):
    """An OpenAI-compatible endpoint: records each request and answers with a rating chosen by `rate`."""

    def __init__(self):
        self.requests, self.fail_next, self.delay, self.status = [], 0, 0.0, 200
        super().__init__(("127.0.0.1", 0), JudgeHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address):
        pass  # a client killed mid-request is what the resume tests do


class JudgeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(srv.delay)
        if srv.fail_next > 0:  # a transient failure: the client retries
            srv.fail_next -= 1
            return self.reply(503, {"error": {"message": "busy", "type": "server_error"}})
        if srv.status != 200:
            return self.reply(srv.status, {"error": {"message": "bad key", "type": "invalid_request_error"}})
        srv.requests.append({"auth": self.headers.get("Authorization"), "path": self.path, "body": body})
        user = body["messages"][1]["content"]
        # A rating derived from the prompt: turn-2 prompts carry "### User:", the math prompts a reference.
        rating = "[[3]]" if "Reference" in user else "[[8]]" if "### User:" in user else "Rating: [[6.5]]"
        self.reply(200, {"id": "x", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": "Fine. " + rating}}]})

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_mt_bench():
    data = os.path.join(DATA, "eval", "mt_bench")
    judge = Judge()
    out = os.path.join(TMP, "mt")
    common = ["-m", STORIES, "--data", data, "--out", out, "-n", "12", "-t", "2", "--judge-model", "stub-judge"]
    env_key = dict(os.environ, EMBER_JUDGE_KEY="sk-test")
    p = subprocess.run([EVAL, "mt-bench", *common, "--judge-url", judge.url], capture_output=True, text=True,
                       env=env_key, timeout=300)
    check(p.returncode == 0, p.stdout + p.stderr)
    answers = read_jsonl(os.path.join(out, "answers-stories260K-history.jsonl"))
    check([a["question_id"] for a in answers] == [81, 111, 131], "3 questions answered in order")
    check(all(len(a["turns"]) == 2 and all(t for t in a["turns"]) for a in answers), "two non-empty turns each")
    judgments = read_jsonl(os.path.join(out, "judgments-stories260K-history.jsonl"))
    check(len(judgments) == 6 and len(judge.requests) == 6, "each turn judged once")
    check(all(r["auth"] == "Bearer sk-test" and r["path"] == "/v1/chat/completions" for r in judge.requests),
          "the key from the environment, OpenAI's path")
    check(all(r["body"]["model"] == "stub-judge" and r["body"]["temperature"] == 0 for r in judge.requests),
          "the judge model, greedy")
    by = {(j["question_id"], j["turn"]): j for j in judgments}
    check(by[(111, 1)]["prompt"] == "single-math-v1" and by[(111, 2)]["prompt"] == "single-math-v1-multi-turn",
          "math is graded against the reference")
    check(by[(81, 1)]["prompt"] == "single-v1" and by[(131, 2)]["prompt"] == "single-v1-multi-turn",
          "the others without")
    req = next(r for r in judge.requests if "Reference" in r["body"]["messages"][1]["content"])
    ref = read_jsonl(os.path.join(data, "reference_answer_gpt-4.jsonl"))[0]["choices"][0]["turns"][0]
    check(ref in req["body"]["messages"][1]["content"], "the reference answer is in the prompt")
    check(by[(81, 1)]["score"] == 6.5 and by[(81, 2)]["score"] == 8 and by[(111, 1)]["score"] == 3,
          "[[rating]] parsed")
    check(answers[0]["turns"][0] in judge.requests[0]["body"]["messages"][1]["content"], "the answer is judged")
    check("overall" in p.stdout and "history t1" in p.stdout, "the report is printed")
    report = json.load(open(os.path.join(out, "report-stories260K.json")))
    check(abs(report["scores"]["history"]["overall"]["turn1"] - (6.5 + 3 + 6.5) / 3) < 1e-9, "turn-1 mean")

    # Again: nothing left to do, nothing asked. Then without history: the report compares both.
    p = run("mt-bench", *common, "--judge-url", judge.url)
    check("3 answered before, 0 to answer" in p.stdout and len(judge.requests) == 6, "a finished run is not redone")
    p = run("mt-bench", *common, "--judge-url", judge.url, "--no-history")
    check(len(read_jsonl(os.path.join(out, "answers-stories260K-no-history.jsonl"))) == 3, "no-history answers")
    check("no-history t2" in p.stdout and "history t1" in p.stdout, "the report has both modes")

    # Killed while answering: the finished answers stay, the rest are answered once on the next run.
    out2 = os.path.join(TMP, "mt-kill")
    common2 = ["-m", STORIES, "--data", data, "--out", out2, "-t", "1", "--judge-model", "stub-judge"]
    short = ["-n", "12"]
    path = os.path.join(out2, "answers-stories260K-history.jsonl")
    proc = subprocess.Popen([EVAL, "mt-bench", *common2, "-n", "400"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(path) and open(path).read().count("\n") >= 1):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = open(path).read()
    n_before = before.count("\n")
    check(1 <= n_before < 3, f"killed midway ({n_before} answers)")
    with open(path, "a") as f:
        f.write('{"question_id": 1')  # as if killed in the middle of a write
    judge.requests.clear()
    p = run("mt-bench", *common2, *short, "--judge-url", judge.url)
    check(f"{n_before} answered before, {3 - n_before} to answer" in p.stdout, p.stdout)
    after = read_jsonl(path)
    check(open(path).read().startswith(before), "finished answers are kept as they were")
    check(sorted(a["question_id"] for a in after) == [81, 111, 131], "each question answered once")

    # Killed while judging: finished judgments are not asked again.
    jpath = os.path.join(out2, "judgments-stories260K-history.jsonl")
    os.remove(jpath)
    judge.requests.clear()
    judge.delay = 0.3
    proc = subprocess.Popen([EVAL, "mt-bench", *common2, *short, "--judge-url", judge.url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.time() < deadline and not (os.path.exists(jpath) and open(jpath).read().count("\n") >= 2):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the request the killed run left in flight reaches the stub before it is forgotten
    done = {(j["question_id"], j["turn"]) for j in read_jsonl(jpath)}
    check(2 <= len(done) < 6, f"killed while judging ({len(done)} judged)")
    judge.requests.clear()
    judge.delay = 0
    run("mt-bench", *common2, *short, "--judge-url", judge.url)
    asked = [(r["body"]["messages"][1]["content"]) for r in judge.requests]
    check(len(asked) == 6 - len(done), f"only the unjudged turns are asked ({len(asked)} for {6 - len(done)})")
    check(len(read_jsonl(jpath)) == 6, "every turn judged")

    # The judge's failures: a transient 503 is retried; a 401 is an error with the judge's message; an
    # endpoint that is not there is an error, not a hang.
    os.remove(jpath)
    judge.requests.clear()
    judge.fail_next = 1
    run("mt-bench", *common2, *short, "--judge-url", judge.url)
    check(len(judge.requests) == 6, f"retried after a 503 ({len(judge.requests)} requests)")
    os.remove(jpath)
    judge.status = 401
    p = run("mt-bench", *common2, *short, "--judge-url", judge.url, ok=False)
    check("401" in p.stderr and "bad key" in p.stderr, p.stderr)
    judge.shutdown()
    judge.server_close()
    p = run("mt-bench", *common2, *short, "--judge-url", judge.url, ok=False, timeout=120)
    check("failed 4 times" in p.stderr, p.stderr)

    # Damaged input is refused with a message.
    bad = os.path.join(TMP, "mt-bad")
    shutil.copytree(data, bad)
    with open(os.path.join(bad, "question.jsonl"), "w") as f:
        f.write('{"question_id": 1, "category": "writing", "turns": ["only one"]}\n')
    p = run("mt-bench", "-m", STORIES, "--data", bad, "--out", os.path.join(TMP, "x"), ok=False)
    check("two turns" in p.stderr, p.stderr)


if __name__ == "__main__":
    try:
        {"mmlu": test_mmlu, "perplexity": test_perplexity, "perplexity-smollm2": test_perplexity_smollm2,
         "mt-bench": test_mt_bench}[WHAT]()
        print(f"{WHAT}: passed")
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
