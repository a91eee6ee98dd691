"""The ``tracelens`` command line (typer).

One function per command; each only parses its arguments and calls the analyzer,
the renderers or the exporters. Exit codes: 0 success (no finding at or above
``--fail-on``), 1 findings at or above ``--fail-on``, 2 usage errors and unusable
input (missing, unreadable or empty files, unknown trace format), always with a
one-line message on stderr and never a traceback.
"""

from __future__ import annotations

import enum
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from tracelens.exceptions import TracelensError, UsageError

if TYPE_CHECKING:
    from rich.progress import Progress

    from tracelens.analyze import Trace

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="tracelens",
    help="Find race conditions in Python programs from their structured logs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from tracelens import __version__

        typer.echo(f"tracelens {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_show_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Find race conditions in Python programs from their structured logs."""


class Format(enum.StrEnum):
    """Report formats."""

    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"
    sarif = "sarif"


class FailOn(enum.StrEnum):
    """The lowest severity that makes ``report`` exit with 1."""

    error = "error"
    warning = "warning"
    note = "note"
    never = "never"


class ExportTarget(enum.StrEnum):
    """Export formats."""

    perfetto = "perfetto"


# --- errors -------------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    """Print ``tracelens: error: <message>`` (one line) on stderr and exit with 2.

    Args:
        message: What went wrong; only its first line is printed, with control
            characters escaped (``tracelens.report.clean``): it may name files.

    Raises:
        typer.Exit: Always, with code 2.
    """
    from tracelens.report import clean

    first = clean(" ".join(str(message).split("\n")[0].split())) or "unknown error"
    typer.echo(f"tracelens: error: {first}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}"
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn errors about unusable input into a one-line message and exit 2.

    Catches every ``tracelens.exceptions.TracelensError``, ``OSError`` (missing,
    unreadable, directory) and decoding errors.

    Raises:
        typer.Exit: With code 2 when one of these errors happened.
    """
    try:
        yield
    except (TracelensError, OSError, UnicodeError) as e:
        fail(_one_line(e))


# --- shared steps -------------------------------------------------------------------


@contextmanager
def analysing(events: int) -> Iterator[None]:
    """A spinner on stderr while the analyses run, when stderr is a terminal (quiet in
    pipelines and CI logs)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(f"analysing {events:,} events", spinner="dots"):
        yield


class LoadProgress:
    """A ``progress(done, total)`` callback that shows a rich bar on stderr.

    The bar appears only when stderr is a terminal and loading has taken longer
    than ``delay`` seconds, so quick loads and pipelines stay quiet.
    """

    def __init__(self, *, enabled: bool | None = None, delay: float = 0.4) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.delay = delay
        self.started = time.monotonic()
        self._bar: Progress | None = None
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` bytes are read."""
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self.started < self.delay or (total and done >= total):
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("loading trace"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("load", total=total or None)
        self._bar.update(self._task, completed=done, total=total or None)

    def close(self) -> None:
        """Remove the bar, if it was shown."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def load_trace(logs: Sequence[Path], *, cache: bool = True) -> Trace:
    """Load the trace files with a progress bar; exit 2 on unusable input.

    Args:
        logs: Trace files or globs.
        cache: Read through the cache (``.tracelens-cache/`` next to the first file)
            unless ``TRACELENS_NO_CACHE`` is set.

    Returns:
        The loaded trace.
    """
    from tracelens.analyze.cache import load_maybe_cached

    progress = LoadProgress()
    try:
        with input_errors():
            trace = load_maybe_cached([str(p) for p in logs], cache=cache, progress=progress)
    finally:
        progress.close()
    if trace.stats.duplicates:
        n, files = trace.stats.duplicates, trace.stats.duplicate_files
        typer.echo(
            f"tracelens: warning: dropped {n:,} duplicate event{'s' * (n != 1)} (same pid and"
            f" seq) from {files} file{'s' * (files != 1)}",
            err=True,
        )
    return trace


def parse_only(only: str | None) -> list[str] | None:
    """``--only lost_update,deadlock`` as a list of kinds (``None`` for all)."""
    if not only:
        return None
    kinds = [k.strip() for k in only.split(",") if k.strip()]
    if not kinds:
        raise UsageError("--only needs at least one finding kind")
    from tracelens.analyze.run import plan

    try:
        plan(kinds)  # an unknown name is a usage error now, not later in the TUI
    except ValueError as e:
        raise UsageError(f"--only: {e}") from None
    return kinds


def load_suppression_rules(suppress: Path | None, start: Path) -> Sequence[Any]:
    """The suppression rules: from ``--suppress FILE``, else the nearest pyproject.toml.

    Args:
        suppress: The file given with ``--suppress``, if any.
        start: Where to start looking for ``pyproject.toml`` (upwards).

    Returns:
        The rules (``tracelens.analyze.suppress.Suppression``).

    Raises:
        UsageError: The file is missing or not a valid suppression file.
    """
    from tracelens.analyze import suppress as sup

    try:
        if suppress is not None:
            return tuple(sup.load_suppressions(suppress))
        return tuple(sup.find_pyproject_suppressions(start))
    except (ValueError, KeyError, TypeError) as e:
        where = suppress if suppress is not None else "pyproject.toml"
        raise UsageError(f"bad suppression rules in {where}: {_one_line(e)}") from e


def exit_code(findings: Sequence[Any], fail_on: FailOn) -> int:
    """0 when no finding is at or above ``fail_on``, else 1.

    Args:
        findings: The (unsuppressed) findings.
        fail_on: The threshold.

    Returns:
        The exit code.
    """
    if fail_on is FailOn.never:
        return EXIT_OK
    from tracelens.analyze.findings import severity_rank

    limit = severity_rank(fail_on.value)
    return EXIT_FINDINGS if any(severity_rank(f.severity) <= limit for f in findings) else EXIT_OK


#: The exit status when stdout's reader has gone (``report | head``): a shell's for a
#: tool that the default ``SIGPIPE`` ended (128 + 13), as ``cat`` or ``grep`` give.
EXIT_BROKEN_PIPE = 128 + 13


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush cannot fail."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests' capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


@contextmanager
def stdout_errors() -> Iterator[None]:
    """Writing to stdout: a failed write is one line and exit 2, a gone reader quiet.

    The block's output is flushed before it ends, so the error surfaces here, not in
    the interpreter's final flush. A reader that has gone (``EPIPE``: ``| head``) ends
    the command without a message, with ``EXIT_BROKEN_PIPE``; any other error (``ENOSPC``
    on ``> /dev/full``) is ``tracelens: error: cannot write to stdout: ...``.

    Raises:
        typer.Exit: With ``EXIT_BROKEN_PIPE`` or 2 when a write failed.
    """
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except OSError as e:
        _stdout_to_devnull()
        fail(f"cannot write to stdout: {e.strerror or e}")


def write_output(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output``, or to stdout when it is ``None`` or ``-``.

    Raises:
        typer.Exit: With 2 (one line on stderr) when the text cannot be written, or
            ``EXIT_BROKEN_PIPE`` when stdout's reader has gone.
    """
    if output is None or str(output) == "-":
        with stdout_errors():
            sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}")


Logs = Annotated[
    list[Path],
    typer.Argument(
        help="Trace files (JSON lines, plain or .gz) or glob patterns.",
        show_default=False,
        metavar="LOG...",
    ),
]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write to this file instead of stdout.", dir_okay=False),
]
Only = Annotated[
    str | None,
    typer.Option(
        "--only",
        help="Only these finding kinds, comma-separated (e.g. lost_update,atomicity_violation).",
        metavar="KIND,...",
    ),
]

