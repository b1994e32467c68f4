#!/usr/bin/env python3
"""ember-server with constrained output, over loopback, standard library only: OpenAI's response_format
(json_object, json_schema) and llama-server's "grammar" and "json_schema" fields; bad ones are 400s in
OpenAI's error shape, and the server goes on.

    test_grammar.py EMBER_SERVER MODEL (tests/data/models/stories260K.gguf)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_server  # noqa: E402  (its Server class and check)

SERVER, MODEL = sys.argv[1], sys.argv[2]
check = test_server.check


def main():
    test_server.SERVER, test_server.MODEL = SERVER, MODEL
    s = test_server.Server("--parallel", "2", "-c", "512")
    try:
        def complete(extra, path="/v1/completions", **kw):
            req = {"prompt": "Once upon a time", "max_tokens": 40, "temperature": 1.5, **extra}
            if path.endswith("chat/completions"):
                req.pop("prompt")
                req["messages"] = [{"role": "user", "content": "Give me JSON"}]
            status, _, r = s.post(path, req)
            check(status == 200, f"{extra}: {status} {r}")
            c = r["choices"][0]
            return c["message"]["content"] if "message" in c else c["text"], c["finish_reason"]

        # A schema that finishes in a few tokens: the text parses and follows it, for several seeds.
        colors = {"enum": ["red", "green", "blue"]}
        for seed in range(1, 6):
            text, why = complete({"seed": seed, "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": colors}}})
            check(json.loads(text) in colors["enum"] and why == "stop", f"json_schema: {text!r} {why}")
            text, why = complete({"seed": seed, "json_schema": {"type": "boolean"}}, "/v1/chat/completions")
            check(json.loads(text) in (True, False) and why == "stop", f"json_schema field: {text!r} {why}")
            text, why = complete({"seed": seed, "grammar": 'root ::= "yes" | "no"'})
            check(text in ("yes", "no") and why == "stop", f"grammar: {text!r}")

        # pydantic's form: $defs, a $ref through a single-element allOf, annotations beside it.
        pyd = {"$defs": {"Color": {"enum": ["red", "green"], "title": "Color", "type": "string"}},
               "allOf": [{"$ref": "#/$defs/Color"}], "title": "Pick", "description": "a color"}
        for seed in range(1, 3):
            text, why = complete({"seed": seed, "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": pyd}}})
            check(json.loads(text) in ("red", "green") and why == "stop", f"$defs/allOf: {text!r} {why}")

        # An object with required members: parses as that object when it finished.
        person = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"enum": [1, 2, 3]}}, "required": ["ok", "n"]}
        for seed in range(1, 4):
            text, why = complete({"seed": seed, "max_tokens": 60, "response_format": {"type": "json_object", "schema": person}})
            if why == "stop":
                obj = json.loads(text)
                check(isinstance(obj["ok"], bool) and obj["n"] in (1, 2, 3) and set(obj) == {"ok", "n"}, text)
            else:
                check(text.startswith("{"), f"a cut-off object still starts as one: {text!r}")

        # json_object: any object. The tiny model rarely closes it within max_tokens: a finished one parses,
        # an unfinished one is a prefix the grammar took (it starts an object and holds no raw control character).
        finished = 0
        for seed in range(1, 6):
            text, why = complete({"seed": seed, "max_tokens": 48, "response_format": {"type": "json_object"}},
                                 "/v1/chat/completions")
            check(text.startswith("{"), f"json_object: {text!r}")
            if why == "stop":
                check(isinstance(json.loads(text), dict), f"json_object: {text!r}")
                finished += 1
            else:
                check(why == "length" and not any(ord(c) < 0x20 and c not in "\n\t " for c in text), text)
        print(f"json_object: {finished} of 5 finished within 48 tokens")

        # Bad grammars and schemas: 400 with OpenAI's error shape.
        for bad in ({"grammar": "root ::= undefined-rule"}, {"grammar": "root ::= ( \"a\""}, {"grammar": 5},
                    {"json_schema": {"type": "widget"}}, {"json_schema": {"$ref": "#/a"}},
                    {"response_format": {"type": "json_schema"}}, {"response_format": {"type": "xml"}},
                    {"grammar": 'root ::= "a"', "response_format": {"type": "json_object"}},
                    {"grammar": "root ::= root \"a\""}):
            status, _, r = s.post("/v1/completions", {"prompt": "x", "max_tokens": 4, **bad})
            check(status == 400 and r["error"]["type"] == "invalid_request_error" and r["error"]["message"], f"{bad}: {status} {r}")
        status, _, r = s.post("/v1/completions", {"prompt": "x", "max_tokens": 4, "grammar": "root ::= [a-z\n"})
        check("line 1" in r["error"]["message"], r)
        # "text" is no constraint; the server still serves.
        text, _ = complete({"seed": 1, "max_tokens": 4, "response_format": {"type": "text"}})
        check(isinstance(text, str), text)
    finally:
        s.stop()
    print("ok")


if __name__ == "__main__":
    main()
