"""Independent analyses side by side, in threads, within a memory budget.

Polars releases the GIL while it works, so one analysis's Python (the predictive
pass over synchronisation events) overlaps another's polars queries, and a query
that leaves a core idle part of the time (joins and sorts of modest size) shares it.
Each running analysis holds its own working set, though: on big traces they run one
after the other, so that those do not add up (10M events fit in 6 GB this way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["PARALLEL_MAX_EVENTS", "side_by_side"]

#: Traces with up to this many events run their analyses side by side; bigger ones one
#: after the other.
PARALLEL_MAX_EVENTS = 4_000_000

T = TypeVar("T")


def side_by_side(tasks: Sequence[Callable[[], T]], *, events: int, workers: int = 2) -> list[T]:
    """Run ``tasks`` and return their results in order.

    Args:
        tasks: Independent callables.
        events: Events in the trace they analyse (decides threads or one by one).
        workers: Threads at most.

    Returns:
        Each task's result, in the order of ``tasks``. The first exception a task
        raises (in that order) is raised here.
    """
    if len(tasks) < 2 or workers < 2 or events > PARALLEL_MAX_EVENTS:
        return [task() for task in tasks]
    with ThreadPoolExecutor(min(workers, len(tasks)), thread_name_prefix="tracelens") as pool:
        futures = [pool.submit(task) for task in tasks]
        return [f.result() for f in futures]
