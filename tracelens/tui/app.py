"""The textual app: ``make_app(paths)`` builds it for the CLI and the tests alike."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from tracelens.tui.model import TraceModel


class TracelensApp(App[None]):
    """Inspect a trace's findings and each variable's timeline.

    Attributes:
        paths: The trace files (or globs) to load.
        model: The loaded trace, once loading finished.
        error: A one-line message when the trace could not be loaded.
    """

    CSS_PATH = "tracelens.tcss"
    TITLE = "tracelens"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Keys", key_display="?"),
    ]

    def __init__(
        self,
        paths: Sequence[str],
        *,
        model: TraceModel | None = None,
        options: dict[str, Any] | None = None,
        cache: bool = True,
        source_roots: Sequence[Path] = (),
    ) -> None:
        super().__init__()
        self.cache = cache
        #: Directories besides the working one and the traces' whose files the
        #: source pane may show (``tracelens tui --root``).
        self.source_roots = list(source_roots)
        self.paths = list(paths)
        self.model = model
        self.options = dict(options or {})
        self.error: str | None = None

    def on_mount(self) -> None:
        """Show the loaded trace, or load it first."""
        self.theme = "tokyo-night"
        if self.model is not None:
            self.show_model(self.model)
            return
        from tracelens.tui.screens.loading import LoadingScreen

        self.push_screen(LoadingScreen(self.paths, self.options, cache=self.cache), self._loaded)

    def _loaded(self, model: TraceModel | None) -> None:
        if model is not None:
            self.show_model(model)

    def show_model(self, model: TraceModel) -> None:
        """Open the main screen on ``model``."""
        from tracelens.tui.screens.main import MainScreen

        self.model = model
        self.push_screen(MainScreen(model))

    def fail(self, message: str) -> None:
        """Quit with a one-line error (the CLI prints it and exits with 2)."""
        self.error = " ".join(message.split("\n")[0].split()) or "unknown error"
        self.exit(return_code=2)

    def action_help(self) -> None:
        """Show the keys."""
        from tracelens.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


def make_app(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    only: Sequence[str] | None = None,
    suppressions: Sequence[Any] = (),
    model: TraceModel | None = None,
    cache: bool = True,
    source_roots: Sequence[Path] = (),
) -> TracelensApp:
    """Build the TUI for trace files.

    Args:
        paths: Trace files or glob patterns (plain or gzip JSON lines).
        only: Only these finding kinds (passed to ``tracelens.analyze.analyze``).
        suppressions: Suppression rules (passed to ``tracelens.analyze.analyze``).
        model: An already loaded trace (tests, benchmarks): skip loading.
        cache: Read through the analyzer's Parquet cache (``.tracelens-cache/`` next
            to the first file): reopening an unchanged trace skips parsing its JSON.
        source_roots: Directories whose files the source pane may show, besides the
            working directory and the traces' directories (a trace may name any path).

    Returns:
        The app; ``app.run()`` starts it. After it ends, ``app.error`` holds a
        one-line message when the trace could not be loaded (exit code 2).

    Raises:
        tracelens.analyze.TraceError: A path is missing, a directory, unreadable,
            or a glob matches nothing (checked before the app starts).
    """
    from tracelens.analyze.load import expand_paths

    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    names = [os.fspath(p) for p in items]
    if model is None:
        expand_paths(names)  # the loader's own checks, before the app starts
    options: dict[str, Any] = {}
    if only:
        options["only"] = list(only)
    if suppressions:
        options["suppressions"] = tuple(suppressions)
    return TracelensApp(
        names or [str(p) for p in (model.paths if model else [])],
        model=model,
        options=options,
        cache=cache,
        source_roots=source_roots,
    )


def load_model(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], **options: Any
) -> TraceModel:
    """Load and analyse traces synchronously (for tests and benchmarks)."""
    from tracelens.analyze import load
    from tracelens.tui.model import build_model, run_analysis

    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    trace = load([os.fspath(p) for p in items])
    findings, summary = run_analysis(trace, **options)
    return build_model(trace, findings, summary)