NoCache = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Parse the traces without the .tracelens-cache next to them (or set"
        " TRACELENS_NO_CACHE=1).",
    ),
]

Suppress = Annotated[
    Path | None,
    typer.Option(
        "--suppress",
        help="Suppression rules (TOML); default: \\[tool.tracelens] in the nearest pyproject.toml.",
        dir_okay=False,
    ),
]


# --- commands -----------------------------------------------------------------------


@app.command()
def report(
    logs: Logs,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    output: Output = None,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="Exit with 1 when a finding is at or above this severity."),
    ] = FailOn.error,
    suppress: Suppress = None,
    only: Only = None,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Show code sites relative to this directory (default: the working directory).",
            file_okay=False,
        ),
    ] = None,
    no_cache: NoCache = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Text: only the summary line.")
    ] = False,
    max_findings: Annotated[
        int | None,
        typer.Option("--max-findings", min=0, help="Text: show at most N findings (the worst)."),
    ] = None,
    max_chars: Annotated[
        int,
        typer.Option(
            "--max-chars",
            min=0,
            help="Markdown: cap the report at N characters (default: a GitHub comment's"
            " 65,536; 0: no cap).",
        ),
    ] = 65_536,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            dir_okay=False,
            help="Leave out (and do not fail on) the findings this baseline file accepts.",
        ),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            "--write-baseline",
            dir_okay=False,
            help="Write the findings' stable fingerprints to FILE (for --baseline).",
        ),
    ] = None,
) -> None:
    """Analyse traces and report the races found (exit 1 when any is at or above --fail-on)."""
    from tracelens.report import RENDERERS, RenderOptions

    with input_errors():
        kinds = parse_only(only)
    trace = load_trace(logs, cache=not no_cache)
    with input_errors():
        rules = load_suppression_rules(suppress, Path.cwd())
    from tracelens.analyze import analyze

    try:
        with analysing(trace.stats.lines):
            result = analyze(trace, only=kinds, suppressions=rules)
    except (KeyError, ValueError) as e:  # an unknown kind in --only
        fail(_one_line(e))
    from tracelens.report import clean

    base = (root or Path.cwd()).resolve()
    if write_baseline is not None:
        from tracelens.report.baseline import write_baseline as write_prints

        with input_errors():
            n = write_prints(write_baseline, result.findings, base)
        typer.echo(clean(f"tracelens: wrote {n:,} fingerprints to {write_baseline}"), err=True)
    if baseline is not None:
        from tracelens.report.baseline import read_baseline, without_known

        with input_errors():
            known = read_baseline(baseline)
        result = without_known(result, known, base)
        left = result.summary["baseline_known"]
        if left:
            typer.echo(
                clean(f"tracelens: {left:,} known findings (in {baseline}) left out"), err=True
            )
    to_terminal = output is None and format is Format.text and sys.stdout.isatty()
    width = None
    if to_terminal:
        from rich.console import Console

        width = Console().width
    options = RenderOptions(
        root=root,
        color=to_terminal,
        width=width,
        max_chars=max_chars or None,
        max_findings=0 if quiet else max_findings,
    )
    write_output(RENDERERS[format.value](result, options), output)
    from tracelens.report import NO_SHARED_STATE, no_shared_state

    if no_shared_state(result.summary) and fail_on is not FailOn.never:
        typer.echo(f"tracelens: warning: {NO_SHARED_STATE}", err=True)
    raise typer.Exit(exit_code(result.findings, fail_on))


