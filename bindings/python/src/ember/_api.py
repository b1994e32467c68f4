"""The idiomatic layer: models, sessions, samplers, chats and streaming, over the ctypes declarations."""

from __future__ import annotations

import array
import contextlib
import ctypes
import dataclasses
import enum
import json
import os
import threading
from ctypes import POINTER, byref, c_char_p, c_float, c_int32, c_size_t, c_uint64, c_void_p
from typing import (
    Any,
    Callable,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _native as N
from ._native import InvalidArgument, Status, check, lib

PathLike = Union[str, bytes, "os.PathLike[str]"]
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def _i32(value: int, what: str) -> int:
    v = int(value)
    if not _I32_MIN <= v <= _I32_MAX:
        raise InvalidArgument(Status.INVALID_ARGUMENT, f"{what} {v} does not fit in a 32-bit integer")
    return v


def _ids(ids: Iterable[int], what: str = "token id") -> "array.array[int]":
    try:
        return array.array("i", ids)
    except OverflowError:
        raise InvalidArgument(Status.INVALID_ARGUMENT, f"a {what} does not fit in a 32-bit integer") from None


def _ptr_i32(arr: "array.array[int]") -> Any:
    if len(arr) == 0:
        return None
    return ctypes.cast((c_int32 * len(arr)).from_buffer(arr), POINTER(c_int32))


def _closed(kind: str) -> InvalidArgument:
    return InvalidArgument(Status.INVALID_ARGUMENT, f"the {kind} is closed")


# ---------------------------------------------------------------------------------------------------------
# Library-wide functions
# ---------------------------------------------------------------------------------------------------------


def version() -> str:
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return lib().ember_version().decode()


def version_number() -> int:
    """The loaded library's version as MAJOR * 1000000 + MINOR * 1000 + PATCH."""
    return int(lib().ember_version_number())


def abi_version() -> int:
    """The C ABI version of the loaded library (this binding accepts only ember._native.ABI_VERSION)."""
    return int(lib().ember_abi_version())


def backends() -> List[str]:
    """The backends the library was built with, "cpu" first."""
    L = lib()
    return [L.ember_backend_name(i).decode() for i in range(L.ember_backend_count())]


class LogLevel(enum.IntEnum):
    ERROR = 0
    WARN = 1
    INFO = 2


_log_callback: Any = None


def set_log_callback(callback: Optional[Callable[[LogLevel, str], None]]) -> None:
    """Receives the library's warnings and notes as ``callback(level, message)`` (from any thread, one call
    at a time; it must not call into ember). ``None`` removes it. Exceptions in it are ignored."""
    global _log_callback
    L = lib()
    if callback is None:
        L.ember_set_log_callback(N.LOG_FN(), None)
        _log_callback = None
        return

    def tramp(level: int, message: Optional[bytes], _ud: Any) -> None:
        try:
            callback(LogLevel(level) if level in (0, 1, 2) else level, (message or b"").decode("utf-8", "replace"))
        except BaseException:  # noqa: BLE001 -- nothing may unwind into C
            pass

    fn = N.LOG_FN(tramp)
    L.ember_set_log_callback(fn, None)
    _log_callback = fn  # kept alive while installed


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    scratch: int
    total: int


def estimate_memory(path: PathLike, n_ctx: int = 4096, n_batch: int = 0,
                    quantize: Optional[str] = None) -> MemoryEstimate:
    """What a model file and one session of n_ctx tokens cost in memory (bytes), from the header alone.
    quantize: the weights as Model(path, quantize=...) would hold them ("q8_0", "q4_k", ...; None or "": as
    the file is); an unknown type raises InvalidArgument, as the load does."""
    out = N.MemoryEstimate()
    out.struct_size = ctypes.sizeof(out)
    n_ctx32, n_batch32 = _i32(n_ctx, "n_ctx"), _i32(n_batch, "n_batch")
    if quantize is None:
        check(lib().ember_estimate_memory(N.c_path(path), n_ctx32, n_batch32, byref(out)))
    else:
        fn = N.required("ember_estimate_memory_quantized")
        check(fn(N.c_path(path), n_ctx32, n_batch32, N.c_string(quantize, "the quantize type"), byref(out)))
    return MemoryEstimate(int(out.weights), int(out.kv_cache), int(out.scratch), int(out.total))


def render_chat(
    messages: Sequence[Mapping[str, Any]],
    template: Optional[str] = None,
    model: Optional["Model"] = None,
    add_generation_prompt: bool = True,
    **fields: Any,
) -> str:
    """Renders messages through a Jinja chat template (the model's own when template is None) as Hugging
    Face's apply_chat_template does. Extra keyword arguments (tools, bos_token, now...) go to the template."""
    doc = dict(fields)
    doc["messages"] = list(messages)
    doc["add_generation_prompt"] = bool(add_generation_prompt)
    data = json.dumps(doc).encode()
    tpl = None if template is None else N.c_string(template, "the template")
    if model is None:
        return N.text("ember_chat_render", None, tpl, data)
    with model._use() as h:
        return N.text("ember_chat_render", h, tpl, data)


# ---------------------------------------------------------------------------------------------------------
# Handles: explicit close(), context managers, __del__ as a safety net, and a use count so that closing
# an object while another thread (or a callback) is inside a call on it defers the free until it returns.
# ---------------------------------------------------------------------------------------------------------


class _Handle:
    _kind = "object"
    _free_name = ""

    def __init__(self) -> None:
        self._h: Optional[int] = None
        self._hlock = threading.Lock()
        self._busy = 0
        self._close_pending = False

    @contextlib.contextmanager
    def _use(self) -> Iterator[int]:
        with self._hlock:
            h = self._h
            if h is None or self._close_pending:
                raise _closed(self._kind)
            self._busy += 1
        try:
            yield h
        finally:
            free = None
            with self._hlock:
                self._busy -= 1
                if self._busy == 0 and self._close_pending:
                    free, self._h, self._close_pending = self._h, None, False
            if free is not None:
                self._free(free)

    def _free(self, h: int) -> None:
        getattr(lib(), self._free_name)(h)

    def _closing_while_busy(self, h: int) -> None:
        pass

    def close(self) -> None:
        """Frees the native object (idempotent). While a call on it runs in another thread, the free waits
        for that call to return."""
        with self._hlock:
            h = self._h
            if h is None or self._close_pending:
                return
            if self._busy:
                self._close_pending = True
                self._closing_while_busy(h)
                return
            self._h = None
        self._free(h)

    @property
    def closed(self) -> bool:
        return self._h is None or self._close_pending

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_h", None) is not None:
                self.close()
        except Exception:  # noqa: BLE001 -- interpreter shutdown
            pass


# ---------------------------------------------------------------------------------------------------------
# Vocabulary (shared by Model and the vocab-only Tokenizer)
# ---------------------------------------------------------------------------------------------------------


class _Vocab:
    def _tok(self) -> "contextlib.AbstractContextManager[int]":
        raise NotImplementedError

    def tokenize(self, text: Union[str, bytes], add_special: bool = True, parse_special: bool = True) -> List[int]:
        """Text to token ids. add_special adds BOS/EOS as the vocabulary asks; parse_special turns text such as
        "<|im_start|>" into its special token."""
        data = N.encode(text)  # a pointer and a length: NUL bytes are text here
        flags = (N.TOKENIZE_ADD_SPECIAL if add_special else 0) | (N.TOKENIZE_PARSE_SPECIAL if parse_special else 0)
        L = lib()
        cap = len(data) + 8
        with self._tok() as t:
            while True:
                buf = (c_int32 * cap)()
                n = c_int32(0)
                st = L.ember_tokenize(t, data, len(data), buf, cap, flags, byref(n))
                if st == Status.BUFFER_TOO_SMALL:
                    cap = max(int(n.value), cap + 1)
                    continue
                check(st)
                return list(buf[: n.value])

    def detokenize_bytes(self, ids: Iterable[int], render_special: bool = False) -> bytes:
        arr = _ids(ids)
        flags = N.DETOKENIZE_RENDER_SPECIAL if render_special else 0
        with self._tok() as t:
            return N.text_call("ember_detokenize", t, _ptr_i32(arr), len(arr), flags)

    def detokenize(self, ids: Iterable[int], render_special: bool = False) -> str:
        """Token ids to text (invalid UTF-8, e.g. half a character, becomes U+FFFD)."""
        return self.detokenize_bytes(ids, render_special).decode("utf-8", "replace")

    def token_piece(self, token: int, render_special: bool = False) -> bytes:
        """The bytes of one token (possibly part of a UTF-8 character)."""
        flags = N.DETOKENIZE_RENDER_SPECIAL if render_special else 0
        with self._tok() as t:
            return N.text_call("ember_token_piece", t, _i32(token, "token"), flags)

    def is_eog(self, token: int) -> bool:
        """Whether the token ends generation (EOS, EOT...)."""
        with self._tok() as t:
            return bool(lib().ember_token_is_eog(t, _i32(token, "token")))

    def token_attr(self, token: int) -> int:
        """The token's EMBER_TOKEN_ATTR_* bits (0 for an id out of range)."""
        with self._tok() as t:
            return int(lib().ember_token_attr(t, _i32(token, "token")))

    def special_token(self, which: int) -> Optional[int]:
        """The token with a special role (EMBER_SPECIAL_*: 0 BOS, 1 EOS, 2 EOT...), None when absent."""
        with self._tok() as t:
            v = int(lib().ember_token_special(t, _i32(which, "which")))
        return None if v < 0 else v

    @property
    def bos(self) -> Optional[int]:
        return self.special_token(0)

    @property
    def eos(self) -> Optional[int]:
        return self.special_token(1)

    @property
    def eot(self) -> Optional[int]:
        return self.special_token(2)

    @property
    def add_bos(self) -> bool:
        with self._tok() as t:
            return lib().ember_tokenizer_add_bos(t) == 1

    @property
    def add_eos(self) -> bool:
        with self._tok() as t:
            return lib().ember_tokenizer_add_eos(t) == 1


class Tokenizer(_Handle, _Vocab):
    """The vocabulary of a GGUF file alone (vocab-only files work)."""

    _kind = "tokenizer"
    _free_name = "ember_tokenizer_free"

    def __init__(self, path: PathLike) -> None:
        super().__init__()
        out = c_void_p()
        check(lib().ember_tokenizer_load(N.c_path(path), byref(out)))
        self._h = out.value

    def _tok(self) -> "contextlib.AbstractContextManager[int]":
        return self._use()

    @property
    def n_vocab(self) -> int:
        with self._use() as t:
            return int(lib().ember_tokenizer_n_vocab(t))


# ---------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------


class MetaType(enum.IntEnum):
    U8 = 0
    I8 = 1
    U16 = 2
    I16 = 3
    U32 = 4
    I32 = 5
    F32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    U64 = 10
    I64 = 11
    F64 = 12


class _Progress:
    """A progress callback for loading: return False (or raise) to cancel; an exception is re-raised."""

    def __init__(self, fn: Optional[Callable[[float], Any]]) -> None:
        self.fn = fn
        self.exc: Optional[BaseException] = None
        self.c = N.PROGRESS_FN(self._call) if fn is not None else N.PROGRESS_FN()

    def _call(self, progress: float, _ud: Any) -> bool:
        try:
            return self.fn(progress) is not False  # type: ignore[misc]
        except BaseException as e:  # noqa: BLE001
            self.exc = e
            return False


class Model(_Handle, _Vocab):
    """A GGUF model. Immutable once loaded; share it between threads.

    ``with ember.Model("file.gguf") as m: ...`` frees it at the end; sessions made from it stay usable after
    it is closed (they keep the weights alive).
    """

    _kind = "model"
    _free_name = "ember_model_free"

    def __init__(
        self,
        path: PathLike,
        n_threads: int = 0,
        backend: Optional[str] = None,
        use_mmap: bool = True,
        progress: Optional[Callable[[float], Any]] = None,
        quantize: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.path: Optional[str] = os.fsdecode(path)
        params, prog = self._params(n_threads, backend, progress, quantize)
        params.use_mmap = bool(use_mmap)
        out = c_void_p()
        st = lib().ember_model_load(N.c_path(path), byref(params), byref(out))
        self._loaded(st, out, prog)

    @classmethod
    def from_bytes(
        cls,
        data: Union[bytes, bytearray, memoryview],
        n_threads: int = 0,
        backend: Optional[str] = None,
        progress: Optional[Callable[[float], Any]] = None,
        quantize: Optional[str] = None,
    ) -> "Model":
        """Loads a GGUF file held in memory (the bytes are copied)."""
        self = cls.__new__(cls)
        _Handle.__init__(self)
        self.path = None
        buf = bytes(data)
        params, prog = self._params(n_threads, backend, progress, quantize)
        out = c_void_p()
        st = lib().ember_model_load_from_memory(c_char_p(buf), len(buf), byref(params), byref(out))
        self._loaded(st, out, prog)
        return self

    def _params(self, n_threads: int, backend: Optional[str], progress: Optional[Callable[[float], Any]],
                quantize: Optional[str] = None) -> Any:
        p = N.init_params(N.ModelParams, "model")
        p.n_threads = _i32(n_threads, "n_threads")
        self._backend_arg = None if backend is None else N.c_string(backend, "the backend")
        p.backend = self._backend_arg
        # quantize F32/F16/BF16 weights in memory at load ("q8_0", "q4_k", ...; None: as the file is)
        self._quantize_arg = None if quantize is None else N.c_string(quantize, "the quantize type")
        p.quantize = self._quantize_arg
        prog = _Progress(progress)
        p.progress = prog.c
        return p, prog

    def _loaded(self, st: int, out: c_void_p, prog: _Progress) -> None:
        if prog.exc is not None:
            lib().ember_model_free(out.value)
            raise prog.exc
        check(st)
        self._h = out.value
        self._tokenizer = lib().ember_model_tokenizer(self._h)

    def _tok(self) -> "contextlib.AbstractContextManager[int]":
        @contextlib.contextmanager
        def cm() -> Iterator[int]:
            with self._use():
                yield self._tokenizer

        return cm()

    def _int(self, name: str) -> int:
        with self._use() as h:
            return int(getattr(lib(), name)(h))

    def _str(self, name: str, *args: Any) -> str:
        with self._use() as h:
            return N.text(name, h, *args)

    @property
    def n_vocab(self) -> int:
        return self._int("ember_model_n_vocab")

    @property
    def n_ctx_train(self) -> int:
        return self._int("ember_model_n_ctx_train")

    @property
    def n_embd(self) -> int:
        return self._int("ember_model_n_embd")

    @property
    def n_layers(self) -> int:
        return self._int("ember_model_n_layers")

    @property
    def n_params(self) -> int:
        return self._int("ember_model_n_params")

    @property
    def size(self) -> int:
        """The tensors' bytes."""
        return self._int("ember_model_size")

    @property
    def architecture(self) -> str:
        return self._str("ember_model_architecture")

    @property
    def name(self) -> str:
        return self._str("ember_model_name")

    @property
    def backend(self) -> str:
        """The backend the weights live on ("cpu"...)."""
        return self._str("ember_model_backend")

    @property
    def chat_template(self) -> str:
        """tokenizer.chat_template ("" when the file has none)."""
        return self._str("ember_model_chat_template")

    def meta(self, key: str) -> str:
        """A metadata value as text (arrays summarised); ember.NotFound when absent."""
        return self._str("ember_model_meta", N.c_string(key, "the key"))

    def meta_json(self, key: str) -> Any:
        """A metadata value parsed from its JSON (arrays in full); ember.NotFound when absent."""
        return json.loads(self._str("ember_model_meta_json", N.c_string(key, "the key")))

    def meta_type(self, key: str) -> MetaType:
        t = c_int32(0)
        with self._use() as h:
            check(lib().ember_model_meta_type(h, N.c_string(key, "the key"), byref(t)))
        return MetaType(t.value)

    def meta_keys(self) -> List[str]:
        """The metadata keys in file order."""
        with self._use() as h:
            n = int(lib().ember_model_meta_count(h))
            return [N.text("ember_model_meta_key", h, i) for i in range(n)]

    def session(self, n_ctx: int = 0, n_batch: int = 512, n_threads: int = 0) -> "Session":
        return Session(self, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads)

    def chat(self, system: Optional[str] = None, **kwargs: Any) -> "Chat":
        return Chat(self, system=system, **kwargs)

    def generate(
        self,
        prompt: Union[str, Sequence[int]],
        max_tokens: int = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        seed: Optional[int] = None,
        stop: Union[None, str, Sequence[str]] = None,
        logit_bias: Optional[Mapping[int, float]] = None,
        stop_at_eog: bool = True,
        n_ctx: int = 0,
        n_threads: int = 0,
    ) -> Iterator[str]:
        """Streams the continuation of prompt (text, tokenized with special tokens, or token ids) as text
        pieces. A session of its own is made and prefilled now (errors surface here); each piece is generated
        when asked for (see Session.stream), and leaving the loop (break, an exception, or dropping the
        generator) ends generation and frees everything."""
        ids = self.tokenize(prompt) if isinstance(prompt, (str, bytes)) else list(prompt)
        sampler = Sampler(
            temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty, seed=seed
        )
        try:
            session = Session(self, n_ctx=n_ctx, n_threads=n_threads)
        except BaseException:
            sampler.close()
            raise
        try:
            session.prefill(ids)
            stream = session.stream(
                sampler, max_tokens=max_tokens, stop=stop, logit_bias=logit_bias, stop_at_eog=stop_at_eog
            )
        except BaseException:
            session.close()
            sampler.close()
            raise
        return _owned_stream(stream, session, sampler)

    def __repr__(self) -> str:
        if self.closed:
            return "<ember.Model (closed)>"
        return f"<ember.Model {self.architecture} {self.name!r} n_vocab={self.n_vocab} backend={self.backend}>"


class Adapter(_Handle):
    """A LoRA adapter loaded for a model from a GGUF adapter file or a PEFT folder (adapter_config.json +
    adapter_model.safetensors). Immutable; share it between threads and sessions, and apply it per session
    with ``Session.set_adapters([(adapter, scale), ...])``.

    It keeps the model's weights alive, and sessions using it keep it alive: closing it (or the model) while
    a session uses it is safe. Loading fails with ember.EmberIOError, BadFile, InvalidArgument (an adapter
    made for another model) or Unsupported.
    """

    _kind = "adapter"
    _free_name = "ember_adapter_free"

    def __init__(self, model: Model, path: PathLike) -> None:
        super().__init__()
        load = N.required("ember_adapter_load")
        self.path: str = os.fsdecode(path)
        out = c_void_p()
        with model._use() as mh:
            check(load(mh, N.c_path(path), byref(out)))
        self._h = out.value
        self.model = model

    @property
    def rank(self) -> int:
        """The largest rank of its projections."""
        with self._use() as h:
            return int(lib().ember_adapter_rank(h))

    @property
    def n_targets(self) -> int:
        """How many projections it changes."""
        with self._use() as h:
            return int(lib().ember_adapter_n_targets(h))

    def __repr__(self) -> str:
        if self.closed:
            return "<ember.Adapter (closed)>"
        return f"<ember.Adapter {self.path!r} rank={self.rank} n_targets={self.n_targets}>"


def _owned_stream(stream: "TextStream", *owned: _Handle) -> Iterator[str]:
    try:
        yield from stream
    finally:
        stream.close()
        for o in owned:
            o.close()


# ---------------------------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------------------------


class Sampler(_Handle):
    """Chooses tokens from logits: penalties -> top-k -> top-p -> min-p -> temperature -> draw.
    temperature <= 0 is greedy; seed None draws one from the OS (``.seed`` tells which)."""

    _kind = "sampler"
    _free_name = "ember_sampler_free"

    def __init__(
        self,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        penalty_last_n: int = 64,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        seed: Optional[int] = None,
    ) -> None:
        super().__init__()
        p = N.init_params(N.SamplerParams, "sampler")
        p.temperature = float(temperature)
        p.top_k = _i32(top_k, "top_k")
        p.top_p = float(top_p)
        p.min_p = float(min_p)
        p.repeat_penalty = float(repeat_penalty)
        p.penalty_last_n = _i32(penalty_last_n, "penalty_last_n")
        p.frequency_penalty = float(frequency_penalty)
        p.presence_penalty = float(presence_penalty)
        if seed is None:
            p.seed = N.SEED_RANDOM
        else:
            s = int(seed)
            if not 0 <= s <= N.SEED_RANDOM:
                raise InvalidArgument(Status.INVALID_ARGUMENT, f"seed {s} is outside [0, 2^64)")
            p.seed = s
        out = c_void_p()
        check(lib().ember_sampler_create(byref(p), byref(out)))
        self._h = out.value

    @classmethod
    def greedy(cls) -> "Sampler":
        """Always the highest logit (lowest id on ties)."""
        self = cls.__new__(cls)
        _Handle.__init__(self)
        out = c_void_p()
        check(lib().ember_sampler_create_greedy(byref(out)))
        self._h = out.value
        return self

    @property
    def seed(self) -> int:
        """The seed in use (the one drawn from the OS for a random seed): pass it back to reproduce a run."""
        s = c_uint64(0)
        with self._use() as h:
            check(lib().ember_sampler_seed(h, byref(s)))
        return int(s.value)

    def sample(self, logits: Iterable[float]) -> int:
        """Picks a token from one position's logits and records it for the penalties."""
        arr = logits if isinstance(logits, array.array) and logits.typecode == "f" else array.array("f", logits)
        if len(arr) == 0:
            raise InvalidArgument(Status.INVALID_ARGUMENT, "sample: no logits")
        ptr = ctypes.cast((c_float * len(arr)).from_buffer(arr), POINTER(c_float))
        tok = c_int32(0)
        with self._use() as h:
            check(lib().ember_sampler_sample(h, ptr, len(arr), byref(tok)))
        return int(tok.value)

    def accept(self, token: int) -> None:
        """Records a token chosen elsewhere so the penalties see it."""
        with self._use() as h:
            check(lib().ember_sampler_accept(h, _i32(token, "token")))

    def reset(self) -> None:
        """Forgets the history and reseeds with the seed in use (and restarts a grammar)."""
        with self._use() as h:
            check(lib().ember_sampler_reset(h))

    def set_grammar(self, model: Model, gbnf: Optional[str]) -> None:
        """Constrains sampling to a GBNF grammar (llama.cpp's format) over the model's vocabulary: only tokens
        that continue it are drawn, and generation ends (StopReason.EOG) once it is complete. None or ""
        removes it. A bad grammar is ember.InvalidArgument naming the line and column, and the sampler keeps
        the grammar it had. Prompt tokens should not be accepted while one is set."""
        fn = N.required("ember_sampler_set_grammar")
        with self._use() as h, model._use() as mh:
            check(fn(h, mh, None if gbnf is None else N.c_string(gbnf, "the grammar")))

    def set_json_schema(self, model: Model, schema: Union[str, Mapping[str, Any], None]) -> None:
        """As set_grammar, with the grammar of the JSON documents a JSON Schema accepts (a subset: type,
        properties/required, items, enum, const, anyOf/oneOf, lengths...). The schema is JSON text or a dict;
        None or "" allows any JSON value."""
        fn = N.required("ember_sampler_set_json_schema")
        with self._use() as h, model._use() as mh:
            check(fn(h, mh, _schema_arg(schema)))


def _schema_arg(schema: Union[str, Mapping[str, Any], None]) -> Optional[bytes]:
    if schema is None or isinstance(schema, (str, bytes)):
        return None if schema is None else N.c_string(schema, "the schema")
    return json.dumps(schema).encode()


def json_schema_to_grammar(schema: Union[str, Mapping[str, Any]]) -> str:
    """The GBNF grammar of a JSON Schema (JSON text or a dict), as Sampler.set_json_schema uses it."""
    N.required("ember_json_schema_to_grammar")
    arg = _schema_arg(schema)
    if arg is None:
        raise InvalidArgument(Status.INVALID_ARGUMENT, "json_schema_to_grammar: no schema")
    return N.text("ember_json_schema_to_grammar", arg)


# ---------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------


class StopReason(enum.IntEnum):
    """Why generation ended (EMBER_STOP_*)."""

    LENGTH = 0
    EOG = 1
    CALLBACK = 2
    CONTEXT_FULL = 3
    STOP_STRING = 4


@dataclasses.dataclass
class GenerateResult:
    """What a generation produced. ``tokens`` are the tokens whose text was streamed (one per piece);
    ``n_generated`` counts every token sampled, including the one that ended generation."""

    n_generated: int
    stop_reason: Optional[StopReason]
    stop_index: Optional[int]
    text: str
    tokens: List[int]

    def __str__(self) -> str:
        return self.text


class _Piecer:
    """The ctypes trampoline for ember_stream_fn: collects text and tokens, calls on_piece(text, token)
    (False stops), and turns any exception into EMBER_STREAM_ERROR, keeping it to re-raise."""

    def __init__(self, on_piece: Optional[Callable[[str, int], bool]]) -> None:
        self.on_piece = on_piece
        self.pieces: List[str] = []
        self.tokens: List[int] = []
        self.exc: Optional[BaseException] = None
        self.c = N.STREAM_FN(self._call)

    def _call(self, text: Optional[int], n: int, token: int, _ud: Any) -> int:
        try:
            piece = ctypes.string_at(text, n).decode("utf-8", "replace") if n else ""
            self.pieces.append(piece)
            self.tokens.append(int(token))
            if self.on_piece is not None and self.on_piece(piece, int(token)) is False:
                return N.STREAM_STOP
            return N.STREAM_CONTINUE
        except BaseException as e:  # noqa: BLE001 -- nothing may unwind into C
            self.exc = e
            return N.STREAM_ERROR


def _generate_params(
    max_tokens: int,
    stop: Union[None, str, bytes, Sequence[Union[str, bytes]]],
    logit_bias: Optional[Mapping[int, float]],
    stop_at_eog: bool,
) -> Tuple[Any, List[Any]]:
    """An ember_generate_params (no stream callback yet) and the ctypes objects it points into."""
    p = N.init_params(N.GenerateParams, "generate")
    p.max_tokens = _i32(max_tokens, "max_tokens")
    p.stop_at_eog = 1 if stop_at_eog else 0
    keep: List[Any] = []
    if stop:
        stops = [stop] if isinstance(stop, (str, bytes)) else list(stop)
        enc = [N.c_string(s, "a stop string") for s in stops]
        arr = (c_char_p * len(enc))(*enc)
        keep += [enc, arr]
        p.stop = arr
        p.n_stop = len(enc)
    if logit_bias:
        items = list(dict(logit_bias).items())
        toks = (c_int32 * len(items))(*[_i32(t, "logit_bias token") for t, _ in items])
        vals = (c_float * len(items))(*[float(v) for _, v in items])
        keep += [toks, vals]
        p.bias_tokens = toks
        p.bias_values = vals
        p.n_bias = len(items)
    return p, keep


def _result_struct() -> Any:
    r = N.GenerateResultC()
    r.struct_size = ctypes.sizeof(r)
    return r


def _result(r: Any, stop_reason: Optional[StopReason], pieces: List[str], tokens: List[int]) -> GenerateResult:
    """stop_reason None: generation failed (no stop reason, no stop index)."""
    return GenerateResult(
        n_generated=int(r.n_generated),
        stop_reason=stop_reason,
        stop_index=int(r.stop_index) if stop_reason is not None and r.stop_index >= 0 else None,
        text="".join(pieces),
        tokens=tokens,
    )


def _generate(
    run: Callable[[Any, Any], int],
    max_tokens: int,
    stop: Union[None, str, bytes, Sequence[Union[str, bytes]]],
    logit_bias: Optional[Mapping[int, float]],
    stop_at_eog: bool,
    on_piece: Optional[Callable[[str, int], bool]],
) -> GenerateResult:
    p, _keep = _generate_params(max_tokens, stop, logit_bias, stop_at_eog)
    piecer = _Piecer(on_piece)
    p.stream = piecer.c
    r = _result_struct()
    st = run(byref(p), byref(r))
    message = N.last_error() if st != 0 else ""  # read at once, on this thread
    result = _result(r, StopReason(r.stop_reason) if st == 0 else None, piecer.pieces, piecer.tokens)
    if piecer.exc is not None:
        exc = piecer.exc
        piecer.exc = None
        raise exc
    if st != 0:
        err = N.make_error(st, message)
        err.result = result
        raise err
    return result


def _on_text(on_text: Optional[Callable[[str], Any]]) -> Optional[Callable[[str, int], bool]]:
    if on_text is None:
        return None
    return lambda piece, _tok: on_text(piece) is not False


class _Outcome:
    """Where a stream's generator function leaves its GenerateResult for the TextStream (no reference cycle)."""

    __slots__ = ("result",)

    def __init__(self) -> None:
        self.result: Optional[GenerateResult] = None


def _generation_pieces(
    session: "Session",
    sampler: "Sampler",
    max_tokens: int,
    stop: Any,
    logit_bias: Optional[Mapping[int, float]],
    stop_at_eog: bool,
    out: _Outcome,
) -> Generator[str, None, None]:
    """The pieces of an ember_generation, one ember_generation_next per piece on the consumer's thread (ctypes
    releases the GIL, so Session.cancel() from another thread ends the running step). The token of the piece
    handed out last is evaluated only when the next piece is asked for, so closing the generator stops right
    there, as on_text returning False would (StopReason.CALLBACK). The generation holds the session and the
    sampler until it is freed: closing either meanwhile is deferred (and cancels the session)."""
    L = lib()
    p, _keep = _generate_params(max_tokens, stop, logit_bias, stop_at_eog)
    g = c_void_p()
    with session._use() as h, sampler._use() as sh:
        check(L.ember_generation_start(h, sh, byref(p), byref(g)))
    text, n, token = c_void_p(), c_size_t(0), c_int32(0)
    pieces: List[str] = []
    tokens: List[int] = []
    st, message, ended = 0, "", False
    try:
        while True:
            st = L.ember_generation_next(g, byref(text), byref(n), byref(token))
            if st != 0:
                message = N.last_error()  # read at once, on this thread
                break
            if text.value is None:
                ended = True
                break
            piece = ctypes.string_at(text.value, n.value).decode("utf-8", "replace")
            pieces.append(piece)
            tokens.append(int(token.value))
            yield piece
    finally:
        r = _result_struct()
        rst = L.ember_generation_result(g, byref(r))
        L.ember_generation_free(g)
        # ended by the consumer (close, garbage collection) unless it ended or failed on its own
        stop_reason = StopReason(r.stop_reason) if ended else None if st != 0 else StopReason.CALLBACK
        out.result = _result(r, stop_reason, pieces, tokens)
        check(rst)
    if st != 0:
        err = N.make_error(st, message)
        err.result = out.result
        raise err


class _HandOver:
    """The hand-over between a callback-based generation running on a worker thread and the consumer. The
    worker's callback hands one piece over and then waits for the consumer to ask for the next one (so the
    consumer stopping after a piece stops generation right there, as a callback returning STOP would)."""

    def __init__(self, run: Callable[[Callable[[str, int], bool]], GenerateResult]) -> None:
        self.run = run
        self.cv = threading.Condition()
        self.item: Optional[str] = None
        self.has_item = False
        self.want = False
        self.closed = False
        self.done = False
        self.result: Optional[GenerateResult] = None
        self.error: Optional[BaseException] = None

    def on_piece(self, piece: str, _token: int) -> bool:
        with self.cv:
            if self.closed:
                return False
            self.item, self.has_item = piece, True
            self.cv.notify_all()
            while not (self.want or self.closed):
                self.cv.wait()
            if self.closed:
                return False
            self.want = False
            return True

    def work(self) -> None:
        result, error = None, None
        try:
            result = self.run(self.on_piece)
        except BaseException as e:  # noqa: BLE001 -- handed to the consumer
            error = e
            result = getattr(e, "result", None)
        with self.cv:
            self.result, self.error, self.done = result, error, True
            self.cv.notify_all()


def _handed_over_pieces(
    run: Callable[[Callable[[str, int], bool]], GenerateResult], out: _Outcome
) -> Generator[str, None, None]:
    """The pieces of run(on_piece), a callback-based generation (a chat's turn: the C ABI has no chat
    generation to pull from), on a worker thread without the GIL; closing the generator joins it."""
    s = _HandOver(run)
    worker = threading.Thread(target=s.work, name="ember-generate", daemon=True)
    worker.start()
    try:
        while True:
            with s.cv:
                while not (s.has_item or s.done):
                    s.cv.wait()
                if not s.has_item:
                    break
                s.has_item = False
                piece = s.item
            yield piece  # type: ignore[misc]
            with s.cv:
                s.want = True
                s.cv.notify_all()
    finally:
        with s.cv:
            s.closed = True
            s.cv.notify_all()
        worker.join()
        out.result = s.result
    if s.error is not None:
        raise s.error


class TextStream(Iterator[str]):
    """An iterator over generated text pieces, each generated when asked for. ``close()`` (or leaving a
    ``with`` block, or garbage collection) stops generation: the piece handed out last is the last one
    (StopReason.CALLBACK). ``result`` holds the GenerateResult once it has ended (on a failure, what was
    generated before it, as the error's ``.result``)."""

    def __init__(self, pieces: Callable[[_Outcome], Generator[str, None, None]]) -> None:
        self._out = _Outcome()
        self._pieces = pieces(self._out)

    @property
    def result(self) -> Optional[GenerateResult]:
        return self._out.result

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stops generation (the piece handed out last is the last one) and frees what it holds."""
        self._pieces.close()

    def __enter__(self) -> "TextStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------------------


class Session(_Handle):
    """One conversation over a model: KV cache, position, logits. One thread at a time, except cancel()
    and clear_cancel(), which any thread may call."""

    _kind = "session"
    _free_name = "ember_session_free"

    def __init__(self, model: Model, n_ctx: int = 0, n_batch: int = 512, n_threads: int = 0) -> None:
        super().__init__()
        p = N.init_params(N.SessionParams, "session")
        p.n_ctx = _i32(n_ctx, "n_ctx")
        p.n_batch = _i32(n_batch, "n_batch")
        p.n_threads = _i32(n_threads, "n_threads")
        out = c_void_p()
        with model._use() as mh:
            check(lib().ember_session_create(mh, byref(p), byref(out)))
        self._h = out.value
        self.model = model

    def _closing_while_busy(self, h: int) -> None:
        lib().ember_session_cancel(h)  # the running call ends (CANCELLED); the free follows it

    def prefill(self, ids: Iterable[int], all_logits: bool = False) -> None:
        """Evaluates tokens at the current position (all_logits keeps every token's logits for logits_at)."""
        arr = _ids(ids)
        with self._use() as h:
            check(lib().ember_session_prefill_ex(h, _ptr_i32(arr), len(arr), N.PREFILL_ALL_LOGITS if all_logits else 0))

    def decode(self, token: int) -> None:
        """Evaluates one token."""
        with self._use() as h:
            check(lib().ember_session_decode(h, _i32(token, "token")))

    @staticmethod
    def _copy(ptr: Any, n: c_int32) -> "array.array[float]":
        out = array.array("f")
        out.frombytes(ctypes.string_at(ptr, n.value * ctypes.sizeof(c_float)))
        return out

    def logits(self) -> "array.array[float]":
        """The last evaluated position's logits, copied (an array('f') of n_vocab floats)."""
        ptr, n = POINTER(c_float)(), c_int32(0)
        with self._use() as h:
            check(lib().ember_session_logits(h, byref(ptr), byref(n)))
            return self._copy(ptr, n)

    def logits_at(self, i: int) -> "array.array[float]":
        """The i-th token's logits of the last prefill(..., all_logits=True), copied."""
        ptr, n = POINTER(c_float)(), c_int32(0)
        with self._use() as h:
            check(lib().ember_session_logits_at(h, _i32(i, "index"), byref(ptr), byref(n)))
            return self._copy(ptr, n)

    @property
    def position(self) -> int:
        """Tokens in the cache."""
        with self._use() as h:
            return int(lib().ember_session_position(h))

    @property
    def n_ctx(self) -> int:
        with self._use() as h:
            return int(lib().ember_session_n_ctx(h))

    def rewind(self, position: int) -> None:
        """Forgets the tokens from position on (evaluate a token before sampling again)."""
        with self._use() as h:
            check(lib().ember_session_rewind(h, _i32(position, "position")))

    def reset(self) -> None:
        with self._use() as h:
            check(lib().ember_session_reset(h))

    def save(self, path: PathLike) -> None:
        """Saves the state (tokens, KV cache, logits) atomically."""
        with self._use() as h:
            check(lib().ember_session_save(h, N.c_path(path)))

    def load(self, path: PathLike) -> None:
        """Restores a state saved by save() (on failure the session is unchanged)."""
        with self._use() as h:
            check(lib().ember_session_load(h, N.c_path(path)))

    def set_adapters(self, adapters: Iterable[Tuple[Adapter, float]]) -> None:
        """Applies LoRA adapters, each with its scale, to every token evaluated from now on; an empty list
        removes them. A scale of 0 gives the base model's output exactly. Tokens already cached keep what
        they were computed with: reset() or rewind() to recompute them. Each adapter must be loaded for this
        session's model and appear once, scales finite in [-1000, 1000]: else ember.InvalidArgument, and the
        session keeps its adapters. The session keeps the adapters alive (closing them meanwhile is safe)."""
        fn = N.required("ember_session_set_adapters")
        pairs = list(adapters)
        n = len(pairs)
        handles = (c_void_p * n)()
        scales = (c_float * n)()
        with contextlib.ExitStack() as uses:  # every adapter stays open until the call returns
            for i, pair in enumerate(pairs):
                adapter, scale = pair
                if not isinstance(adapter, Adapter):
                    raise TypeError(f"set_adapters: expected (Adapter, scale) pairs, got {type(adapter).__name__}")
                handles[i] = uses.enter_context(adapter._use())
                scales[i] = float(scale)  # NaN and out-of-range scales are the library's to refuse
            h = uses.enter_context(self._use())
            check(fn(h, handles if n else None, scales if n else None, n))

    def cancel(self) -> None:
        """From any thread: the running call (and every later one until clear_cancel) ends with
        ember.Cancelled. Does nothing on a closed session."""
        with self._hlock:
            h = self._h
            if h is not None:
                check(lib().ember_session_cancel(h))

    def clear_cancel(self) -> None:
        """Lets the session run again after cancel()."""
        with self._use() as h:
            check(lib().ember_session_clear_cancel(h))

    def _run(
        self,
        sampler: Sampler,
        max_tokens: int,
        stop: Any,
        logit_bias: Optional[Mapping[int, float]],
        stop_at_eog: bool,
        on_piece: Optional[Callable[[str, int], bool]],
    ) -> GenerateResult:
        with self._use() as h, sampler._use() as sh:
            return _generate(
                lambda p, r: lib().ember_session_generate_ex(h, sh, p, r),
                max_tokens,
                stop,
                logit_bias,
                stop_at_eog,
                on_piece,
            )

    def generate(
        self,
        sampler: Sampler,
        max_tokens: int = 256,
        stop: Union[None, str, Sequence[str]] = None,
        on_text: Optional[Callable[[str], Any]] = None,
        stop_at_eog: bool = True,
        logit_bias: Optional[Mapping[int, float]] = None,
    ) -> GenerateResult:
        """Samples, evaluates and streams up to max_tokens tokens (< 0: until the context is full) from the
        current logits (prefill first). on_text(piece) receives the text as it completes; returning False
        stops generation (StopReason.CALLBACK); an exception raised in it stops generation and is re-raised
        here. Failures raise ember.Error with ``.result`` holding what was generated before."""
        return self._run(sampler, max_tokens, stop, logit_bias, stop_at_eog, _on_text(on_text))

    def stream(
        self,
        sampler: Sampler,
        max_tokens: int = 256,
        stop: Union[None, str, Sequence[str]] = None,
        stop_at_eog: bool = True,
        logit_bias: Optional[Mapping[int, float]] = None,
    ) -> TextStream:
        """generate() as an iterator of text pieces (see TextStream), generated on the consumer's thread one
        at a time: breaking out after a piece stops generation there, as on_text returning False would. Use
        the session for nothing else until the stream has ended or is closed."""
        if N.optional("ember_generation_start") is None:  # an older library: its callback on a worker thread
            return TextStream(lambda out: _handed_over_pieces(
                lambda on_piece: self._run(sampler, max_tokens, stop, logit_bias, stop_at_eog, on_piece), out))
        return TextStream(lambda out: _generation_pieces(self, sampler, max_tokens, stop, logit_bias, stop_at_eog, out))


# ---------------------------------------------------------------------------------------------------------
# Chats
# ---------------------------------------------------------------------------------------------------------

_STRATEGIES = {"window": 0, "budget": 1, "summary": 2}


class Chat(_Handle):
    """A conversation with the model's own chat template over a session of its own; the KV cache is reused
    across turns and the context strategy ("window", "budget", "summary") keeps any length going."""

    _kind = "chat"
    _free_name = "ember_chat_free"

    def __init__(
        self,
        model: Model,
        system: Optional[str] = None,
        n_ctx: int = 0,
        n_batch: int = 512,
        n_threads: int = 0,
        history: bool = True,
        reserve: int = 256,
        strategy: Union[str, int] = "window",
    ) -> None:
        super().__init__()
        sp = N.init_params(N.SessionParams, "session")
        sp.n_ctx = _i32(n_ctx, "n_ctx")
        sp.n_batch = _i32(n_batch, "n_batch")
        sp.n_threads = _i32(n_threads, "n_threads")
        cp = N.init_params(N.ChatParams, "chat")
        system_b = None if system is None else N.c_string(system, "the system message")
        cp.system = system_b
        cp.history = bool(history)
        cp.reserve = _i32(reserve, "reserve")
        if isinstance(strategy, str):
            if strategy not in _STRATEGIES:
                raise InvalidArgument(Status.INVALID_ARGUMENT, f"unknown chat strategy {strategy!r}")
            strategy = _STRATEGIES[strategy]
        cp.strategy = _i32(strategy, "strategy")
        out = c_void_p()
        with model._use() as mh:
            check(lib().ember_chat_create(mh, byref(sp), byref(cp), byref(out)))
        self._h = out.value
        self.model = model
        self._default_sampler: Optional[Sampler] = None

    def _sampler(self, sampler: Optional[Sampler]) -> Sampler:
        if sampler is not None:
            return sampler
        if self._default_sampler is None:
            self._default_sampler = Sampler()
        return self._default_sampler

    def _run(self, user: str, sampler: Optional[Sampler], max_tokens: int, stop: Any,
             logit_bias: Optional[Mapping[int, float]], stop_at_eog: bool,
             on_piece: Optional[Callable[[str, int], bool]]) -> GenerateResult:
        smp = self._sampler(sampler)
        text = N.c_string(user, "the message")
        with self._use() as h, smp._use() as sh:
            return _generate(
                lambda p, r: lib().ember_chat_say_ex(h, sh, text, p, r), max_tokens, stop, logit_bias, stop_at_eog,
                on_piece,
            )

    def say(
        self,
        text: str,
        sampler: Optional[Sampler] = None,
        max_tokens: int = 256,
        stop: Union[None, str, Sequence[str]] = None,
        on_text: Optional[Callable[[str], Any]] = None,
        stop_at_eog: bool = True,
        logit_bias: Optional[Mapping[int, float]] = None,
    ) -> GenerateResult:
        """One turn: adds the user's text, streams the reply through on_text and returns it (``str(result)``
        is the reply's text). On failure the conversation is as it was."""
        return self._run(text, sampler, max_tokens, stop, logit_bias, stop_at_eog, _on_text(on_text))

    def stream(
        self,
        text: str,
        sampler: Optional[Sampler] = None,
        max_tokens: int = 256,
        stop: Union[None, str, Sequence[str]] = None,
        stop_at_eog: bool = True,
        logit_bias: Optional[Mapping[int, float]] = None,
    ) -> TextStream:
        """say() as an iterator of reply pieces (the turn runs on a worker thread that waits for the consumer)."""
        return TextStream(lambda out: _handed_over_pieces(
            lambda on_piece: self._run(text, sampler, max_tokens, stop, logit_bias, stop_at_eog, on_piece), out))

    def _closing_while_busy(self, h: int) -> None:
        fn = N.optional("ember_chat_cancel")
        if fn is not None:
            fn(h)

    def cancel(self) -> None:
        """From any thread: the running say() ends with ember.Cancelled, as Session.cancel() (sticky until
        clear_cancel()). Needs a library with ember_chat_cancel (ember.Unsupported otherwise)."""
        fn = N.optional("ember_chat_cancel")
        if fn is None:
            raise N.Unsupported(Status.UNSUPPORTED, "this libember has no ember_chat_cancel")
        with self._hlock:
            if self._h is not None:
                check(fn(self._h))

    def clear_cancel(self) -> None:
        fn = N.optional("ember_chat_clear_cancel")
        if fn is None:
            raise N.Unsupported(Status.UNSUPPORTED, "this libember has no ember_chat_clear_cancel")
        with self._use() as h:
            check(fn(h))

    @property
    def n_messages(self) -> int:
        """User and assistant messages in the conversation."""
        with self._use() as h:
            return int(lib().ember_chat_n_messages(h))

    def __len__(self) -> int:
        return self.n_messages

    def reset(self) -> None:
        with self._use() as h:
            check(lib().ember_chat_reset(h))

    def save(self, path: PathLike) -> None:
        with self._use() as h:
            check(lib().ember_chat_save(h, N.c_path(path)))

    def load(self, path: PathLike) -> None:
        with self._use() as h:
            check(lib().ember_chat_load(h, N.c_path(path)))

    def close(self) -> None:
        super().close()
        smp = getattr(self, "_default_sampler", None)
        if smp is not None:
            smp.close()

