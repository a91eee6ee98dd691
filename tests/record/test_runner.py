"""``tracelens run``: record a program unchanged, from its first import to its exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import read_trace
from tracelens.record.runner import parse
from tracelens.testing import read_stacks

T = 60


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _tracelens(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracelens", "run", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=T,
    )


@pytest.fixture
def program(tmp_path: Path) -> Path:
    """A script whose locks are made or bound at import time, its own and a module's."""
    _write(
        tmp_path / "helper.py",
        """
        import threading
        _lock = threading.Lock()  # created when the module is imported

        def bump():
            with _lock:
                pass
        """,
    )
    return _write(
        tmp_path / "prog.py",
        """
        import sys
        from threading import RLock, Thread  # bound at import time
        import helper

        LOCK = RLock()

        def work():
            with LOCK:
                helper.bump()

        t = Thread(target=work)
        t.start()
        t.join()
        print("args", sys.argv[1:])
        sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
        """,
    )


def _acquired(trace: Path) -> set[str]:
    return {
        e["obj"].split("#")[0]
        for e in read_trace(trace)
        if e["event"] == "acquire" and not e.get("internal")
    }


def test_locks_made_and_bound_at_import_time_are_recorded(program, tmp_path):
    """from threading import RLock at module level, and a module's import-time Lock."""
    trace = tmp_path / "t.jsonl"
    done = _tracelens("-o", trace, program, cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    assert {"RLock@prog.py:6", "Lock@helper.py:3"} <= _acquired(trace)


def test_exit_status_and_arguments_pass_through(program, tmp_path):
    """The script gets its arguments (options after it are its own) and its exit status."""
    trace = tmp_path / "t.jsonl"
    done = _tracelens("-o", trace, program, "3", "-o", "x", cwd=tmp_path)

    assert done.returncode == 3
    assert "args ['3', '-o', 'x']" in done.stdout
    assert f"trace written to {trace}" in done.stderr


def test_default_trace_is_named_after_the_script(program, tmp_path):
    """Without -o the trace is NAME.trace.jsonl in the current directory."""
    done = _tracelens(program, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert read_trace(tmp_path / "prog.trace.jsonl")


def test_module_runs_like_python_dash_m(program, tmp_path):
    """-m runs a module as __main__ with its arguments."""
    trace = tmp_path / "t.jsonl"
    done = _tracelens("-o", trace, "-m", "prog", "5", cwd=tmp_path)

    assert done.returncode == 5
    assert {"RLock@prog.py:6", "Lock@helper.py:3"} <= _acquired(trace)


def test_uncaught_exception_prints_the_programs_traceback_and_exits_1(tmp_path):
    """The traceback starts at the script (no runner frames); status 1; trace still written."""
    script = _write(tmp_path / "boom.py", "raise ValueError('boom')\n")
    trace = tmp_path / "t.jsonl"
    done = _tracelens("-o", trace, script, cwd=tmp_path)

    assert done.returncode == 1
    assert "ValueError: boom" in done.stderr
    assert "runpy" not in done.stderr and "runner.py" not in done.stderr
    assert read_trace(trace)[0]["event"] == "meta"


def test_keyboard_interrupt_ends_the_process_by_sigint(tmp_path):
    """As with python itself, an uncaught KeyboardInterrupt ends the process by SIGINT."""
    script = _write(tmp_path / "intr.py", "raise KeyboardInterrupt\n")
    done = _tracelens("-o", tmp_path / "t.jsonl", script, cwd=tmp_path)

    assert done.returncode == -signal.SIGINT


def test_sigterm_flushes_the_trace_and_ends_the_process_by_sigterm(tmp_path):
    """A terminated program's events are on disk, and its status is the signal's."""
    script = _write(
        tmp_path / "term.py",
        """
        import os, signal, threading, time
        lock = threading.Lock()
        with lock:
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        """,
    )
    trace = tmp_path / "t.jsonl"
    done = _tracelens("-o", trace, script, cwd=tmp_path)

    assert done.returncode == -signal.SIGTERM
    assert any(o.startswith("Lock@term.py:3") for o in _acquired(trace))


def test_missing_script_is_a_usage_error(tmp_path):
    """A script that does not exist: status 2, one line on stderr."""
    done = _tracelens("nope.py", cwd=tmp_path)

    assert done.returncode == 2
    assert "nope.py" in done.stderr


def test_run_function_runs_in_process(program, tmp_path, monkeypatch, capsys):
    """run() is what the command calls: it returns the status and leaves recording off."""
    import tracelens
    from tracelens.record.runner import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the script imports helper
    trace = tmp_path / "t.jsonl"
    assert run([str(program), "7"], output=trace) == 7
    assert not tracelens.is_configured()
    assert {"RLock@prog.py:6", "Lock@helper.py:3"} <= _acquired(trace)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["s.py", "-o", "x"], (["s.py", "-o", "x"], None, False, False)),
        (["-o", "t", "--stress", "s.py"], (["s.py"], "t", False, True)),
        (["-m", "pkg.mod", "-m"], (["pkg.mod", "-m"], None, True, False)),
        (["--", "-weird.py"], (["-weird.py"], None, False, False)),
    ],
)
def test_own_options_stop_at_the_script(argv, expected):
    """Everything from the script (or -m module) on belongs to the program."""
    args, opts = parse(argv)
    assert expected == (args, opts["output"], opts["module"], opts["stress"])


