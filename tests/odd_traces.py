"""A corpus of odd but loadable traces (issue 17), one small file per category.

Each category is a list of lines (``CORPUS``: name -> lines); ``python -m tests.odd_traces``
writes them to ``tests/data/odd/<name>.jsonl`` (``tests/analyze/test_odd_corpus.py``
checks that the files there are these). Every trace is schema-valid JSON lines that a
real recorder would never write (or writes only when something went wrong): the
analyses must be total on all of them, or the loader must refuse them in one line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from tests.traces import event
from tracelens import schema as s

__all__ = ["CORPUS", "ODD_DIR", "write_corpus"]

ODD_DIR = Path(__file__).parent / "data" / "odd"
_PID = 7


def _ev(seq: int, op: str, unit: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        s.TID: int(unit[1:]) if unit[1:].isdigit() else 0,
        s.THREAD: f"worker-{unit}",
        s.FILE: "app.py",
        s.LINE: 10 + seq,
        s.FUNC: "f",
    }
    base.update(fields)
    pid = base.pop("pid", _PID)
    ts = base.pop("ts", 1_000 + 10 * seq)
    return event(op, seq=seq, ts=ts, pid=pid, unit=unit, **base)


def _w(seq: int, unit: str, var: str = "x", value: Any = 1, **kw: Any) -> dict[str, Any]:
    return _ev(seq, s.Op.WRITE, unit, var=var, value=value, **kw)


def _r(seq: int, unit: str, var: str = "x", value: Any = 1, **kw: Any) -> dict[str, Any]:
    return _ev(seq, s.Op.READ, unit, var=var, value=value, **kw)


def _sync(seq: int, op: str, unit: str, obj: str | None, kind: str | None, **kw: Any) -> dict:
    return _ev(seq, op, unit, obj=obj, kind=kind, **kw)


def _lines(events: list[dict[str, Any]], *raw: str) -> list[str]:
    """The events as JSON lines, then the ``raw`` lines (JSON orjson would not write)."""
    return [*(orjson.dumps(e).decode() for e in events), *raw]


L, T, Q = s.Kind.LOCK, s.Kind.THREAD, s.Kind.QUEUE
Op = s.Op

CORPUS: dict[str, list[str]] = {
    "release_without_acquire": _lines(
        [
            _w(0, "t1"),
            _sync(1, Op.RELEASE, "t1", "L", L),
            _w(2, "t2"),
            _sync(3, Op.RELEASE, "t2", "L", L),
            _sync(4, Op.ACQUIRE, "t2", "L", L, wait_ns=0),
            _sync(5, Op.RELEASE, "t1", "L", L),  # another unit releases t2's lock
            _w(6, "t1"),
        ]
    ),
    "join_never_forked": _lines(
        [
            _w(0, "t0"),
            _sync(1, Op.JOIN, "t0", "t9", T),
            _sync(2, Op.JOIN, "t0", "t0", T),  # joins itself
            _w(3, "t1"),
            _sync(4, Op.FORK, "t1", "t0", T),  # forks its parent
            _sync(5, Op.JOIN, "t1", None, T),  # no child named
            _w(6, "t0"),
        ]
    ),
    "recv_without_send": _lines(
        [
            _w(0, "t1"),
            _sync(1, Op.RECV, "t2", "q", Q, msg=5),
            _sync(2, Op.RECV, "t2", "ev", s.Kind.EVENT),
            _w(3, "t2"),
            _sync(4, Op.SEND, "t1", "q", Q, msg=6),  # sent, never received
            _sync(5, Op.RECV, "t2", "q", Q, msg=6),
            _sync(6, Op.RECV, "t1", "q", Q, msg=6),  # received twice
            _sync(7, Op.SEND, "t1", None, None),
        ]
    ),
    "unknown_kinds_and_ops": _lines(
        [
            _w(0, "t1"),
            _sync(1, "frobnicate", "t1", "L", L),
            _sync(2, Op.ACQUIRE, "t1", "S", "spinlock", wait_ns=0),
            _w(3, "t2"),
            _sync(4, Op.RELEASE, "t1", "S", "spinlock"),
            _sync(5, Op.FORK, "t1", "t3", "fiber"),
            _ev(6, "", "t3"),
            _ev(7, "READ", "t3", var="x"),
            _w(8, "t3"),
        ]
    ),
    "duplicate_seq": _lines(
        [
            _w(0, "t1"),
            _w(1, "t2"),
            _r(1, "t1"),  # a different event with seq 1
            _w(2, "t1"),
        ]
    ),
    "all_one_seq": _lines(
        [
            {**_w(0, "t0"), s.SEQ: 3},
            {**_sync(1, Op.ACQUIRE, "t1", "L", L, wait_ns=0), s.SEQ: 3},
            {**_w(2, "t1"), s.SEQ: 3},
            {**_sync(3, Op.RELEASE, "t1", "L", L), s.SEQ: 3},
            {**_r(4, "t0"), s.SEQ: 3},
        ]
    ),
    "out_of_order_seq": _lines(
        [
            _sync(9, Op.RELEASE, "t1", "L", L),
            _w(3, "t2"),
            _w(8, "t1"),
            _sync(7, Op.ACQUIRE, "t1", "L", L, wait_ns=0),
            _r(1, "t2"),
            _sync(0, Op.FORK, "t0", "t1", T),
            _r(1_000_000, "t1"),
        ]
    ),
    "end_twice": _lines(
        [
            _sync(0, Op.FORK, "t0", "t1", T),
            _sync(1, Op.BEGIN, "t1", "t1", T),
            _w(2, "t1"),
            _sync(3, Op.END, "t1", "t1", T),
            _sync(4, Op.END, "t1", "t1", T),
            _w(5, "t1"),  # after its end
            _sync(6, Op.BEGIN, "t1", "t1", T),
            _sync(7, Op.JOIN, "t0", "t1", T),
            _sync(8, Op.JOIN, "t0", "t1", T),
            _w(9, "t0"),
            _sync(10, Op.FORK, "t0", "t1", T),  # forked again after its join
            _w(11, "t1"),
        ]
    ),
    "unusual_kinds": _lines(  # issue 17's IndexError in the lock-mask naming
        [
            _w(0, "t0"),
            _sync(1, Op.BEGIN, "t1", "q", Q),
            _sync(2, Op.RECV, "t1", "L", L),
            _sync(3, Op.JOIN, "t0", "ev", s.Kind.EVENT),
            _sync(4, Op.ACQUIRE_FAIL, "t1", "t0", T),
            _sync(5, Op.ACQUIRE, "t1", "t0", T, wait_ns=0),
            _sync(6, Op.RELEASE, "t0", "q", Q),
            _sync(7, Op.FORK, "t0", "L", L),
            _sync(8, Op.ACQUIRE, "t0", "L", L),
            _sync(9, Op.SEND, "t1", "L", L, msg=1),
            _sync(10, Op.RECV, "t0", "t1", T, msg=1),
            _sync(11, Op.WAIT, "t0", "t1", s.Kind.PROCESS),
            _sync(12, Op.ATOMIC_END, "t0", "L", L),
            _w(13, "t1"),
        ]
    ),
    "missing_optional_fields": [
        '{"tl":1,"event":"write","seq":0,"pid":7,"unit":"t1","var":"x"}',
        '{"tl":1,"event":"write","seq":1,"pid":7,"unit":"t2","var":"x"}',
        '{"tl":1,"event":"acquire","seq":2,"pid":7,"unit":"t1"}',
        '{"tl":1,"event":"read","seq":3,"pid":7,"unit":"t1","var":"x"}',
        '{"tl":1,"event":"release","seq":4,"pid":7,"unit":"t1"}',
        '{"tl":1,"event":"fork","seq":5,"pid":7,"unit":"t1"}',
        '{"tl":1,"event":"send","seq":6,"pid":7,"unit":"t1"}',
        '{"tl":1,"event":"recv","seq":7,"pid":7,"unit":"t2"}',
        '{"tl":1,"event":"atomic_begin","seq":8,"pid":7,"unit":"t2"}',
        '{"tl":1,"event":"write","seq":9,"pid":7,"unit":"t2","var":"x"}',
        '{"tl":1,"event":"read","seq":10,"pid":7,"unit":"t1","var":"x"}',
        '{"tl":1,"event":"write","seq":11,"pid":7,"unit":"t2","var":"x"}',
        '{"tl":1,"event":"atomic_end","seq":12,"pid":7,"unit":"t2"}',
        '{"tl":1,"event":"meta","seq":13,"pid":7,"unit":"t0"}',
        '{"tl":1,"event":"acquire","seq":14,"pid":7,"unit":"t1","obj":"L"}',
        '{"tl":1,"event":"read","seq":15,"pid":7,"unit":"t1","var":"y"}',
        '{"tl":1,"event":"write","seq":16,"pid":7,"unit":"t1","var":"y"}',
        '{"tl":1,"event":"release","seq":17,"pid":7,"unit":"t1","obj":"L"}',
        '{"tl":1,"event":"acquire","seq":18,"pid":7,"unit":"t2","obj":"L"}',
    ],
    "huge_and_negative_numbers": _lines(
        [
            _ev(0, Op.READ, "t1", var="x", value=2**62, line=-5, ts=-(2**62)),
            _ev(1, Op.WRITE, "t2", var="x", value=-(2**63), line=2**62, ts=2**63 - 1),
            _ev(2, Op.WRITE, "t1", var="x", value=1e308, line=0),
            _sync(3, Op.ACQUIRE, "t1", "L", L, wait_ns=2**63 - 1, count=-1),
            _sync(4, Op.SEND, "t1", "q", Q, msg=-(2**63)),
            _sync(5, Op.RECV, "t2", "q", Q, msg=-(2**63)),
            _sync(6, Op.RELEASE, "t1", "L", L, wait_ns=-1),
            _ev(7, Op.WRITE, "t2", var="x", value=-0.0, tid=-1),
            _ev(2**40 - 1, Op.WRITE, "t1", var="x"),  # the largest sequence number
            _ev(2**40, Op.WRITE, "t1", var="x"),  # out of range: skipped
            _ev(-1, Op.WRITE, "t2", var="x"),  # out of range: skipped
            _ev(8, Op.WRITE, "t2", var="x", pid=0),
            _ev(9, Op.WRITE, "t2", var="x", pid=-3),  # out of range: skipped
            _ev(10, Op.WRITE, "t2", var="x", pid=2**62),  # out of range: skipped
        ],
        # numbers beyond 64 bits: malformed lines
        '{"tl":1,"event":"write","seq":11,"pid":7,"unit":"t1","var":"x","value":1180591620717411303424}',
        '{"tl":1,"event":"write","seq":99999999999999999999,"pid":7,"unit":"t1","var":"x"}',
        '{"tl":1,"event":"write","seq":12,"pid":7,"unit":"t1","var":"x","value":1e400}',
    ),
    "odd_names": _lines(
        [
            _w(0, "t1", var="x\x00\x1b[31mred\x1b[0m"),
            _w(1, "t2", var="x\x00\x1b[31mred\x1b[0m", value="\u202eevil\x07\r\n"),
            _ev(2, Op.WRITE, "t\u00e9", var="\U0001f600[\u2028]", thread="\x1b]0;title\x07"),
            _ev(3, Op.WRITE, "", var="\U0001f600[\u2028]", file="\x1b[2J/etc/\u202e.py"),
            _sync(4, Op.ACQUIRE, "", "\x1b[1mL\x1b[0m", L, wait_ns=0, func="<\x00>"),
            _ev(5, Op.READ, "a1", var="", task="[red]markup[/red] ${x} %s {0}"),
            _ev(6, Op.WRITE, "a2", var="", task="<script>alert(1)</script>"),
            _sync(7, Op.RELEASE, "", "\x1b[1mL\x1b[0m", L),
        ],
        # a lone surrogate escape and an escaped escape
        '{"tl":1,"event":"write","seq":8,"pid":7,"unit":"t1","var":"y\\ud800","thread":"\\\\u0000"}',
    ),
    "empty": [],
    "only_meta_and_app_lines": [
        '{"tl":1,"event":"meta","seq":0,"ts":1,"pid":7,"unit":"t0","argv":[],"python":"3"}',
        '{"event":"user logged in","level":"info"}',
    ],
    "locks_odd": _lines(
        [
            _sync(0, Op.ACQUIRE, "t1", "L", L, wait_ns=0),
            _sync(1, Op.ACQUIRE, "t1", "L", L, wait_ns=0),  # a plain lock twice
            _sync(2, Op.ACQUIRE, "t2", "L", L, wait_ns=0),  # while t1 holds it
            _w(3, "t1"),
            _w(4, "t2"),
            _sync(5, Op.ACQUIRE_TRY, "t1", "M", L),
            _sync(6, Op.ACQUIRE_FAIL, "t1", "M", L),
            _sync(7, Op.RELEASE, "t1", "M", L),
            _sync(8, Op.ACQUIRE, "t1", "M", s.Kind.RLOCK, wait_ns=0),
            _sync(9, Op.ACQUIRE, "t2", "N", L, wait_ns=0),
            _sync(10, Op.ACQUIRE, "t2", "M", L, wait_ns=0),
            _sync(11, Op.ACQUIRE, "t1", "N", L, wait_ns=0),
            _sync(12, Op.ATOMIC_END, "t1", "region", s.Kind.ATOMIC),
            _sync(13, Op.ATOMIC_BEGIN, "t1", "region", s.Kind.ATOMIC),
            _r(14, "t1"),
            _w(15, "t2"),
            _w(16, "t1"),
        ]
    ),
    "processes_odd": _lines(
        [
            _w(0, "t0", pid=1),
            _w(0, "t0", pid=2),
            _sync(1, Op.FORK, "t0", "p2", s.Kind.PROCESS, pid=1),
            _sync(1, Op.FORK, "t0", "p1", s.Kind.PROCESS, pid=2),  # a cycle
            _sync(2, Op.JOIN, "t0", "p3", s.Kind.PROCESS, pid=1),
            _sync(2, Op.SEND, "t0", "q", Q, msg=1, pid=2),
            _sync(3, Op.RECV, "t0", "q", Q, msg=1, pid=1),
            _w(4, "t0", pid=1),
            _w(5, "1/t0", pid=2),  # a unit named like a qualified one
        ]
    ),
}


def write_corpus(directory: Path = ODD_DIR) -> list[Path]:
    """Write every category to ``directory/<name>.jsonl``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, lines in CORPUS.items():
        path = directory / f"{name}.jsonl"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else ODD_DIR):
        print(p)
