"""Pilot-driven tests: open a sample trace, filter, open a finding, walk its timeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Select, TabbedContent

from tests.tui.helpers import (
    CTRL_FUNC,
    CTRL_VALUE,
    CTRL_VAR,
    EVIL_THREAD,
    EVIL_VALUE,
    EVIL_VAR,
    LAZY,
    RACY,
    RAW_CONTROLS,
    sync,
    wait_loaded,
    write_control_trace,
    write_evil_trace,
)
from tracelens.analyze import TraceError
from tracelens.report import clean
from tracelens.tui.app import make_app
from tracelens.tui.screens.help import HelpScreen
from tracelens.tui.screens.main import MainScreen
from tracelens.tui.screens.timeline import TimelineScreen
from tracelens.tui.widgets.event_details import EventDetails
from tracelens.tui.widgets.frame_table import FrameTable
from tracelens.tui.widgets.timeline import TimelineView

SIZE = (160, 48)


@sync
async def test_opens_a_sample_and_shows_its_findings() -> None:
    """article_racy opens with its 20107 events and its findings, model['weight']'s first."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        assert isinstance(app.screen, MainScreen)
        table = app.screen.query_one("#findings-table", FrameTable)
        assert table.row_count == len(app.model.findings) >= 1
        assert table.current_row()["kind"] == "lost_update"
        assert table.current_row()["var"] == "model['weight']"
        assert app.model.summary["events"] == 20107


@sync
async def test_variable_filter_narrows_the_findings_table() -> None:
    """/ focuses the variable filter, which narrows the table; escape goes back to the table."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = app.screen
        table = screen.query_one("#findings-table", FrameTable)
        total = table.row_count
        assert total >= 1

        await pilot.press("slash")  # search: the variable filter
        assert screen.focused is screen.query_one("#var-filter", Input)
        await pilot.press(*"no such variable")
        await pilot.pause()
        assert table.row_count == 0

        await pilot.press("ctrl+a", "ctrl+k", *"client")
        await pilot.pause()
        assert table.row_count == total

        await pilot.press("escape")
        assert screen.focused is table


@sync
async def test_severity_filter_narrows_the_findings_table() -> None:
    """The severity filter keeps only findings of that severity."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = app.screen
        table = screen.query_one("#findings-table", FrameTable)
        screen.query_one("#severity-filter", Select).value = "note"
        await pilot.pause()
        assert table.row_count == 0
        screen.query_one("#severity-filter", Select).value = "error"
        await pilot.pause()
        assert table.row_count >= 1


@sync
async def test_kind_filter_narrows_the_findings_table() -> None:
    """The kind filter keeps only findings of that kind."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = app.screen
        table = screen.query_one("#findings-table", FrameTable)
        screen.query_one("#kind-filter", Select).value = "lost_update"
        await pilot.pause()
        assert {r["kind"] for r in table.frame.iter_rows(named=True)} == {"lost_update"}


@sync
async def test_unit_filter_narrows_the_findings_table() -> None:
    """u focuses the unit filter, which keeps only findings that involve a matching unit."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        screen = app.screen
        table = screen.query_one("#findings-table", FrameTable)
        await pilot.press("u", *"request-3")
        await pilot.pause()
        assert table.row_count >= 1
        assert all("request-3" in r["units"] for r in table.frame.iter_rows(named=True))
        screen.query_one("#unit-filter", Input).value = "nobody"
        await pilot.pause()
        assert table.row_count == 0


@sync
async def test_x_clears_the_filters() -> None:
    """x, from the table, clears the filters and shows every finding again."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        table = app.screen.query_one("#findings-table", FrameTable)
        total = table.row_count
        await pilot.press("u", *"nobody")
        await pilot.pause()
        await pilot.press("escape", "x")
        await pilot.pause()
        assert table.row_count == total


@sync
async def test_sorting_by_key() -> None:
    """s sorts the findings by severity and S reverses the order."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        table = app.screen.query_one("#findings-table", FrameTable)
        await pilot.press("s")
        assert table.sort_column == "severity"
        await pilot.press("S")
        assert table.sort_descending


