"""Public home of tracelens's structlog processors (``tracelens.processors``)."""

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