_STAT_LABELS = {
    "files": "files",
    "lines": "lines",
    "events": "events",
    "variables": "variables",
    "units": "units",
    "sync_objects": "sync objects",
    "app_lines": "application lines (skipped)",
    "malformed": "malformed lines (skipped)",
    "skipped": "skipped lines",
    "duplicates": "duplicate events (dropped)",
    "time_span_ns": "time span",
}


#: Numbers too raw for the table (still in ``--json``).
_RAW_STATS = frozenset({"first_ts", "last_ts"})


@app.command()
def stats(
    logs: Logs,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    no_cache: NoCache = False,
) -> None:
    """Count what the traces hold: events, variables, units, sync objects, skipped lines."""
    import json

    from tracelens.analyze import stats as trace_stats
    from tracelens.report import format_duration

    trace = load_trace(logs, cache=not no_cache)
    numbers = dict(trace_stats(trace))
    if as_json:
        write_output(json.dumps(numbers, indent=2, default=str) + "\n", None)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column(justify="right")
    keys = [k for k in _STAT_LABELS if k in numbers]
    keys += [
        k for k in numbers if k not in _STAT_LABELS and k not in _RAW_STATS and _scalar(numbers[k])
    ]
    for key in keys:
        value = numbers[key]
        if key == "time_span_ns":
            shown = format_duration(value)
        elif isinstance(value, int):
            shown = f"{value:,}"
        else:
            shown = str(value)
        table.add_row(_STAT_LABELS.get(key, key.replace("_", " ")), shown)
    from rich.text import Text

    from tracelens.report import clean

    console = Console(highlight=False)
    examples = getattr(trace.stats, "malformed_examples", None) or ()
    with stdout_errors():
        console.print(table)
        for ex in list(examples)[:5]:
            console.print(Text(f"malformed: {clean(_example(ex))}", style="yellow"))


