"""concurrent.futures: submit → task start, task end → result and friends, as send/recv edges."""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading

import pytest

import tracelens
from tests.helpers import read_trace
from tests.record.handoff import accesses, matches, mine, separated

T = 5


def _work(box, x):
    box["v"] = x
    return x * 2


def _future_events(path):
    return [e for e in mine(read_trace(path), "send", "recv", "wait") if e.get("kind") == "future"]


def test_submit_start_end_result_is_one_chain_of_edges(recording):
    """submit sends (msg) → worker start recv (msg) → task end send → result() recv."""
    path = recording()
    box = tracelens.watch({}, "box")
    with cf.ThreadPoolExecutor(1) as ex:
        assert ex.submit(_work, box, 1).result(T) == 2
    tracelens.shutdown()

    events = _future_events(path)
    ops = [(e["event"], e["unit"] == "t0") for e in events if e["event"] != "wait"]
    assert ops == [("send", True), ("recv", False), ("send", False), ("recv", True)]
    submit, start, end, result = [e for e in events if e["event"] != "wait"]
    assert submit["msg"] == start["msg"]
    assert matches(submit, start) and matches(end, result)
    assert "_work" == start["func"] == end["func"]  # the task's site is its function
    assert submit["obj"].startswith("Future@test_futures.py:")


@pytest.mark.parametrize(
    "collect",
    [
        pytest.param(lambda ex, box: ex.submit(_work, box, 1).result(T), id="result"),
        pytest.param(lambda ex, box: ex.submit(_work, box, 1).exception(T), id="exception"),
        pytest.param(lambda ex, box: list(ex.map(_work, [box], [1], timeout=T)), id="map"),
        pytest.param(
            lambda ex, box: list(cf.as_completed([ex.submit(_work, box, 1)], T)),
            id="as_completed",
        ),
        pytest.param(lambda ex, box: cf.wait([ex.submit(_work, box, 1)], T), id="wait"),
    ],
)
def test_clean_program_reads_after_the_result_is_handed_over(recording, collect):
    """A write in the task and a read after collecting the result are ordered by an edge."""
    path = recording()
    box = tracelens.watch({}, "box")
    with cf.ThreadPoolExecutor(1) as ex:
        collect(ex, box)
        box.get("v")
    tracelens.shutdown()

    events = read_trace(path)
    w, r = accesses(events, "box['v']")
    assert separated(events, w, r)


def test_racy_twin_reads_before_the_result(recording):
    """Reading what the task writes before collecting the result leaves them unordered."""
    path = recording()
    box = tracelens.watch({}, "box")
    started = threading.Event()
    go = threading.Event()

    def task():
        started.set()
        go.wait(T)
        box["v"] = 1

    with cf.ThreadPoolExecutor(1) as ex:
        f = ex.submit(task)
        started.wait(T)
        box.get("v")
        go.set()
        f.result(T)
    tracelens.shutdown()

    events = read_trace(path)
    w, r = accesses(events, "box['v']")
    assert not separated(events, w, r)


def test_task_exception_is_handed_over_by_result(recording):
    """result() that raises the task's exception still receives (the task ended)."""
    path = recording()

    def boom():
        raise ValueError("boom")

    with cf.ThreadPoolExecutor(1) as ex:
        f = ex.submit(boom)
        with pytest.raises(ValueError, match="boom"):
            f.result(T)
    tracelens.shutdown()

    events = [e for e in _future_events(path) if e["event"] != "wait"]
    assert [e["event"] for e in events] == ["send", "recv", "send", "recv"]


def test_timed_out_result_receives_nothing(recording):
    """A result() that times out records its wait, and no recv."""
    path = recording()
    f = cf.Future()
    with pytest.raises(cf.TimeoutError):
        f.result(0.01)
    tracelens.shutdown()

    assert [e["event"] for e in _future_events(path)] == ["wait"]


def test_done_callback_receives_the_result(recording):
    """A callback the program adds starts with a recv of the future's end."""
    path = recording()
    box = tracelens.watch({}, "box")
    seen = threading.Event()
    f = cf.Future()
    f.add_done_callback(lambda fut: (box.get("v"), seen.set()))

    def finish():
        box["v"] = 1
        f.set_result(None)

    t = threading.Thread(target=finish)
    t.start()
    t.join(T)
    assert seen.wait(T)
    tracelens.shutdown()

    events = read_trace(path)
    w, r = accesses(events, "box['v']")
    assert separated(events, w, r)


def test_process_pool_records_the_parents_side(recording):
    """A process pool's submit sends and result() receives, in the parent."""
    path = recording()
    with cf.ProcessPoolExecutor(1) as ex:
        assert ex.submit(abs, -3).result(30) == 3
    tracelens.shutdown()

    events = [e for e in _future_events(path) if e["pid"] == os.getpid()]
    submit = events[0]
    result = [e for e in events if e["event"] == "recv"][-1]
    assert (submit["event"], submit["unit"]) == ("send", "t0") and "msg" in submit
    assert (result["event"], result["unit"]) == ("recv", "t0")
    assert submit["obj"] == result["obj"]
