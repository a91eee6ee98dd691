"""structlog processors and the logger that feed tracelens's sink.

``tracelens.configure`` builds a structlog chain from these; they are public so that
an application with its own structlog configuration can add tracelens to it
(``docs/api.md`` has the recipe).
"""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
from structlog.typing import EventDict

from tracelens import schema as s
from tracelens.record._core import current_task_unit, next_seq, record_raw, unit_state


def add_trace_context(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Stamp an application log line with where and when it happened in the trace.

    Adds ``seq``, ``ts``, ``pid``, ``unit``, ``tid``, ``thread`` and, inside an asyncio
    task, ``task`` (keys already present are kept), so that the line sorts into the
    timeline of recorded events. It does not add ``tl``: the line stays an
    application line, which the analyzer shows but does not analyse.
    """
    event_dict.setdefault(s.SEQ, next_seq())
    event_dict.setdefault(s.TS, time.monotonic_ns())
    event_dict.setdefault(s.PID, os.getpid())
    st = unit_state()
    task = current_task_unit()
    event_dict.setdefault(s.UNIT, st.unit if task is None else task[0])
    event_dict.setdefault(s.TID, st.tid)
    event_dict.setdefault(s.THREAD, st.name)
    if task is not None:
        event_dict.setdefault(s.TASK, task[1])
    return event_dict


def drop_trace_events(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Drop tracelens events: put it in a chain (a console handler's) that should not show them."""
    if s.TL in event_dict:
        raise structlog.DropEvent
    return event_dict


def keep_only_trace_events(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Drop everything but tracelens events: for a chain that writes the trace only."""
    if s.TL not in event_dict:
        raise structlog.DropEvent
    return event_dict


class TraceLogger:
    """A structlog logger that appends rendered lines (bytes or str) to the trace.

    Lines go into the calling thread's buffer, like recorded events, so they are
    written in the same batches and never interleave with them.
    """

    def msg(self, message: bytes | str) -> None:
        record_raw(message.encode() if isinstance(message, str) else message)

    log = debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg


class TraceLoggerFactory:
    """``logger_factory`` for structlog: every logger writes to the trace."""

    def __call__(self, *args: Any) -> TraceLogger:
        return TraceLogger()