def _scalar(v: object) -> bool:
    return isinstance(v, int | float | str)


def _example(ex: object) -> str:
    if isinstance(ex, tuple | list) and len(ex) >= 3:
        return f"{ex[0]}:{ex[1]}: {ex[2]}"
    return str(ex)


@app.command()
def tui(
    logs: Logs,
    suppress: Suppress = None,
    only: Only = None,
    root: Annotated[
        list[Path] | None,
        typer.Option(
            "--root",
            help="Also show source files under this directory (repeatable; the working "
            "directory and the traces' directories are always allowed).",
            file_okay=False,
        ),
    ] = None,
    no_cache: NoCache = False,
) -> None:
    """Browse the findings and each variable's timeline in the terminal (q quits, ? keys)."""
    from tracelens.tui import make_app

    with input_errors():
        kinds = parse_only(only)
        rules = load_suppression_rules(suppress, Path.cwd())
        tui_app = make_app(
            [str(p) for p in logs],
            only=kinds,
            suppressions=rules,
            source_roots=root or (),
            cache=not no_cache,
        )
    tui_app.run()
    if tui_app.error:
        fail(tui_app.error)
    raise typer.Exit(tui_app.return_code or EXIT_OK)


@app.command()
def export(
    logs: Logs,
    to: Annotated[ExportTarget, typer.Option("--to", help="Export format.")] = (
        ExportTarget.perfetto
    ),
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The file to write ('-' for stdout).", dir_okay=False),
    ] = Path("trace.perfetto.json"),
    only: Only = None,
    no_cache: NoCache = False,
) -> None:
    """Export the traces for a timeline viewer (Perfetto: open the file in ui.perfetto.dev)."""
    with input_errors():
        kinds = parse_only(only)
    trace = load_trace(logs, cache=not no_cache)
    from tracelens.analyze import analyze
    from tracelens.export import perfetto

    try:
        result = analyze(trace, only=kinds)
    except (KeyError, ValueError) as e:
        fail(_one_line(e))
    doc = perfetto.to_chrome_trace(trace.events, result.findings)
    write_output(perfetto.dumps(doc), output)
    if str(output) != "-":
        from tracelens.report import clean

        n = len(doc["traceEvents"])
        typer.echo(
            f"wrote {n:,} trace events to {clean(str(output))}; open it in https://ui.perfetto.dev",
            err=True,
        )


