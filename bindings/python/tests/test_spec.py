"""bindings/SPEC.md, item by item, for the Python binding (stdlib unittest: no pytest needed).

Environment: EMBER_TEST_MODEL (stories260K.gguf; defaults to the repository's copy) and EMBER_LIBRARY (the
path of libember.so.1; otherwise the package's own copy or the platform's search path).
"""

import gc
import json
import math
import os
import re
import tempfile
import threading
import unittest

import ember
from ember import _native

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.environ.get(
    "EMBER_TEST_MODEL", os.path.join(HERE, "..", "..", "..", "tests", "data", "models", "stories260K.gguf")
)
HF = os.environ.get("EMBER_TEST_HF") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(MODEL))), "hf")

PROMPT = "Once upon a time"
PROMPT_IDS = [1, 403, 407, 261, 378]
# hf/llama-lora/golden.json: its prompt, and the first logits peft gives after it with the adapter at scale 1.
LORA_PROMPT = "Once upon a time, the quick robot counted 12345 tokens."
LORA_FIRST_LOGITS = [-0.628006, -0.624651, -0.801815, -0.77162, -0.501407, -0.247845, -0.116984, -0.388983]
GOLDEN = [432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337]
THREADS = 1  # two cores shared with other jobs
# Item 17's model: SmolLM2-135M-Instruct, where scripts/setup.sh fetches it (the C++ tests look there too).
SMOLLM2 = os.path.join(os.environ.get("EMBER_MODELS") or os.path.expanduser("~/.cache/ember/models"),
                       "SmolLM2-135M-Instruct.Q4_1.gguf")
YES_NO = 'root ::= ("yes" | "no")'
ANSWER_PROMPT = "Question: Is the sky blue? Answer yes or no.\nAnswer: "
PERSON_PROMPT = "A JSON object describing a person's age and favourite colour: "
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"age": {"type": "integer"}, "color": {"type": "string", "enum": ["red", "green", "blue"]}},
    "required": ["age", "color"],
    "additionalProperties": False,
}


def generator_threads():
    return [t for t in threading.enumerate() if t.name == "ember-generate"]


