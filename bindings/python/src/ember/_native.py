"""ctypes declarations of capi/ember.h, the library loader and the error mapping.

Everything here is private; the public API is in ``ember/__init__.py``. ctypes releases the GIL for the
duration of every foreign call (CDLL), and re-acquires it around Python callbacks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import os
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    byref,
    c_bool,
    c_char_p,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any, Dict, List, Optional, Sequence, Type

#: The ABI this binding was written for (EMBER_ABI_VERSION in capi/ember.h).
ABI_VERSION = 1

# ---------------------------------------------------------------------------------------------------------
# Statuses and errors
# ---------------------------------------------------------------------------------------------------------


class Status(enum.IntEnum):
    """ember_status: the numbers are part of the ABI."""

    OK = 0
    INVALID_ARGUMENT = 1
    BAD_FILE = 2
    UNSUPPORTED = 3
    OUT_OF_MEMORY = 4
    CONTEXT_FULL = 5
    CANCELLED = 6
    BACKEND = 7
    INTERNAL = 8
    IO = 9
    BUFFER_TOO_SMALL = 10
    NOT_FOUND = 11
    CALLBACK = 12


class Error(Exception):
    """An error reported by ember: ``status`` (a :class:`Status`) and ``message``.

    Each status has a subclass (``ember.NotFound``, ``ember.Cancelled``...); catch ``ember.Error`` for all.
    Errors from a generation carry ``result`` (a ``GenerateResult`` of what was generated before the
    failure) where there is one, else ``None``.
    """

    status: "Status | int"
    message: str
    result: Any

    def __init__(self, status: int, message: str) -> None:
        try:
            self.status = Status(status)
        except ValueError:
            self.status = int(status)
        self.message = message
        self.result = None
        super().__init__(status, message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status!r}, {self.message!r})"

    def __reduce__(self) -> Any:
        return (type(self), (int(self.status), self.message))


class InvalidArgument(Error, ValueError):
    """EMBER_ERR_INVALID_ARGUMENT (also a ValueError)."""


class BadFile(Error):
    """EMBER_ERR_BAD_FILE: a malformed file."""


class Unsupported(Error):
    """EMBER_ERR_UNSUPPORTED: an architecture, tensor type, backend or ABI not supported."""


class OutOfMemory(Error):
    """EMBER_ERR_OUT_OF_MEMORY."""


class ContextFull(Error):
    """EMBER_ERR_CONTEXT_FULL: the tokens do not fit in the session's context."""


class Cancelled(Error):
    """EMBER_ERR_CANCELLED: ``Session.cancel()`` or a progress callback stopped the call."""


class BackendError(Error):
    """EMBER_ERR_BACKEND: the device failed."""


class InternalError(Error):
    """EMBER_ERR_INTERNAL: a bug in ember."""


class EmberIOError(Error):
    """EMBER_ERR_IO: a file could not be opened or read (named so as not to shadow the builtin IOError)."""


class BufferTooSmall(Error):
    """EMBER_ERR_BUFFER_TOO_SMALL (the binding sizes its buffers itself; you should never see it)."""


class NotFound(Error, KeyError):
    """EMBER_ERR_NOT_FOUND: e.g. an absent metadata key (also a KeyError)."""


class CallbackError(Error):
    """EMBER_ERR_CALLBACK: a stream callback reported an error. When a Python callback raised, the binding
    re-raises that original exception instead of this one."""


_ERROR_CLASSES: Dict[int, Type[Error]] = {
    Status.INVALID_ARGUMENT: InvalidArgument,
    Status.BAD_FILE: BadFile,
    Status.UNSUPPORTED: Unsupported,
    Status.OUT_OF_MEMORY: OutOfMemory,
    Status.CONTEXT_FULL: ContextFull,
    Status.CANCELLED: Cancelled,
    Status.BACKEND: BackendError,
    Status.INTERNAL: InternalError,
    Status.IO: EmberIOError,
    Status.BUFFER_TOO_SMALL: BufferTooSmall,
    Status.NOT_FOUND: NotFound,
    Status.CALLBACK: CallbackError,
}


def make_error(status: int, message: str) -> Error:
    return _ERROR_CLASSES.get(status, Error)(status, message)


# ---------------------------------------------------------------------------------------------------------
# Structs and callback types (layouts of capi/ember.h)
# ---------------------------------------------------------------------------------------------------------

