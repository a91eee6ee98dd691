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
    assert "from app import main" in test.read_text(encoding="utf-8")  # imported, not a command
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
