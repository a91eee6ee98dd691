"""A bounded queue's capacity orders the get that frees a slot before the put that takes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.record.test_instrument import _found, _run

PROGRAM = """
import queue
import threading

shared = {{"x": 0}}
q = queue.Queue(maxsize={maxsize})


def consumer():
    shared["x"] = 5        # written before the first get
    q.get()
    q.get()


t = threading.Thread(target=consumer)
t.start()
q.put(1)
q.put(2)                   # with maxsize=1 this put needs the slot the first get freed
print(shared["x"])
t.join()
"""


@pytest.mark.parametrize(("maxsize", "racy"), [(1, False), (2, True), (0, True)])
def test_a_put_that_needed_a_freed_slot_is_ordered_after_the_get(
    tmp_path: Path, maxsize: int, racy: bool
) -> None:
    """maxsize=1 orders the consumer's write before the producer's read; room to spare does not."""
    # Happens-before orders them anyway through the queue's own lock (this run's order);
    # the lock-set analysis, blind to lock order, reported maxsize=1 too before the slot edge.
    found = _found(_run(tmp_path, PROGRAM.format(maxsize=maxsize)))
    assert (("inconsistent_locking", "shared['x']") in found) is racy
