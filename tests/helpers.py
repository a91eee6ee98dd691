"""Helpers for tests that read trace files back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """The tracelens events of a trace file, in sequence order (application lines dropped)."""
    events = []
    for line in Path(path).read_bytes().splitlines():
        d = orjson.loads(line)
        if "tl" in d:
            events.append(d)
    return sorted(events, key=lambda e: (e["pid"], e["seq"]))
