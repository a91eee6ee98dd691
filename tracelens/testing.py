"""Helpers for checking traces in tests, without the analyzer (no polars).

``read_events`` parses a trace file the slow, obvious way; ``order_fidelity``
checks what the recorder promises: per variable, every recorded read's value is
the value of the latest recorded write before it.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracelens import schema as s


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """The tracelens events of one trace file, sorted by (pid, seq).

    Application lines (JSON objects without ``tl``) are dropped; a line that is not
    JSON raises ``orjson.JSONDecodeError``.
    """
    p = Path(path)
    data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    events = []
    for line in data.splitlines():
        if not line.strip():
            continue
        d = orjson.loads(line)
        if isinstance(d, dict) and s.TL in d:
            events.append(d)
    return sorted(events, key=lambda e: (e[s.PID], e[s.SEQ]))


@dataclass
class Fidelity:
    """Result of ``order_fidelity``: reads checked, reads consistent, the first mismatches."""

    checked: int = 0
    consistent: int = 0
    mismatches: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = field(
        default_factory=list
    )

    @property
    def ratio(self) -> float:
        return self.consistent / self.checked if self.checked else 1.0


def order_fidelity(events: Iterable[Mapping[str, Any]]) -> Fidelity:
    """Check that each read saw the latest write recorded before it.

    Only reads that carry a value and follow a recorded write of the same variable
    (in the same process) are checked.

    Args:
        events: Events sorted by (pid, seq), e.g. from ``read_events``.

    Returns:
        How many reads were checked and how many were consistent.
    """
    latest: dict[tuple[int, str], Mapping[str, Any]] = {}
    out = Fidelity()
    for e in events:
        op = e[s.OP]
        if op not in s.MEMORY_OPS or s.VALUE not in e:
            continue
        key = (e[s.PID], e[s.VAR])
        if op == s.Op.WRITE:
            latest[key] = e
            continue
        w = latest.get(key)
        if w is None or w.get(s.VALUE) == "<missing>":
            continue
        out.checked += 1
        if w[s.VALUE] == e[s.VALUE]:
            out.consistent += 1
        elif len(out.mismatches) < 10:
            out.mismatches.append((e, w))
    return out
