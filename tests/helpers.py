"""Helpers for tests that read trace files back, and a racy program recorded with stacks."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import tracelens
from tracelens.testing import read_events as read_trace

__all__ = ["bump", "env_with_path", "read_trace", "record_racy_workers", "start_workers", "work"]


def env_with_path(*dirs: str | Path) -> dict[str, str]:
    """This process's environment with ``dirs`` put first on ``PYTHONPATH``, before the
    inherited entries (replacing them would lose what the interpreter needs: tracelens
    itself, on installs that put it there)."""
    inherited = os.environ.get("PYTHONPATH")
    parts = [str(d) for d in dirs] + ([inherited] if inherited else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(parts)}


def bump(d: dict[str, int]) -> None:
    """The racy access: an unlocked read-modify-write (``#0`` of the workers' stacks)."""
    d["n"] = d["n"] + 1


def work(d: dict[str, int], times: int) -> None:
    """A worker's loop (``#1`` of its accesses' stacks)."""
    for _ in range(times):
        bump(d)


def start_workers(d: dict[str, int], times: int) -> list[threading.Thread]:
    """Start two workers ``w0``, ``w1`` here (``#0`` of their creation stacks)."""
    ts = [threading.Thread(target=work, args=(d, times), name=f"w{i}") for i in range(2)]
    for t in ts:
        t.start()
    return ts


def record_racy_workers(path: Path, *, times: int = 50, **options: Any) -> Path:
    """Record two threads racing on ``d['n']`` into ``path`` (``configure`` options)."""
    tracelens.configure(path, **options)
    d = tracelens.watch({"n": 0}, "d")
    for t in start_workers(d, times):
        t.join()
    tracelens.shutdown()
    return path
