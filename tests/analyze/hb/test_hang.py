"""Hangs with no lock cycle: every live unit waits on what nothing will signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tracelens.analyze import analyze, load

HUNG = """
import threading
go = threading.Event()

def worker():
    go.wait()

t = threading.Thread(target=worker)
t.start()
{main}
t.join()
"""

DAEMON = """
import threading
go = threading.Event()
t = threading.Thread(target=go.wait, daemon=True)
t.start()
print("done")
"""

DEADLOCK = """
import threading, time
a, b = threading.Lock(), threading.Lock()

def one():
    with a:
        time.sleep(0.2)
        with b:
            pass

def two():
    with b:
        time.sleep(0.2)
        with a:
            pass

ts = [threading.Thread(target=one), threading.Thread(target=two)]
for t in ts:
    t.start()
for t in ts:
    t.join()
"""


def _record(tmp: Path, source: str, *, hangs: bool) -> list[str]:
    """Run ``source`` under tracelens run (SIGTERM after 2 s if it hangs); the finding kinds."""
    (tmp / "app.py").write_text(source)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracelens", "run", "--no-instrument", "-o", "t.jsonl", "app.py"],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if hangs:
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return sorted(f.kind for f in analyze(load(tmp / "t.jsonl"), only=["predictive"]).findings)


def test_a_run_that_hangs_on_an_event_nobody_sets_is_a_hang(tmp_path: Path) -> None:
    """The worker waits on an event, main joins it, nothing else runs: one hang."""
    assert _record(tmp_path, HUNG.format(main=""), hangs=True) == ["hang"]


def test_the_same_program_that_sets_the_event_is_no_hang(tmp_path: Path) -> None:
    """With go.set() before the join the run ends: no hang (the twin)."""
    assert "hang" not in _record(tmp_path, HUNG.format(main="go.set()"), hangs=False)


def test_daemon_threads_waiting_at_a_normal_exit_are_no_hang(tmp_path: Path) -> None:
    """A finished program's daemon thread still waiting on its event is not reported."""
    assert "hang" not in _record(tmp_path, DAEMON, hangs=False)


def test_a_lock_cycle_is_a_deadlock_not_a_hang(tmp_path: Path) -> None:
    """Two threads blocked on each other's locks, main joining them: deadlock, no hang."""
    kinds = _record(tmp_path, DEADLOCK, hangs=True)
    assert "deadlock" in kinds and "hang" not in kinds


def test_a_deadlock_also_reports_the_lock_order_inversion_behind_it(tmp_path: Path) -> None:
    """The deadlocked pair's opposite lock orders are a lock_order_inversion too."""
    kinds = _record(tmp_path, DEADLOCK, hangs=True)
    assert kinds.count("lock_order_inversion") == 1


AIO_HUNG = """
import asyncio

async def waiter(ev):
    await ev.wait()

async def getter(q):
    await q.get()

async def main():
    ev, q = asyncio.Event(), asyncio.Queue()
    done = asyncio.get_running_loop().create_future()
    tasks = [asyncio.create_task(waiter(ev)), asyncio.create_task(getter(q))]
    await asyncio.sleep(0)  # both wait now
    {main}
    print("ready", flush=True)
    await done
    await asyncio.gather(*tasks)

asyncio.run(main())
"""

AIO_LEFT_PENDING = """
import asyncio

async def waiter(ev):
    await ev.wait()

async def main():
    asyncio.create_task(waiter(asyncio.Event()))
    await asyncio.sleep(0)

loop = asyncio.new_event_loop()
loop.run_until_complete(main())
print("done")
"""


def _hang_of(tmp: Path, source: str, *, hangs: bool) -> list[object]:
    """Run ``source``; if it hangs, SIGTERM once it printed "ready" (however slow its start)."""
    (tmp / "app.py").write_text(source)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracelens", "run", "--no-instrument", "-o", "t.jsonl", "app.py"],
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    if hangs:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # from the print to the loop's select
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    return [f for f in analyze(load(tmp / "t.jsonl"), only=["hang"]).findings]


def test_an_asyncio_loop_whose_tasks_all_wait_on_what_nobody_sets_is_a_hang(
    tmp_path: Path,
) -> None:
    """Tasks awaiting an Event, a Queue and a Future nothing completes, the loop stuck: one
    hang naming each waiting task's site."""
    (f,) = _hang_of(tmp_path, AIO_HUNG.format(main=""), hangs=True)
    assert f.kind == "hang"  # type: ignore[attr-defined]
    text = f.explanation  # type: ignore[attr-defined]
    for obj, line in (("asyncio.Future", 17), ("asyncio.Event", 5), ("asyncio.Queue", 8)):
        assert f"waits on {obj}@app.py:" in text and f"app.py:{line}" in text
    assert "the event loop of thread MainThread had no task that could run" in text


def test_the_asyncio_program_that_sets_them_later_is_no_hang(tmp_path: Path) -> None:
    """The twin: the main task sets the event, puts on the queue and completes the future
    after the others wait: the run ends, no hang."""
    setter = (
        "ev.set(); q.put_nowait(1); asyncio.get_running_loop().call_soon(done.set_result, None)"
    )
    assert _hang_of(tmp_path, AIO_HUNG.format(main=setter), hangs=False) == []


def test_a_loop_that_returned_with_a_task_left_waiting_is_no_hang(tmp_path: Path) -> None:
    """run_until_complete returned (its main task ended) with a task still waiting on an
    event: the program went on and finished, no hang."""
    assert _hang_of(tmp_path, AIO_LEFT_PENDING, hangs=False) == []
