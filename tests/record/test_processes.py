"""multiprocessing children record into the same trace, with their own pid and p<pid> edges."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading

import pytest

import tracelens
from tests.helpers import read_trace

T = 60  # a spawned child starts a fresh interpreter


def _child() -> None:
    lock = threading.Lock()
    with lock:
        pass


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_child_records_with_its_own_pid_between_fork_and_join(recording, method):
    """Parent: fork p<pid> … join p<pid>; child (that pid): begin, its own events, end."""
    path = recording()
    p = mp.get_context(method).Process(target=_child)
    p.start()
    p.join(T)
    assert p.exitcode == 0
    tracelens.shutdown()

    events = read_trace(path)
    unit = f"p{p.pid}"
    parent = [e["event"] for e in events if e["pid"] == os.getpid() and e.get("obj") == unit]
    assert parent[0] == "fork" and parent[-1] == "join"
    child = [e for e in events if e["pid"] == p.pid]
    assert child[0]["event"] == "meta"
    # a spawned child records from before it imports the parent's __main__ again, so the
    # locks made then may be used before begin and after end (its exit handlers' logging
    # locks); the process's own run is begin ... end
    ops = [(e["event"], e.get("obj")) for e in child[1:]]
    run = ops[ops.index(("begin", unit)) : ops.index(("end", unit)) + 1]
    assert tuple(op for op, obj in run if obj.startswith("Lock@test_")) == ("acquire", "release")
    begin = next(e for e in child if e["event"] == "begin")
    assert begin["func"] == "_child"


def test_children_started_after_shutdown_are_not_recorded(recording):
    """A spawn child started when the parent no longer records does not record either."""
    path = recording()
    tracelens.shutdown()
    p = mp.get_context("spawn").Process(target=_child)
    p.start()
    p.join(T)
    assert [e for e in read_trace(path) if e["pid"] == p.pid] == []
