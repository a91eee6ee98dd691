"""The loading screen: reads and analyses the trace in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Middle, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tracelens.report import clean
from tracelens.tui.messages import LoadProgress
from tracelens.tui.model import TraceModel, build_model, run_analysis, with_order

T = TypeVar("T")


class Cancelled(Exception):
    """Loading was cancelled (escape)."""


def interruptible(fn: Callable[[], T], worker: Worker[Any]) -> T:
    """Run ``fn`` in a daemon thread; raise ``Cancelled`` as soon as ``worker`` is cancelled."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    thread = threading.Thread(target=target, name="tracelens-load", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
        if worker.is_cancelled:
            raise Cancelled
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


class LoadingScreen(Screen[TraceModel]):
    """A progress bar while a worker thread loads (and, with ``analyse``, analyses) the trace.

    Dismissed with the ``TraceModel`` when done; escape cancels and quits. By default
    the analysis is left to the main screen, which shows the trace while it runs.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self,
        paths: Sequence[str],
        options: dict[str, Any] | None = None,
        *,
        analyse: bool = False,
        cache: bool = False,
    ) -> None:
        super().__init__()
        self.paths = list(paths)
        self.options = dict(options or {})
        self.analyse = analyse
        self.cache = cache
        self.started = time.monotonic()

    def compose(self) -> ComposeResult:
        """A centred box: what is loaded, the stage, the bar, the hint."""
        with Middle(), Center(), Vertical(id="loading-box"):
            title = Text("tracelens", style="bold #5fafff")
            title.append("  loading ", style="")
            names = ", ".join(self.paths[:3]) + (" …" if len(self.paths) > 3 else "")
            title.append(clean(names), style="bold")
            yield Static(title, markup=False, id="loading-title")
            yield Label("reading", id="loading-stage", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="loading-bar")
            yield Label("esc cancels", id="loading-hint")
        yield Footer()

    def on_mount(self) -> None:
        """Start the worker."""
        self.load()

    @work(thread=True, exclusive=True, name="load", exit_on_error=False)
    def load(self) -> TraceModel:
        """Load, analyse and index the trace (in a thread)."""
        from tracelens.analyze import load as load_plain
        from tracelens.analyze.cache import cache_enabled, load_cached

        load = load_cached if cache_enabled(self.cache) else load_plain

        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:
                raise Cancelled
            self.post_message(LoadProgress("reading", done, total or None))

        # polars cannot be interrupted: read in a daemon thread, so that escape
        # quits at once instead of waiting for the read to finish
        trace = interruptible(lambda: load(self.paths, progress=progress), worker)
        n = trace.stats.events
        self.post_message(LoadProgress(f"indexing {n:,} events", 0, None))
        events = with_order(trace.events)
        if worker.is_cancelled:
            raise Cancelled
        if not self.analyse:
            return build_model(trace, None, events=events)  # the main screen analyses
        self.post_message(LoadProgress(f"analysing {n:,} events", 0, None))
        findings, summary = interruptible(lambda: run_analysis(trace, **self.options), worker)
        return build_model(trace, findings, summary, events=events)

    def on_load_progress(self, message: LoadProgress) -> None:
        """Move the bar."""
        self.query_one("#loading-stage", Label).update(message.stage)
        bar = self.query_one("#loading-bar", ProgressBar)
        bar.update(total=message.total, progress=message.done)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Hand the model over, or report the error."""
        if event.worker.name != "load":
            return
        if event.state is WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
        elif event.state is WorkerState.ERROR:
            error = event.worker.error
            if isinstance(error, Cancelled):
                return
            from tracelens.analyze import TraceError

            text = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            if not isinstance(error, TraceError | OSError):
                text = f"{type(error).__name__}: {text}"
            self.app.fail(text)  # type: ignore[attr-defined]

    def action_cancel(self) -> None:
        """Stop loading and quit."""
        self.workers.cancel_all()
        self.app.exit(return_code=130, message="tracelens: loading cancelled")
