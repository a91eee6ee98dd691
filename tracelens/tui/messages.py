"""Messages the TUI's widgets and screens send each other (dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from tracelens.tui.widgets.frame_table import FrameTable


@dataclass
class _TableRow(Message):
    """A row of a ``FrameTable`` (``row`` is the row as a dict)."""

    table: FrameTable
    index: int
    row: dict[str, Any]

    @property
    def control(self) -> FrameTable:
        """The table (for ``@on(..., "#id")`` selectors)."""
        return self.table


class RowHighlighted(_TableRow):
    """The cursor of a ``FrameTable`` moved to a row (``row`` is the row as a dict)."""


class RowSelected(_TableRow):
    """A row of a ``FrameTable`` was chosen (Enter or double click)."""


@dataclass
class EventSelected(Message):
    """An event of the timeline was selected (``row`` indexes ``Timeline.events``)."""

    row: int


@dataclass
class OpenFinding(Message):
    """Open the timeline of a finding (``index`` into ``TraceModel.findings``)."""

    index: int


@dataclass
class OpenVariable(Message):
    """Open the timeline of a variable."""

    var: str


@dataclass
class LoadProgress(Message):
    """Loading progressed: ``done`` of ``total`` steps, in stage ``stage``."""

    stage: str
    done: float
    total: float | None