@sync
async def test_sorting_by_header_click() -> None:
    """Clicking a header cell sorts by that cell's column."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        table = app.screen.query_one("#findings-table", FrameTable)
        await pilot.click(table, offset=(60, 0))  # a header cell
        assert table.sort_column not in (None, "severity")


async def _open_racy_finding(pilot) -> tuple[TimelineScreen, TimelineView]:
    """Wait for article_racy to load and press enter on its first finding."""
    await wait_loaded(pilot)
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    return screen, screen.query_one(TimelineView)


@sync
async def test_open_a_finding_selects_its_remote_write() -> None:
    """Enter opens the finding's timeline at its first instance, its remote write selected."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await _open_racy_finding(pilot)
        assert isinstance(screen, TimelineScreen)
        assert screen.var == "model['weight']"
        assert view.instance == 0
        # the finding's remote write is selected, and its details are shown
        row = view.selected
        ev = screen.timeline.event(row)
        assert ev["op"] == "write"
        assert ev["seq"] == screen.timeline.instances[0].events[1].seq
        details = str(screen.query_one(EventDetails).render())
        assert "remote write" in details
        assert f"{ev['seq']}" in details
        assert "article_racy.py:26" in details
        assert "none held" in details


@sync
async def test_timeline_arrows_step_through_events_and_lanes() -> None:
    """Left and right step one event; down moves a lane; shift+right stays in the lane."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await _open_racy_finding(pilot)
        row = view.selected
        await pilot.press("right")
        assert view.selected == row + 1
        await pilot.press("left", "left")
        assert view.selected == row - 1
        lane = screen.timeline.lane_of(view.selected)
        await pilot.press("down")
        assert screen.timeline.lane_of(view.selected) == lane + 1
        await pilot.press("shift+right")
        assert screen.timeline.lane_of(view.selected) == lane + 1


@sync
async def test_timeline_zooms_pans_and_fits() -> None:
    """+ zooms in, - zooms out, ] pans right, and 0 fits the view back to the start."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        _, view = await _open_racy_finding(pilot)
        scale = view.scale
        await pilot.press("plus")
        assert view.scale < scale
        await pilot.press("minus", "minus")
        assert view.scale > scale
        x0 = view.x0
        await pilot.press("right_square_bracket")
        assert view.x0 > x0
        await pilot.press("0")
        assert view.x0 == 0


@sync
async def test_timeline_n_and_capital_n_go_to_the_next_and_previous_instance() -> None:
    """n shows the finding's next instance and N goes back to the first."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await _open_racy_finding(pilot)
        await pilot.press("n")  # the next occurrence (the widest of the same finding)
        assert view.instance == 1 % len(screen.timeline.instances)
        await pilot.press("N")
        assert view.instance == 0


@sync
async def test_timeline_t_toggles_the_axis() -> None:
    """t switches the axis from event order to time and back."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        _, view = await _open_racy_finding(pilot)
        await pilot.press("t")
        await pilot.pause()
        assert view.axis.value == "time"
        await pilot.press("t")
        await pilot.pause()
        assert view.axis.value == "order"


@sync
async def test_timeline_g_jumps_by_sequence_number_and_by_time() -> None:
    """g #N selects the event with seq N, and g 30ms the first event 30 ms in or later."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await _open_racy_finding(pilot)
        # jump by sequence number and by time
        await pilot.press("g", "#", *"4701", "enter")
        await pilot.pause()
        assert screen.timeline.event(view.selected)["seq"] == 4701
        await pilot.press("g", *"30ms", "enter")
        await pilot.pause()
        ev = screen.timeline.event(view.selected)
        assert ev["ts"] - screen.timeline.t0 >= 30_000_000


@sync
async def test_timeline_escape_closes_the_search_box() -> None:
    """Escape after a search takes the focus out of the search box."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        screen, _ = await _open_racy_finding(pilot)
        # search the events
        await pilot.press("slash", *"seq", "enter")  # harmless: matches something
        await pilot.press("escape")
        assert screen.focused is not screen.query_one("#tl-search", Input)


