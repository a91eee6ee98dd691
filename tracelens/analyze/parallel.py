"""Independent analyses side by side, in threads, within a memory budget.

Polars releases the GIL while it works, so one analysis's Python (the predictive
pass over synchronisation events) overlaps another's polars queries, and a query
that leaves a core idle part of the time (joins and sorts of modest size) shares it.
Each running analysis holds its own working set, though: on big traces they run one
after the other, so that those do not add up (10M events fit in 6 GB this way).

The threads are daemon threads: the interpreter's exit does not join them, so an
interrupted command does not also wait for the Python work of analyses it no longer
wants. (A polars query that is running when Ctrl-C arrives still runs to its end
first; that was so before analyses ran in threads.)
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

__all__ = ["Handover", "Job", "gc_paused", "side_by_side"]

T = TypeVar("T")


class Job(Generic[T]):
    """A callable running in a daemon thread; ``result()`` waits for it."""

    def __init__(self, task: Callable[[], T], *, name: str = "tracelens") -> None:
        self._task = task
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._task()
        except BaseException as e:  # handed to the caller of result()
            self._error = e
        finally:
            # the task's closure may hold big inputs (another job's result): let them go
            del self._task

    def result(self) -> T:
        """The task's return value, once it is done; its exception is raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class Handover(Generic[T]):
    """A value one thread hands to another part-way through its work.

    ``get()`` waits until ``put`` (the value) or ``fail`` (an exception, raised by
    ``get``) is called; both may be called once.
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    def put(self, value: T) -> None:
        self._value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def get(self) -> T:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def side_by_side(tasks: Sequence[Callable[[], T]], *, parallel: bool) -> list[T]:
    """Run ``tasks`` and return their results in order.

    Args:
        tasks: Independent callables.
        parallel: Run them in threads (else one after the other, in this thread).

    Returns:
        Each task's result, in the order of ``tasks``. The first exception a task
        raised (in that order) is raised here, after every task has finished.
    """
    if len(tasks) < 2 or not parallel:
        return [task() for task in tasks]
    jobs = [Job(task) for task in tasks[1:]]
    errors: list[BaseException] = []
    first: list[T] = []
    try:
        first.append(tasks[0]())  # the calling thread does a share of the work
    except Exception as e:
        errors.append(e)
    rest: list[T] = []
    for job in jobs:
        try:
            rest.append(job.result())
        except Exception as e:
            errors.append(e)
    if errors:
        raise errors[0]
    return first + rest


_gc_lock = threading.Lock()
_gc_users = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a Python loop that makes many objects.

    The happens-before walk and the conversion of rows to ``Finding`` objects allocate
    hundreds of thousands of tuples and objects that form no reference cycles; each
    700 allocations the collector would scan them all the same (about a tenth of the
    walk's time). Reference counting still frees everything. Nested and concurrent
    uses are counted: the collector's previous state comes back when the last ends.
    """
    global _gc_users, _gc_was_enabled
    with _gc_lock:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_was_enabled:
                gc.enable()
