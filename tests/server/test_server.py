#!/usr/bin/env python3
"""ember-server end to end over loopback, standard library only: the OpenAI endpoints with and without
streaming, stop strings, seeds, logprobs, logit_bias, usage, tokenize/detokenize, every error status, the
bounded queue (503 + Retry-After), a client that disconnects mid-stream (its slot is freed) or while its long
prompt is read (the read stops), /health while busy, the API key, and a long prompt read in chunks between
the tokens of running streams.

    test_server.py EMBER_SERVER MODEL"""
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time

SERVER, MODEL = sys.argv[1], sys.argv[2]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen([SERVER, "-m", MODEL, "--port", "0", "-t", "2", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://[\d.]+:(\d+)", line)
        check(m, f"the server did not start: {line}{self.proc.stdout.read() if not m else ''}")
        self.port = int(m.group(1))

    def request(self, method, path, body=None, headers=None, raw=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        c.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        return r.status, dict(r.getheaders()), text

    def post(self, path, body, **kw):
        status, headers, text = self.request("POST", path, body, **kw)
        return status, headers, json.loads(text) if text else None

    def stream(self, path, body):
        """The server-sent events of one streaming request, parsed; and whether [DONE] closed them."""
        status, headers, text = self.request("POST", path, dict(body, stream=True))
        check(status == 200 and headers.get("Content-Type", "").startswith("text/event-stream"), f"{status} {text}")
        events, done = [], False
        for block in text.split("\n\n"):
            if not block.strip():
                continue
            if block.startswith(":"):
                continue  # an SSE comment: the server's keep-alive while a long prompt is read
            check(block.startswith("data: "), f"an SSE line: {block!r}")
            if block == "data: [DONE]":
                done = True
            else:
                check(not done, "nothing after [DONE]")
                events.append(json.loads(block[6:]))
        return events, done

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


def metrics_when_slots_free(s, timeout):
    """/metrics once no slot is busy (checked to happen within `timeout` seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline and not re.search(r"^ember_slots_busy 0", s.request("GET", "/metrics")[2], re.M):
        time.sleep(0.05)
    _, _, m = s.request("GET", "/metrics")
    check(re.search(r"^ember_slots_busy 0", m, re.M), "the slot is free again")
    return m


def test_api(s):
    status, _, body = s.request("GET", "/health")
    check(status == 200 and json.loads(body)["status"] == "ok", "health")
    status, _, body = s.request("GET", "/v1/models")
    check(json.loads(body)["data"][0]["object"] == "model", "models")

    # Chat, not streamed, greedy: the answer, usage and finish_reason.
    msgs = [{"role": "user", "content": "Tell me a story about a cat."}]
    status, _, r = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 12, "temperature": 0})
    check(status == 200, r)
    ch = r["choices"][0]
    check(r["object"] == "chat.completion" and ch["message"]["role"] == "assistant", r)
    check(ch["finish_reason"] in ("length", "stop") and r["usage"]["completion_tokens"] <= 12, r)
    check(r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"], "usage adds up")
    # The same conversation again: its prompt comes from the slot's cache.
    _, _, r2 = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 12, "temperature": 0})
    check(r2["choices"][0]["message"]["content"] == ch["message"]["content"], "greedy is deterministic")
    check(r2["usage"]["prompt_tokens_details"]["cached_tokens"] == r2["usage"]["prompt_tokens"] - 1, "prefix reused")

    # Streaming gives the same text in pieces, then finish_reason, usage and [DONE].
    events, done = s.stream("/v1/chat/completions", {"messages": msgs, "max_tokens": 12, "temperature": 0,
                                                     "stream_options": {"include_usage": True}})
    check(done, "[DONE] ends the stream")
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    check(text == ch["message"]["content"], f"streamed {text!r} vs {ch['message']['content']!r}")
    check(events[0]["choices"][0]["delta"].get("role") == "assistant", "the first chunk names the role")
    finals = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    check(len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == ch["finish_reason"], "one finish_reason")
    check(events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == r["usage"]["completion_tokens"],
          "include_usage: a last chunk with usage")

    # Completions: stop strings are cut and not returned.
    prompt = "Once upon a time, there was a"
    _, _, full = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 24, "temperature": 0})
    t = full["choices"][0]["text"]
    check(len(t) > 6, f"a long enough completion: {t!r}")
    stop = t[3:6]
    _, _, cut = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 24, "temperature": 0, "stop": [stop, "zzzz"]})
    check(cut["choices"][0]["text"] == t[:t.index(stop)] and cut["choices"][0]["finish_reason"] == "stop",
          f"stop {stop!r}: {cut['choices'][0]['text']!r} from {t!r}")
    events, _ = s.stream("/v1/completions", {"prompt": prompt, "max_tokens": 24, "temperature": 0, "stop": stop})
    check("".join(e["choices"][0]["text"] for e in events) == t[:t.index(stop)], "a streamed stop is cut too")

    # Seeds: the same seed gives the same sample.
    body = {"prompt": prompt, "max_tokens": 16, "temperature": 1.0, "seed": 1234}
    a = s.post("/v1/completions", body)[2]["choices"][0]["text"]
    b = s.post("/v1/completions", body)[2]["choices"][0]["text"]
    check(a == b, "seed reproducibility")

    # logprobs: the chosen token's, and the top alternatives in order.
    _, _, r = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 4, "temperature": 0,
                                             "logprobs": True, "top_logprobs": 3})
    content = r["choices"][0]["logprobs"]["content"]
    check(len(content) >= 1, "logprobs present")
    for e in content:
        tops = [x["logprob"] for x in e["top_logprobs"]]
        check(len(tops) == 3 and tops == sorted(tops, reverse=True) and all(x <= 0 for x in tops), e)
        check(abs(e["logprob"] - tops[0]) < 1e-6, "greedy picks the top token")

    # logit_bias: a strongly favoured token is what comes out.
    _, _, tk = s.post("/tokenize", {"content": " cat"})
    favourite = tk["tokens"][-1]
    _, _, r = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 3, "temperature": 0,
                                        "logit_bias": {str(favourite): 100}})
    _, _, back = s.post("/detokenize", {"tokens": [favourite] * 3})
    check(r["choices"][0]["text"] == back["content"], f"logit_bias: {r['choices'][0]['text']!r}")

    # Errors, in OpenAI's shape.
    for body, what in [({"messages": []}, "empty messages"), ({"prompt": 3}, "prompt not a string"),
                       ({"messages": msgs, "n": 2}, "n = 2"), ({"messages": msgs, "temperature": "hot"}, "temperature"),
                       ({"messages": msgs, "temperature": 1e9}, "absurd temperature"),
                       ({"messages": msgs, "max_tokens": -5}, "negative max_tokens"),
                       ({"messages": msgs, "logit_bias": {"999999999": 1}}, "logit_bias id"),
                       ({"messages": msgs, "top_logprobs": 99, "logprobs": True}, "top_logprobs"),
                       ({"messages": [{"role": "user", "content": "word " * 3000}]}, "prompt longer than the context")]:
        path = "/v1/completions" if "prompt" in body else "/v1/chat/completions"
        status, _, r = s.post(path, body)
        check(status == 400 and r["error"]["type"] == "invalid_request_error" and r["error"]["message"], f"{what}: {status} {r}")
    status, _, text = s.request("POST", "/v1/chat/completions", raw=b"{not json")
    check(status == 400 and "error" in json.loads(text), "bad JSON")
    status, _, r = s.post("/detokenize", {"tokens": [10 ** 9]})
    check(status == 400, "detokenize: an id out of range")
    status, _, text = s.request("GET", "/nope")
    check(status == 404 and json.loads(text)["error"]["code"] == 404, "404 in OpenAI's shape")
    status, _, text = s.request("POST", "/v1/completions", raw=b"x" * (5 << 20))
    check(status == 413, f"a body over the limit: {status}")


def raw_post(port, path, body):
    """Sends a POST on a plain socket and returns the socket, unread: a client that may leave at any time."""
    c = socket.create_connection(("127.0.0.1", port))
    data = json.dumps(body).encode()
    c.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
              .encode() + data)
    return c


def test_load(s):
    """--parallel 1 --queue 1: a long stream holds the slot, one request waits, the next is refused."""
    # Far more than the socket buffers hold: a client that stops reading holds the slot until it leaves.
    long = {"prompt": "Once upon a time", "max_tokens": 8000, "temperature": 0, "stream": True}
    # A client that reads a little of a stream and leaves: its slot must come back.
    c = raw_post(s.port, "/v1/completions", long)
    got = b""
    while b"data: " not in got:
        chunk = c.recv(4096)
        check(chunk, f"the stream started: {got!r}")
        got += chunk
    # Meanwhile /health answers fast and /metrics shows the busy slot.
    t0 = time.perf_counter()
    status, _, _ = s.request("GET", "/health")
    check(status == 200 and time.perf_counter() - t0 < 0.05, f"/health in {1e3 * (time.perf_counter() - t0):.1f} ms")
    _, _, m = s.request("GET", "/metrics")
    check(re.search(r"^ember_slots_busy 1", m, re.M), m)
    # One request waits in the queue; the one after it is refused with Retry-After.
    results = []
    waiter = threading.Thread(target=lambda: results.append(
        s.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2, "temperature": 0})[0]))
    waiter.start()
    time.sleep(0.3)
    status, headers, r = s.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2})
    check(status == 503 and headers.get("Retry-After") and r["error"]["message"], f"queue full: {status} {r}")
    c.close()  # the streaming client leaves; its generation stops and the waiter gets the slot
    waiter.join(timeout=30)
    check(results == [200], f"the queued request was served after the disconnect: {results}")
    m = metrics_when_slots_free(s, 10)
    generated = float(re.search(r"^ember_tokens_generated_total (\S+)", m, re.M).group(1))
    check(generated < 7000, f"the abandoned stream stopped early ({generated} tokens generated)")


def test_key():
    s = Server("--api-key", "sekret", "-c", "256")
    try:
        check(s.request("GET", "/health")[0] == 200, "/health needs no key")
        check(s.request("GET", "/v1/models")[0] == 401, "no key: 401")
        check(s.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong!"})[0] == 401, "wrong key")
        check(s.request("GET", "/v1/models", headers={"Authorization": "Bearer sekret"})[0] == 200, "right key")
    finally:
        s.stop()


def timed_stream(port, body, out, stop=None):
    """Streams a completion, appending (arrival time, event) to `out`; leaves early once `stop` is set."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/completions", json.dumps(dict(body, stream=True)), {"Content-Type": "application/json"})
    r = c.getresponse()
    check(r.status == 200, f"stream: {r.status}")
    for line in r:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        out.append((time.perf_counter(), json.loads(line[6:])))
        if stop is not None and stop.is_set():
            break
    c.close()


def test_chunked():
    """--batch 8: a long prompt that arrives while two streams run is read 6 tokens a step beside their
    tokens (no step holds more than 8), so they keep streaming while it is read, and its answer equals a
    lone run's at temperature 0."""
    long_prompt = " ".join(f"Once upon a time there was a {w} who lived in a small house by the sea." for w in
                           ["cat", "dog", "girl", "boy", "bird", "fish", "king", "queen", "frog", "bear"] * 3)
    body = {"prompt": long_prompt, "max_tokens": 16, "temperature": 0, "stream_options": {"include_usage": True}}
    lone = Server("--parallel", "1", "-c", "2048", "--batch", "8")
    try:
        alone = []
        timed_stream(lone.port, body, alone)
    finally:
        lone.stop()
    alone_text = "".join(e["choices"][0]["text"] for _, e in alone if e["choices"])
    n_prompt = alone[-1][1]["usage"]["prompt_tokens"]
    check(n_prompt > 400 and len(alone_text) > 10, f"a long prompt ({n_prompt} tokens), an answer {alone_text!r}")

    s = Server("--parallel", "3", "-c", "2048", "--batch", "8")
    try:
        stop = threading.Event()
        runs = [[], []]
        streams = [threading.Thread(target=timed_stream, args=(
            s.port, {"prompt": p, "max_tokens": 1900, "temperature": 0, "ignore_eos": True}, out, stop))
            for p, out in zip(["Lily went to the park", "The dog barked"], runs)]
        for t in streams:
            t.start()
        deadline = time.time() + 30
        while min(len(r) for r in runs) < 5 and time.time() < deadline:
            time.sleep(0.01)
        check(min(len(r) for r in runs) >= 5, "the streams started")
        together = []
        sent = time.perf_counter()
        timed_stream(s.port, body, together)
        stop.set()
        for t in streams:
            t.join(timeout=60)
        text = "".join(e["choices"][0]["text"] for _, e in together if e["choices"])
        check(text == alone_text, f"beside the streams {text!r}, alone {alone_text!r}")
        first = next(t for t, e in together if e["choices"] and e["choices"][0]["text"])
        steps = -(-n_prompt // 6)  # 8 tokens a step, 2 of them the streams'
        for r in runs:
            during = [t for t, _ in r if sent <= t <= first]
            gaps = [b - a for a, b in zip(during, during[1:])]
            # Each step gives each stream a token; timestamps taken by Python threads may lag a little.
            check(len(during) >= steps // 2, f"{len(during)} tokens streamed while {n_prompt} prompt tokens were "
                                             f"read in about {steps} steps")
            check(max(gaps, default=0) < 2.0, f"a stream stalled {max(gaps):.2f} s")
        print(f"chunked: a {n_prompt}-token prompt read in {1e3 * (first - sent):.0f} ms while the streams got "
              f"{[len([t for t, _ in r if sent <= t <= first]) for r in runs]} tokens")
        _, _, m = s.request("GET", "/metrics")
        check(re.search(r"^ember_batch_size 8", m, re.M), m)
        most = float(re.search(r"^ember_batch_step_tokens_max (\S+)", m, re.M).group(1))
        check(most == 8, f"the fullest step held {most} tokens")
    finally:
        s.stop()


def test_prompt_disconnect():
    """--batch 1: a prompt of about 5,800 tokens takes as many steps. Its streaming client leaves after
    0.3 s, before any token: the server notices through its keep-alive and stops reading the prompt."""
    s = Server("--parallel", "1", "-c", "8192", "--batch", "1")
    try:
        prompt = " ".join(["Once upon a time there was a cat who lived in a small house by the sea."] * 200)
        _, _, t = s.post("/tokenize", {"content": prompt})
        n_prompt = len(t["tokens"])
        c = raw_post(s.port, "/v1/completions", {"prompt": prompt, "max_tokens": 4, "stream": True})
        time.sleep(0.3)
        c.close()
        m = metrics_when_slots_free(s, 60)
        steps = float(re.search(r"^ember_batch_steps_total (\S+)", m, re.M).group(1))
        check(steps < n_prompt / 2, f"the prompt's read stopped early ({steps:.0f} of {n_prompt} steps)")
        print(f"prompt disconnect: {steps:.0f} of {n_prompt} prompt steps ran before the slot was freed")
    finally:
        s.stop()


if __name__ == "__main__":
    srv = Server("--parallel", "2", "-c", "512")
    try:
        test_api(srv)
    finally:
        srv.stop()
    srv = Server("--parallel", "1", "--queue", "1", "-c", "8192")
    try:
        test_load(srv)
    finally:
        srv.stop()
    test_key()
    test_prompt_disconnect()
    test_chunked()
    print("server: passed")
