"""The code around a call site, syntax-highlighted, when the file exists here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual.content import Content
from textual.widgets import Static

from tracelens.tui.model import short_path, source_lines


class SourcePane(Static):
    """Shows ``file:line`` with some lines around it; a note when the file is missing."""

    DEFAULT_CSS = """
    SourcePane { height: 1fr; overflow: hidden; }
    """

    def __init__(
        self, *, search: Sequence[Path] = (), id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self.search = list(search)
        self.location: tuple[str | None, int | None] = (None, None)

    def show(self, file: str | None, line: int | None) -> None:
        """Show the code around ``file:line``."""
        if (file, line) == self.location:
            return
        self.location = (file, line)
        context = max(2, (self.size.height or 17) // 2)
        found = source_lines(file, line, context=context, search=self.search)
        self.border_title = Content(f"{short_path(file)}:{line if line else '?'}")
        if found is None:
            note = Text("source not available on this machine: ", style="italic #8a8a8a")
            note.append(str(file or "?"), style="#bcbcbc")
            self.update(note)
            return
        _path, first, code = found
        self.update(
            Syntax(
                code.rstrip("\n"),
                "python",
                theme="ansi_dark",
                line_numbers=True,
                start_line=first,
                highlight_lines={line} if line else None,
                word_wrap=False,
                background_color="default",
            )
        )