PROGRESS_FN = CFUNCTYPE(c_bool, c_float, c_void_p)
ABORT_FN = CFUNCTYPE(c_bool, c_void_p)
STREAM_FN = CFUNCTYPE(c_int32, c_void_p, c_size_t, c_int32, c_void_p)  # text as void*: it may hold NULs
LOG_FN = CFUNCTYPE(None, c_int32, c_char_p, c_void_p)

STREAM_CONTINUE = 0
STREAM_STOP = 1
STREAM_ERROR = 2

SEED_RANDOM = 0xFFFFFFFFFFFFFFFF
TOKENIZE_ADD_SPECIAL = 1
TOKENIZE_PARSE_SPECIAL = 2
DETOKENIZE_RENDER_SPECIAL = 1
PREFILL_ALL_LOGITS = 1


class ModelParams(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("n_threads", c_int32),
        ("backend", c_char_p),
        ("progress", PROGRESS_FN),
        ("progress_user_data", c_void_p),
        ("use_mmap", c_bool),
        ("quantize", c_char_p),
    ]


class SessionParams(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("n_ctx", c_int32),
        ("n_batch", c_int32),
        ("n_threads", c_int32),
        ("abort", ABORT_FN),
        ("abort_user_data", c_void_p),
    ]


class GenerateParams(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("max_tokens", c_int32),
        ("stop_at_eog", c_int32),
        ("stream", STREAM_FN),
        ("stream_user_data", c_void_p),
        ("stop", POINTER(c_char_p)),
        ("n_stop", c_int32),
        ("bias_tokens", POINTER(c_int32)),
        ("bias_values", POINTER(c_float)),
        ("n_bias", c_int32),
    ]


class GenerateResultC(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("n_generated", c_int32),
        ("stop_reason", c_int32),
        ("stop_index", c_int32),
    ]


class ChatParams(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("system", c_char_p),
        ("history", c_bool),
        ("reserve", c_int32),
        ("strategy", c_int32),
    ]


class SamplerParams(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("temperature", c_float),
        ("top_k", c_int32),
        ("top_p", c_float),
        ("min_p", c_float),
        ("repeat_penalty", c_float),
        ("penalty_last_n", c_int32),
        ("frequency_penalty", c_float),
        ("presence_penalty", c_float),
        ("seed", c_uint64),
    ]


class MemoryEstimate(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("weights", c_uint64),
        ("kv_cache", c_uint64),
        ("scratch", c_uint64),
        ("total", c_uint64),
    ]


_P = c_void_p  # every opaque handle
_S = c_int32  # ember_status
_SZ = POINTER(c_size_t)
_I32P = POINTER(c_int32)
_FP = POINTER(POINTER(c_float))

