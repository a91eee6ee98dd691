"""threading and queue hand-offs: each records its own send→recv edge, in the right order."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import tracelens
from tests.helpers import read_trace
from tests.record.handoff import accesses, matches, mine, separated

T = 5  # seconds: the longest any wait in these tests may take


# -- one scenario per primitive: the producer writes, hands off; the consumer receives, reads --
@dataclass
class Prim:
    name: str
    make: Callable[[], Any]
    send: Callable[[Any], Any]
    recv: Callable[[Any, Callable[[], None]], Any]  # (obj, start_producer)
    kind: str

    def __repr__(self) -> str:
        return self.name


def _start_then(fn: Callable[[Any], Any]) -> Callable[[Any, Callable[[], None]], Any]:
    def recv(h: Any, start: Callable[[], None]) -> Any:
        start()
        return fn(h)

    return recv


def _cond_recv(c: threading.Condition, start: Callable[[], None]) -> None:
    # The producer needs the lock to notify, and wait() releases it: the wake-up is sure.
    with c:
        start()
        assert c.wait(T)


def _cond_send(c: threading.Condition) -> None:
    with c:
        c.notify()


def _bounded() -> threading.BoundedSemaphore:
    b = threading.BoundedSemaphore(1)
    b.acquire()
    return b


PRIMS = [
    Prim("Event", threading.Event, lambda e: e.set(), _start_then(lambda e: e.wait(T)), "event"),
    Prim("Condition", threading.Condition, _cond_send, _cond_recv, "condition"),
    Prim(
        "Semaphore",
        lambda: threading.Semaphore(0),
        lambda m: m.release(),
        _start_then(lambda m: m.acquire(timeout=T)),
        "semaphore",
    ),
    Prim(
        "BoundedSemaphore",
        _bounded,
        lambda m: m.release(),
        _start_then(lambda m: m.acquire(timeout=T)),
        "semaphore",
    ),
    Prim(
        "Barrier",
        lambda: threading.Barrier(2),
        lambda b: b.wait(T),
        _start_then(lambda b: b.wait(T)),
        "barrier",
    ),
    Prim(
        "Queue",
        queue.Queue,
        lambda q: q.put("x"),
        _start_then(lambda q: q.get(timeout=T)),
        "queue",
    ),
    Prim(
        "LifoQueue",
        queue.LifoQueue,
        lambda q: q.put("x"),
        _start_then(lambda q: q.get(timeout=T)),
        "queue",
    ),
    Prim(
        "PriorityQueue",
        queue.PriorityQueue,
        lambda q: q.put((1, "x")),
        _start_then(lambda q: q.get(timeout=T)),
        "queue",
    ),
    Prim(
        "SimpleQueue",
        lambda: queue.SimpleQueue(),
        lambda q: q.put("x"),
        _start_then(lambda q: q.get(timeout=T)),
        "queue",
    ),
]


def _run(prim: Prim, *, racy: bool) -> list[dict[str, Any]]:
    """Producer thread writes box['v'] and hands off; the main thread receives and reads.

    The racy twin writes *after* the hand-off.
    """
    box = tracelens.watch({}, "box")
    h = prim.make()

    def producer() -> None:
        if not racy:
            box["v"] = 1
        prim.send(h)
        if racy:
            box["v"] = 1

    t = threading.Thread(target=producer)
    prim.recv(h, t.start)
    box.get("v")
    t.join(T)
    assert not t.is_alive()
    tracelens.shutdown()


@pytest.mark.parametrize("prim", PRIMS, ids=repr)
def test_handoff_edge_goes_from_sender_to_receiver(recording, prim):
    """The producer's send precedes the consumer's matching recv, on the primitive's object."""
    path = recording()
    _run(prim, racy=False)
    events = read_trace(path)

    sends = [e for e in mine(events, "send") if e["kind"] == prim.kind and e["unit"] != "t0"]
    recvs = [e for e in mine(events, "recv") if e["kind"] == prim.kind and e["unit"] == "t0"]
    assert sends and recvs
    assert any(matches(s, r) for s in sends for r in recvs)
    assert sends[0]["obj"].startswith(f"{prim.name}@test_sync.py:")


@pytest.mark.parametrize("prim", PRIMS, ids=repr)
def test_clean_program_separates_its_accesses_by_the_handoff(recording, prim):
    """Write, hand-off, read: the write and the read are ordered by a send→recv edge."""
    path = recording()
    _run(prim, racy=False)
    events = read_trace(path)

    w, r = accesses(events, "box['v']")
    assert separated(events, w, r)


@pytest.mark.parametrize("prim", PRIMS, ids=repr)
def test_racy_twin_leaves_its_accesses_unordered(recording, prim):
    """Hand-off, then write: no send→recv edge orders the write and the read either way."""
    path = recording()
    _run(prim, racy=True)
    events = read_trace(path)

    w, r = accesses(events, "box['v']")
    assert not separated(events, w, r)
    assert not separated(events, r, w)


