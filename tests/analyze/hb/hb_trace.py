"""Build event frames with the loader's contract columns from compact step lists.

A step is ``(unit, op, target)`` or ``(unit, op, target, extra)`` where ``target`` is
the variable (read/write) or object (everything else) and ``extra`` a dict of further
fields (``line``, ``msg``, ``internal``, ``kind``, ``value``, ``file``, ``func``,
``pid``). By default each step gets its own line number (its index + 1), so every
access is its own code site.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from tracelens import schema as s
from tracelens.analyze.load import EVENT_SCHEMA

Step = tuple[Any, ...]

# The loaded trace's columns, as the loader defines them (docs/architecture.md).
CONTRACT: dict[str, Any] = dict(EVENT_SCHEMA)

_KIND = {
    s.Op.ACQUIRE: s.Kind.LOCK,
    s.Op.RELEASE: s.Kind.LOCK,
    s.Op.ACQUIRE_TRY: s.Kind.LOCK,
    s.Op.ACQUIRE_FAIL: s.Kind.LOCK,
    s.Op.FORK: s.Kind.THREAD,
    s.Op.JOIN: s.Kind.THREAD,
    s.Op.BEGIN: s.Kind.THREAD,
    s.Op.END: s.Kind.THREAD,
    s.Op.SEND: s.Kind.QUEUE,
    s.Op.RECV: s.Kind.QUEUE,
    s.Op.WAIT: s.Kind.THREAD,
    s.Op.ATOMIC_BEGIN: s.Kind.ATOMIC,
    s.Op.ATOMIC_END: s.Kind.ATOMIC,
}


def rows(steps: Iterable[Step]) -> list[dict[str, Any]]:
    """The steps as event dicts with the contract's columns (``op`` for the operation)."""
    out = []
    for i, step in enumerate(steps):
        unit, op, target = step[:3]
        extra = dict(step[3]) if len(step) > 3 else {}
        mem = op in s.MEMORY_OPS
        task = unit if unit.startswith("a") else None
        d = {
            s.PID: extra.pop("pid", 1),
            s.SEQ: i,
            s.TS: 1000 + 10 * i,
            "op": op,
            s.UNIT: unit,
            "unit_name": extra.pop("unit_name", unit.upper() if not task else f"task-{unit}"),
            s.TID: 0,
            s.THREAD: "MainThread",
            s.TASK: task,
            s.VAR: target if mem else None,
            s.OBJ: None if mem else target,
            s.KIND: None if mem else extra.pop("kind", _KIND.get(op)),
            s.VALUE: extra.pop("value", None),
            s.FILE: extra.pop("file", "app.py"),
            s.LINE: extra.pop("line", i + 1),
            s.FUNC: extra.pop("func", "f"),
            s.WAIT_NS: 0 if op == s.Op.ACQUIRE else None,
            s.MSG: extra.pop("msg", None),
            s.COUNT: None,
            s.INTERNAL: extra.pop("internal", False),
        }
        assert not extra, f"unknown fields {extra}"
        out.append(d)
    return out


def frame(steps: Sequence[Step]) -> pl.LazyFrame:
    """The steps as a LazyFrame in the loader's contract (sorted by pid, seq)."""
    return pl.LazyFrame(rows(steps), schema=CONTRACT).sort([s.PID, s.SEQ])


def write_jsonl(steps: Sequence[Step], path: Path) -> Path:
    """The steps as a trace file in the recorder's format (for load())."""
    with path.open("wb") as f:
        for d in rows(steps):
            ev = {s.TL: s.FORMAT_VERSION, s.OP: d.pop("op")}
            ev.update({k: v for k, v in d.items() if v is not None and k != "unit_name"})
            f.write(orjson.dumps(ev) + b"\n")
    return path
