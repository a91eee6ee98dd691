"""Trace-level checks of hand-off edges, shared by the tests of the hand-off primitives."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Event = Mapping[str, Any]


def mine(events: Sequence[Event], *ops: str) -> list[Event]:
    """The events with one of ``ops`` that are not on internal objects."""
    return [e for e in events if e["event"] in ops and not e.get("internal")]


def matches(send: Event, recv: Event) -> bool:
    """Whether ``recv`` may receive what ``send`` sent (same object, same or no msg)."""
    return (
        send["obj"] == recv["obj"]
        and send["seq"] < recv["seq"]
        and (recv.get("msg") is None or recv.get("msg") == send.get("msg"))
    )


def separated(events: Sequence[Event], first: Event, second: Event) -> bool:
    """Whether a send→recv edge orders ``first`` before ``second``.

    That is: ``first``'s unit sends after ``first``, and ``second``'s unit receives
    that send before ``second`` (one hop; what the hand-off primitives promise).
    """
    sends = [
        e
        for e in events
        if e["event"] == "send" and e["unit"] == first["unit"] and e["seq"] > first["seq"]
    ]
    recvs = [
        e
        for e in events
        if e["event"] == "recv" and e["unit"] == second["unit"] and e["seq"] < second["seq"]
    ]
    return any(matches(s, r) for s in sends for r in recvs)


def accesses(events: Sequence[Event], var: str) -> tuple[Event, Event]:
    """The one write and the one read of ``var``."""
    (w,) = [e for e in events if e["event"] == "write" and e["var"] == var]
    (r,) = [e for e in events if e["event"] == "read" and e["var"] == var]
    return w, r


Check = Callable[[Sequence[Event]], None]