# name: (restype, argtypes)
_PROTOTYPES: Dict[str, Any] = {
    "ember_status_string": (c_char_p, [c_int32]),
    "ember_last_error": (c_char_p, []),
    "ember_version": (c_char_p, []),
    "ember_abi_version": (c_uint32, []),
    "ember_version_number": (c_uint32, []),
    "ember_set_log_callback": (None, [LOG_FN, c_void_p]),
    "ember_backend_count": (c_int32, []),
    "ember_backend_name": (c_char_p, [c_int32]),
    # models
    "ember_model_params_init": (_S, [c_void_p]),
    "ember_model_load": (_S, [c_char_p, POINTER(ModelParams), POINTER(_P)]),
    "ember_model_load_from_memory": (_S, [c_void_p, c_size_t, POINTER(ModelParams), POINTER(_P)]),
    "ember_model_free": (None, [_P]),
    "ember_model_tokenizer": (_P, [_P]),
    "ember_model_n_vocab": (c_int32, [_P]),
    "ember_model_n_ctx_train": (c_int32, [_P]),
    "ember_model_n_embd": (c_int32, [_P]),
    "ember_model_n_layers": (c_int32, [_P]),
    "ember_model_n_params": (c_int64, [_P]),
    "ember_model_size": (c_int64, [_P]),
    "ember_model_architecture": (_S, [_P, c_void_p, c_size_t, _SZ]),
    "ember_model_name": (_S, [_P, c_void_p, c_size_t, _SZ]),
    "ember_model_backend": (_S, [_P, c_void_p, c_size_t, _SZ]),
    "ember_model_meta": (_S, [_P, c_char_p, c_void_p, c_size_t, _SZ]),
    "ember_model_meta_count": (c_int32, [_P]),
    "ember_model_meta_key": (_S, [_P, c_int32, c_void_p, c_size_t, _SZ]),
    "ember_model_meta_type": (_S, [_P, c_char_p, _I32P]),
    "ember_model_meta_json": (_S, [_P, c_char_p, c_void_p, c_size_t, _SZ]),
    "ember_model_chat_template": (_S, [_P, c_void_p, c_size_t, _SZ]),
    "ember_estimate_memory": (_S, [c_char_p, c_int32, c_int32, POINTER(MemoryEstimate)]),
    "ember_chat_render": (_S, [_P, c_char_p, c_char_p, c_void_p, c_size_t, _SZ]),
    # tokenizers
    "ember_tokenizer_load": (_S, [c_char_p, POINTER(_P)]),
    "ember_tokenizer_free": (None, [_P]),
    "ember_tokenizer_n_vocab": (c_int32, [_P]),
    "ember_tokenize": (_S, [_P, c_char_p, c_size_t, _I32P, c_int32, c_uint32, _I32P]),
    "ember_detokenize": (_S, [_P, _I32P, c_int32, c_uint32, c_void_p, c_size_t, _SZ]),
    "ember_token_piece": (_S, [_P, c_int32, c_uint32, c_void_p, c_size_t, _SZ]),
    "ember_token_bos": (c_int32, [_P]),
    "ember_token_eos": (c_int32, [_P]),
    "ember_token_eot": (c_int32, [_P]),
    "ember_token_is_eog": (c_bool, [_P, c_int32]),
    "ember_token_attr": (c_uint32, [_P, c_int32]),
    "ember_token_special": (c_int32, [_P, c_int32]),
    "ember_tokenizer_add_bos": (c_int32, [_P]),
    "ember_tokenizer_add_eos": (c_int32, [_P]),
    # sessions
    "ember_session_params_init": (_S, [c_void_p]),
    "ember_session_create": (_S, [_P, POINTER(SessionParams), POINTER(_P)]),
    "ember_session_free": (None, [_P]),
    "ember_session_prefill": (_S, [_P, _I32P, c_int32]),
    "ember_session_prefill_ex": (_S, [_P, _I32P, c_int32, c_uint32]),
    "ember_session_decode": (_S, [_P, c_int32]),
    "ember_session_logits": (_S, [_P, _FP, _I32P]),
    "ember_session_logits_at": (_S, [_P, c_int32, _FP, _I32P]),
    "ember_session_position": (c_int32, [_P]),
    "ember_session_n_ctx": (c_int32, [_P]),
    "ember_session_rewind": (_S, [_P, c_int32]),
    "ember_session_reset": (_S, [_P]),
    "ember_session_cancel": (_S, [_P]),
    "ember_session_clear_cancel": (_S, [_P]),
    "ember_generate_params_init": (_S, [c_void_p]),
    "ember_session_generate_ex": (_S, [_P, _P, POINTER(GenerateParams), POINTER(GenerateResultC)]),
    "ember_session_save": (_S, [_P, c_char_p]),
    "ember_session_load": (_S, [_P, c_char_p]),
    # chats
    "ember_chat_params_init": (_S, [c_void_p]),
    "ember_chat_create": (_S, [_P, POINTER(SessionParams), POINTER(ChatParams), POINTER(_P)]),
    "ember_chat_free": (None, [_P]),
    "ember_chat_say_ex": (_S, [_P, _P, c_char_p, POINTER(GenerateParams), POINTER(GenerateResultC)]),
    "ember_chat_reset": (_S, [_P]),
    "ember_chat_n_messages": (c_int32, [_P]),
    "ember_chat_save": (_S, [_P, c_char_p]),
    "ember_chat_load": (_S, [_P, c_char_p]),
    # samplers
    "ember_sampler_params_init": (_S, [c_void_p]),
    "ember_sampler_create": (_S, [POINTER(SamplerParams), POINTER(_P)]),
    "ember_sampler_create_greedy": (_S, [POINTER(_P)]),
    "ember_sampler_free": (None, [_P]),
    "ember_sampler_sample": (_S, [_P, POINTER(c_float), c_int32, _I32P]),
    "ember_sampler_accept": (_S, [_P, c_int32]),
    "ember_sampler_reset": (_S, [_P]),
    "ember_sampler_seed": (_S, [_P, POINTER(c_uint64)]),
}

