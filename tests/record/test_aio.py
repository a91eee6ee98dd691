"""asyncio: tasks are units (fork/begin/end/join), and its primitives record hand-off edges."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import tracelens
from tests.helpers import read_trace
from tests.record.handoff import accesses, matches, mine, separated

T = 5


def _run(main: Callable[[], Any]) -> None:
    asyncio.run(asyncio.wait_for(main(), T))
    tracelens.shutdown()


def _units(path, obj):
    return [(e["event"], e["unit"]) for e in read_trace(path) if e.get("obj") == obj]


class TestTasks:
    def test_create_task_forks_and_awaiting_it_joins(self, recording):
        """Parent: fork a<n> (before the child runs) … wait … join; child: begin … end."""
        path = recording()
        box = tracelens.watch({}, "box")

        async def child():
            box["v"] = 1

        async def main():
            t = asyncio.create_task(child())
            await t
            box.get("v")

        _run(main)
        events = read_trace(path)
        (write,) = [e for e in events if e.get("var") == "box['v']" and e["event"] == "write"]
        child_unit = write["unit"]
        assert child_unit.startswith("a")
        ops = [op for op, _ in _units(path, child_unit)]
        assert ops == ["fork", "wait", "begin", "end", "join"]
        parent = {u for op, u in _units(path, child_unit) if op in ("fork", "join")}
        assert len(parent) == 1 and parent != {child_unit}

    @pytest.mark.parametrize("how", ["gather", "taskgroup"])
    def test_gather_and_taskgroup_join_every_child(self, recording, how):
        """After gather() or a TaskGroup, every child's end precedes a join in the parent."""
        path = recording()

        async def child():
            await asyncio.sleep(0)

        async def main():
            if how == "gather":
                await asyncio.gather(child(), child())
            else:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(child())
                    tg.create_task(child())

        _run(main)
        events = read_trace(path)
        ends = [e for e in events if e["event"] == "end" and e["obj"].startswith("a")]
        children = [e["obj"] for e in ends if e.get("func") == "child"]
        assert len(children) == 2
        for unit in children:
            end = next(e for e in ends if e["obj"] == unit)
            joins = [e for e in events if e["event"] == "join" and e["obj"] == unit]
            assert len(joins) == 1 and end["seq"] < joins[0]["seq"]

    def test_task_events_carry_the_task_and_its_name(self, recording):
        """Inside a task every event has the task's unit and name."""
        path = recording()
        box = tracelens.watch({}, "box")

        async def main():
            box["x"] = 1

        async def outer():
            await asyncio.create_task(main(), name="worker")

        _run(outer)
        (w,) = [e for e in read_trace(path) if e.get("var") == "box['x']"]
        assert w["task"] == "worker" and w["unit"].startswith("a")


async def _lost_update(box, *, lock: asyncio.Lock | None) -> None:
    async def bump():
        if lock is None:
            v = box["n"]
            await asyncio.sleep(0)
            box["n"] = v + 1
        else:
            async with lock:
                v = box["n"]
                await asyncio.sleep(0)
                box["n"] = v + 1

    await asyncio.gather(bump(), bump())


class TestLostUpdateAcrossAwait:
    def test_racy_version_interleaves_the_two_tasks(self, recording):
        """Both tasks read before either writes: the lost update is in the trace."""
        path = recording()
        box = tracelens.watch({"n": 0}, "box")

        async def main():
            await _lost_update(box, lock=None)

        _run(main)
        ops = [(e["event"], e["unit"]) for e in read_trace(path) if e.get("var") == "box['n']"]
        assert [op for op, _ in ops] == ["read", "read", "write", "write"]
        assert ops[0][1] != ops[1][1]
        assert box["n"] == 1

    def test_asyncio_lock_orders_the_two_critical_sections(self, recording):
        """With an asyncio.Lock: acquire, read, write, release per task, one after the other."""
        path = recording()
        box = tracelens.watch({"n": 0}, "box")

        async def main():
            await _lost_update(box, lock=asyncio.Lock())

        _run(main)
        events = [
            e
            for e in read_trace(path)
            if e.get("var") == "box['n']" or e["event"] in ("acquire", "release", "acquire_try")
        ]
        per_task = [e["event"] for e in events if e["event"] != "acquire_try"]
        assert per_task == ["acquire", "read", "write", "release"] * 2
        assert not any(e.get("internal") for e in events)
        assert events[0]["obj"].startswith("asyncio.Lock@test_aio.py:")
        assert "acquire_try" in [e["event"] for e in events]  # the second task had to wait


