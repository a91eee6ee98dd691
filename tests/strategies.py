"""Building traces in tests: a small builder for hand-written traces, and Hypothesis
strategies for random interleavings of several units.

Both produce event dicts in the real trace format (``tracelens.schema`` names), which
``write_trace`` writes as JSON lines for ``tracelens.analyze.load``.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from tracelens import schema as s

__all__ = ["TraceBuilder", "interleavings", "write_trace"]


def write_trace(path: str | Path, events: Iterable[Mapping[str, Any]]) -> Path:
    """Write events as JSON lines (gzip when ``path`` ends in ``.gz``)."""
    path = Path(path)
    data = b"".join(orjson.dumps(dict(e), option=orjson.OPT_APPEND_NEWLINE) for e in events)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


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
        d: dict[str, Any] = {
            s.TL: s.FORMAT_VERSION,
            s.OP: op,
            s.SEQ: self.seq,
            s.TS: self.ts,
            s.PID: self.pid,
            s.UNIT: unit,
            s.TID: int(unit[1:]) if unit[1:].isdigit() else 0,
            s.THREAD: self.names.get(unit, f"worker-{unit[1:]}"),
        }
        d.update(kw)
        d[s.FILE] = self.file
        d[s.LINE] = line
        d[s.FUNC] = func
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


# --- Hypothesis ------------------------------------------------------------------------

_VARS = ("x", "y", "z")
_LOCKS = ("L1", "L2")


@st.composite
def _access(draw: st.DrawFn, n_vars: int) -> tuple[str, ...]:
    op = draw(st.sampled_from((s.Op.READ, s.Op.WRITE)))
    var = draw(st.sampled_from(_VARS[:n_vars]))
    line = draw(st.integers(1, 3)) + (10 if op == s.Op.WRITE else 0)
    return ("acc", op, var, str(line))


@st.composite
def _block(draw: st.DrawFn, n_vars: int, depth: int = 0) -> list[tuple[str, ...]]:
    """A piece of one unit's program: an access, a locked block or an atomic region."""
    kind = draw(st.sampled_from(("acc", "acc", "locked", "atomic") if depth < 2 else ("acc",)))
    if kind == "acc":
        return [draw(_access(n_vars))]
    inner = draw(st.lists(_block(n_vars, depth + 1), min_size=1, max_size=3))
    body = [step for b in inner for step in b]
    if kind == "locked":
        lock = draw(st.sampled_from(_LOCKS))
        internal = draw(st.booleans()) and draw(st.booleans())  # now and then
        flag = "internal" if internal else ""
        return [("acq", lock, flag), *body, ("rel", lock, flag)]
    return [("abegin",), *body, ("aend",)]


@st.composite
def interleavings(
    draw: st.DrawFn, *, max_units: int = 4, max_vars: int = 3, max_blocks: int = 6
) -> list[dict[str, Any]]:
    """Random traces: 2..``max_units`` units, each running a random program of accesses,
    lock holds and atomic regions on 1..``max_vars`` variables, interleaved at random.

    Locks are *not* exclusive here (the window definitions do not depend on it), so
    the traces cover interleavings a real run could not produce as well.

    Returns:
        Events in sequence order, in the real format (one process).
    """
    n_units = draw(st.integers(2, max_units))
    n_vars = draw(st.integers(1, max_vars))
    programs = []
    for _ in range(n_units):
        blocks = draw(st.lists(_block(n_vars), min_size=1, max_size=max_blocks))
        programs.append([step for b in blocks for step in b])
    b = TraceBuilder()
    pcs = [0] * n_units
    live = [i for i in range(n_units) if programs[i]]
    while live:
        i = live[draw(st.integers(0, len(live) - 1))]
        step = programs[i][pcs[i]]
        unit = f"t{i + 1}"
        if step[0] == "acc":
            _, op, var, line = step
            if op == s.Op.READ:
                b.read(unit, var, line=int(line))
            else:
                b.write(unit, var, line=int(line))
        elif step[0] == "acq":
            b.acquire(unit, step[1], internal=step[2] == "internal")
        elif step[0] == "rel":
            b.release(unit, step[1], internal=step[2] == "internal")
        elif step[0] == "abegin":
            b.atomic_begin(unit)
        else:
            b.atomic_end(unit)
        pcs[i] += 1
        if pcs[i] == len(programs[i]):
            live.remove(i)
    return b.events