# -- Event ---------------------------------------------------------------------------------
class TestEvent:
    def test_wait_that_times_out_records_wait_and_no_recv(self, recording):
        """wait() is recorded before blocking; a timed-out wait received nothing."""
        path = recording()
        ev = threading.Event()
        assert not ev.wait(0.01)
        tracelens.shutdown()

        assert [e["event"] for e in mine(read_trace(path), "wait", "recv")] == ["wait"]

    def test_is_set_returning_true_is_a_recv(self, recording):
        """Polling is_set() until it is true receives the set (is_set false records nothing)."""
        path = recording()
        ev = threading.Event()
        assert not ev.is_set()
        ev.set()
        assert ev.is_set()
        tracelens.shutdown()

        assert [e["event"] for e in mine(read_trace(path), "send", "recv")] == ["send", "recv"]

    def test_thread_start_records_no_handoff(self, recording):
        """The event Thread uses internally to start is the standard library's own."""
        path = recording()
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join(T)
        tracelens.shutdown()

        assert [e for e in read_trace(path) if e["event"] in ("send", "recv")] == []


# -- Condition -----------------------------------------------------------------------------
class TestCondition:
    def test_wait_releases_and_reacquires_the_lock_around_the_wakeup(self, recording):
        """The waiter records wait, release, (notify elsewhere), acquire, recv in that order."""
        path = recording()
        c = threading.Condition()
        t = threading.Thread(target=_cond_send, args=(c,))
        _cond_recv(c, t.start)
        t.join(T)
        tracelens.shutdown()

        events = mine(read_trace(path), "wait", "acquire", "release", "send", "recv")
        waiter = [e["event"] for e in events if e["unit"] == "t0"]
        assert waiter == ["acquire", "wait", "release", "acquire", "recv", "release"]
        (notify,) = [e for e in events if e["event"] == "send"]
        (wake,) = [e for e in events if e["event"] == "recv"]
        assert notify["seq"] < wake["seq"]
        assert notify["count"] == 1

    def test_own_rlock_is_the_programs_lock_not_internal(self, recording):
        """Condition() makes an RLock that the program takes: it is not marked internal."""
        path = recording()
        c = threading.Condition()
        with c:
            pass
        tracelens.shutdown()

        (acq,) = [e for e in read_trace(path) if e["event"] == "acquire"]
        assert acq["obj"].startswith("RLock@test_sync.py:")
        assert not acq.get("internal")

    def test_semaphores_condition_and_lock_are_internal(self, recording):
        """A Semaphore's own Condition records no hand-off; its Lock is marked internal."""
        path = recording()
        m = threading.Semaphore(1)
        m.acquire()
        m.release()
        tracelens.shutdown()

        events = read_trace(path)
        assert {"condition"}.isdisjoint({e.get("kind") for e in events})
        locks = [e for e in events if e["event"] in ("acquire", "release")]
        assert locks and all(e.get("internal") for e in locks)

    def test_notify_all_counts_the_waiters(self, recording):
        """notify_all is one send whose count is the number of waiters woken."""
        path = recording()
        c = threading.Condition()
        with c:
            c.notify_all()
        tracelens.shutdown()

        (send,) = mine(read_trace(path), "send")
        assert send["count"] == 0

    def test_user_lock_is_used_and_named_at_its_own_line(self, recording):
        """Condition(lock) records its wait on the program's lock."""
        path = recording()
        lock = threading.Lock()
        c = threading.Condition(lock)
        with c:
            assert not c.wait(0.01)
        tracelens.shutdown()

        events = mine(read_trace(path), "acquire", "release", "wait")
        assert [e["event"] for e in events] == ["acquire", "wait", "release", "acquire", "release"]
        assert {e["obj"] for e in events if e["event"] != "wait"} == {events[0]["obj"]} and events[
            0
        ]["obj"].startswith("Lock@")


# -- Semaphore -----------------------------------------------------------------------------
class TestSemaphore:
    def test_failed_acquire_records_nothing(self, recording):
        """A non-blocking acquire that fails receives nothing."""
        path = recording()
        m = threading.Semaphore(0)
        assert not m.acquire(blocking=False)
        tracelens.shutdown()

        assert mine(read_trace(path), "send", "recv", "wait") == []

    def test_release_n_records_the_count(self, recording):
        """release(n) is one send with count n; with-statement acquires are recvs."""
        path = recording()
        m = threading.Semaphore(0)
        m.release(2)
        with m:
            pass
        tracelens.shutdown()

        events = mine(read_trace(path), "send", "recv")
        assert [(e["event"], e.get("count")) for e in events] == [
            ("send", 2),
            ("recv", None),
            ("send", 1),
        ]

    def test_bounded_over_release_raises_and_sends_nothing(self, recording):
        """An over-release raises ValueError as usual and hands nothing over."""
        path = recording()
        b = threading.BoundedSemaphore(1)
        with pytest.raises(ValueError):
            b.release()
        tracelens.shutdown()

        assert mine(read_trace(path), "send") == []


