"""A small prompt: go to a time or a sequence number on the timeline (``g``)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class GotoScreen(ModalScreen[str | None]):
    """Ask for ``1.5ms`` / ``200us`` / ``3s`` (since the trace start) or ``#seq``."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        """A label and an input."""
        with Vertical(id="goto-box"):
            yield Label("go to a time since the start (1.5ms, 200us, 2s) or #seq")
            yield Input(placeholder="e.g. 12ms or #1037", id="goto-input")

    def on_mount(self) -> None:
        """Title the box and focus the input."""
        self.query_one("#goto-box").border_title = "go to"
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Return what was typed."""
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        """Return nothing."""
        self.dismiss(None)
