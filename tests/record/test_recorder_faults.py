"""Faults inside the recorder leave the program's state as it would be without tracelens."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import pytest

import tracelens
from tests.helpers import read_trace
from tracelens.record import locks


def _raise_on(op):
    real = locks.record

    def record(o, *args, **kwargs):
        if o == op:
            raise KeyboardInterrupt
        return real(o, *args, **kwargs)

    return record


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
@pytest.mark.parametrize("how", ["with", "acquire"])
def test_an_interrupt_while_recording_an_acquire_leaves_the_lock_free(
    recording, monkeypatch, kind, how
):
    """KeyboardInterrupt raised in the recording of an acquire: the acquire raises, unheld."""
    recording()
    lock = getattr(threading, kind)()  # the recorded factory, looked up once recording
    monkeypatch.setattr(locks, "record", _raise_on("acquire"))

    with pytest.raises(KeyboardInterrupt):
        if how == "with":
            with lock:
                pass
        else:
            lock.acquire()
    monkeypatch.undo()

    assert lock.acquire(False)  # free: another acquire gets it at once
    lock.release()
    if kind == "RLock":
        with pytest.raises(RuntimeError):
            lock.release()  # and not held twice over


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_an_interrupt_while_recording_a_release_still_releases(recording, monkeypatch, kind):
    """KeyboardInterrupt raised in the recording of a release: the lock is released anyway."""
    recording()
    lock = getattr(threading, kind)()  # the recorded factory, looked up once recording
    lock.acquire()
    monkeypatch.setattr(locks, "record", _raise_on("release"))

    with pytest.raises(KeyboardInterrupt):
        lock.release()
    monkeypatch.undo()

    probe = threading.Thread(target=lambda: box.append(lock.acquire(False)))
    box: list[bool] = []
    probe.start()
    probe.join()
    assert box == [True]


def test_a_forked_child_that_leaves_with_os_exit_keeps_its_events(recording):
    """Events a forked child buffered before os._exit(0) are in the trace."""
    path = recording()
    pid = os.fork()
    if pid == 0:  # the child: one event, then leave without atexit
        tracelens.write("child_var", value=1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    tracelens.shutdown()

    assert status == 0
    assert [e["pid"] for e in read_trace(path) if e.get("var") == "child_var"] == [pid]


def test_a_watched_dict_never_calls_the_repr_of_a_tuple_keys_parts(recording):
    """A tuple key holding an object whose __repr__ raises: the write works and is named safely."""

    class Loud:
        def __hash__(self):
            return 1

        def __repr__(self):
            raise RuntimeError("user code ran")

    path = recording()
    d = tracelens.watch({}, "d")
    d[(1, Loud())] = "v"
    tracelens.shutdown()

    writes = [e["var"] for e in read_trace(path) if e["event"] == "write"]
    assert writes == ["d[(1, <Loud>)]", "d"]  # the item, then the key set


_PROGRAM = """
import os, sys, threading
import tracelens
tracelens.configure(sys.argv[1])
if sys.argv[2] == "close":
    os.close(tracelens.record._core.STATE.sink._fd)  # the program closes every descriptor
lock = threading.Lock()
d = tracelens.watch({"n": 0}, "d")
for _ in range(5000):
    with lock:
        d["n"] += 1
