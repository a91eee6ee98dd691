"""Manual events, for code that cannot use a ``watch`` proxy, and atomic regions."""

from __future__ import annotations

from typing import Any

from tracelens import schema as s
from tracelens.record._core import NOVALUE, STATE, next_seq, record, safe_value

_ATOMIC = {s.KIND: s.Kind.ATOMIC}


def read(var: str, value: Any = NOVALUE) -> None:
    """Record a read of ``var`` (call it right after the read, with the value read).

    Args:
        var: The variable's name.
        value: The value read (optional; recorded as a short, bounded repr).
    """
    seq = next_seq()
    if STATE.on:
        record(s.Op.READ, seq, var, value if value is NOVALUE else safe_value(value))


def write(var: str, value: Any = NOVALUE) -> None:
    """Record a write of ``var`` (call it right after the write, with the value written).

    Args:
        var: The variable's name.
        value: The value written (optional; recorded as a short, bounded repr).
    """
    seq = next_seq()
    if STATE.on:
        record(s.Op.WRITE, seq, var, value if value is NOVALUE else safe_value(value))


class atomic:
    """Mark a region the programmer intends to be atomic.

    The analyzer checks the accesses inside it for interleavings by other units
    (``atomicity_violation``, ``lost_update``). It does not lock anything.

    Args:
        name: Names the region in the trace (``obj`` of its begin/end events).
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> atomic:
        if STATE.on:
            record(s.Op.ATOMIC_BEGIN, next_seq(), self.name, extra=_ATOMIC)
        return self

    def __exit__(self, *exc: object) -> None:
        if STATE.on:
            record(s.Op.ATOMIC_END, next_seq(), self.name, extra=_ATOMIC)
