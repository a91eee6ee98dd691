"""The corpus of odd traces (``tests/data/odd``) through every command and format: a
result or one clean error line, never a traceback; repeated events dropped and counted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.odd_traces import CORPUS, ODD_DIR
from tracelens.analyze import analyze, load
from tracelens.cli import app
from tracelens.exceptions import TracelensError
from tracelens.report import FORMATS, render

runner = CliRunner()

#: The corpus files the loader refuses (exit 2); every other one is analysed.
REFUSED = {"empty", "duplicate_seq", "all_one_seq"}
FILES = sorted(ODD_DIR.glob("*.jsonl"))


@pytest.fixture(autouse=True)
def _no_pyproject_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory, so no pyproject.toml suppressions apply."""
    monkeypatch.chdir(tmp_path)


def _outcome(args: list[str]) -> tuple[int, str]:
    """Run the command; fail on a traceback; return its exit code and stderr."""
    result = runner.invoke(app, [*args, "--no-cache"])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}"
    )
    assert "Traceback" not in result.output + result.stderr
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tracelens: error: "), result.stderr
    else:
        assert result.exit_code in (0, 1) and result.stdout, args
    return result.exit_code, result.stderr


def test_the_corpus_files_are_what_the_generator_writes() -> None:
    """Every category of ``tests/odd_traces.py`` is in ``tests/data/odd``, line for line."""
    assert {p.stem for p in FILES} == set(CORPUS)
    for p in FILES:
        text = p.read_text(encoding="utf-8")
        assert text == "".join(line + "\n" for line in CORPUS[p.stem]), p.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_renderer_renders_or_the_loader_refuses_in_one_line(path: Path) -> None:
    """Each odd trace loads, is analysed and renders in every format; or (the refused
    ones) the loader raises the project's error with a one-line message."""
    try:
        trace = load(path)
    except TracelensError as e:
        assert path.stem in REFUSED and len(str(e).splitlines()) == 1, str(e)
        return
    assert path.stem not in REFUSED
    result = analyze(trace)
    for fmt in FORMATS:
        assert render(result, fmt), fmt


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_report_exits_0_or_1_or_refuses_in_one_line(path: Path) -> None:
    """``tracelens report`` on each odd trace: a report (exit 0 or 1), or for the refused
    ones exit 2 with one line on stderr."""
    code, _ = _outcome(["report", str(path), "--format", "sarif"])
    assert code in ({2} if path.stem in REFUSED else {0, 1})


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_stats_and_export_report_or_refuse_in_one_line(path: Path, tmp_path: Path) -> None:
    """``stats`` and ``export`` on each odd trace: a result, or exit 2 with one line."""
    stats_code, _ = _outcome(["stats", str(path), "--json"])
    export_code, _ = _outcome(["export", str(path), "-o", "-"])
    expected = 2 if path.stem in REFUSED else 0
    assert (stats_code, export_code) == (expected, expected)


def test_a_different_event_with_a_used_seq_is_refused_naming_its_line() -> None:
    """Two different events with one pid and seq: exit 2, naming the later line and the
    earlier one."""
    path = ODD_DIR / "duplicate_seq.jsonl"
    _, err = _outcome(["report", str(path)])
    assert f"{path}:3: pid 7 seq 1 already used by a different event at {path}:2" in err


def test_the_same_trace_twice_gives_the_findings_of_once(tmp_path: Path) -> None:
    """A trace given twice (two files) is analysed as once: the same findings, and the
    copies counted in the load statistics."""
    one = ODD_DIR / "locks_odd.jsonl"
    two = shutil.copy(one, tmp_path / "copy.jsonl")
    once, twice = load(one), load([one, two])
    assert twice.stats.duplicates == once.stats.events
    assert twice.stats.duplicate_files == 1
    assert analyze(twice).findings == analyze(once).findings


def test_a_file_that_repeats_itself_is_read_once(tmp_path: Path) -> None:
    """A file holding a trace fifty times over (``cat a a ... > b``) loads as the trace
    once (the repeats once multiplied rows in every join on ``(pid, seq)``)."""
    one = ODD_DIR / "locks_odd.jsonl"
    repeated = tmp_path / "repeated.jsonl"
    repeated.write_bytes(one.read_bytes() * 50)
    trace = load(repeated)
    assert trace.events.collect().equals(load(one).events.collect())
    assert trace.stats.duplicates == 49 * len(CORPUS[one.stem])
    assert analyze(trace).findings == analyze(load(one)).findings


def test_dropped_duplicates_are_one_warning_line(tmp_path: Path) -> None:
    """The command line says how many repeated events it dropped, from how many files,
    in one warning line, and reports the findings of the trace once."""
    one = ODD_DIR / "release_without_acquire.jsonl"
    copies = [str(shutil.copy(one, tmp_path / f"copy{i}.jsonl")) for i in range(3)]
    once = runner.invoke(app, ["report", str(one), "--no-cache", "-f", "json"])
    many = runner.invoke(app, ["report", str(one), *copies, "--no-cache", "-f", "json"])
    n = 3 * len(CORPUS[one.stem])
    warnings = [ln for ln in many.stderr.splitlines() if "duplicate" in ln]
    assert warnings == [
        f"tracelens: warning: dropped {n} duplicate events (same pid and seq) from 3 files"
    ]
    assert _findings_part(many.stdout) == _findings_part(once.stdout)


def _findings_part(report_json: str) -> object:
    import json

    return json.loads(report_json)["findings"]
