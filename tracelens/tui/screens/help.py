"""The keys, as a modal list (``?``)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: Every key of the TUI, by screen: (key, what it does). docs/tui.md lists the same.
KEYS: dict[str, list[tuple[str, str]]] = {
    "everywhere": [
        ("?", "this help"),
        ("q / ctrl+c", "quit"),
        ("escape", "back / close / clear the search"),
        ("ctrl+p", "command palette"),
    ],
    "findings & variables": [
        ("1 / 2", "findings tab / variables tab"),
        ("tab / shift+tab", "move between the filters and the table"),
        ("↑ ↓ j k, pgup pgdn, g G", "move the cursor"),
        ("enter / double click", "open the finding or the variable's timeline"),
        ("s / S / click a header", "sort by the next column / reverse / by that column"),
        ("/", "search: type in the variable filter"),
        ("u", "filter by unit"),
        ("x", "clear all filters"),
    ],
    "timeline": [
        ("← → h l", "previous / next event of the variable"),
        ("shift+← shift+→ H L", "previous / next event in the same lane"),
        ("↑ ↓ k j", "lane above / below (nearest event)"),
        ("+ -  ctrl+wheel", "zoom in / out around the selection"),
        ("0", "fit the whole timeline"),
        ("[ ] < >  wheel", "pan left / right"),
        ("n / N p", "next / previous finding on this variable"),
        ("g", "go to a time (1.5ms, 200us) or a sequence number (#1234)"),
        ("t", "x axis: event order / time"),
        ("home / end, c", "first / last event, center on the selection"),
        ("/", "search events (value, unit, site); enter: next match"),
        ("click", "select the event under the mouse"),
        ("escape", "back to the tables"),
    ],
}


def keys_table() -> Table:
    """The keys as a rich table."""
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column(style="bold #5fafff", no_wrap=True)
    table.add_column()
    for section, keys in KEYS.items():
        table.add_row(Text(section, style="bold underline"), "")
        for key, what in keys:
            table.add_row(key, what)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    """The list of keys; any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        """The keys in a scrollable box."""
        with VerticalScroll(id="help-box"):
            yield Static(keys_table(), id="help-keys")

    def on_mount(self) -> None:
        """Title the box."""
        self.query_one("#help-box").border_title = "keys"
        self.query_one("#help-box").border_subtitle = "escape closes"