# Present in newer libraries only: *_params_init_sized(params, size) writes exactly `size` bytes;
# ember_chat_cancel / ember_chat_clear_cancel; ember_generation_* (a generation one piece at a time);
# ember_adapter_* and ember_session_set_adapters (LoRA adapters); grammars and JSON schemas for samplers;
# ember_estimate_memory_quantized.
_OPTIONAL: Dict[str, Any] = {
    f"ember_{kind}_params_init_sized": (_S, [c_void_p, c_size_t])
    for kind in ("model", "session", "generate", "chat", "sampler")
}
_OPTIONAL["ember_chat_cancel"] = (_S, [_P])
_OPTIONAL["ember_chat_clear_cancel"] = (_S, [_P])
_OPTIONAL["ember_generation_start"] = (_S, [_P, _P, POINTER(GenerateParams), POINTER(_P)])
_OPTIONAL["ember_generation_next"] = (_S, [_P, POINTER(c_void_p), _SZ, _I32P])  # text as void*: it may hold NULs
_OPTIONAL["ember_generation_result"] = (_S, [_P, POINTER(GenerateResultC)])
_OPTIONAL["ember_generation_free"] = (None, [_P])
# LoRA adapters
_OPTIONAL["ember_adapter_load"] = (_S, [_P, c_char_p, POINTER(_P)])
_OPTIONAL["ember_adapter_free"] = (None, [_P])
_OPTIONAL["ember_adapter_rank"] = (c_int32, [_P])
_OPTIONAL["ember_adapter_n_targets"] = (c_int32, [_P])
_OPTIONAL["ember_session_set_adapters"] = (_S, [_P, POINTER(c_void_p), POINTER(c_float), c_int32])
# Constrained sampling
_OPTIONAL["ember_sampler_set_grammar"] = (_S, [_P, _P, c_char_p])
_OPTIONAL["ember_sampler_set_json_schema"] = (_S, [_P, _P, c_char_p])
_OPTIONAL["ember_json_schema_to_grammar"] = (_S, [c_char_p, c_void_p, c_size_t, _SZ])
# Memory estimates for a quantize-at-load type
_OPTIONAL["ember_estimate_memory_quantized"] = (_S, [c_char_p, c_int32, c_int32, c_char_p, POINTER(MemoryEstimate)])


def optional(name: str) -> Any:
    """A function only newer libraries have, or None."""
    lib()
    return _optional.get(name)


def required(name: str) -> Any:
    """A function only newer libraries have; ember.Unsupported when the loaded one lacks it."""
    fn = optional(name)
    if fn is None:
        raise Unsupported(Status.UNSUPPORTED, f"this libember has no {name} (a newer library has)")
    return fn

# ---------------------------------------------------------------------------------------------------------
# Loading the library
# ---------------------------------------------------------------------------------------------------------

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None


def _library_names() -> List[str]:
    if sys.platform == "darwin":
        return ["libember.1.dylib", "libember.dylib"]
    if sys.platform == "win32":
        return ["ember.dll", "libember.dll"]
    return ["libember.so.1"]


def _candidates() -> List[str]:
    """Where the library is looked for, in order: $EMBER_LIBRARY, the copy inside this package (a wheel
    built by scikit-build-core installs it there), then the platform's search path."""
    env = os.environ.get("EMBER_LIBRARY")
    if env:
        return [env]  # an explicit choice is never silently replaced by another library
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for sub in ("", "lib", "lib64", "bin"):
        for name in _library_names():
            p = os.path.join(here, sub, name)
            if os.path.exists(p):
                out.append(p)
    found = ctypes.util.find_library("ember")
    if found:
        out.append(found)
    return out


def check_abi(found: int, path: str = "libember", expected: int = ABI_VERSION) -> None:
    """Raises ember.Unsupported when the loaded library's ABI differs from the one this binding knows."""
    if found != expected:
        raise Unsupported(
            Status.UNSUPPORTED,
            f"{path} has C ABI version {found}, but this ember Python binding was written for ABI version "
            f"{expected}: install the binding that matches the library (or point EMBER_LIBRARY at a "
            f"libember.so.{expected})",
        )


_optional: Dict[str, Any] = {}


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    for name, (restype, argtypes) in _OPTIONAL.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            fn.argtypes = argtypes
            _optional[name] = fn