# -- Barrier -------------------------------------------------------------------------------
def test_barrier_recvs_follow_every_send_of_their_generation(recording):
    """Every party's arrival is a send with msg = generation; each return follows them all."""
    path = recording()
    b = threading.Barrier(3)

    def party() -> None:
        for _ in range(2):
            b.wait(T)

    threads = [threading.Thread(target=party) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T)
    tracelens.shutdown()

    events = mine(read_trace(path), "send", "recv")
    for gen in (0, 1):
        sends = [e for e in events if e["event"] == "send" and e["msg"] == gen]
        recvs = [e for e in events if e["event"] == "recv" and e["msg"] == gen]
        assert 3 == len(sends) == len(recvs)
        assert max(e["seq"] for e in sends) < min(e["seq"] for e in recvs)
        assert {3} == {e["count"] for e in sends + recvs}


# -- queues ----------------------------------------------------------------------------------
class TestQueue:
    @pytest.mark.parametrize(
        "factory",
        # Looked up when called: configure() replaces queue.SimpleQueue.
        [queue.Queue, queue.LifoQueue, queue.PriorityQueue, lambda: queue.SimpleQueue()],
        ids=["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"],
    )
    def test_each_get_carries_the_msg_of_the_put_of_its_item(self, recording, factory):
        """get() returns the user's item unchanged, and its recv has that item's put's msg."""
        path = recording()
        q = factory()
        items = [(3, object()), (1, object()), (2, object())]
        for it in items:
            q.put(it)
        got = [q.get(timeout=T) for _ in items]
        tracelens.shutdown()

        assert sorted(map(id, got)) == sorted(map(id, items))
        events = mine(read_trace(path), "send", "recv")
        sends = {id(it): e for it, e in zip(items, events[:3], strict=True)}
        for it, recv in zip(got, events[3:], strict=True):
            assert recv["event"] == "recv"
            assert recv["msg"] == sends[id(it)]["msg"]

    def test_the_same_object_put_twice_is_two_messages(self, recording):
        """A sentinel put twice gives two sends with different msgs, received in order."""
        path = recording()
        q = queue.Queue()
        q.put(None)
        q.put(None)
        q.get()
        q.get()
        tracelens.shutdown()

        events = mine(read_trace(path), "send", "recv")
        assert [e["msg"] for e in events[:2]] == [e["msg"] for e in events[2:]]
        assert len({e["msg"] for e in events}) == 2

    def test_queue_attribute_holds_the_users_items(self, recording):
        """q.queue (which programs peek at) holds the items themselves, not wrappers."""
        recording()
        q = queue.Queue()
        item = object()
        q.put(item)
        assert q.queue[0] is item

    def test_task_done_and_join_are_a_handoff(self, recording):
        """task_done sends, join receives after it (with a wait when it had to block)."""
        path = recording()
        q = queue.Queue()
        box = tracelens.watch({}, "box")

        def worker() -> None:
            q.get(timeout=T)
            box["done"] = True
            q.task_done()

        q.put(1)
        t = threading.Thread(target=worker)
        t.start()
        q.join()
        box.get("done")
        t.join(T)
        tracelens.shutdown()

        events = read_trace(path)
        w, r = accesses(events, "box['done']")
        assert separated(events, w, r)

    def test_simple_queue_isinstance_holds_before_and_after_configure(self, recording):
        """Replacing queue.SimpleQueue keeps isinstance working for old and new queues."""
        old = queue.SimpleQueue()
        recording()
        new = queue.SimpleQueue()
        assert isinstance(old, queue.SimpleQueue) and isinstance(new, queue.SimpleQueue)
        tracelens.shutdown()
        assert isinstance(new, queue.SimpleQueue)

    def test_get_that_blocks_records_wait_first(self, recording):
        """An empty queue's blocking get records wait before it blocks."""
        path = recording()
        for q in (queue.Queue(), queue.SimpleQueue()):
            with pytest.raises(queue.Empty):
                q.get(timeout=0.01)
        tracelens.shutdown()

        assert [e["event"] for e in mine(read_trace(path), "wait", "recv")] == ["wait", "wait"]


def test_shutdown_restores_the_primitives(recording):
    """After shutdown the classes are the standard library's again and record nothing."""
    originals = (threading.Event.set, threading.Condition.wait, queue.Queue.put, queue.SimpleQueue)
    path = recording()
    assert threading.Event.set is not originals[0]
    tracelens.shutdown()
    assert originals == (
        threading.Event.set,
        threading.Condition.wait,
        queue.Queue.put,
        queue.SimpleQueue,
    )
    ev = threading.Event()
    ev.set()
    assert mine(read_trace(path), "send") == []
