#!/usr/bin/env python3
"""ember-server driven by the official openai Python client (scripts/test.sh installs it into
$EMBER_PYDEPS), then under load: 16 concurrent streams on 4 slots, 200 requests against a queue of 8
(each a 200 or a 503 with Retry-After, none lost or garbled, memory flat, /health fast throughout).

    test_openai.py EMBER_SERVER MODEL

Exit 77 (ctest's skip) without the client, unless EMBER_REQUIRE_FIXTURES is set."""
import concurrent.futures
import multiprocessing
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check  # noqa: E402

sys.path.insert(0, os.environ.get("EMBER_PYDEPS", os.path.expanduser("~/.cache/ember/python")))
try:
    import openai
except ImportError:
    if os.environ.get("EMBER_REQUIRE_FIXTURES"):
        raise
    print("skipped: the openai client is not installed (scripts/test.sh installs it)")
    sys.exit(77)


def client(s, key="none"):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key=key, max_retries=0, timeout=60)


def test_client(s):
    c = client(s)
    check([m.id for m in c.models.list()] == ["stories260K.gguf"], "models.list")
    msgs = [{"role": "user", "content": "Tell me about the park."}]
    r = c.chat.completions.create(model="x", messages=msgs, max_tokens=16, temperature=0)
    text = r.choices[0].message.content
    check(r.choices[0].finish_reason in ("length", "stop") and text, r)
    check(r.usage.completion_tokens <= 16 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens,
          r.usage)
    pieces, usage = [], None
    for chunk in c.chat.completions.create(model="x", messages=msgs, max_tokens=16, temperature=0, stream=True,
                                           stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    check("".join(pieces) == text and usage.completion_tokens == r.usage.completion_tokens, "streamed = not streamed")

    t = c.completions.create(model="x", prompt="Once upon a time", max_tokens=20, temperature=0).choices[0].text
    stop = t[4:7]
    cut = c.completions.create(model="x", prompt="Once upon a time", max_tokens=20, temperature=0, stop=[stop])
    check(cut.choices[0].text == t[:t.index(stop)] and cut.choices[0].finish_reason == "stop", "stop")
    a, b = (c.completions.create(model="x", prompt="Once", max_tokens=12, temperature=1, seed=99).choices[0].text
            for _ in range(2))
    check(a == b, "seed")
    lp = c.chat.completions.create(model="x", messages=msgs, max_tokens=3, temperature=0, logprobs=True, top_logprobs=2)
    check(len(lp.choices[0].logprobs.content[0].top_logprobs) == 2, "logprobs")

    for kwargs, what in [({"n": 2}, "n"), ({"temperature": 500}, "temperature"), ({"max_tokens": 0}, "max_tokens")]:
        try:
            c.chat.completions.create(model="x", messages=msgs, **kwargs)
            raise AssertionError(f"{what} accepted")
        except openai.BadRequestError as e:
            check(e.status_code == 400 and e.body and e.body.get("message"), e)

    # A streaming client that goes away mid-reply: its slot is freed.
    stream = c.completions.create(model="x", prompt="Once", max_tokens=8000, temperature=0, stream=True)
    next(iter(stream))
    stream.close()
    deadline = time.time() + 10
    while time.time() < deadline and not re.search(r"^ember_slots_busy 0", s.request("GET", "/metrics")[2], re.M):
        time.sleep(0.05)
    check(re.search(r"^ember_slots_busy 0", s.request("GET", "/metrics")[2], re.M), "the slot was freed")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def watch_health(port, stop, worst):
    """In a process of its own, so the clients' threads do not hold up its clock."""
    while not stop.is_set():
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            r.read()
        worst.value = max(worst.value, time.perf_counter() - t0)
        time.sleep(0.02)


def test_streams():
    """16 concurrent streaming clients on 4 slots (a queue of 16): all finish, with the right text."""
    s = Server("--parallel", "4", "--queue", "16", "-c", "1024")
    try:
        c = client(s)
        expect = c.completions.create(model="x", prompt="Once upon a time", max_tokens=48, temperature=0).choices[0].text

        def one_stream(i):
            return "".join(ch.choices[0].text for ch in c.completions.create(
                model="x", prompt="Once upon a time", max_tokens=48, temperature=0, stream=True) if ch.choices)

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            texts = list(pool.map(one_stream, range(16)))
        check(len(texts) == 16 and all(t == expect for t in texts), "every one of 16 streams has the right text")
    finally:
        s.stop()


def test_load():
    s = Server("--parallel", "4", "--queue", "8", "-c", "1024")
    stop, worst = multiprocessing.Event(), multiprocessing.Value("d", 0.0)
    watcher = multiprocessing.Process(target=watch_health, args=(s.port, stop, worst))
    watcher.start()
    try:
        c = client(s)
        expect = c.completions.create(model="x", prompt="Once upon a time", max_tokens=48, temperature=0).choices[0].text

        def one_stream(_):
            return "".join(ch.choices[0].text for ch in c.completions.create(
                model="x", prompt="Once upon a time", max_tokens=48, temperature=0, stream=True) if ch.choices)

        with concurrent.futures.ThreadPoolExecutor(12) as pool:  # 4 slots + a queue of 8: all are served
            texts = list(pool.map(one_stream, range(12)))
        check(all(t == expect for t in texts), "every concurrent stream has the right text")

        rss0 = rss_kib(s.proc.pid)
        statuses = {}

        def one_request(i):
            try:
                r = c.completions.create(model="x", prompt=f"Story {i}:", max_tokens=24, temperature=0)
                check(r.choices[0].text is not None and r.usage.completion_tokens >= 1, r)
                return 200
            except openai.APIStatusError as e:
                check(e.status_code == 503 and e.response.headers.get("retry-after"), f"{e.status_code}: {e}")
                return 503

        for rnd in range(2):  # 2 × 100 requests, 24 at a time against 4 slots and a queue of 8
            with concurrent.futures.ThreadPoolExecutor(24) as pool:
                for st in pool.map(one_request, range(100)):
                    statuses[st] = statuses.get(st, 0) + 1
        rss1 = rss_kib(s.proc.pid)
        print(f"200 requests: {statuses}; RSS {rss0} → {rss1} KiB; /health worst {1e3 * worst.value:.1f} ms")
        check(sum(statuses.values()) == 200 and statuses.get(200, 0) > 0 and statuses.get(503, 0) > 0,
              f"each answered, some refused: {statuses}")
        check(rss1 < rss0 * 1.25 + 8192, f"memory stays flat: {rss0} → {rss1} KiB")
        check(worst.value < 0.05, f"/health within 50 ms throughout (worst {1e3 * worst.value:.1f} ms)")
    finally:
        stop.set()
        watcher.join()
        s.stop()


if __name__ == "__main__":
    srv = Server("--parallel", "1", "-c", "8192")
    try:
        test_client(srv)
    finally:
        srv.stop()
    test_streams()
    test_load()
    print("openai client: passed")