# -- hand-off primitives: clean program and racy twin ----------------------------------------
async def _cond_handoff(box, racy):
    cond = asyncio.Condition()

    async def producer():
        async with cond:
            if not racy:
                box["v"] = 1
            cond.notify()
        if racy:
            box["v"] = 1

    async with cond:
        t = asyncio.create_task(producer())
        await cond.wait()
    box.get("v")
    await t


def _simple(make, send, recv):
    async def scenario(box, racy):
        h = make()

        async def producer():
            if not racy:
                box["v"] = 1
            await send(h)
            await asyncio.sleep(0)
            if racy:
                box["v"] = 1

        t = asyncio.create_task(producer())
        await recv(h)
        box.get("v")
        await asyncio.sleep(0)
        await t

    return scenario


async def _set(ev):
    ev.set()


async def _release(sem):
    sem.release()


SCENARIOS = {
    "Event": _simple(asyncio.Event, _set, lambda ev: ev.wait()),
    "Queue": _simple(asyncio.Queue, lambda q: q.put("x"), lambda q: q.get()),
    "LifoQueue": _simple(asyncio.LifoQueue, lambda q: q.put("x"), lambda q: q.get()),
    "Semaphore": _simple(lambda: asyncio.Semaphore(0), _release, lambda m: m.acquire()),
    "Condition": _cond_handoff,
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_clean_handoff_orders_write_before_read(recording, name):
    """Write, hand-off, read across two tasks: a send→recv edge orders them."""
    path = recording()
    box = tracelens.watch({}, "box")

    async def main():
        await SCENARIOS[name](box, False)

    _run(main)
    events = read_trace(path)
    w, r = accesses(events, "box['v']")
    assert w["unit"] != r["unit"]
    assert separated(events, w, r)
    sends = [e for e in mine(events, "send") if e["unit"] == w["unit"]]
    assert sends[0]["obj"].startswith(f"asyncio.{name}@test_aio.py:")


@pytest.mark.parametrize("name", SCENARIOS)
def test_racy_twin_leaves_write_and_read_unordered(recording, name):
    """Hand-off, then write: no send→recv edge orders the write and the read."""
    path = recording()
    box = tracelens.watch({}, "box")

    async def main():
        await SCENARIOS[name](box, True)

    _run(main)
    events = read_trace(path)
    w, r = accesses(events, "box['v']")
    assert not separated(events, w, r)
    assert not separated(events, r, w)


def test_queue_msgs_match_in_asyncio(recording):
    """Each get's recv has its item's put's msg."""
    path = recording()

    async def main():
        q = asyncio.Queue()
        for i in range(3):
            q.put_nowait(i)
        for _ in range(3):
            await q.get()

    _run(main)
    events = mine(read_trace(path), "send", "recv")
    sends, recvs = events[:3], events[3:]
    assert [e["msg"] for e in sends] == [e["msg"] for e in recvs]
    assert all(matches(s, r) for s, r in zip(sends, recvs, strict=True))


@pytest.mark.parametrize("how", ["to_thread", "run_in_executor"])
def test_thread_work_is_handed_back_to_the_awaiting_task(recording, how):
    """The worker's write is ordered before the task's read after the await returns."""
    path = recording()
    box = tracelens.watch({}, "box")

    def work():
        box["v"] = 1

    async def main():
        if how == "to_thread":
            await asyncio.to_thread(work)
        else:
            await asyncio.get_running_loop().run_in_executor(None, work)
        box.get("v")

    _run(main)
    events = read_trace(path)
    w, r = accesses(events, "box['v']")
    assert w["unit"].startswith("t") and r["unit"].startswith("a")
    assert separated(events, w, r)


def test_shutdown_restores_asyncio(recording):
    """After shutdown, tasks are plain asyncio tasks and nothing is recorded."""
    from asyncio import tasks

    original = tasks.Task
    path = recording()
    assert tasks.Task is not original
    tracelens.shutdown()
    assert tasks.Task is original

    async def main():
        await asyncio.create_task(asyncio.sleep(0))

    asyncio.run(main())
    assert [e for e in read_trace(path) if e["event"] in ("fork", "join")] == []


def test_the_recorded_task_class_adds_only_its_awaiting(recording):
    """While recording, asyncio's Task is a plain subclass of the original: one base, no
    ``__orig_bases__``, nothing but ``__await__``/``__iter__`` of its own."""
    from asyncio import tasks

    original = tasks.Task
    recording()

    assert tasks.Task.__bases__ == (original,)
    assert sorted(vars(tasks.Task)) == ["__await__", "__doc__", "__iter__", "__module__"]
