"""``reproduce --emit-test``: a standalone pytest file that fails on the bug, not after the fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.reproduce.programs import (
    ARTICLE_LOCKED,
    ARTICLE_RACY,
    LOCK_ORDER,
    POOL_COUNTER,
    record,
    reproduce_cli,
)


def _pytest(test: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Plain ``pytest`` on one file, in its directory, without this project's settings."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test), *args],
        capture_output=True,
        text=True,
        cwd=test.parent,
    )


def test_emitted_test_fails_on_the_racy_program_and_passes_on_the_fix(tmp_path: Path) -> None:
    """The emitted test fails on the article's racy update and passes once it is locked."""
    app = tmp_path / "app.py"
    shutil.copyfile(ARTICLE_RACY, app)
    trace = record(app, tmp_path / "racy.jsonl")
    test = tmp_path / "test_lost_update.py"
    status, out, err = reproduce_cli(
        trace,
        "1",
        "--emit-test",
        str(test),
        "--",
        str(app),
        cwd=tmp_path,
    )
    assert status == 1, out + err
    emitted = test.read_text(encoding="utf-8")
    assert "from app import main" in emitted and "in_process=True" in emitted
    failing = _pytest(test)
    assert failing.returncode == 1, failing.stdout
    assert "its output changed" in failing.stdout
    shutil.copyfile(ARTICLE_LOCKED, app)
    passing = _pytest(test)
    assert passing.returncode == 0, passing.stdout


def test_emitted_deadlock_test_fails_then_passes(tmp_path: Path) -> None:
    """The emitted test of a lock-order inversion fails by deadlock, and passes with one order."""
    app = tmp_path / "app.py"
    shutil.copyfile(LOCK_ORDER, app)
    trace = record(app, tmp_path / "lo.jsonl")
    test = tmp_path / "test_lock_order.py"
    status, out, err = reproduce_cli(
        trace,
        "1",
        "--timeout",
        "8",
        "--emit-test",
        str(test),
        "--",
        str(app),
        cwd=tmp_path,
    )
    assert status == 1, out + err
    failing = _pytest(test)
    assert failing.returncode == 1 and "deadlocked" in failing.stdout, failing.stdout
    source = app.read_text(encoding="utf-8")
    app.write_text(source.replace("(audit, accounts)", "(accounts, audit)"), encoding="utf-8")
    passing = _pytest(test)
    assert passing.returncode == 0, passing.stdout


def test_a_script_without_a_main_function_gets_the_command_form_saying_why(
    tmp_path: Path,
) -> None:
    """The article's program calling main() at module level (no __main__ block): the test
    runs it as a command, says why it could not import it, and still fails on the race."""
    app = tmp_path / "app.py"
    source = ARTICLE_RACY.read_text(encoding="utf-8")
    app.write_text(source.replace('if __name__ == "__main__":\n    main(', "if True:\n    main("))
    trace = record(app, tmp_path / "racy.jsonl")
    test = tmp_path / "test_command_form.py"
    status, out, err = reproduce_cli(
        trace, "1", "--emit-test", str(test), "--", str(app), cwd=tmp_path
    )
    assert status == 1, out + err
    emitted = test.read_text(encoding="utf-8")
    assert "COMMAND = " in emitted and "from app import" not in emitted
    assert "could not be imported (app.py has no `if __name__" in emitted
    assert _pytest(test).returncode == 1


def test_an_instrumented_variable_runs_the_imported_function_in_a_child(tmp_path: Path) -> None:
    """The thread-pool counter's module-level dict is recorded by instrumentation: the
    emitted test imports bump's main() but forces it in a recorded child, says why, and
    fails on the race."""
    app = tmp_path / "counter_app.py"
    shutil.copyfile(POOL_COUNTER, app)
    trace = record(app, tmp_path / "pool.jsonl")
    test = tmp_path / "test_pool.py"
    status, out, err = reproduce_cli(
        trace, "1", "--emit-test", str(test), "--", str(app), cwd=tmp_path
    )
    assert status == 1, out + err
    emitted = test.read_text(encoding="utf-8")
    assert "from counter_app import main" in emitted and "in_process=False" in emitted
    assert "recorded by instrumenting the program's code" in emitted
    failing = _pytest(test)
    assert failing.returncode == 1, failing.stdout
