"""tracelens: find race conditions in Python programs from structured logs.

This package's top level is the recorder, which runs inside users' programs: it
imports the standard library, structlog and orjson only, never polars, typer or
textual. The analyzer lives in ``tracelens.analyze``.
"""

from __future__ import annotations

from tracelens.record import processors
from tracelens.record._config import configure, flush, is_configured, shutdown
from tracelens.record.attrs import watch_attrs
from tracelens.record.manual import atomic, read, write
from tracelens.record.watch import watch
from tracelens.schema import FORMAT_VERSION

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
