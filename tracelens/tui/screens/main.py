"""The main screen: the summary header, the findings table and the variables table."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
from rich.style import Style
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Select, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from tracelens.analyze.findings import SEVERITIES, Finding
from tracelens.report import clean
from tracelens.tui.messages import OpenFinding, OpenVariable, RowHighlighted, RowSelected
from tracelens.tui.model import TraceModel, run_analysis
from tracelens.tui.widgets.finding_detail import FindingDetail
from tracelens.tui.widgets.frame_table import Column, FrameTable
from tracelens.tui.widgets.summary import SEVERITY_STYLES, SummaryBar, summary_text


def _severity_style(value: Any, _row: dict[str, Any]) -> Style | None:
    return Style.parse(SEVERITY_STYLES[value]) if value in SEVERITY_STYLES else None


def _findings_style(value: Any, row: dict[str, Any]) -> Style | None:
    return Style(color="#5fd7ff", bold=True) if value else Style(color="#6c6c6c")


FINDING_COLUMNS = [
    Column("severity", "severity", max_width=9, sort_by="sev_rank", style=_severity_style),
    Column("kind", "kind", max_width=22),
    Column("var", "variable", max_width=40, style=lambda _v, _r: Style(color="#5fd7ff", bold=True)),
    Column("units", "units", max_width=34, sort_by="n_units"),
    Column("sites", "sites", max_width=48),
    Column("count", "count", justify="right", min_width=6),
]

VARIABLE_COLUMNS = [
    Column(
        "var",
        "variable",
        max_width=40,
        style=lambda _v, r: Style(color="#5fd7ff", bold=True) if r.get("findings") else None,
    ),
    Column("reads", "reads", justify="right", min_width=7),
    Column("writes", "writes", justify="right", min_width=7),
    Column("accesses", "total", justify="right", min_width=7),
    Column("units", "units", justify="right", min_width=5),
    Column(
        "findings",
        "findings",
        justify="right",
        min_width=8,
        sort_by="findings",
        style=_findings_style,
    ),
    Column("by_unit", "by unit (reads/writes)", max_width=70),
]


def filter_findings(
    frame: pl.DataFrame,
    *,
    kind: str | None = None,
    severity: str | None = None,
    var: str = "",
    unit: str = "",
) -> pl.DataFrame:
    """The findings rows that match every filter given (text filters: case-insensitive)."""
    if kind:
        frame = frame.filter(pl.col("kind") == kind)
    if severity:
        frame = frame.filter(pl.col("severity") == severity)
    if var:
        frame = frame.filter(
            pl.col("var").str.to_lowercase().str.contains(var.lower(), literal=True)
        )
    if unit:
        frame = frame.filter(
            pl.col("units").str.to_lowercase().str.contains(unit.lower(), literal=True)
        )
    return frame


def filter_variables(frame: pl.DataFrame, text: str = "") -> pl.DataFrame:
    """The variables whose name (or busiest units) contain ``text``."""
    if not text:
        return frame
    t = text.lower()
    return frame.filter(
        pl.col("var").str.to_lowercase().str.contains(t, literal=True)
        | pl.col("by_unit").fill_null("").str.to_lowercase().str.contains(t, literal=True)
    )


class MainScreen(Screen[None]):
    """Findings and variables of one trace, in two tabs under a summary header."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "tab('findings')", "Findings", show=False),
        Binding("2", "tab('variables')", "Variables", show=False),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("u", "unit_filter", "Unit filter", show=False),
        Binding("x", "clear_filters", "Clear filters"),
        Binding("escape", "escape", "Table", show=False),
    ]

    def __init__(self, model: TraceModel) -> None:
        super().__init__()
        self.model = model

    def compose(self) -> ComposeResult:
        """Header, two tabs, footer."""
        m = self.model
        yield SummaryBar(m, id="summary")
        kinds = sorted(set(m.findings_frame["kind"].to_list()))
        sevs = list(SEVERITIES)
        label = f"Findings ({len(m.findings):,})" if m.analysed else "Findings (…)"
        with TabbedContent(initial="findings", id="tabs"):
            with TabPane(label, id="findings"):
                with Horizontal(id="finding-filters", classes="filters"):
                    yield Select(
                        [(k, k) for k in kinds], prompt="any kind", id="kind-filter", compact=True
                    )
                    yield Select(
                        [(s, s) for s in sevs],
                        prompt="any severity",
                        id="severity-filter",
                        compact=True,
                    )
                    yield Input(placeholder="variable contains…", id="var-filter", compact=True)
                    yield Input(placeholder="unit contains…", id="unit-filter", compact=True)
                empty = (
                    "analysing… (the variables tab is ready)"
                    if not m.analysed
                    else "no findings"
                    if not m.findings
                    else "no finding matches"
                )
                yield FrameTable(FINDING_COLUMNS, id="findings-table", empty=empty)
                yield FindingDetail(id="finding-detail")
            with TabPane(f"Variables ({m.variables_frame.height:,})", id="variables"):
                with Horizontal(id="variable-filters", classes="filters"):
                    yield Input(
                        placeholder="variable or unit contains…",
                        id="variables-filter",
                        compact=True,
                    )
                yield FrameTable(VARIABLE_COLUMNS, id="variables-table", empty="no variables")
        yield Footer()

    def on_mount(self) -> None:
        """Fill the tables and focus the findings; start the analysis if it has not run."""
        self.query_one("#findings-table", FrameTable).set_frame(self.model.findings_frame)
        self.query_one("#variables-table", FrameTable).set_frame(self.model.variables_frame)
        self.query_one("#finding-detail", FindingDetail).show(
            self.model.findings[0] if self.model.findings else None, self.model.findings
        )
        self.query_one("#findings-table", FrameTable).focus()
        if not self.model.analysed:
            self.analyse()

    @work(thread=True, exclusive=True, name="analyse", exit_on_error=False)
    def analyse(self) -> tuple[list[Finding], dict[str, Any]]:
        """Run the analyses in a thread (the tables stay usable meanwhile)."""
        from tracelens.tui.screens.loading import interruptible

        options = getattr(self.app, "options", {}) or {}
        trace, model = self.model.trace, self.model

        def run() -> tuple[list[Finding], dict[str, Any]]:
            result = run_analysis(trace, **options)
            model.lock_holds()  # computed once here, so timelines open quickly
            return result

        return interruptible(run, get_current_worker())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show the findings when the analysis is done."""
        if event.worker.name != "analyse":
            return
        if event.state is WorkerState.SUCCESS:
            result = event.worker.result
            assert result is not None
            findings, summary = result
            self.model.set_findings(findings, summary)
            self.refresh_findings()
        elif event.state is WorkerState.ERROR:
            from tracelens.tui.screens.loading import Cancelled

            error = event.worker.error
            if isinstance(error, Cancelled):
                return
            self.notify(
                clean(f"analysis failed: {type(error).__name__}: {error}"),
                severity="error",
                markup=False,
                timeout=10,
            )
            table = self.query_one("#findings-table", FrameTable)
            table.empty = "the analysis failed"
            table.refresh()

    def refresh_findings(self) -> None:
        """Redraw what depends on the findings: header, tabs, filters, tables."""
        m = self.model
        self.query_one(SummaryBar).update(summary_text(m))
        tabs = self.query_one(TabbedContent)
        tabs.get_tab("findings").label = f"Findings ({len(m.findings):,})"
        kinds = sorted(set(m.findings_frame["kind"].to_list()))
        self.query_one("#kind-filter", Select).set_options([(k, k) for k in kinds])
        table = self.query_one("#findings-table", FrameTable)
        table.empty = "no findings" if not m.findings else "no finding matches"
        self.refilter()
        current = table.current_row()
        if m.findings and current is not None:
            self.query_one("#finding-detail", FindingDetail).show(
                m.findings[current["idx"]], m.findings
            )
        variables = self.query_one("#variables-table", FrameTable)
        variables.set_frame(
            filter_variables(m.variables_frame, self.query_one("#variables-filter", Input).value),
            keep="var",
        )

    # filters -------------------------------------------------------------------------
    def _select_value(self, selector: str) -> str | None:
        value = self.query_one(selector, Select).value
        return value if isinstance(value, str) else None

    def refilter(self) -> None:
        """Apply the findings filters."""
        frame = filter_findings(
            self.model.findings_frame,
            kind=self._select_value("#kind-filter"),
            severity=self._select_value("#severity-filter"),
            var=self.query_one("#var-filter", Input).value,
            unit=self.query_one("#unit-filter", Input).value,
        )
        table = self.query_one("#findings-table", FrameTable)
        table.set_frame(frame, keep="idx")
        if not frame.height:
            self.query_one("#finding-detail", FindingDetail).show(None)

    @on(Select.Changed)
    @on(Input.Changed, "#var-filter, #unit-filter")
    def _findings_filter_changed(self) -> None:
        self.refilter()

    @on(Input.Changed, "#variables-filter")
    def _variables_filter_changed(self, event: Input.Changed) -> None:
        table = self.query_one("#variables-table", FrameTable)
        table.set_frame(filter_variables(self.model.variables_frame, event.value), keep="var")

    @on(Input.Submitted)
    def _filter_submitted(self, event: Input.Submitted) -> None:
        target = "#variables-table" if event.input.id == "variables-filter" else "#findings-table"
        self.query_one(target, FrameTable).focus()

    def action_clear_filters(self) -> None:
        """Clear every filter."""
        for sel in ("#kind-filter", "#severity-filter"):
            self.query_one(sel, Select).clear()
        for inp in ("#var-filter", "#unit-filter", "#variables-filter"):
            self.query_one(inp, Input).value = ""

    def action_search(self) -> None:
        """Focus the text filter of the tab shown."""
        tab = self.query_one(TabbedContent).active
        self.query_one("#variables-filter" if tab == "variables" else "#var-filter", Input).focus()

    def action_unit_filter(self) -> None:
        """Focus the unit filter."""
        self.action_tab("findings")
        self.query_one("#unit-filter", Input).focus()

    def action_tab(self, tab: str) -> None:
        """Show a tab and focus its table."""
        self.query_one(TabbedContent).active = tab
        self.query_one(f"#{tab}-table", FrameTable).focus()

    def action_escape(self) -> None:
        """Back to the table of the tab shown."""
        tab = self.query_one(TabbedContent).active or "findings"
        self.query_one(f"#{tab}-table", FrameTable).focus()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id or "findings"
        self.query_one(f"#{pane}-table", FrameTable).focus()

    # tables --------------------------------------------------------------------------
    @on(RowHighlighted, "#findings-table")
    def _finding_highlighted(self, event: RowHighlighted) -> None:
        self.query_one("#finding-detail", FindingDetail).show(
            self.model.findings[event.row["idx"]], self.model.findings
        )

    @on(RowSelected, "#findings-table")
    def _finding_selected(self, event: RowSelected) -> None:
        self.post_message(OpenFinding(int(event.row["idx"])))

    @on(RowSelected, "#variables-table")
    def _variable_selected(self, event: RowSelected) -> None:
        self.post_message(OpenVariable(str(event.row["var"])))

    def on_open_finding(self, message: OpenFinding) -> None:
        """Open the timeline of a finding's variable, on that finding."""
        from tracelens.tui.screens.timeline import TimelineScreen

        finding = self.model.findings[message.index]
        self.app.push_screen(TimelineScreen(self.model, finding.var, finding=finding))

    def on_open_variable(self, message: OpenVariable) -> None:
        """Open a variable's timeline."""
        from tracelens.tui.screens.timeline import TimelineScreen

        self.app.push_screen(TimelineScreen(self.model, message.var))
