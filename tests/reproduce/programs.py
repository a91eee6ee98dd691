"""The programs the reproduce tests force, and where their lines are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data" / "reproduce"

ARTICLE_RACY = EXAMPLES / "article_racy.py"
ARTICLE_LOCKED = EXAMPLES / "article_locked.py"
ASYNC_LOST = EXAMPLES / "async_lost_update.py"
LOCK_ORDER = DATA / "lock_order.py"


def site(path: Path, text: str, nth: int = 1) -> str:
    """``file:line`` of the ``nth`` line of ``path`` that starts with ``text`` (indent aside)."""
    found = 0
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip().startswith(text):
            found += 1
            if found == nth:
                return f"{path.name}:{i}"
    raise AssertionError(f"{text!r} is not in {path}")


POOL_COUNTER = DATA / "pool_counter.py"
PUBLISH = DATA / "publish.py"
CHECK_THEN_ACT = DATA / "check_then_act.py"


def record(script: Path, trace: Path, *args: str, cwd: Path | None = None) -> Path:
    """Record ``script`` with ``tracelens run`` in a child process; return the trace."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "tracelens", "run", "-o", str(trace), "--", str(script), *args],
        check=True,
        capture_output=True,
        cwd=cwd or trace.parent,
    )
    return trace


def tracelens_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    """``tracelens ARGS`` in a child process: (exit status, stdout, stderr)."""
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "tracelens", *args], capture_output=True, text=True, cwd=cwd
    )
    return p.returncode, p.stdout, p.stderr


def reproduce_cli(trace: Path, finding: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    """``tracelens reproduce TRACE --finding FINDING ARGS`` in a child process."""
    return tracelens_cli("reproduce", str(trace), "--finding", finding, *args, cwd=cwd)