@sync
async def test_timeline_click_selects_an_event() -> None:
    """Clicking inside the lanes after home selects that event or a later one."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        _, view = await _open_racy_finding(pilot)
        # click an event: a lane row, inside the lanes
        await pilot.press("home")
        first = view.selected
        await pilot.click(view, offset=(20, 2))
        assert view.selected >= first


@sync
async def test_timeline_escape_goes_back_to_the_tables() -> None:
    """Escape on the timeline goes back to the main screen."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        await _open_racy_finding(pilot)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


@sync
async def test_variables_tab_lists_the_variables() -> None:
    """2 shows the variables tab, listing both variables, the one with findings first."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("2")
        assert app.screen.query_one(TabbedContent).active == "variables"
        table = app.screen.query_one("#variables-table", FrameTable)
        assert table.row_count == 2
        assert table.current_row()["var"] == "cache['client']"


@sync
async def test_variables_tab_opens_a_timeline() -> None:
    """A variable without findings opens a timeline with no instance, and n leaves it so."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("2")
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        assert app.screen.var == "cache"
        view = app.screen.query_one(TimelineView)
        assert view.instance is None
        await pilot.press("n")  # no finding here: a notice, nothing breaks
        assert view.instance is None


@sync
async def test_help_opens_and_closes() -> None:
    """? opens the help screen and escape closes it again."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


@sync
async def test_q_quits_with_return_code_0() -> None:
    """q on the main screen quits the app with return code 0."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("q")
    assert app.return_code == 0


@sync
async def test_q_in_a_filter_types_a_q() -> None:
    """q typed in a filter goes into the filter and does not quit."""
    app = make_app(LAZY, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("slash", "q")
        assert app.is_running
        assert app.screen.query_one("#var-filter", Input).value == "q"


@sync
async def test_trace_strings_are_shown_literally(tmp_path: Path) -> None:
    """Markup in variable, thread, value, file and function names is shown as plain text."""
    path = write_evil_trace(tmp_path / "evil.jsonl")
    app = make_app(path, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        table = app.screen.query_one("#findings-table", FrameTable)
        assert table.current_row()["var"] == EVIL_VAR
        screen_text = _text_of(app)
        assert EVIL_VAR in screen_text
        assert "[red]worker[/red]" in screen_text
        await pilot.press("2")
        assert EVIL_VAR in _text_of(app)
        await pilot.press("1", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        view = app.screen.query_one(TimelineView)
        # walk to the local write, whose value is markup
        while app.screen.timeline.event(view.selected)["value"] != EVIL_VALUE:
            await pilot.press("right")
        text = _text_of(app)
        assert EVIL_VAR in text
        assert EVIL_VALUE in text
        assert EVIL_THREAD[:18] in text
        assert "/nonexistent/[b]evil[/b].py" in text
        assert "upd[i]ate" in text
        assert app.is_running  # [@click=app.quit] did nothing


@sync
async def test_control_characters_in_trace_text_reach_the_screen_escaped(tmp_path: Path) -> None:
    """Escapes (OSC 0 and 52, CSI, U+202E) in names and the file name show escaped, never raw."""
    path = write_control_trace(tmp_path / "tr\x1b]0;n\x07\u202e.jsonl")
    app = make_app(path, cache=False)
    seen: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        seen.append(app.export_screenshot())  # type: ignore[attr-defined]
        main = _text_of(app)
        await pilot.press("2")
        seen.append(app.export_screenshot())  # type: ignore[attr-defined]
        variables = _text_of(app)
        await pilot.press("1", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        view = app.screen.query_one(TimelineView)
        while app.screen.timeline.event(view.selected)["value"] != CTRL_VALUE:
            await pilot.press("right")
        await pilot.pause()
        seen.append(app.export_screenshot())  # type: ignore[attr-defined]
        timeline = _text_of(app)
    assert not [c for c in RAW_CONTROLS for svg in seen if c in svg]
    assert "tr\\x1b]0;n\\x07\\u202e.jsonl" in main  # the header's file name
    assert clean(CTRL_VAR) in main and clean(CTRL_VAR) in variables
    assert "[bold red]x[/]" in main  # and markup stays literal
    for name in (CTRL_VAR, CTRL_VALUE, CTRL_FUNC, "w\x1b]52;c;"):
        assert clean(name) in timeline, name


def _text_of(app: object) -> str:
    """The screen as plain text (each line of the SVG screenshot's text, unescaped)."""
    import html
    import re

    svg = app.export_screenshot()  # type: ignore[attr-defined]
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg)
    return html.unescape("".join(parts)).replace("\xa0", " ")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda tmp: tmp / "missing.jsonl", "no such file"),
        (lambda tmp: tmp, "directory"),
        (lambda tmp: str(tmp / "*.jsonl"), "no file matches"),
    ],
    ids=["missing file", "directory", "empty glob"],
)
def test_missing_file_is_refused_before_starting(tmp_path: Path, where, message) -> None:
    """A missing file, a directory or a glob matching nothing raises TraceError before starting."""
    with pytest.raises(TraceError, match=message):
        make_app(where(tmp_path))


