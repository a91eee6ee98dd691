"""The loaded trace's columns: their names and types, the global order key, units.

``tracelens.schema`` names the fields of the trace *file*; this module names the
columns of the loaded frame (``Trace.events``), which every analysis, the TUI and the
exports read. The two mostly agree; where they do not, this is the place that says so
(the file's ``event`` key is the column ``op``; ``unit_name`` is computed on load).

The global order ``G`` packs ``(pid, seq)`` into one Int64, ``pid << ORDER_SHIFT | seq``:
monotone in ``(pid, seq)``, so events of one process keep their sequence order and
processes (which share no memory) follow each other. It is cheaper to sort and join
on than two columns.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from tracelens import schema as s

__all__ = [
    "COUNT",
    "EVENT_SCHEMA",
    "FILE",
    "FUNC",
    "INTERNAL",
    "KIND",
    "LINE",
    "MSG",
    "OBJ",
    "OP",
    "ORDER_SHIFT",
    "PID",
    "SEQ",
    "STACK",
    "STACK_ID",
    "STACK_PARENT",
    "STACK_SCHEMA",
    "TASK",
    "THREAD",
    "TID",
    "TS",
    "UNIT",
    "UNIT_NAME",
    "VALUE",
    "VAR",
    "WAIT_NS",
    "G",
    "global_order",
    "is_task_unit",
    "order_key",
    "unit_word",
    "unit_word_expr",
]

PID: Final = "pid"  # Int64: process id
SEQ: Final = "seq"  # Int64: per-process sequence number
TS: Final = "ts"  # Int64: monotonic ns
OP: Final = "op"  # String: the operation (the file's ``event`` key)
UNIT: Final = "unit"  # String: unit id, unique in the trace ("t3", "<pid>/t3")
UNIT_NAME: Final = "unit_name"  # String: task name inside a task, else thread name
TID: Final = "tid"  # Int64
THREAD: Final = "thread"  # String
TASK: Final = "task"  # String
VAR: Final = "var"  # String: the variable of a read or write
OBJ: Final = "obj"  # String: sync object, child unit (fork/join) or atomic region
KIND: Final = "kind"  # String: kind of ``obj``
VALUE: Final = "value"  # String: the value as text
FILE: Final = "file"  # String: call site
LINE: Final = "line"  # Int64
FUNC: Final = "func"  # String
WAIT_NS: Final = "wait_ns"  # Int64
MSG: Final = "msg"  # Int64: identity of a handed-over message
COUNT: Final = "count"  # Int64
INTERNAL: Final = "internal"  # Boolean: obj was made by a primitive for its own use
STACK: Final = "stack"  # Int64: the event's innermost stack frame (``Trace.stacks``), or null
STACK_ID: Final = "id"  # Int64: a frame's id in ``Trace.stacks`` (unique per pid)
STACK_PARENT: Final = "parent"  # Int64: its caller's frame id, null for the outermost

#: Columns of ``Trace.events`` (``docs/architecture.md``, "The loaded trace").
EVENT_SCHEMA: Final = pl.Schema(
    {
        PID: pl.Int64,
        SEQ: pl.Int64,
        TS: pl.Int64,
        OP: pl.String,
        UNIT: pl.String,
        UNIT_NAME: pl.String,
        TID: pl.Int64,
        THREAD: pl.String,
        TASK: pl.String,
        VAR: pl.String,
        OBJ: pl.String,
        KIND: pl.String,
        VALUE: pl.String,
        FILE: pl.String,
        LINE: pl.Int64,
        FUNC: pl.String,
        WAIT_NS: pl.Int64,
        MSG: pl.Int64,
        COUNT: pl.Int64,
        INTERNAL: pl.Boolean,
        STACK: pl.Int64,
    }
)

#: Columns of ``Trace.stacks``: one row per frame of the traces' call stacks (the
#: ``stack`` definition lines), keyed by ``(pid, id)``.
STACK_SCHEMA: Final = pl.Schema(
    {
        PID: pl.Int64,
        STACK_ID: pl.Int64,
        STACK_PARENT: pl.Int64,
        FILE: pl.String,
        LINE: pl.Int64,
        FUNC: pl.String,
    }
)

#: Column holding the global order key (see the module docstring).
G: Final = "_g"
#: Bits of ``seq`` in the global order key.
ORDER_SHIFT: Final = 40


def global_order() -> pl.Expr:
    """The ``G`` column: ``pid << ORDER_SHIFT | seq`` as one Int64."""
    return (pl.col(PID).cast(pl.Int64) * (1 << ORDER_SHIFT) + pl.col(SEQ).cast(pl.Int64)).alias(G)


def order_key(pid: int, seq: int) -> int:
    """The ``G`` value of the event ``(pid, seq)``."""
    return (pid << ORDER_SHIFT) | seq


def is_task_unit(unit: str) -> bool:
    """Whether a unit id names an asyncio task (``a7``, ``<pid>/a7``), not a thread."""
    return unit.rsplit("/", 1)[-1].startswith(s.TASK_UNIT_PREFIX)


def unit_word(unit: str) -> str:
    """``"task"`` for an asyncio task unit, else ``"thread"``."""
    return "task" if is_task_unit(unit) else "thread"


def unit_word_expr(unit: pl.Expr) -> pl.Expr:
    """``unit_word`` as a polars expression over a column of unit ids."""
    bare = unit.str.split("/").list.last()
    return (
        pl.when(bare.str.starts_with(s.TASK_UNIT_PREFIX))
        .then(pl.lit("task"))
        .otherwise(pl.lit("thread"))
    )