def lib() -> ctypes.CDLL:
    """The loaded libember (loaded, ABI-checked and declared on first use)."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        errors = []
        loaded = None
        for path in _candidates():
            tried.append(path)
            try:
                loaded = ctypes.CDLL(path)
                break
            except OSError as e:
                errors.append(f"{path}: {e}")
        if loaded is None:
            detail = "; ".join(errors) if errors else "nothing found"
            raise EmberIOError(
                Status.IO,
                "cannot load libember (set EMBER_LIBRARY to the path of libember.so.1, or install the package "
                f"with its library): {detail}",
            )
        try:
            abi = loaded.ember_abi_version
        except AttributeError:
            raise Unsupported(Status.UNSUPPORTED, f"{tried[-1]} is not libember (no ember_abi_version)") from None
        abi.restype = c_uint32
        abi.argtypes = []
        check_abi(int(abi()), tried[-1])
        try:
            _declare(loaded)
        except AttributeError as e:
            raise Unsupported(Status.UNSUPPORTED, f"{tried[-1]} lacks a function of ABI {ABI_VERSION}: {e}") from None
        _lib_path = tried[-1]
        _lib = loaded
        return loaded


def library_path() -> Optional[str]:
    """The path the library was loaded from (None before the first load)."""
    return _lib_path


# ---------------------------------------------------------------------------------------------------------
# Call helpers
# ---------------------------------------------------------------------------------------------------------


def last_error() -> str:
    msg = lib().ember_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def check(status: int) -> None:
    """Raises the ember.Error for a failed status (reads this thread's last error right away)."""
    if status != 0:
        raise make_error(status, last_error() or _status_string(status))


def _status_string(status: int) -> str:
    s = lib().ember_status_string(status)
    return s.decode() if s else "unknown status"


def call(name: str, *args: Any) -> None:
    check(getattr(lib(), name)(*args))


def text_call(name: str, *args: Any) -> bytes:
    """The two-call pattern for text: returns the bytes (without the terminating NUL)."""
    fn = getattr(lib(), name)
    needed = c_size_t(0)
    check(fn(*args, None, 0, byref(needed)))
    while True:
        cap = max(int(needed.value), 1)
        buf = ctypes.create_string_buffer(cap)
        st = fn(*args, buf, cap, byref(needed))
        if st == Status.BUFFER_TOO_SMALL:
            continue
        check(st)
        return buf.raw[: max(int(needed.value) - 1, 0)]


def text(name: str, *args: Any) -> str:
    return text_call(name, *args).decode("utf-8", "replace")


_INIT_SCRATCH = 65536  # the largest struct_size the library accepts


def init_params(cls: Any, kind: str) -> Any:
    """A params struct of this binding's layout (ABI 1) filled with the library's defaults.

    The plain ember_X_params_init writes the *library's* sizeof, which outgrows this binding's struct once a
    newer library appends fields; so it writes into a scratch buffer of the largest size the ABI allows, and
    the prefix this binding knows is kept, with struct_size set to its size (the library defaults the rest).
    A library with ember_X_params_init_sized is asked for exactly this binding's size."""
    p = cls()
    size = ctypes.sizeof(p)
    L = lib()
    sized = _optional.get(f"ember_{kind}_params_init_sized")
    if sized is not None:
        check(sized(byref(p), size))
        return p
    scratch = ctypes.create_string_buffer(_INIT_SCRATCH)
    check(getattr(L, f"ember_{kind}_params_init")(scratch))
    ctypes.memmove(byref(p), scratch, size)
    p.struct_size = size
    return p


def encode(s: "str | bytes") -> bytes:
    """Text as UTF-8 bytes, NUL bytes and all: only for C parameters that take a pointer and a length (the
    text to tokenize). A NUL-terminated C string goes through c_string or c_path."""
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8")


def c_string(s: "str | bytes", what: str) -> bytes:
    """s as a NUL-terminated C string (UTF-8). A NUL byte in it is InvalidArgument: C would read only up to
    it, silently taking another value than the caller gave. Every string passed to C as a `const char*`
    without a length goes through here (paths through c_path)."""
    return _no_nul(encode(s), what)


def c_path(p: "str | bytes | os.PathLike[str]", what: str = "the path") -> bytes:
    """A path as a C string (os.fsencode), refusing a NUL byte as c_string does."""
    return _no_nul(os.fsencode(p), what)


def _no_nul(b: bytes, what: str) -> bytes:
    if b"\0" in b:
        raise InvalidArgument(Status.INVALID_ARGUMENT, f"{what} contains a NUL byte (C would cut it there)")
    return b


def int_array(ids: Sequence[int]) -> "ctypes.Array[c_int32]":
    return (c_int32 * len(ids))(*ids)

