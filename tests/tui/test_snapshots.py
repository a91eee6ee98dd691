"""Snapshot tests of the main screens (pytest-textual-snapshot; update with --snapshot-update)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.helpers import ROOT, wait_loaded
from tracelens.tui.app import make_app

SIZE = (160, 48)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths are shown relative to the working directory: make it the repository."""
    monkeypatch.chdir(ROOT)


def _then(*keys: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_loaded(pilot)
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    return run_before


def test_findings_screen(snap_compare: Any) -> None:
    """The findings screen of lazy_init looks as in its snapshot."""
    app = make_app("sample_logs/lazy_init.jsonl.gz", cache=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=_then())


def test_variables_screen(snap_compare: Any) -> None:
    """The variables tab of article_locked looks as in its snapshot."""
    app = make_app("sample_logs/article_locked.jsonl.gz", cache=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=_then("2"))


def test_timeline_of_a_finding(snap_compare: Any) -> None:
    """The timeline of lazy_init's first finding looks as in its snapshot."""
    app = make_app("sample_logs/lazy_init.jsonl.gz", cache=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=_then("enter"))


def test_timeline_with_lock_holds(snap_compare: Any) -> None:
    """A locked variable's timeline, two events in, draws its lock holds as in its snapshot."""
    app = make_app("sample_logs/article_locked.jsonl.gz", cache=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=_then("2", "enter", "right", "right"))


def test_help_screen(snap_compare: Any) -> None:
    """The help screen looks as in its snapshot."""
    app = make_app("sample_logs/lazy_init.jsonl.gz", cache=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=_then("question_mark"))
