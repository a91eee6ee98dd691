"""tracelens: find race conditions in Python programs from structured logs.

This package's top level is the recorder, which runs inside users' programs: it
imports the standard library, structlog and orjson only, never polars, typer or
textual. The analyzer lives in ``tracelens.analyze``.

The recorder's names are loaded on first use (PEP 562), so that the analyzer and the
command line, which import ``tracelens.schema`` and friends, do not pay for structlog.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tracelens.schema import FORMAT_VERSION

if TYPE_CHECKING:
    from tracelens import processors
    from tracelens.record._config import configure, flush, is_configured, shutdown
    from tracelens.record.attrs import watch_attrs
    from tracelens.record.manual import atomic, read, write
    from tracelens.record.watch import watch

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "__version__",
    "atomic",
    "configure",
    "flush",
    "is_configured",
    "processors",
    "read",
    "shutdown",
    "watch",
    "watch_attrs",
    "write",
]

# public name -> the module that defines it (``processors`` is that module itself:
# ``tracelens.processors``, whether it is reached as this attribute or imported first)
_RECORDER = {
    "processors": "tracelens.processors",
    "configure": "tracelens.record._config",
    "flush": "tracelens.record._config",
    "is_configured": "tracelens.record._config",
    "shutdown": "tracelens.record._config",
    "watch_attrs": "tracelens.record.attrs",
    "atomic": "tracelens.record.manual",
    "read": "tracelens.record.manual",
    "write": "tracelens.record.manual",
    "watch": "tracelens.record.watch",
}


def __getattr__(name: str) -> Any:
    where = _RECORDER.get(name)
    if where is None:
        raise AttributeError(f"module 'tracelens' has no attribute {name!r}")
    module = importlib.import_module(where)
    value = module if name == "processors" else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