def test_stack_depth_sets_how_deep_each_events_stack_goes(program, tmp_path):
    """--stack-depth 1 records one-frame stacks, --stack-depth=0 none; a depth out of range
    is a usage error: status 2 and one line on stderr."""
    for depth, most in (("1", 1), ("0", 0)):
        trace = tmp_path / f"t{depth}.jsonl"
        done = _tracelens("-o", trace, f"--stack-depth={depth}", program, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        stacks = read_stacks(trace)
        assert all(s.get("parent") is None for s in stacks.values())
        assert bool(stacks) == bool(most)
    done = _tracelens("--stack-depth", "65", program, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tracelens: --stack-depth must be from 0 to 64, not 65"
    ]
    assert parse(["--stack-depth", "x", "s.py"]) is None
    assert parse(["--stack-depth", "3", "s.py"]) == (
        ["s.py"],
        {**parse(["s.py"])[1], "stack_depth": 3},
    )  # type: ignore[index]


@pytest.mark.parametrize("argv", [[], ["--bogus", "s.py"], ["-m"]])
def test_bad_usage_is_refused(argv):
    """No script, or an unknown option before it."""
    assert parse(argv) is None


def test_a_programs_own_configure_does_not_redirect_the_trace(tmp_path):
    """Under `tracelens run -o X`, a script that calls configure(Y) itself still records to X."""
    script = tmp_path / "selfconf.py"
    script.write_text(
        "import tracelens\n"
        f"tracelens.configure({str(tmp_path / 'elsewhere.jsonl')!r})\n"
        "tracelens.watch({}, 'd')['k'] = 1\n"
        "tracelens.shutdown()\n"
    )
    out = tmp_path / "trace.jsonl"
    proc = _tracelens("-o", out, script, cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "elsewhere.jsonl").exists()
    assert [e["var"] for e in read_trace(out) if e["event"] == "write"] == ["d['k']", "d"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_trace_that_cannot_be_written_is_not_said_to_be_written(tmp_path: Path):
    """`run -o /dev/full` says once that the trace cannot be written, never "trace written"."""
    script = _write(tmp_path / "p.py", 'print("hello")\n')
    result = _tracelens("-o", "/dev/full", script, cwd=tmp_path)

    assert (result.returncode, result.stdout) == (0, "hello\n")
    assert "cannot write the trace to /dev/full" in result.stderr
    assert "trace written" not in result.stderr
