#!/usr/bin/env python3
"""Aggregate generation speed of an OpenAI-compatible server under 1, 2, 4, 8 concurrent streams.

    bench.py --url http://127.0.0.1:8080 [--streams 1,2,4,8] [--max-tokens 128] [--runs 3]
             [--prompt TEXT | --prompt-file FILE] [--unique]

Each stream asks /v1/completions for exactly --max-tokens tokens (temperature 0, ignore_eos, which
ember-server and llama-server both honour) and counts the tokens it receives. Prints, per concurrency, the
median over --runs of aggregate tokens/s (all streams' tokens ÷ wall time from the first request to the
last token), of the per-stream rate and of the time to first token. With --unique each request's prompt
starts with a number of its own, so no slot's cache holds any of it and every request reads its whole
prompt (with a long --prompt-file: time to first token while others stream). Standard library only, so it
runs anywhere."""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def one_stream(url, max_tokens, prompt, out):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True, "ignore_eos": True,
            "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    tokens, first = 0, None
    for line in r:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if ev.get("usage"):
            tokens = ev["usage"]["completion_tokens"]
        elif ev.get("choices") and first is None:
            first = time.perf_counter()
    out.append((tokens, t0, first or t0, time.perf_counter()))
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--streams", default="1,2,4,8")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt", default="Write a long story about a lighthouse keeper.")
    ap.add_argument("--prompt-file", help="read the prompt from this file instead")
    ap.add_argument("--unique", action="store_true", help="a prompt no cache holds for every request")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    if a.prompt_file:
        with open(a.prompt_file, encoding="utf-8") as f:
            a.prompt = f.read()
    request = 0
    print(f"| server | streams | aggregate t/s (median of {a.runs}) | per stream t/s | time to first token ms |")
    print("|---|---|---|---|---|")
    for n in [int(x) for x in a.streams.split(",")]:
        agg, per, ttft = [], [], []
        for _ in range(a.runs):
            out = []
            prompts = []
            for _ in range(n):
                request += 1
                prompts.append(f"{request}. {a.prompt}" if a.unique else a.prompt)
            threads = [threading.Thread(target=one_stream, args=(a.url, a.max_tokens, p, out)) for p in prompts]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            start, end = min(o[1] for o in out), max(o[3] for o in out)
            agg.append(sum(o[0] for o in out) / (end - start))
            per.append(statistics.median(o[0] / (o[3] - o[2]) for o in out if o[3] > o[2]))
            ttft.append(statistics.median(1e3 * (o[2] - o[1]) for o in out))
        print(f"| {a.label or a.url} | {n} | {statistics.median(agg):.1f} | {statistics.median(per):.1f} | "
              f"{statistics.median(ttft):.0f} |", flush=True)


if __name__ == "__main__":
    main()
