"""Import traces in the STD format of RAPID and the race-detection benchmarks.

An STD trace has one event per line, ``THREAD|OP(ARG)|LOCATION``::

    T1|w(V3)|345
    T2|acq(L17)|120
    T0|fork(T1)|12

Mapping to tracelens events (``docs/std-import.md``):

=============  ======================================================
STD            tracelens
=============  ======================================================
``r(V)``       ``read`` of variable ``V``
``w(V)``       ``write`` of variable ``V``
``acq(L)``     ``acquire`` of lock ``L`` (kind ``lock``)
``rel(L)``     ``release`` of lock ``L``
``req(L)``     ``acquire_try`` of lock ``L`` (a request that may block)
``fork(T)``    ``fork`` of unit ``T``
``join(T)``    ``join`` of unit ``T``
``begin``      ``atomic_begin`` (a transaction boundary), name = the argument
               or ``"<thread>.tx"``
``end``        ``atomic_end`` of the innermost open ``begin`` of the thread
``enter(M)``,  skipped (method entry/exit, no meaning for these analyses),
``exit(M)``,   counted in ``StdStats.skipped``
``branch``,
``dummy``
=============  ======================================================

Thread, variable and lock names are kept verbatim. The line's position in the file
is the sequence number (and the timestamp); LOCATION becomes the event's source line
(``file`` is the trace file's name, ``func`` ``"<std>"``); a LOCATION that is not a
number is kept as ``func``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from tracelens import schema as s
from tracelens.exceptions import StdError
from tracelens.importers.std_ops import EVENT_PATTERN, NUMBER_PATTERN, SIMPLE_OPS, SKIPPED_OPS

__all__ = ["StdError", "StdStats", "convert_std", "std_events"]

_EVENT: Final = re.compile(EVENT_PATTERN)
_SIMPLE: Final = SIMPLE_OPS
_NUMBER: Final = re.compile(NUMBER_PATTERN + r"\Z")
_SKIPPED: Final = frozenset(SKIPPED_OPS)
_NEEDS_ARG: Final = frozenset(_SIMPLE)
#: Process id given to imported events (STD traces have one process).
STD_PID: Final = 1


@dataclass
class StdStats:
    """What an import saw: events written, lines skipped by kind (``enter``...)."""

    events: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def std_events(lines: Any, *, file: str = "<std>", stats: StdStats | None = None) -> Any:
    """Turn STD lines into tracelens event dicts (the trace file's keys).

    Args:
        lines: An iterable of text lines.
        file: The ``file`` recorded as every event's call site.
        stats: Filled in with counts, when given.

    Yields:
        One dict per tracelens event, in order.

    Raises:
        StdError: A line is not ``THREAD|OP(ARG)[|LOCATION]`` or names an unknown
            operation.
    """
    stats = stats if stats is not None else StdStats()
    tids: dict[str, int] = {}
    open_tx: dict[str, list[str]] = {}
    seq = 0
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("|")
        if len(parts) not in (2, 3) or not parts[0].strip():
            raise StdError(f"line {n}: expected THREAD|OP(ARG)|LOCATION, got {line[:80]!r}")
        thread, event = parts[0].strip(), parts[1].strip()
        loc = parts[2].strip() if len(parts) == 3 else ""
        m = _EVENT.match(event)
        if m is None:
            raise StdError(f"line {n}: cannot read the operation {event[:80]!r}")
        name, arg = m.group(1), m.group(2)
        key = name.lower()
        if key in _SKIPPED:
            stats.skipped[key] = stats.skipped.get(key, 0) + 1
            continue
        if key in _NEEDS_ARG and not arg:
            raise StdError(f"line {n}: {name} needs an argument, as in {name}(X)")
        d: dict[str, Any] = {
            s.TL: s.FORMAT_VERSION,
            s.SEQ: seq,
            s.TS: seq,
            s.PID: STD_PID,
            s.UNIT: thread,
            s.TID: tids.setdefault(thread, len(tids)),
            s.THREAD: thread,
        }
        if key in _SIMPLE:
            op, kind = _SIMPLE[key]
            d[s.OP] = op
            if op in s.MEMORY_OPS:
                d[s.VAR] = arg
            else:
                d[s.OBJ] = arg
                d[s.KIND] = kind
                if op == s.Op.ACQUIRE:
                    d[s.WAIT_NS] = 0
        elif key == "begin":
            region = arg or f"{thread}.tx"
            open_tx.setdefault(thread, []).append(region)
            d[s.OP], d[s.OBJ], d[s.KIND] = s.Op.ATOMIC_BEGIN, region, s.Kind.ATOMIC
        elif key == "end":
            stack = open_tx.get(thread)
            if not stack:
                raise StdError(f"line {n}: end without a begin in thread {thread}")
            d[s.OP], d[s.OBJ], d[s.KIND] = s.Op.ATOMIC_END, stack.pop(), s.Kind.ATOMIC
        else:
            raise StdError(
                f"line {n}: unknown STD operation {name!r} "
                "(known: r, w, acq, rel, req, fork, join, begin, end, enter, exit, branch, dummy)"
            )
        d[s.FILE] = file
        if _NUMBER.match(loc):
            d[s.LINE], d[s.FUNC] = int(loc), "<std>"
        else:
            d[s.LINE], d[s.FUNC] = 0, loc or "<std>"
        seq += 1
        stats.events += 1
        yield d


def convert_std(
    src_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    stats: StdStats | None = None,
) -> int:
    """Convert an STD trace file into a tracelens trace (JSON lines).

    Args:
        src_path: The STD trace.
        out_path: The tracelens trace to write (replaced if it exists; a device or
            FIFO is written into, not replaced).
        stats: Filled in with counts, when given.

    Returns:
        The number of events written.

    Raises:
        StdError: The input is not an STD trace (one-line message with the line number).
        OSError: The input cannot be read or the output written.
    """
    src = Path(src_path)
    stats = stats if stats is not None else StdStats()
    # A device or FIFO (``-o /dev/stdout``) is written into, never replaced by a file.
    direct = os.path.exists(out_path) and not os.path.isfile(out_path)
    tmp = Path(out_path) if direct else Path(f"{os.fspath(out_path)}.part")
    try:
        text = src.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StdError(f"{src}: not a text file ({exc.reason})") from None
    if "\r" in text:  # universal newlines, as a text-mode file reads them
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    from tracelens.importers._std_fast import fast_convert, write_lines

    try:
        skipped: dict[str, int] = {}
        col = fast_convert(text, src.name, skipped)
        if col is not None:
            if direct:  # opened once: a FIFO's reader sees one writer, then the end
                with open(tmp, "wb") as fh:
                    write_lines(col, fh)
            else:
                write_lines(col, tmp)
            stats.events += col.len()
            for k, v in skipped.items():
                stats.skipped[k] = stats.skipped.get(k, 0) + v
        else:  # the reference: also the one to name a bad line
            _write_reference(text.split("\n"), src.name, tmp, stats)
        if not direct:
            os.replace(tmp, out_path)
    except BaseException:
        if not direct:
            tmp.unlink(missing_ok=True)
        raise
    return stats.events


def _write_reference(lines: Any, file: str, out: Path, stats: StdStats) -> None:
    """Write ``std_events(lines)`` with orjson: the per-line reference converter."""
    with out.open("wb") as f:
        buf: list[bytes] = []
        for d in std_events(lines, file=file, stats=stats):
            buf.append(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE))
            if len(buf) >= 8192:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
