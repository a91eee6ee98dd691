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
    ops = [(e["event"], e.get("obj")) for e in child[1:]]
    assert ("begin", unit) == ops[0] and ("end", unit) == ops[-1]
    assert tuple(op for op, obj in ops if obj.startswith("Lock@")) == ("acquire", "release")
    assert child[1]["func"] == "_child"


def test_children_started_after_shutdown_are_not_recorded(recording):
    """A spawn child started when the parent no longer records does not record either."""
    path = recording()
    tracelens.shutdown()
    p = mp.get_context("spawn").Process(target=_child)
    p.start()
    p.join(T)
    assert [e for e in read_trace(path) if e["pid"] == p.pid] == []
