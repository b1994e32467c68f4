#!/usr/bin/env python3
"""ember-server with LoRA adapters, over loopback, standard library only: --lora and --lora-scaled load them
once; GET /lora-adapters lists them in llama-server's shape; requests choose scales with "lora" (unlisted
adapters 0, none given: the command line's); different adapters give different text and the same adapters
the same text, one after another and at the same time (batched together), in one server process.

    test_lora.py EMBER_SERVER HF_DIR (tests/data/hf: the llama folder and its adapters)"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_server  # noqa: E402  (its Server class and check)

SERVER, HF = sys.argv[1], sys.argv[2]
check = test_server.check


def main():
    test_server.SERVER, test_server.MODEL = SERVER, os.path.join(HF, "llama")
    a, b = os.path.join(HF, "llama-lora"), os.path.join(HF, "llama-lora2", "adapter.gguf")
    s = test_server.Server("--parallel", "2", "-c", "256", "--lora", a, "--lora-scaled", b, "0.5")
    try:
        pid = s.proc.pid
        status, _, body = s.request("GET", "/lora-adapters")
        import json
        listed = json.loads(body)
        check(status == 200 and [(x["id"], x["path"], x["scale"]) for x in listed] == [(0, a, 1.0), (1, b, 0.5)], body)
        check(all("task_name" in x and "prompt_prefix" in x for x in listed), body)

        def complete(lora=None):
            req = {"prompt": "Once upon a time, the quick robot", "max_tokens": 12, "temperature": 0}
            if lora is not None:
                req["lora"] = lora
            status, _, r = s.post("/v1/completions", req)
            check(status == 200, r)
            return r["choices"][0]["text"]

        only_a, only_b = [{"id": 0, "scale": 1.0}], [{"id": 1, "scale": 1.0}]
        base = complete([{"id": 0, "scale": 0}])  # every adapter at 0: the model alone
        ta, tb, defaults = complete(only_a), complete(only_b), complete()
        check(len({base, ta, tb, defaults}) == 4, f"four adapter settings, four texts: {[base, ta, tb, defaults]}")
        check(complete([]) == defaults, "an empty list means the command line's scales, as in llama-server")
        check(complete(only_a) == ta and complete(only_b) == tb and complete(only_a) == ta, "the same adapters, the same text")
        check(complete([{"id": 1, "scale": 0.5}, {"id": 0, "scale": 1}]) == defaults, "the command line's scales by hand")

        # At the same time (two slots, batched steps): each request keeps its own adapters.
        for _ in range(2):
            out = {}
            threads = [threading.Thread(target=lambda k=k, l=l: out.__setitem__(k, complete(l)))
                       for k, l in (("a", only_a), ("b", only_b), ("base", [{"id": 1, "scale": 0}]))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            check(out == {"a": ta, "b": tb, "base": base}, f"concurrent requests: {out}")

        # Chat requests carry "lora" too.
        msgs = [{"role": "user", "content": "Hello"}]
        chat = [s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 8, "temperature": 0, "lora": l})[2]
                for l in (only_a, only_b, only_a)]
        texts = [c["choices"][0]["message"]["content"] for c in chat]
        check(texts[0] == texts[2] and texts[0] != texts[1], f"chat with adapters: {texts}")

        # Bad "lora" values: 400, and the server goes on.
        for bad in ([{"id": 2, "scale": 1}], [{"id": -1}], [{"scale": 1}], [{"id": "0"}], [{"id": 0, "scale": "x"}],
                    [{"id": 0, "scale": 1e9}], {"id": 0}, "a", [3]):
            status, _, r = s.post("/v1/completions", {"prompt": "x", "max_tokens": 1, "lora": bad})
            check(status == 400 and "error" in r, f"lora {bad!r}: {status} {r}")
        check(complete(only_a) == ta, "still serving")
        check(s.proc.pid == pid and s.proc.poll() is None, "one process throughout")
    finally:
        s.stop()

    # A server without adapters lists none and refuses ids; a bad adapter stops it at start.
    s = test_server.Server("--parallel", "1")
    try:
        status, _, body = s.request("GET", "/lora-adapters")
        check(status == 200 and body.strip() == "[]", body)
        status, _, r = s.post("/v1/completions", {"prompt": "x", "max_tokens": 1, "lora": [{"id": 0, "scale": 1}]})
        check(status == 400, r)
    finally:
        s.stop()
    import subprocess
    p = subprocess.run([SERVER, "-m", os.path.join(HF, "llama"), "--port", "0", "--lora", os.path.join(HF, "qwen3-lora")],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 1 and "invalid argument" in p.stderr, f"a qwen3 adapter on llama: {p.returncode} {p.stderr}")
    print("test_lora.py: ok")


if __name__ == "__main__":
    main()