tracelens.flush()
print("n =", d["n"])
sys.exit(3)
"""


@pytest.mark.parametrize(
    ("where", "how"),
    [
        ("missing/dir/t.jsonl", "open"),  # a directory that does not exist
        (".", "open"),  # a directory as the path
        ("/etc/passwd/t.jsonl", "open"),  # a file as a directory
        ("/dev/full", "open"),  # every write fails: disk full
        ("t.jsonl", "close"),  # the descriptor closed under the recorder
    ],
)
def test_a_trace_that_cannot_be_written_leaves_the_programs_output_and_status(tmp_path, where, how):
    """An unwritable trace: the program prints and exits as plain; stderr says so once."""
    run = subprocess.run(
        [sys.executable, "-c", _PROGRAM, where, how],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )

    assert (run.stdout, run.returncode) == ("n = 5000\n", 3)
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracelens: cannot write the trace to ")


def test_no_event_is_lost_to_a_flush_racing_the_recording_thread(tmp_path):
    """Four threads recording while the flusher swaps their buffers every 0.1 ms lose nothing."""
    path = tmp_path / "t.jsonl"
    interval = sys.getswitchinterval()
    tracelens.configure(path, stress=True, flush_interval=0.0001, buffer_size=100_000)
    try:
        per = 20_000

        def work(i):
            for n in range(per):
                tracelens.write(f"v{i}", value=n)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        tracelens.shutdown()
        sys.setswitchinterval(interval)

    writes = [e for e in read_trace(path) if e["event"] == "write"]
    assert len(writes) == 4 * per


def test_a_string_with_surrogates_does_not_stop_recording(recording):
    """A value and a thread name holding lone surrogates are written escaped; recording goes on."""
    path = recording()
    tracelens.write("name", value="caf\udce9")
    t = threading.Thread(target=lambda: tracelens.write("in_thread", value=1), name="w\udc80")
    t.start()
    t.join()
    tracelens.write("after", value=2)
    tracelens.shutdown()

    events = {e.get("var"): e for e in read_trace(path) if e["event"] == "write"}
    assert events["name"]["value"] == "caf\\udce9"
    assert events["in_thread"]["thread"] == "w\\udc80"
    assert events["after"]["value"] == 2


def _strict(line: str) -> dict:
    def pairs(items):
        keys = [k for k, _ in items]
        assert len(keys) == len(set(keys)), f"duplicate keys in {line}"
        return dict(items)

    return json.loads(line, object_pairs_hook=pairs)


def test_every_recorded_line_parses_with_a_parser_that_rejects_duplicate_keys(recording):
    """Threads, asyncio tasks and locks give lines with each key once (begin had two sites)."""
    path = recording()
    lock = threading.Lock()

    def work():
        with lock:
            tracelens.write("x", value=1)

    t = threading.Thread(target=work)
    t.start()
    t.join()

    async def main():
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))

    asyncio.run(main())
    tracelens.shutdown()

    events = [_strict(ln) for ln in path.read_text().splitlines()]
    begins = [e for e in events if e["event"] == "begin" and e["obj"].startswith("t")]
    assert begins and begins[0]["func"] == "work"


def _program_handler():
    raise TimeoutError("the program's alarm")


def _prefix_that_raises(sink, after, handler):
    """Make the sink's per-site prefix call ``handler`` on its ``after``-th call, once."""
    real = sink._prefix
    calls = [0]

    def prefix(*args):
        calls[0] += 1
        if calls[0] == after:
            handler()
        return real(*args)

    sink._prefix = prefix


@pytest.mark.parametrize("after", [1, 900])
def test_a_signal_handlers_exception_during_a_flush_reaches_the_program_and_loses_nothing(
    recording, after
):
    """A signal handler's exception during a flush is the program's; each event is written once."""
    from tracelens.record import _core

    # no stacks: their definitions would share the buffer, which fills after 1000 events
    path = recording(buffer_size=1000, flush_interval=60, stack_depth=0)
    _prefix_that_raises(_core.STATE.sink, after, _program_handler)
    raised = []
    for n in range(3000):
        try:
            tracelens.write(f"v{n}", value=n)  # a new site each time: a prefix per event
        except TimeoutError as exc:
            raised.append((n, str(exc)))
    tracelens.shutdown()

    values = [e["value"] for e in read_trace(path) if e["event"] == "write"]
    assert (raised, sorted(values)) == ([(999, "the program's alarm")], list(range(3000)))


def test_an_exception_from_the_recorders_own_code_during_a_flush_stops_recording_quietly(
    recording, capfd
):
    """A failure inside the recorder while writing is not raised: one stderr line, no exception."""
    from tracelens.record import _core, _sink

    namespace: dict = {}
    exec(
        compile("def bug():\n    raise RuntimeError('bug')\n", _sink.__file__, "exec"),
        namespace,
    )
    recording(buffer_size=10, flush_interval=60)
    _prefix_that_raises(_core.STATE.sink, 1, namespace["bug"])
    for n in range(30):
        tracelens.write(f"v{n}", value=n)
    tracelens.shutdown()

    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracelens: cannot write the trace to ")


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_a_deep_recursion_through_a_recorded_lock_leaves_it_free(recording, kind):
    """Recursing with `with lock:` until RecursionError: every level's lock is released."""
    import sys

    recording()
    lock = getattr(threading, kind)()
    depth = [0]

    def down():
        depth[0] += 1
        with lock if kind == "RLock" else _Noop():
            down()

    class _Noop:
        def __enter__(self):
            with lock:  # a plain Lock cannot nest: take and leave it at each level
                pass

        def __exit__(self, *exc):
            return False

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        with pytest.raises(RecursionError):
            down()
    finally:
        sys.setrecursionlimit(limit)

    assert depth[0] > 50
    probe: list[bool] = []
    t = threading.Thread(target=lambda: probe.append(lock.acquire(timeout=5)))
    t.start()
    t.join()
    assert probe == [True]