@sync
async def test_a_file_without_events_ends_with_a_one_line_error(tmp_path: Path) -> None:
    """A file without tracelens events ends the app with exit code 2 and a one-line error."""
    path = tmp_path / "app.log"
    path.write_text('{"event": "hello"}\nnot json\n')
    app = make_app(path, cache=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
    assert app.return_code == 2
    assert app.error is not None
    assert "no tracelens events" in app.error
    assert "\n" not in app.error


@sync
async def test_a_lock_finding_opens_a_timeline_of_its_lock_events(tmp_path: Path) -> None:
    """Lock-order findings name locks, not a variable: the timeline shows their events."""
    from tracelens.analyze import load
    from tracelens.analyze.findings import EventRef, Finding, Site
    from tracelens.tui.model import build_model

    trace = load(write_evil_trace(tmp_path / "t.jsonl"))
    ev = trace.events.collect()
    forks = ev.filter(ev["op"] == "fork").rows(named=True)
    events = tuple(
        EventRef(
            role=role,
            seq=r["seq"],
            ts=r["ts"],
            pid=r["pid"],
            unit=r["unit"],
            unit_name=r["unit_name"],
            op=r["op"],
            target=r["obj"],
            value=None,
            file="?",
            line=0,
            func="?",
        )
        for role, r in zip(("first", "second"), forks, strict=True)
    )
    finding = Finding(
        kind="lock_order_inversion",
        severity="warning",
        var="A ⇄ B",
        units=("MainThread",),
        sites=(Site("?", 0, "?"),),
        count=1,
        events=events,
        explanation="A before B and B before A.",
    )
    app = make_app([], model=build_model(trace, [finding]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        view = app.screen.query_one(TimelineView)
        assert len(app.screen.timeline) == 2
        assert app.screen.timeline.event(view.selected)["op"] == "fork"
        await pilot.press("right", "left", "down", "up", "plus", "minus", "0", "t", "n")
        await pilot.press("escape", "2", "enter")  # a variable without findings
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)


def test_the_finding_pane_shows_the_variables_the_bug_link_and_the_damage():
    """A lost update's preview names its variables, the race it belongs to and what it lost."""
    import dataclasses

    from tests.report.factories import lost_update
    from tracelens.tui.widgets.finding_detail import finding_text

    lost = dataclasses.replace(
        lost_update(), group="g1", vars=("a", "b"), lost_writes=3, var_writes=10
    )
    race = dataclasses.replace(lost_update(), kind="data_race", group="g1")
    shown = finding_text(lost, [race, lost]).plain
    assert "a, b (2 variables)" in shown
    assert "What the data race above did in this run (bug g1)." in shown
    assert "3 of 10 writes to its 2 variables were lost" in shown


@sync
async def test_ctrl_c_quits_as_the_docs_say() -> None:
    """ctrl+c ends the app (textual's default only tells how to quit)."""
    app = make_app(RACY, cache=False, only=["windows"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running
