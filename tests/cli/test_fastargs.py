"""The quick reading of ``report``'s command line agrees with typer's or steps aside."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracelens import cli
from tracelens._fastargs import call, parse


def _typer_kwargs(argv: list[str]) -> dict[str, Any] | None:
    """The keyword arguments typer calls ``report`` with, or ``None`` when it refuses."""
    seen: dict[str, Any] = {}

    @functools.wraps(cli.report)
    def stub(**kwargs: Any) -> None:
        seen.update(kwargs)

    app = typer.Typer()
    app.command()(stub)
    app.command("other")(lambda: None)  # a group, as the real app is
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # --help prints, then returns
            app(["report", *argv], standalone_mode=False)
    except Exception:  # a usage error: typer refuses the command line
        return None
    return seen or None


_VALUES = ("json", "text", "JSON", "never", "error", "3", "-1", "07", "+2", "1_0", "", "x,y")
_VALUES += ("-", "--", "out.txt")
_NAMES = (
    *("--format", "-f", "--fail-on", "--output", "-o", "--only", "--root", "--suppress"),
    *("--max-findings", "--max-chars", "--baseline", "--write-baseline", "--no-cache"),
    *("-q", "--quiet", "--no-quiet", "--help", "-h", "--bogus", "-qf"),
)


def _tokens(tmp: Path) -> st.SearchStrategy[list[str]]:
    a_dir, a_file = str(tmp), str(tmp / "t.jsonl")
    values = st.sampled_from([*_VALUES, a_dir, a_file])
    names = st.sampled_from(_NAMES)
    option = st.tuples(names, values).map(list) | st.tuples(names, values).map(
        lambda nv: [f"{nv[0]}={nv[1]}"]
    )
    token = option | names.map(lambda n: [n]) | values.map(lambda v: [v])
    return st.lists(token, max_size=6).map(lambda parts: [t for p in parts for t in p])


def test_plain_command_lines_are_read_without_typer(tmp_path: Path) -> None:
    """The benchmarks' and CI's usual command lines take the quick path, with typer's values."""
    trace = str(tmp_path / "t.jsonl")
    for argv in (
        [trace],
        [trace, "--fail-on", "never"],
        [trace, "--format", "json", "--fail-on", "never"],
        [trace, trace, "-f", "sarif", "-o", str(tmp_path / "r.sarif")],
        ["--format=markdown", "--max-chars=100", trace, "--only", "lost_update", "-q"],
    ):
        got = parse(cli.report, argv)
        assert got is not None and got == _typer_kwargs(argv), argv


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_quick_path_agrees_with_typer(tmp_path_factory: Any, data: st.DataObject) -> None:
    """Whenever the quick path reads a command line, typer reads the same values from it."""
    tmp = tmp_path_factory.mktemp("fa")
    (tmp / "t.jsonl").write_text("")
    argv = data.draw(_tokens(tmp))
    got = parse(cli.report, argv)
    if got is not None:
        assert got == _typer_kwargs(argv)


def test_unknown_declarations_step_aside() -> None:
    """An undeclared parameter, or a setting the quick path does not know, makes it decline."""

    def command(n: int = 0) -> None: ...  # a parameter without a typer declaration

    def with_callback(x: Annotated[int, typer.Option("--x", callback=abs)] = 0) -> None: ...

    assert parse(command, []) is None
    assert parse(with_callback, []) is None
    assert parse(with_callback, ["--x", "1"]) is None


def test_call_returns_the_commands_exit_code() -> None:
    """``call`` gives typer.Exit's code, 0 for a normal return and 130 for an interrupt."""

    def exits(code: int) -> None:
        raise typer.Exit(code)

    def interrupted() -> None:
        raise KeyboardInterrupt

    nothing: Callable[[], None] = lambda: None  # noqa: E731
    assert call(exits, {"code": 3}) == 3
    assert call(nothing, {}) == 0
    assert call(interrupted, {}) == 130


def test_report_command_on_the_quick_path_matches_typer(tmp_path: Path) -> None:
    """``python -m tracelens report`` prints and exits the same on both paths."""
    trace = tmp_path / "t.jsonl"
    root = Path(__file__).resolve().parents[2]
    with gzip.open(root / "sample_logs" / "article_racy.jsonl.gz", "rt") as f:
        trace.write_text("".join(line for _, line in zip(range(400), f, strict=False)))
    quick = subprocess.run(
        [sys.executable, "-m", "tracelens", "report", str(trace), "-f", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "TRACELENS_NO_CACHE": "1"},
    )
    # a trailing "--" is not a plain case: typer reads this one
    slow = subprocess.run(
        [sys.executable, "-m", "tracelens", "report", "-f", "json", "--", str(trace)],
        capture_output=True,
        text=True,
        env={**os.environ, "TRACELENS_NO_CACHE": "1"},
    )
    assert parse(cli.report, [str(trace), "-f", "json"]) is not None
    assert parse(cli.report, ["-f", "json", "--", str(trace)]) is None
    assert (quick.returncode, quick.stdout, quick.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    )