class SpecTest(unittest.TestCase):
    model: ember.Model

    @classmethod
    def setUpClass(cls):
        cls.model = ember.Model(MODEL, n_threads=THREADS)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()

    def tearDown(self):
        gc.collect()
        self.assertEqual(generator_threads(), [], "a generation thread outlived its test")

    # helpers -----------------------------------------------------------------------------------------

    def session(self, model=None, prompt=True, **kw):
        s = ember.Session(model or self.model, n_threads=THREADS, **kw)
        if prompt:
            s.prefill(PROMPT_IDS)
        return s

    def greedy_tokens(self, model, n=16):
        with ember.Session(model, n_threads=THREADS) as s, ember.Sampler.greedy() as g:
            s.prefill(PROMPT_IDS)
            r = s.generate(g, max_tokens=n, stop_at_eog=False)
            return r.tokens

    def assertError(self, cls, status, fn, *args, **kw):
        with self.assertRaises(cls) as cm:
            fn(*args, **kw)
        e = cm.exception
        self.assertIsInstance(e, ember.Error)
        self.assertEqual(e.status, status)
        self.assertTrue(e.message, "the error carries the library's message")
        self.assertEqual(str(e), e.message)
        return e

    @staticmethod
    def step(session, sampler, n):
        """Samples n tokens by hand (sample, decode), the way generate does."""
        out = []
        for _ in range(n):
            t = sampler.sample(session.logits())
            out.append(t)
            session.decode(t)
        return out

    # the list ----------------------------------------------------------------------------------------

    def test_item_01_abi_check_and_version(self):
        self.assertEqual(ember.ABI_VERSION, 1)
        self.assertEqual(ember.abi_version(), 1)
        self.assertRegex(ember.version(), r"^\d+\.\d+\.\d+$")
        major, minor, patch = (int(x) for x in ember.version().split("."))
        self.assertEqual(ember.version_number(), major * 1000000 + minor * 1000 + patch)
        _native.check_abi(1, "libember.so.1")  # the one this binding knows: accepted
        with self.assertRaises(ember.Unsupported) as cm:
            _native.check_abi(2, "/x/libember.so.2")
        msg = str(cm.exception)
        self.assertIn("2", msg)
        self.assertIn("ABI version 1", msg)
        self.assertIn("/x/libember.so.2", msg)
        self.assertEqual(cm.exception.status, ember.Status.UNSUPPORTED)

    def test_item_02_load_and_facts(self):
        m = self.model
        self.assertEqual(m.n_vocab, 512)
        self.assertEqual(m.architecture, "llama")
        self.assertGreater(m.n_params, 0)
        self.assertEqual(m.backend, "cpu")
        self.assertIn("cpu", ember.backends())
        self.assertEqual(m.bos, 1)
        self.assertIsInstance(m.name, str)
        self.assertIsInstance(m.chat_template, str)

    def test_item_03_metadata(self):
        m = self.model
        keys = m.meta_keys()
        self.assertIn("general.architecture", keys)
        self.assertIn("tokenizer.ggml.tokens", keys)
        self.assertEqual(len(keys), len(set(keys)))
        self.assertEqual(m.meta("general.architecture"), "llama")
        tokens = m.meta_json("tokenizer.ggml.tokens")
        self.assertIsInstance(tokens, list)
        self.assertEqual(len(tokens), 512)
        self.assertTrue(all(isinstance(t, str) for t in tokens))
        self.assertEqual(m.meta_type("tokenizer.ggml.tokens"), ember.MetaType.ARRAY)
        e = self.assertError(ember.NotFound, ember.Status.NOT_FOUND, m.meta, "no.such.key")
        self.assertIsInstance(e, KeyError)  # idiomatic too
        self.assertError(ember.NotFound, ember.Status.NOT_FOUND, m.meta_json, "no.such.key")

    def test_item_04_tokenize_detokenize(self):
        m = self.model
        self.assertEqual(m.tokenize(PROMPT), PROMPT_IDS)
        self.assertEqual(m.detokenize(PROMPT_IDS), PROMPT)
        self.assertEqual(m.tokenize(PROMPT, add_special=False), PROMPT_IDS[1:])
        e = self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, m.detokenize, [512])
        self.assertIsInstance(e, ValueError)
        self.assertEqual(m.tokenize(""), [1])
        self.assertEqual(m.tokenize("", add_special=False), [])
        self.assertEqual(m.detokenize([]), "")
        long_text = "Once upon a time " * 200  # more tokens than the first guess of the buffer
        self.assertEqual(m.detokenize(m.tokenize(long_text, add_special=False)), long_text)

    def test_item_05_greedy_generation(self):
        reference = self.model.detokenize(GOLDEN)
        pieces = []
        with self.session() as s, ember.Sampler.greedy() as g:
            r = s.generate(g, max_tokens=16, stop_at_eog=False, on_text=pieces.append)
            self.assertEqual(s.position, 5 + 16)
        self.assertEqual(r.tokens, GOLDEN)
        self.assertEqual(r.n_generated, 16)
        self.assertEqual("".join(pieces), reference)
        self.assertEqual(r.text, reference)
        self.assertIs(r.stop_reason, ember.StopReason.LENGTH)
        self.assertIsNone(r.stop_index)
        # the same through the model's generator (temperature 0 is greedy)
        text = "".join(self.model.generate(PROMPT, max_tokens=16, temperature=0, stop_at_eog=False, n_threads=THREADS))
        self.assertEqual(text, reference)
        # and by hand: sample + decode
        with self.session() as s, ember.Sampler.greedy() as g:
            self.assertEqual(self.step(s, g, 16), GOLDEN)

    def test_item_06_streaming_early_stop(self):
        reference_pieces = []
        with self.session() as s, ember.Sampler.greedy() as g:
            s.generate(g, max_tokens=16, stop_at_eog=False, on_text=reference_pieces.append)
        # the iterator: break after 3 pieces
        with self.session() as s, ember.Sampler.greedy() as g:
            got = []
            with s.stream(g, max_tokens=16, stop_at_eog=False) as stream:
                for piece in stream:
                    got.append(piece)
                    if len(got) == 3:
                        break
            self.assertEqual(list(stream), [], "no piece after the stop")
            self.assertEqual(got, reference_pieces[:3])
            self.assertIs(stream.result.stop_reason, ember.StopReason.CALLBACK)
            self.assertEqual(s.position, 5 + 3 - 1)
        self.assertEqual(generator_threads(), [])
        # the callback: return False on the third piece
        with self.session() as s, ember.Sampler.greedy() as g:
            got = []

            def on_text(piece):
                got.append(piece)
                return len(got) < 3

            r = s.generate(g, max_tokens=16, stop_at_eog=False, on_text=on_text)
            self.assertEqual(got, reference_pieces[:3])
            self.assertIs(r.stop_reason, ember.StopReason.CALLBACK)
            self.assertEqual(s.position, 5 + 3 - 1)
        # the model's generator: breaking out ends the worker thread at once, as does dropping it
        gen = self.model.generate(PROMPT, max_tokens=16, temperature=0, stop_at_eog=False, n_threads=THREADS)
        got = []
        for piece in gen:
            got.append(piece)
            if len(got) == 3:
                break
        gen.close()
        self.assertEqual(got, reference_pieces[:3])
        self.assertEqual(generator_threads(), [])
        gen = self.model.generate(PROMPT, max_tokens=16, temperature=0, stop_at_eog=False, n_threads=THREADS)
        next(gen)
        del gen
        gc.collect()
        self.assertEqual(generator_threads(), [])

    def test_item_07_stop_strings(self):
        reference = self.model.detokenize(GOLDEN)
        stop = reference[10:14]
        expected = reference[: reference.index(stop)]
        with self.session() as s, ember.Sampler.greedy() as g:
            pieces = []
            r = s.generate(g, max_tokens=16, stop_at_eog=False, stop=[stop], on_text=pieces.append)
        self.assertEqual("".join(pieces), expected)
        self.assertIs(r.stop_reason, ember.StopReason.STOP_STRING)
        self.assertEqual(r.stop_index, 0)
        text = "".join(self.model.generate(PROMPT, max_tokens=16, temperature=0, stop_at_eog=False, stop=stop,
                                           n_threads=THREADS))
        self.assertEqual(text, expected)

    def test_item_08_cancel_from_another_thread(self):
        with self.session() as s, ember.Sampler.greedy() as g:
            pieces = []
            canceller = []

            def on_text(piece):
                pieces.append(piece)
                if not canceller:
                    t = threading.Thread(target=s.cancel)
                    canceller.append(t)
                    t.start()
                    t.join()  # the cancel has landed before generation goes on
                return True

            with self.assertRaises(ember.Cancelled) as cm:
                s.generate(g, max_tokens=-1, stop_at_eog=False, on_text=on_text)
            self.assertEqual(cm.exception.status, ember.Status.CANCELLED)
            self.assertGreaterEqual(len(pieces), 1)
            self.assertIsNotNone(cm.exception.result)
            self.assertGreaterEqual(cm.exception.result.n_generated, len(pieces))
            # sticky until cleared
            self.assertRaises(ember.Cancelled, s.decode, 1)
            s.clear_cancel()
            s.rewind(5 - 1)
            s.prefill(PROMPT_IDS[-1:])
            r = s.generate(g, max_tokens=4, stop_at_eog=False)
            self.assertEqual(r.tokens, GOLDEN[:4])

        # a stream consumed on this thread, cancelled by another one while it runs
        with self.session() as s, ember.Sampler.greedy() as g:
            stream = s.stream(g, max_tokens=-1, stop_at_eog=False)
            got = [next(stream)]
            threading.Thread(target=s.cancel).start()
            with self.assertRaises(ember.Cancelled):
                for piece in stream:
                    got.append(piece)
            stream.close()
            self.assertGreaterEqual(len(got), 1)

    def test_item_09_errors(self):
        missing = os.path.join(tempfile.gettempdir(), "ember-no-such-model.gguf")
        e = self.assertError(ember.EmberIOError, ember.Status.IO, ember.Model, missing)
        self.assertIn(missing, e.message)
        with tempfile.NamedTemporaryFile(suffix=".gguf", delete=False) as f:
            f.write(b"this is not a GGUF file at all\n" * 8)
        try:
            self.assertError(ember.BadFile, ember.Status.BAD_FILE, ember.Model, f.name)
        finally:
            os.unlink(f.name)
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, ember.Model, MODEL, n_threads=-1)
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, ember.Model, MODEL, quantize="q7")
        self.assertEqual(ember.Model(MODEL, n_threads=THREADS, quantize="q8_0").meta("general.file_type"), "7")
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, ember.Sampler, temperature=math.nan)
        with self.assertRaises((ember.OutOfMemory, ember.InvalidArgument)) as cm:
            ember.Session(self.model, n_ctx=2**30, n_threads=THREADS)
        self.assertIn(cm.exception.status, (ember.Status.OUT_OF_MEMORY, ember.Status.INVALID_ARGUMENT))
        self.assertTrue(cm.exception.message)
        with self.session() as s:
            self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, s.decode, -1)
            self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, s.decode, 2**40)
            self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, s.prefill, [])
        closed = ember.Session(self.model, n_threads=THREADS)
        closed.close()
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, closed.decode, 1)

    def test_item_10_callback_that_fails(self):
        class Boom(Exception):
            pass

        boom = Boom("from the callback")
        with self.session() as s, ember.Sampler.greedy() as g:
            pieces = []

            def on_text(piece):
                pieces.append(piece)
                if len(pieces) == 2:
                    raise boom

            with self.assertRaises(Boom) as cm:
                s.generate(g, max_tokens=16, stop_at_eog=False, on_text=on_text)
            self.assertIs(cm.exception, boom, "the original exception")
            self.assertEqual(len(pieces), 2, "no piece after the failure")
            # the session is usable afterwards
            s.rewind(5 - 1)
            s.prefill(PROMPT_IDS[-1:])
            self.assertEqual(s.generate(g, max_tokens=3, stop_at_eog=False).tokens, GOLDEN[:3])
        # a progress callback that raises cancels the load and surfaces
        with self.assertRaises(Boom):
            ember.Model(MODEL, n_threads=THREADS, progress=lambda p: (_ for _ in ()).throw(Boom("load")))

    def test_item_11_freeing_in_any_order(self):
        m = ember.Model(MODEL, n_threads=THREADS)
        s = self.session(model=m)
        g = ember.Sampler.greedy()
        m.close()  # before its session
        m.close()
        self.assertTrue(m.closed)
        self.assertEqual(s.generate(g, max_tokens=16, stop_at_eog=False).tokens, GOLDEN)
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, m.tokenize, "x")
        g.close()
        s.close()
        s.close()
        s.cancel()  # harmless on a closed session
        # left to the garbage collector, in whatever order it picks
        m = ember.Model(MODEL, n_threads=THREADS)
        s = self.session(model=m)
        g = ember.Sampler(temperature=1.0, seed=7)
        c = ember.Chat(m, n_threads=THREADS)
        stream = s.stream(g, max_tokens=8)
        next(stream)
        del m, s, g, c, stream
        gc.collect()
        # a session closed from inside its own callback: the free waits for the call, which stops
        with self.session() as s, ember.Sampler.greedy() as g:
            def on_text(piece):
                s.close()
            with self.assertRaises(ember.Cancelled):
                s.generate(g, max_tokens=16, stop_at_eog=False, on_text=on_text)
            self.assertTrue(s.closed)

    def test_item_12_seeds(self):
        def twelve(sampler):
            with self.session() as s:
                return self.step(s, sampler, 12)

        with ember.Sampler(temperature=1.0, seed=1234) as a, ember.Sampler(temperature=1.0, seed=1234) as b:
            self.assertEqual(a.seed, 1234)
            ta, tb = twelve(a), twelve(b)
        self.assertEqual(ta, tb)
        self.assertEqual(len(ta), 12)
        with ember.Sampler(temperature=1.0) as r:
            seed = r.seed
            self.assertIsInstance(seed, int)
            self.assertNotEqual(seed, _native.SEED_RANDOM)
            tr = twelve(r)
        with ember.Sampler(temperature=1.0, seed=seed) as again:
            self.assertEqual(twelve(again), tr)
        # through generate and the model's generator too
        with self.session() as s, ember.Sampler(temperature=1.0, seed=99) as x:
            tx = s.generate(x, max_tokens=12, stop_at_eog=False).text
        ty = "".join(self.model.generate(PROMPT, max_tokens=12, temperature=1.0, top_k=40, top_p=0.95, min_p=0.05,
                                         seed=99, stop_at_eog=False, n_threads=THREADS))
        self.assertEqual(tx, ty)

    def test_item_13_all_logits(self):
        with self.session(prompt=False) as s:
            s.prefill(PROMPT_IDS, all_logits=True)
            last = s.logits()
            self.assertEqual(len(last), 512)
            self.assertEqual(s.logits_at(4), last)
            self.assertEqual(memoryview(last).format, "f")
            self.assertNotEqual(s.logits_at(0), last)
            self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, s.logits_at, 5)
            s.reset()
            self.assertEqual(s.position, 0)
            self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, s.logits)

    def test_item_14_chat(self):
        with ember.Chat(self.model, n_threads=THREADS) as chat, ember.Sampler.greedy() as g:
            pieces = []
            r = chat.say("Hello", sampler=g, max_tokens=8, on_text=pieces.append)
            self.assertLessEqual(r.n_generated, 8)
            self.assertTrue(r.text)
            self.assertEqual("".join(pieces), r.text)
            self.assertEqual(str(r), r.text)
            self.assertEqual(chat.n_messages, 2)
            self.assertEqual(len(chat), 2)
            streamed = "".join(chat.stream("Hello again", sampler=g, max_tokens=8))
            self.assertIsInstance(streamed, str)
            self.assertEqual(chat.n_messages, 4)
            chat.reset()
            self.assertEqual(chat.n_messages, 0)
            if _native.optional("ember_chat_cancel") is not None:  # newer libraries
                chat.cancel()
                self.assertRaises(ember.Cancelled, chat.say, "Hello", sampler=g, max_tokens=8)
                self.assertEqual(chat.n_messages, 0, "a failed turn leaves the conversation as it was")
                chat.clear_cancel()
                self.assertTrue(chat.say("Hello", sampler=g, max_tokens=8).text)

    def test_item_15_load_from_memory(self):
        with open(MODEL, "rb") as f:
            data = f.read()
        with ember.Model.from_bytes(data, n_threads=THREADS) as m:
            self.assertEqual(m.n_vocab, 512)
            self.assertEqual(self.greedy_tokens(m), GOLDEN)

    def test_item_16_lora_adapters(self):
        def max_diff(a, b):
            self.assertEqual(len(a), len(b))
            return max(abs(x - y) for x, y in zip(a, b))

        base_model = ember.Model(os.path.join(HF, "llama"), n_threads=THREADS)
        peft = ember.Adapter(base_model, os.path.join(HF, "llama-lora"))
        gguf = ember.Adapter(base_model, os.path.join(HF, "llama-lora", "adapter.gguf"))
        for a in (peft, gguf):
            self.assertEqual(a.rank, 4)
            self.assertEqual(a.n_targets, 14)
        ids = base_model.tokenize(LORA_PROMPT)
        self.assertEqual(len(ids), 29)
        s = ember.Session(base_model, n_threads=THREADS)

        def logits(adapters=None):
            if adapters is not None:
                s.set_adapters(adapters)
            s.reset()
            s.prefill(ids)
            return s.logits()

        def argmax(v):
            return max(range(len(v)), key=v.__getitem__)

        base = logits()
        self.assertEqual(argmax(base), 161)
        with_peft = logits([(peft, 1.0)])
        self.assertEqual(argmax(with_peft), 263)
        self.assertLess(max_diff(with_peft[:8], LORA_FIRST_LOGITS), 3e-3)
        self.assertEqual(logits([(gguf, 1.0)]), with_peft)
        self.assertEqual(logits([(peft, 1.0), (gguf, 0.0)]), with_peft)
        self.assertLess(max_diff(logits([(peft, 0.5), (gguf, 0.5)]), with_peft), 1e-3)
        self.assertEqual(logits([(peft, 0.0)]), base)
        self.assertEqual(logits([]), base)

        e = self.assertError(ember.EmberIOError, ember.Status.IO, ember.Adapter, base_model,
                             os.path.join(HF, "no-such-adapter"))
        self.assertIn("no-such-adapter", e.message)
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, ember.Adapter, self.model,
                         os.path.join(HF, "llama-lora"))
        s.set_adapters([(peft, 1.0)])
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, s.set_adapters,
                         [(peft, float("nan"))])
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, s.set_adapters,
                         [(peft, 1.0), (peft, 1.0)])
        self.assertEqual(logits(), with_peft, "a failed set_adapters keeps the session's adapters")

        # The session keeps its adapters, and they their model, past close().
        peft.close()
        peft.close()
        gguf.close()
        base_model.close()
        self.assertTrue(peft.closed)
        self.assertEqual(logits(), with_peft)
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, s.set_adapters, [(peft, 1.0)])
        self.assertEqual(logits([]), base)
        s.close()

        with ember.Model(os.path.join(HF, "llama"), n_threads=THREADS) as m, \
                ember.Adapter(m, os.path.join(HF, "llama-lora")) as a:
            self.assertIn("rank=4", repr(a))
        self.assertTrue(a.closed)
        self.assertIn("closed", repr(a))

    def test_item_17_grammar_and_json_schema(self):
        g = ember.json_schema_to_grammar(PERSON_SCHEMA)
        self.assertIn("root ::=", g)
        self.assertEqual(ember.json_schema_to_grammar(json.dumps(PERSON_SCHEMA)), g)
        self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, ember.json_schema_to_grammar, "[")
        if not os.path.exists(SMOLLM2):
            self.skipTest(f"{SMOLLM2} is absent (scripts/setup.sh fetches it)")
        with ember.Model(SMOLLM2, n_threads=THREADS) as m, ember.Session(m, n_threads=THREADS) as s:
            def run(sampler, prompt, max_tokens, stop_at_eog=True):
                sampler.reset()  # restarts the grammar, complete after the last run
                s.reset()
                s.prefill(m.tokenize(prompt))
                return s.generate(sampler, max_tokens=max_tokens, stop_at_eog=stop_at_eog)

            # Hot sampling cannot leave the grammar, and generation ends once it is complete.
            for seed in range(1, 7):
                with ember.Sampler(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, seed=seed) as smp:
                    smp.set_grammar(m, YES_NO)
                    r = run(smp, ANSWER_PROMPT, 8, stop_at_eog=False)
                    self.assertIn(r.text, ("yes", "no"), f"seed {seed}")
                    self.assertEqual(r.stop_reason, ember.StopReason.EOG)
                    # A bad grammar is refused with its position and leaves the old one in place.
                    e = self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, smp.set_grammar,
                                         m, 'root ::= ("yes" | "no"')
                    self.assertRegex(e.message, r"line \d+, column \d+")
                    self.assertIn(run(smp, ANSWER_PROMPT, 8, stop_at_eog=False).text, ("yes", "no"))
                    # Cleared, the sampler is free again: 8 tokens, the length limit.
                    smp.set_grammar(m, None)
                    r = run(smp, ANSWER_PROMPT, 8, stop_at_eog=False)
                    self.assertEqual((r.n_generated, r.stop_reason), (8, ember.StopReason.LENGTH))

            with ember.Sampler(temperature=0.7, seed=7) as smp:
                smp.set_json_schema(m, PERSON_SCHEMA)
                r = run(smp, PERSON_PROMPT, 96)
                self.assertEqual(r.stop_reason, ember.StopReason.EOG, r.text)
                doc = json.loads(r.text)
                self.assertEqual(sorted(doc), ["age", "color"], r.text)
                self.assertIs(type(doc["age"]), int)
                self.assertIn(doc["color"], ("red", "green", "blue"))
            with ember.Sampler.greedy() as smp:
                self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, smp.set_json_schema, m,
                                 '{"type": ')

    # beyond the list ---------------------------------------------------------------------------------

    def test_item_18_memory_estimates(self):
        plain = ember.estimate_memory(MODEL, 256)
        self.assertGreater(plain.weights, 0)
        self.assertEqual(plain.total, plain.weights + plain.kv_cache + plain.scratch)
        self.assertEqual(ember.estimate_memory(MODEL, n_ctx=256, quantize=None), plain)
        q8 = ember.estimate_memory(MODEL, 256, quantize="Q8_0")
        self.assertLess(q8.weights, plain.weights)  # the model's F32 weights at about a quarter of the bytes
        self.assertGreater(q8.weights, 0)
        self.assertEqual((q8.kv_cache, q8.scratch), (plain.kv_cache, plain.scratch))
        self.assertEqual(q8.total, q8.weights + q8.kv_cache + q8.scratch)
        self.assertEqual(ember.estimate_memory(MODEL, 256, 0, "q8_0"), q8)
        self.assertEqual(ember.estimate_memory(MODEL, 256, quantize=""), plain)
        e = self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, ember.estimate_memory, MODEL, 256,
                             quantize="Q9_9")
        self.assertIn("ember_estimate_memory_quantized", e.message)
        e = self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, ember.estimate_memory, MODEL, 256,
                             quantize="q" * 65)
        self.assertIn("64 bytes", e.message)
        e = self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, ember.estimate_memory, MODEL, 0)
        self.assertNotIn("_quantized", e.message)  # the function called, not the one it shares code with

    def test_item_19_input_refused_not_cut(self):
        inval = lambda fn, *a, **kw: self.assertError(ember.InvalidArgument, ember.Status.INVALID_ARGUMENT, fn, *a, **kw)
        # A NUL byte in a string C takes NUL-terminated: refused before C would read only up to it.
        for path in (MODEL + "\0x", os.fsencode(MODEL) + b"\0x"):
            e = inval(ember.Model, path, n_threads=THREADS)
            self.assertIn("NUL", e.message)
            inval(ember.Tokenizer, path)
            inval(ember.estimate_memory, path, 256)
        inval(ember.Model, MODEL, n_threads=THREADS, backend="cpu\0x")
        inval(ember.Model, MODEL, n_threads=THREADS, quantize="q8_0\0")
        with open(MODEL, "rb") as f:
            inval(ember.Model.from_bytes, f.read(), n_threads=THREADS, quantize="q8_0\0")
        inval(ember.estimate_memory, MODEL, 256, quantize="q8_0\0")
        inval(self.model.meta, "general.architecture\0x")
        inval(self.model.meta_json, "general.architecture\0x")
        inval(self.model.meta_type, "general.architecture\0x")
        inval(ember.render_chat, [{"role": "user", "content": "hi"}], template="{{ 1 }}\0{{ 2 }}")
        with self.session() as s, ember.Sampler.greedy() as g:
            for stop in ("ti\0me", ["x", b"a\0"]):
                inval(s.generate, g, max_tokens=4, stop=stop)
            self.assertEqual(s.position, 5, "a refused call changed nothing")
            with tempfile.TemporaryDirectory() as d:
                inval(s.save, os.path.join(d, "state\0x"))
                inval(s.load, os.path.join(d, "state\0x"))
                self.assertEqual(os.listdir(d), [])
            inval(g.set_grammar, self.model, 'root ::= "yes"\0 | "no"')
            inval(g.set_json_schema, self.model, '{"type": "object"}\0')
        inval(ember.json_schema_to_grammar, '{"type": "object"}\0')
        with ember.Chat(self.model, n_threads=THREADS) as chat, ember.Sampler.greedy() as g:
            inval(chat.say, "Hel\0lo", sampler=g, max_tokens=2)
            self.assertEqual(chat.n_messages, 0)
            with tempfile.TemporaryDirectory() as d:
                inval(chat.save, os.path.join(d, "chat\0x"))
        inval(ember.Chat, self.model, system="Be\0 brief", n_threads=THREADS)
        # Text to tokenize crosses with its length: a NUL in it is text.
        with_nul = self.model.tokenize("a\0b", add_special=False)
        self.assertGreater(len(with_nul), len(self.model.tokenize("a", add_special=False)))
        # Numbers beyond int32 are refused, not wrapped (2^32 + 256 would reach C as 256).
        for kw in ({"n_ctx": 2**32 + 256}, {"n_batch": 2**32 + 8}, {"n_threads": 2**32 + 1}):
            inval(ember.Session, self.model, **{"n_threads": THREADS, **kw})
            inval(ember.Chat, self.model, **{"n_threads": THREADS, **kw})
        inval(ember.Chat, self.model, n_threads=THREADS, reserve=2**32 + 16)
        inval(ember.Sampler, top_k=2**32 + 40)
        with self.session() as s, ember.Sampler.greedy() as g:
            inval(s.generate, g, max_tokens=2**32 + 1)
            inval(s.rewind, 2**32)
            self.assertEqual(s.position, 5)

    def test_session_save_load(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "state.bin")
            with self.session() as s, ember.Sampler.greedy() as g:
                s.save(path)
                a = s.generate(g, max_tokens=6, stop_at_eog=False).tokens
                s.load(path)
                self.assertEqual(s.position, 5)
                self.assertEqual(s.generate(g, max_tokens=6, stop_at_eog=False).tokens, a)
            with self.session(prompt=False) as s:
                self.assertError(ember.EmberIOError, ember.Status.IO, s.load, os.path.join(d, "missing"))

    def test_logit_bias_and_tokenizer_extras(self):
        with self.session() as s, ember.Sampler.greedy() as g:
            r = s.generate(g, max_tokens=1, stop_at_eog=False, logit_bias={GOLDEN[0]: -math.inf})
            self.assertNotEqual(r.tokens[0], GOLDEN[0])
        self.assertEqual(self.model.token_piece(403).strip(), self.model.detokenize([403]).encode())
        self.assertTrue(self.model.add_bos)
        self.assertTrue(self.model.is_eog(self.model.eos))
        with ember.Tokenizer(MODEL) as t:
            self.assertEqual(t.n_vocab, 512)
            self.assertEqual(t.tokenize(PROMPT), PROMPT_IDS)

    def test_context_managers_and_repr(self):
        with ember.Model(MODEL, n_threads=THREADS) as m:
            self.assertIn("llama", repr(m))
        self.assertTrue(m.closed)
        self.assertIn("closed", repr(m))
        self.assertGreater(ember.estimate_memory(MODEL, 256).total, 0)
        err = ember.NotFound(ember.Status.NOT_FOUND, "x")
        self.assertEqual(re.sub(r"\s", "", repr(err)), "NotFound(<Status.NOT_FOUND:11>,'x')")


if __name__ == "__main__":
    unittest.main()
