"""Helpers for tests that read trace files back, and a racy program recorded with stacks."""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tracelens
from tracelens.testing import read_events as read_trace

__all__ = [
    "bump",
    "env_with_path",
    "read_trace",
    "record_pool_race",
    "record_racy_workers",
    "start_workers",
    "submit_one",
    "submit_other",
    "warm_up",
    "work",
]


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


def _pool_job(both: threading.Barrier, d: dict[str, int] | None, times: int) -> None:
    both.wait()  # two jobs at once: each on its own worker
    for _ in range(times if d is not None else 0):
        bump(d)  # type: ignore[arg-type]


def warm_up(pool: ThreadPoolExecutor, both: threading.Barrier) -> None:
    """Start the pool's two workers here (``#0`` of their creation stacks)."""
    for f in [pool.submit(_pool_job, both, None, 0) for _ in range(2)]:
        f.result()


def submit_one(
    pool: ThreadPoolExecutor, both: threading.Barrier, d: dict[str, int]
) -> Future[None]:
    """Submit one racy job here (``#0`` of its submit stack)."""
    return pool.submit(_pool_job, both, d, 50)


def submit_other(
    pool: ThreadPoolExecutor, both: threading.Barrier, d: dict[str, int]
) -> Future[None]:
    """Submit the other racy job here."""
    return pool.submit(_pool_job, both, d, 50)


def record_pool_race(path: Path, **options: Any) -> Path:
    """Record two thread-pool jobs racing on ``d['n']``, on workers started by ``warm_up``
    and the jobs submitted by ``submit_one`` and ``submit_other``."""
    tracelens.configure(path, **options)
    d = tracelens.watch({"n": 0}, "d")
    both = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        warm_up(pool, both)
        for f in [submit_one(pool, both, d), submit_other(pool, both, d)]:
            f.result()
    tracelens.shutdown()
    return path
