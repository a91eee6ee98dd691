"""Public home of tracelens's structlog processors (``tracelens.processors``).

The implementation is ``tracelens.record.processors``; this module only re-exports it,
and it is the one module the name ``tracelens.processors`` means: the attribute of the
``tracelens`` package loads this module too.
"""

from tracelens.record.processors import (
    TraceLogger,
    TraceLoggerFactory,
    add_trace_context,
    drop_trace_events,
    keep_only_trace_events,
)

__all__ = [
    "TraceLogger",
    "TraceLoggerFactory",
    "add_trace_context",
    "drop_trace_events",
    "keep_only_trace_events",
]
