"""Helpers for the TUI tests: sample paths, a hostile trace, waiting for the app."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from textual.pilot import Pilot

P = ParamSpec("P")
T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_logs"
RACY = SAMPLES / "article_racy.jsonl.gz"
LOCKED = SAMPLES / "article_locked.jsonl.gz"
LAZY = SAMPLES / "lazy_init.jsonl.gz"

#: Names that try to inject markup (rich console markup and textual content markup).
EVIL_VAR = "[bold red]x[/]"
EVIL_THREAD = "[red]worker[/red] $x [@click=app.quit]q[/]"
EVIL_VALUE = "[link=http://evil]v[/link]"


def _lost_update_trace(
    path: Path, *, pid: int, var: str, thread: str, value: str, file: str, func: str
) -> Path:
    """A lost update by ``thread`` (against one named ``other``) on ``var`` at ``file``."""
    seq = iter(range(1000))
    ts = iter(range(1_000_000, 10_000_000, 1_000))

    def ev(op: str, unit: str, name: str, **kw: object) -> dict[str, object]:
        d: dict[str, object] = {
            "tl": 1,
            "event": op,
            "seq": next(seq),
            "ts": next(ts),
            "pid": pid,
            "unit": unit,
            "tid": int(unit[1:]),
            "thread": name,
        }
        d.update(kw)
        return d

    site = {"file": file, "line": 7, "func": func}
    lines = [
        ev("meta", "t0", "MainThread", argv=["evil.py"], python="3.11"),
        ev("fork", "t0", "MainThread", obj="t1", kind="thread"),
        ev("fork", "t0", "MainThread", obj="t2", kind="thread"),
        ev("begin", "t1", thread),
        ev("begin", "t2", "other"),
        ev("read", "t1", thread, var=var, value="1", **site),
        ev("read", "t2", "other", var=var, value="1", **site),
        ev("write", "t2", "other", var=var, value="2", **site),
        ev("write", "t1", thread, var=var, value=value, **site),
        ev("end", "t1", thread),
        ev("end", "t2", "other"),
        ev("join", "t0", "MainThread", obj="t1", kind="thread"),
        ev("join", "t0", "MainThread", obj="t2", kind="thread"),
    ]
    path.write_text("".join(json.dumps(d) + "\n" for d in lines))
    return path


def write_evil_trace(path: Path) -> Path:
    """A lost update on a variable, thread and value whose names are markup."""
    return _lost_update_trace(
        path,
        pid=4242,
        var=EVIL_VAR,
        thread=EVIL_THREAD,
        value=EVIL_VALUE,
        file="/nonexistent/[b]evil[/b].py",
        func="upd[i]ate",
    )


async def wait_loaded(pilot: Pilot[None]) -> None:
    """Wait until the app has loaded and analysed its trace (or given up)."""
    from textual.worker import WorkerFailed

    app = pilot.app

    def done() -> bool:
        model = app.model  # type: ignore[attr-defined]
        return app.error is not None or (model is not None and model.analysed)  # type: ignore[attr-defined]

    while not done() and app.is_running:
        with contextlib.suppress(WorkerFailed):  # the app reports it (app.error)
            await app.workers.wait_for_complete()
        await pilot.pause()
    await pilot.pause()


def sync(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async test with ``asyncio.run`` (no async pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


#: Names that carry terminal escapes: a window title (OSC 0), a clipboard write (OSC 52),
#: a screen clear (CSI), a bidirectional override (U+202E), and markup around them.
CTRL_VAR = "[bold red]x[/]\x1b]0;title\x07"
CTRL_THREAD = "w\x1b]52;c;cHduZWQ=\x07\u202eker"
CTRL_VALUE = "\x1b[2Jv\u202e"
CTRL_FILE = "/nonexistent/\x1b]0;f\x07ev\u202eil.py"
CTRL_FUNC = "f\x1b[31mn"
#: The characters none of which may reach the terminal raw.
RAW_CONTROLS = ("\x1b", "\x07", "\u202e")


def write_control_trace(path: Path) -> Path:
    """A lost update whose variable, thread, value, file and function names hold escapes."""
    return _lost_update_trace(
        path,
        pid=4243,
        var=CTRL_VAR,
        thread=CTRL_THREAD,
        value=CTRL_VALUE,
        file=CTRL_FILE,
        func=CTRL_FUNC,
    )