@app.command("import-std")
def import_std(
    trace: Annotated[Path, typer.Argument(help="An STD trace (RAPID's format).", dir_okay=False)],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The tracelens trace to write.", dir_okay=False)
    ],
) -> None:
    """Convert an STD trace (RAPID, race-detection benchmarks) into a tracelens trace."""
    from tracelens.importers import StdError, StdStats, convert_std

    stats = StdStats()
    with input_errors():
        try:
            n = convert_std(trace, output, stats=stats)
        except StdError as e:
            raise UsageError(f"{trace}: {e}") from None
    from tracelens.report import clean

    skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.skipped.items()))
    typer.echo(
        clean(f"wrote {n:,} events to {output}" + (f" (skipped: {skipped})" if skipped else "")),
        err=True,
    )


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,  # everything after the script is the script's
    },
)
def run(
    target: Annotated[
        str, typer.Argument(metavar="SCRIPT", help="The script to run (with -m: the module).")
    ],
    args: Annotated[list[str] | None, typer.Argument(help="The program's arguments.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="The trace file (overwritten; NAME.trace.jsonl)."),
    ] = None,
    module: Annotated[bool, typer.Option("-m", help="Run a module, like python -m.")] = False,
    stress: Annotated[
        bool, typer.Option("--stress", help="Shrink the thread switch interval to shake out races.")
    ] = False,
    stack_depth: Annotated[
        int,
        typer.Option("--stack-depth", help="Frames of each event's call stack (0: none)."),
    ] = 8,
) -> None:
    """Record a program's run to a trace (like coverage run); exits with the program's status."""
    from tracelens.record.runner import run as run_program

    raise typer.Exit(
        run_program(
            [target, *(args or [])],
            output=output,
            module=module,
            stress=stress,
            stack_depth=stack_depth,
        )
    )


@app.command()
def reproduce(
    trace: Annotated[
        Path,
        typer.Argument(help="The trace the finding is in.", show_default=False, metavar="TRACE"),
    ],
    command: Annotated[
        list[str],
        typer.Argument(
            help="After --: the program, as for tracelens run (script.py args, -m module).",
            show_default=False,
            metavar="-- COMMAND...",
        ),
    ],
    finding: Annotated[
        str,
        typer.Option(
            "--finding", help="The finding: its number in the report, fingerprint or group id."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="The new trace (default TRACE's name + .reproduce.jsonl).",
            dir_okay=False,
        ),
    ] = None,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, help="Forced runs at most (other occurrences).")
    ] = 3,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.5, help="Seconds a run may take (then: a hang).")
    ] = 20.0,
    emit_test: Annotated[
        Path | None,
        typer.Option("--emit-test", dir_okay=False, help="Write a pytest test that forces it."),
    ] = None,
) -> None:
    """Force a finding's interleaving on the program: exit 1 when the bug happened, 0 when
    it could not be forced."""
    from tracelens.report import clean
    from tracelens.reproduce import reproduce as force_finding

    new = output or trace.with_name(trace.name.split(".")[0] + ".reproduce.jsonl")
    with input_errors():
        index, f, outcome = force_finding(
            [trace], finding, command, output=new, attempts=attempts, timeout=timeout
        )
    label = f"finding {index} ({f.kind} on {f.var}, {f.group or f.fingerprint})"
    if outcome.reproduced:
        head = f"reproduced {label} in attempt {outcome.attempts} of {attempts}"
    else:
        head = f"not reproduced: {label}"
    lines = [head, outcome.summary, *outcome.details]
    if outcome.run is not None and outcome.run.trace.exists():
        lines.append(f"the new trace: {outcome.run.trace} (tracelens report {outcome.run.trace})")
    if emit_test is not None and outcome.plan is not None:
        from tracelens.reproduce import emit_test as write_test

        with input_errors():
            write_test(emit_test, command, outcome.plan, f, Path.cwd())
        lines.append(f"wrote the test {emit_test} (pytest {emit_test})")
    with stdout_errors():
        typer.echo(clean(lines[0]))
        for line in lines[1:]:
            typer.echo("  " + clean(line))
    raise typer.Exit(EXIT_FINDINGS if outcome.reproduced else EXIT_OK)


def main(argv: Sequence[str] | None = None) -> Callable[..., Any] | Any:
    """Run the command line (the ``tracelens`` console script).

    Args:
        argv: Arguments without the program name; ``None`` for ``sys.argv[1:]``.

    Returns:
        Whatever the typer app returns (it normally exits).
    """
    return app(args=list(argv) if argv is not None else None, prog_name="tracelens")
