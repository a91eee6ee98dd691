"""The sink and configure(): nothing lost, nothing interleaved, nothing left patched."""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import orjson
import pytest
import structlog

import tracelens
from tests.helpers import env_with_path, read_trace

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = env_with_path(ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_threads_and_processes_share_one_file_without_losing_a_line(tmp_path):
    """16 threads in each of 4 processes append to one file: every line parses, none is lost."""
    path = tmp_path / "shared.jsonl"
    code = """
        import sys, threading, tracelens
        tracelens.configure(sys.argv[1], buffer_size=64)
        def work(i):
            d = tracelens.watch({}, f"d{i}")
            for k in range(500):
                d[k % 7] = k
        ts = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for t in ts: t.start()
        for t in ts: t.join()
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(path)],
            env=env_with_path(ROOT),
        )
        for _ in range(4)
    ]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]

    lines = path.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]  # raises if any line is torn
    writes = [e for e in events if e["event"] == "write"]
    per_pid = {}
    for e in events:
        if e["event"] != "stack":  # stack definitions have no seq
            per_pid.setdefault(e["pid"], []).append(e["seq"])
    assert len(writes) == 4 * 16 * (500 + 7)  # 500 item writes + 7 key-set writes each
    assert all(len(seqs) == len(set(seqs)) for seqs in per_pid.values())


def test_trace_is_flushed_at_exit_after_an_uncaught_exception(tmp_path):
    """A program that dies of an exception still leaves its events on disk."""
    path = tmp_path / "t.jsonl"
    proc = _run(
        """
        import sys, tracelens
        tracelens.configure(sys.argv[1], flush_interval=60)
        d = tracelens.watch({}, "d")
        d["last"] = 42
        raise SystemExit("boom") if False else ValueError("boom")
        """,
        str(path),
    )

    assert proc.returncode == 1
    assert "ValueError" in proc.stderr
    assert any(e.get("value") == 42 for e in read_trace(path))


def test_background_flush_puts_a_hung_programs_events_on_disk(tmp_path):
    """Killed with SIGKILL while hung in a deadlock, the trace shows who waited for what."""
    path = tmp_path / "t.jsonl"
    code = """
        import sys, threading, time, tracelens
        tracelens.configure(sys.argv[1], flush_interval=0.05)
        a, b = threading.Lock(), threading.Lock()
        def one():
            with a:
                time.sleep(0.2)
                with b: pass
        def two():
            with b:
                time.sleep(0.2)
                with a: pass
        for f in (one, two): threading.Thread(target=f, daemon=True).start()
        print("started", flush=True)
        time.sleep(60)
    """
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(path)],
        env=env_with_path(ROOT),
        stdout=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    tries = [e for e in read_trace(path) if e["event"] == "acquire_try" and not e.get("internal")]
    assert len(tries) == 2
    assert len({e["unit"] for e in tries}) == 2


def test_a_failing_sink_is_reported_once_and_never_raises(tmp_path):
    """Writes to a full disk print one line on stderr; the program runs on."""
    proc = _run(
        """
        import tracelens
        tracelens.configure("/dev/full", buffer_size=8)
        d = tracelens.watch({}, "d")
        for i in range(1000):
            d["k"] = i
        tracelens.shutdown()
        print("survived")
        """
    )

    assert proc.returncode == 0
    assert "survived" in proc.stdout
    assert proc.stderr.count("tracelens: cannot write the trace") == 1


def test_recorder_imports_no_analyzer_libraries():
    """`import tracelens` and configure() load neither polars, typer nor textual."""
    proc = _run(
        """
        import sys, tempfile, os, tracelens
        tracelens.configure(os.path.join(tempfile.mkdtemp(), "t.jsonl"))
        tracelens.watch({}, "d")["x"] = 1
        tracelens.shutdown()
        print(sorted(m for m in ("polars", "typer", "textual") if m in sys.modules))
        """
    )

    assert proc.stdout.strip() == "[]", proc.stderr


def test_configure_imports_nothing_the_program_did_not():
    """configure() leaves structlog, rich, asyncio and concurrent.futures unimported."""
    proc = _run(
        """
        import sys, tempfile, os, tracelens
        tracelens.configure(os.path.join(tempfile.mkdtemp(), "t.jsonl"))
        tracelens.watch({}, "d")["x"] = 1
        tracelens.shutdown()
        names = ("structlog", "rich", "asyncio", "concurrent.futures")
        print(sorted(m for m in names if m in sys.modules))
        """
    )

    assert proc.stdout.strip() == "[]", proc.stderr


def test_modules_imported_after_configure_are_recorded_as_if_imported_before(tmp_path):
    """structlog lines, asyncio tasks and thread-pool futures imported after configure()
    are all in the trace."""
    trace = tmp_path / "t.jsonl"
    proc = _run(
        f"""
        import tracelens
        tracelens.configure({str(trace)!r})
        import asyncio, structlog
        from concurrent.futures import ThreadPoolExecutor
        structlog.get_logger().info("hello from the app")

        async def child():
            await asyncio.sleep(0)

        async def main():
            await asyncio.create_task(child(), name="kid")

        asyncio.run(main())
        with ThreadPoolExecutor(1) as pool:
            pool.submit(int).result()
        tracelens.shutdown()
        """
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(ln) for ln in trace.read_text().splitlines()]

    assert any(e.get("event") == "hello from the app" for e in events)
    assert any(e.get("event") == "begin" and e.get("task") == "kid" for e in events)
    assert any(e.get("event") == "recv" and e.get("kind") == "future" for e in events)


class TestConfigure:
    def test_configure_twice_with_the_same_arguments_changes_nothing(self, recording):
        """A second identical configure() keeps the same recording going."""
        path = recording()
        d = tracelens.watch({}, "d")
        d["a"] = 1
        tracelens.configure(path)
        d["b"] = 2
        tracelens.shutdown()

        metas = [e for e in read_trace(path) if e["event"] == "meta"]
        assert len(metas) == 1
        assert len([e for e in read_trace(path) if e.get("var") in ("d['a']", "d['b']")]) == 2

    def test_shutdown_restores_the_standard_library(self, recording):
        """After shutdown, threading and _thread hand out plain locks again."""
        originals = (
            threading.Lock,
            threading.RLock,
            _thread.allocate_lock,
            _thread.RLock,
            _thread.LockType,
            threading.Thread.start,
            threading.Thread.join,
            os._exit,
        )
        recording()
        assert threading.Lock is not originals[0]
        tracelens.shutdown()

        assert originals == (
            threading.Lock,
            threading.RLock,
            _thread.allocate_lock,
            _thread.RLock,
            _thread.LockType,
            threading.Thread.start,
            threading.Thread.join,
            os._exit,
        )

    def test_shutdown_restores_structlog_configuration(self, recording):
        """configure() takes over structlog; shutdown() gives the old configuration back."""
        structlog.configure(processors=[structlog.processors.KeyValueRenderer()])
        before = structlog.get_config()["processors"]
        recording()
        assert before != structlog.get_config()["processors"]
        tracelens.shutdown()

        assert before == structlog.get_config()["processors"]
        structlog.reset_defaults()

    def test_application_log_lines_share_the_file(self, recording):
        """structlog lines land in the trace as application lines with trace context."""
        path = recording()
        structlog.get_logger().info("user logged in", user="ada")
        tracelens.shutdown()

        lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
        (app,) = [x for x in lines if x.get("event") == "user logged in"]
        assert "tl" not in app
        assert (app["user"], app["level"], app["unit"]) == ("ada", "info", "t0")
        assert isinstance(app["seq"], int)

    def test_events_can_go_through_the_applications_structlog_chain(self):
        """emit='structlog' hands every event to structlog.get_logger('tracelens')."""
        with structlog.testing.capture_logs() as logs:
            tracelens.configure(None, emit="structlog")
            tracelens.watch({}, "d")["k"] = 1
            tracelens.shutdown()

        writes = [x for x in logs if x.get("event") == "write"]
        assert [w["var"] for w in writes] == ["d['k']", "d"]
        assert all(w["tl"] == tracelens.FORMAT_VERSION for w in writes)

    def test_stress_shrinks_the_switch_interval_until_shutdown(self, recording):
        """stress=True shortens sys.getswitchinterval(); shutdown restores it."""
        before = sys.getswitchinterval()
        recording(stress=True)
        assert sys.getswitchinterval() < before
        tracelens.shutdown()

        assert before == sys.getswitchinterval()

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"path": None}, "needs a path"),  # file output without a file
            ({"path": "x", "emit": "kafka"}, "emit must be"),  # an unknown destination
            ({"path": "x", "buffer_size": 0}, "positive"),  # a buffer that cannot hold an event
        ],
    )
    def test_bad_arguments_are_clear_errors(self, kwargs, message):
        """configure() rejects bad arguments with a ValueError that says what is wrong."""
        with pytest.raises(ValueError, match=message):
            tracelens.configure(**kwargs)


def test_switch_trace_sends_later_events_to_the_new_file(recording, tmp_path):
    """After switch_trace, events go to the new file and the old one keeps the earlier ones."""
    from tracelens.record import _config

    first = recording()
    lock = threading.Lock()  # made before the switch: still recorded after it
    tracelens.write("before", value=1)
    second = tmp_path / "second.jsonl"
    assert _config.switch_trace(second)
    tracelens.write("after", value=2)
    with lock:
        pass
    tracelens.shutdown()

    def writes(path):
        return [e["var"] for e in read_trace(path) if e["event"] == "write"]

    def user_locks(path):
        return [e["event"] for e in read_trace(path) if e.get("obj") == repr_name]

    repr_name = next(
        e["obj"] for e in read_trace(second) if e["event"] == "acquire" and not e.get("internal")
    )
    assert (writes(first), writes(second)) == (["before"], ["after"])
    assert user_locks(second) == ["acquire", "release"] and user_locks(first) == []


def test_switch_trace_to_an_unwritable_path_keeps_the_current_file(recording, tmp_path, capfd):
    """A new file that cannot be opened: False, one stderr line, recording goes on as it was."""
    from tracelens.record import _config

    first = recording()
    assert not _config.switch_trace(tmp_path / "missing" / "t.jsonl")
    tracelens.write("still", value=1)
    tracelens.shutdown()
    assert [e["var"] for e in read_trace(first) if e["event"] == "write"] == ["still"]
    assert len(capfd.readouterr().err.splitlines()) == 1


@pytest.mark.parametrize("depth", [-1, 65, 2.0, True])
def test_a_stack_depth_out_of_range_is_refused(tmp_path, depth):
    """configure(stack_depth=...) takes an int from 0 to 64 and nothing else."""
    with pytest.raises(ValueError, match="stack_depth"):
        tracelens.configure(tmp_path / "t.jsonl", stack_depth=depth)


def test_a_forked_child_defines_the_stacks_its_events_name(recording):
    """After a fork the child writes its own stack definitions, under its own pid: every
    event's stack is defined in its process."""
    from tracelens.testing import read_events, read_stacks

    path = recording()
    tracelens.write("before", value=1)
    pid = os.fork()
    if pid == 0:  # the child: the same call site as the parent's next write
        try:
            tracelens.write("child", value=2)
            tracelens.shutdown()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    tracelens.write("after", value=3)
    tracelens.shutdown()
    events, stacks = read_events(path), read_stacks(path)
    named = [(e["pid"], e["stack"]) for e in events if e["event"] == "write"]
    assert len({p for p, _ in named}) == 2
    assert all(key in stacks for key in named)
