"""ember: run GGUF language models from Python (ctypes over ember's stable C ABI, capi/ember.h).

    import ember
    with ember.Model("model.gguf") as m:
        for piece in m.generate("Once upon a time", max_tokens=32):
            print(piece, end="", flush=True)

The library is found through $EMBER_LIBRARY (a path to libember.so.1), then the copy installed inside this
package, then the platform's search path; it is loaded, and its ABI version checked, on first use.
"""

from ._api import (
    Adapter,
    Chat,
    GenerateResult,
    LogLevel,
    MemoryEstimate,
    MetaType,
    Model,
    Sampler,
    Session,
    StopReason,
    TextStream,
    Tokenizer,
    abi_version,
    backends,
    estimate_memory,
    json_schema_to_grammar,
    render_chat,
    set_log_callback,
    version,
    version_number,
)
from ._native import (
    ABI_VERSION,
    BackendError,
    BadFile,
    BufferTooSmall,
    CallbackError,
    Cancelled,
    ContextFull,
    EmberIOError,
    Error,
    InternalError,
    InvalidArgument,
    NotFound,
    OutOfMemory,
    Status,
    Unsupported,
    library_path,
)

__version__ = "0.1.0"

__all__ = [
    "ABI_VERSION",
    "Adapter",
    "BackendError",
    "BadFile",
    "BufferTooSmall",
    "CallbackError",
    "Cancelled",
    "Chat",
    "ContextFull",
    "EmberIOError",
    "Error",
    "GenerateResult",
    "InternalError",
    "InvalidArgument",
    "LogLevel",
    "MemoryEstimate",
    "MetaType",
    "Model",
    "NotFound",
    "OutOfMemory",
    "Sampler",
    "Session",
    "Status",
    "StopReason",
    "TextStream",
    "Tokenizer",
    "Unsupported",
    "abi_version",
    "backends",
    "estimate_memory",
    "json_schema_to_grammar",
    "library_path",
    "render_chat",
    "set_log_callback",
    "version",
    "version_number",
]
