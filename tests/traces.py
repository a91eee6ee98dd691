"""Building traces in tests: one event builder, and the ways tests write traces with it.

``event`` makes one tracelens event in the trace-file format (``tracelens.schema``
names); everything else here builds on it:

* ``TraceBuilder``: hand-written traces, one method per operation;
* steps: compact ``(unit, op, target[, extra])`` tuples (``frame``, ``rows``,
  ``write_steps``), which the predictive analyses' tests and their Hypothesis
  programs (``tests/strategies.py``) use;
* ``write_trace``: events as a JSON-lines file (gzip for ``.gz``).

``tests/tracegen.py`` (big synthetic traces for benchmarks) makes its events with
``event`` too.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze.columns import EVENT_SCHEMA

__all__ = ["Step", "TraceBuilder", "event", "frame", "rows", "write_steps", "write_trace"]


def event(op: str, *, seq: int, ts: int, pid: int, unit: str, **fields: Any) -> dict[str, Any]:
    """One tracelens event as the recorder writes it; fields that are ``None`` are left out.

    Args:
        op: The operation (``tracelens.schema.Op``).
        seq, ts, pid, unit: The fields every event has.
        **fields: Further fields by their trace-file names (``var``, ``obj``, ``file``...).
    """
    d: dict[str, Any] = {
        s.TL: s.FORMAT_VERSION,
        s.OP: op,
        s.SEQ: seq,
        s.TS: ts,
        s.PID: pid,
        s.UNIT: unit,
    }
    d.update({k: v for k, v in fields.items() if v is not None})
    return d


def write_trace(path: str | Path, events: Iterable[Mapping[str, Any]]) -> Path:
    """Write events as JSON lines (gzip when ``path`` ends in ``.gz``)."""
    path = Path(path)
    data = b"".join(orjson.dumps(dict(e), option=orjson.OPT_APPEND_NEWLINE) for e in events)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


# --- hand-written traces ---------------------------------------------------------------


@dataclass
class TraceBuilder:
    """Appends events in sequence order; one method per operation.

    Sites default to ``app.py:<line>`` in function ``f``; a unit ``"tN"`` is named
    ``"worker-N"`` unless ``names`` says otherwise.

    Example::

        b = TraceBuilder()
        b.read("t1", "x", line=10)
        b.write("t2", "x", line=20)
        b.write("t1", "x", line=11)
        b.events  # -> list of dicts
    """

    pid: int = 100
    file: str = "app.py"
    names: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0
    ts: int = 1_000

    def _ev(self, unit: str, op: str, line: int, func: str, **kw: Any) -> dict[str, Any]:
        d = event(
            op,
            seq=self.seq,
            ts=self.ts,
            pid=self.pid,
            unit=unit,
            **{
                s.TID: int(unit[1:]) if unit[1:].isdigit() else 0,
                s.THREAD: self.names.get(unit, f"worker-{unit[1:]}"),
            },
            **kw,
            **{s.FILE: self.file, s.LINE: line, s.FUNC: func},
        )
        self.events.append(d)
        self.seq += 1
        self.ts += 100
        return d

    def read(self, unit: str, var: str, value: Any = 0, *, line: int = 1, func: str = "f") -> None:
        self._ev(unit, s.Op.READ, line, func, **{s.VAR: var, s.VALUE: value})

    def write(self, unit: str, var: str, value: Any = 0, *, line: int = 2, func: str = "f") -> None:
        self._ev(unit, s.Op.WRITE, line, func, **{s.VAR: var, s.VALUE: value})

    def acquire(self, unit: str, lock: str, *, line: int = 0, internal: bool = False) -> None:
        extra: dict[str, Any] = {s.OBJ: lock, s.KIND: s.Kind.LOCK, s.WAIT_NS: 0}
        if internal:
            extra[s.INTERNAL] = True
        self._ev(unit, s.Op.ACQUIRE, line, "f", **extra)

    def release(self, unit: str, lock: str, *, line: int = 0, internal: bool = False) -> None:
        extra: dict[str, Any] = {s.OBJ: lock, s.KIND: s.Kind.LOCK}
        if internal:
            extra[s.INTERNAL] = True
        self._ev(unit, s.Op.RELEASE, line, "f", **extra)

    def atomic_begin(self, unit: str, name: str = "region", *, line: int = 0) -> None:
        self._ev(unit, s.Op.ATOMIC_BEGIN, line, "f", **{s.OBJ: name, s.KIND: s.Kind.ATOMIC})

    def atomic_end(self, unit: str, name: str = "region", *, line: int = 0) -> None:
        self._ev(unit, s.Op.ATOMIC_END, line, "f", **{s.OBJ: name, s.KIND: s.Kind.ATOMIC})

    def write_to(self, path: str | Path) -> Path:
        return write_trace(path, self.events)


# --- steps -----------------------------------------------------------------------------

#: ``(unit, op, target)`` or ``(unit, op, target, extra)``: ``target`` is the variable
#: (read/write) or the object (everything else); ``extra`` a dict of further fields
#: (``line``, ``msg``, ``internal``, ``kind``, ``value``, ``file``, ``func``, ``pid``,
#: ``unit_name``). Each step gets its own line number (its index + 1) unless ``extra``
#: says otherwise, so every access is its own code site.
Step = tuple[Any, ...]

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


def _step_events(steps: Iterable[Step]) -> Iterable[tuple[dict[str, Any], str]]:
    """Each step as a trace-file event, with the unit name a loaded frame shows for it."""
    for i, step in enumerate(steps):
        unit, op, target = step[:3]
        extra = dict(step[3]) if len(step) > 3 else {}
        mem = op in s.MEMORY_OPS
        task = unit if unit.startswith(s.TASK_UNIT_PREFIX) else None
        name = extra.pop("unit_name", f"task-{unit}" if task else unit.upper())
        ev = event(
            op,
            seq=i,
            ts=1000 + 10 * i,
            pid=extra.pop("pid", 1),
            unit=unit,
            **{
                s.TID: 0,
                s.THREAD: "MainThread",
                s.TASK: task,
                s.VAR: target if mem else None,
                s.OBJ: None if mem else target,
                s.KIND: extra.pop("kind", None if mem else _KIND.get(op)),
                s.VALUE: extra.pop("value", None),
                s.FILE: extra.pop("file", "app.py"),
                s.LINE: extra.pop("line", i + 1),
                s.FUNC: extra.pop("func", "f"),
                s.WAIT_NS: 0 if op == s.Op.ACQUIRE else None,
                s.MSG: extra.pop("msg", None),
                s.INTERNAL: extra.pop("internal", None) or None,
            },
        )
        assert not extra, f"unknown fields {extra}"
        yield ev, name


def _loaded(ev: Mapping[str, Any], unit_name: str) -> dict[str, Any]:
    """A trace-file event as a row of the loaded frame (``columns.EVENT_SCHEMA``)."""
    renamed = {s.OP: c.OP}
    row = dict.fromkeys(EVENT_SCHEMA)
    row.update({renamed.get(k, k): v for k, v in ev.items() if k != s.TL})
    row[c.UNIT_NAME] = unit_name
    row[c.INTERNAL] = bool(row[c.INTERNAL])
    return row


def rows(steps: Iterable[Step]) -> list[dict[str, Any]]:
    """The steps as rows of the loaded frame (``op`` for the operation)."""
    return [_loaded(ev, name) for ev, name in _step_events(steps)]


def frame(steps: Sequence[Step]) -> pl.LazyFrame:
    """The steps as a loaded trace (``Trace.events``: sorted by pid, seq)."""
    return pl.LazyFrame(rows(steps), schema=EVENT_SCHEMA).sort([c.PID, c.SEQ])


def write_steps(steps: Sequence[Step], path: Path) -> Path:
    """The steps as a trace file in the recorder's format (for ``load()``)."""
    return write_trace(path, (ev for ev, _name in _step_events(steps)))
