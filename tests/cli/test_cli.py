"""The command line: every command, format and exit code; unusable input exits 2 cleanly."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from tracelens import schema as s
from tracelens.cli import app
from tracelens.report import FORMATS
from tracelens.report.json_ import REPORT_SCHEMA

runner = CliRunner()


def _event(seq: int, op: str, unit: str, **fields: object) -> dict[str, object]:
    return {
        s.TL: s.FORMAT_VERSION,
        s.OP: op,
        s.SEQ: seq,
        s.TS: 1_000_000 + 1_000 * seq,
        s.PID: 4242,
        s.UNIT: unit,
        s.TID: int(unit[1:]),
        s.THREAD: f"Thread-{unit[1:]}",
        **fields,
    }


def _access(seq: int, op: str, unit: str, var: str, value: object, line: int) -> dict:
    return _event(seq, op, unit, var=var, value=value, file="/src/app.py", line=line, func="work")


def lost_update_lines(var: str = "model['weight']") -> list[dict]:
    """Thread 1 reads, thread 2 writes, thread 1 writes back: a lost update."""
    return [
        _event(0, "meta", "t0", argv=["app.py"], python="3.11"),
        _access(1, "read", "t1", var, 0.5, 12),
        _access(2, "read", "t2", var, 0.5, 12),
        _access(3, "write", "t2", var, 0.75, 13),
        _access(4, "write", "t1", var, 0.75, 13),
    ]


def _unit(seq: int, op: str, unit: str, child: str) -> dict:
    return _event(seq, op, unit, obj=child, kind="thread", file="/src/app.py", line=3, func="main")


def clean_lines() -> list[dict]:
    """Two updates by threads run one after the other (start, join): nothing to report."""
    return [
        _event(0, "meta", "t0", argv=["app.py"], python="3.11"),
        _unit(1, "fork", "t0", "t1"),
        _access(2, "read", "t1", "x", 1, 5),
        _access(3, "write", "t1", "x", 2, 5),
        _unit(4, "join", "t0", "t1"),
        _unit(5, "fork", "t0", "t2"),
        _access(6, "read", "t2", "x", 2, 5),
        _access(7, "write", "t2", "x", 3, 5),
        _unit(8, "join", "t0", "t2"),
    ]


def write_trace(path: Path, events: list[dict], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + extra)
    return path


@pytest.fixture
def racy(tmp_path: Path) -> Path:
    return write_trace(tmp_path / "racy.jsonl", lost_update_lines())


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return write_trace(tmp_path / "clean.jsonl", clean_lines())


@pytest.fixture(autouse=True)
def _no_pyproject_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory, so no pyproject.toml suppressions apply."""
    monkeypatch.chdir(tmp_path)


def _assert_clean_error(result) -> None:
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracelens: error: ")
    assert "Traceback" not in result.output + result.stderr


# --- report: formats and exit codes -------------------------------------------------


def test_report_on_a_lost_update_exits_1(racy: Path) -> None:
    """report on a trace with a lost update exits 1."""
    assert runner.invoke(app, ["report", str(racy)]).exit_code == 1


def test_report_without_findings_exits_0(clean: Path) -> None:
    """report on a clean trace exits 0 and says there are no findings."""
    result = runner.invoke(app, ["report", str(clean)])
    assert result.exit_code == 0 and "no findings" in result.stdout


def _sync_only(tmp_path: Path) -> Path:
    lines = [e for e in clean_lines() if e["event"] not in ("read", "write")]
    return write_trace(tmp_path / "sync.jsonl", lines)


def test_report_on_a_trace_without_shared_state_warns_on_stderr(tmp_path: Path) -> None:
    """A trace with synchronisation but no variable warns on stderr that no shared state
    was recorded (the exit code stays the findings')."""
    result = runner.invoke(app, ["report", str(_sync_only(tmp_path))])
    assert result.exit_code == 0
    assert "warning: no shared state was recorded" in result.stderr


def test_fail_on_never_does_not_warn_about_missing_shared_state(tmp_path: Path) -> None:
    """With --fail-on never, the warning about no shared state is left out of stderr."""
    result = runner.invoke(app, ["report", "--fail-on", "never", str(_sync_only(tmp_path))])
    assert "warning" not in result.stderr


def test_fail_on_never_exits_0_despite_findings(racy: Path) -> None:
    """--fail-on never exits 0 even when there are findings."""
    assert runner.invoke(app, ["report", str(racy), "--fail-on", "never"]).exit_code == 0


def test_fail_on_warning_exits_1_on_an_error(racy: Path) -> None:
    """--fail-on warning exits 1 when an error-level finding is reported."""
    assert runner.invoke(app, ["report", str(racy), "--fail-on", "warning"]).exit_code == 1


def test_text_report_draws_the_steps(racy: Path) -> None:
    """The text report shows each step with its value and site."""
    out = runner.invoke(app, ["report", str(racy)]).stdout
    assert "reads model['weight'] = 0.5 at /src/app.py:12" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reports_the_lost_update(fmt: str, racy: Path) -> None:
    """Every output format names the lost update, and report exits 1."""
    result = runner.invoke(app, ["report", str(racy), "--format", fmt])
    assert result.exit_code == 1 and "lost_update" in result.stdout


def test_json_report_validates_against_its_schema(racy: Path) -> None:
    """The JSON report of a lost update validates against REPORT_SCHEMA."""
    doc = json.loads(runner.invoke(app, ["report", str(racy), "-f", "json"]).stdout)
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(doc)
    assert "lost_update" in {f["kind"] for f in doc["findings"]}


def test_output_option_writes_the_file(racy: Path, tmp_path: Path) -> None:
    """-o writes the report to that file, creating its directory, and keeps exit code 1."""
    out = tmp_path / "out" / "report.sarif"
    result = runner.invoke(app, ["report", str(racy), "-f", "sarif", "-o", str(out)])
    assert result.exit_code == 1 and json.loads(out.read_text())["version"] == "2.1.0"


def test_only_filters_kinds(racy: Path) -> None:
    """--only with a kind the trace lacks drops the lost update, so report exits 0."""
    result = runner.invoke(app, ["report", str(racy), "--only", "atomicity_violation"])
    assert result.exit_code == 0


def test_only_with_an_unknown_kind_is_a_usage_error(racy: Path) -> None:
    """--only with an unknown kind is a one-line error with exit code 2."""
    _assert_clean_error(runner.invoke(app, ["report", str(racy), "--only", "nonsense"]))


def test_unknown_format_is_a_usage_error(racy: Path) -> None:
    """An unknown --format exits 2."""
    assert runner.invoke(app, ["report", str(racy), "-f", "pdf"]).exit_code == 2


def test_gzip_trace_is_read(tmp_path: Path) -> None:
    """A gzip-compressed trace is read and its lost update reported."""
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(
        gzip.compress("".join(json.dumps(e) + "\n" for e in lost_update_lines()).encode())
    )
    assert runner.invoke(app, ["report", str(path)]).exit_code == 1


# --- suppressions -------------------------------------------------------------------


def test_suppress_file_hides_the_finding_and_counts_it(racy: Path, tmp_path: Path) -> None:
    """--suppress hides the matching finding, exits 0, and puts the rule's reason in the summary."""
    rules = tmp_path / "suppress.toml"
    rules.write_text('[[suppress]]\nvar = "model*"\nreason = "benign in tests"\n')
    result = runner.invoke(app, ["report", str(racy), "-f", "json", "--suppress", str(rules)])
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["findings"] == []
    assert doc["summary"]["suppressed_by_rule"][0]["reason"] == "benign in tests"


def test_pyproject_suppressions_apply_by_default(racy: Path, tmp_path: Path) -> None:
    """Suppressions in ./pyproject.toml apply without --suppress, and the report counts them."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.tracelens]\nsuppress = [{kind = "lost_update", reason = "known"}]\n'
    )
    result = runner.invoke(app, ["report", str(racy), "--only", "lost_update"])
    assert result.exit_code == 0 and "1 suppressed" in result.stdout


def test_bad_suppress_file_is_a_clean_error(racy: Path, tmp_path: Path) -> None:
    """A --suppress file that is not TOML is a one-line error with exit code 2."""
    rules = tmp_path / "bad.toml"
    rules.write_text("this is [not toml")
    _assert_clean_error(runner.invoke(app, ["report", str(racy), "--suppress", str(rules)]))


def test_missing_suppress_file_is_a_clean_error(racy: Path, tmp_path: Path) -> None:
    """A missing --suppress file is a one-line error with exit code 2."""
    missing = tmp_path / "missing.toml"
    _assert_clean_error(runner.invoke(app, ["report", str(racy), "--suppress", str(missing)]))


# --- unusable input -----------------------------------------------------------------


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    """A missing trace file is a one-line error with exit code 2."""
    _assert_clean_error(runner.invoke(app, ["report", str(tmp_path / "nope.jsonl")]))


def test_empty_file_is_a_clean_error(tmp_path: Path) -> None:
    """An empty trace file is a one-line error with exit code 2."""
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    _assert_clean_error(runner.invoke(app, ["report", str(path)]))


def test_binary_garbage_is_a_clean_error(tmp_path: Path) -> None:
    """A file of binary garbage is a one-line error with exit code 2."""
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(256)) * 4)
    _assert_clean_error(runner.invoke(app, ["report", str(path)]))


def test_only_non_json_lines_is_a_clean_error(tmp_path: Path) -> None:
    """A file of only non-JSON lines is a one-line error with exit code 2."""
    path = tmp_path / "text.log"
    path.write_text("INFO starting\nWARNING something\n")
    _assert_clean_error(runner.invoke(app, ["report", str(path)]))


def test_directory_is_a_clean_error(tmp_path: Path) -> None:
    """A directory given as the trace is a one-line error with exit code 2."""
    _assert_clean_error(runner.invoke(app, ["report", str(tmp_path)]))


def test_newer_format_version_is_a_clean_error(tmp_path: Path) -> None:
    """A trace of a newer format version is a one-line error with exit code 2."""
    events = [{**e, s.TL: 99} for e in lost_update_lines()]
    _assert_clean_error(
        runner.invoke(app, ["report", str(write_trace(tmp_path / "v.jsonl", events))])
    )


def test_truncated_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    """A truncated last line is counted as malformed; the lost update is still reported."""
    path = write_trace(tmp_path / "t.jsonl", lost_update_lines(), extra='{"tl": 1, "event": "re')
    result = runner.invoke(app, ["report", str(path), "-f", "json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["summary"]["malformed"] == 1


def test_non_json_line_among_events_is_skipped_and_counted(tmp_path: Path) -> None:
    """A non-JSON line among events is counted as malformed; the lost update is still reported."""
    lines = lost_update_lines()
    path = tmp_path / "t.jsonl"
    path.write_text(
        "".join(json.dumps(e) + "\n" for e in lines[:2])
        + "not json at all\n"
        + "".join(json.dumps(e) + "\n" for e in lines[2:])
    )
    result = runner.invoke(app, ["report", str(path), "-f", "json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["summary"]["malformed"] == 1


# --- stats and export ---------------------------------------------------------------


def test_stats_prints_the_counts(racy: Path) -> None:
    """stats exits 0 and prints the event and variable counts."""
    result = runner.invoke(app, ["stats", str(racy)])
    assert result.exit_code == 0
    assert "events" in result.stdout and "variables" in result.stdout


def test_stats_json_has_the_counts(racy: Path) -> None:
    """stats --json gives the numbers of events, variables and units."""
    doc = json.loads(runner.invoke(app, ["stats", str(racy), "--json"]).stdout)
    assert doc["events"] == 5 and doc["variables"] == 1 and doc["units"] == 3


def test_stats_on_a_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    """stats on a missing file is a one-line error with exit code 2."""
    _assert_clean_error(runner.invoke(app, ["stats", str(tmp_path / "nope.jsonl")]))


def test_export_writes_a_perfetto_trace(racy: Path, tmp_path: Path) -> None:
    """export --to perfetto writes a trace whose events include the finding."""
    out = tmp_path / "p.json"
    result = runner.invoke(app, ["export", str(racy), "--to", "perfetto", "-o", str(out)])
    assert result.exit_code == 0
    assert any(e.get("cat") == "finding" for e in json.loads(out.read_text())["traceEvents"])


def test_export_on_empty_input_is_a_clean_error(tmp_path: Path) -> None:
    """export of an empty trace is a one-line error with exit code 2."""
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    _assert_clean_error(runner.invoke(app, ["export", str(path), "-o", str(tmp_path / "o")]))


def test_no_arguments_shows_help() -> None:
    """With no arguments the CLI shows help that lists its commands."""
    result = runner.invoke(app, [])
    assert "report" in result.output and "export" in result.output


@pytest.fixture
def tui_app_args(monkeypatch) -> dict[str, object]:
    """Replace the TUI by a fake that records what make_app was given and that it ran."""
    import tracelens.tui

    seen: dict[str, object] = {}

    class FakeApp:
        error = None
        return_code = 0

        def run(self) -> None:
            seen["ran"] = True

    def fake_make_app(paths, *, only=None, suppressions=(), source_roots=(), cache=True):
        seen.update(
            paths=paths, only=only, suppressions=suppressions, roots=source_roots, cache=cache
        )
        return FakeApp()

    monkeypatch.setattr(tracelens.tui, "make_app", fake_make_app)
    return seen


def test_tui_takes_only_and_the_suppression_rules(racy: Path, tmp_path: Path, tui_app_args) -> None:
    """`tracelens tui --only K --suppress F` builds the app with those kinds and rules."""
    seen = tui_app_args
    rules = tmp_path / "suppress.toml"
    rules.write_text('[[suppress]]\nvar = "model*"\nreason = "known"\n')
    result = runner.invoke(
        app, ["tui", str(racy), "--only", "lost_update", "--suppress", str(rules)]
    )

    assert result.exit_code == 0, result.output
    assert seen["only"] == ["lost_update"] and seen["ran"] and seen["cache"] is True
    assert [r.reason for r in seen["suppressions"]] == ["known"]


def test_tui_passes_its_roots_to_the_source_pane(racy: Path, tmp_path: Path, tui_app_args) -> None:
    """`tracelens tui --root DIR` (repeatable) lets the app show the files under DIR."""
    result = runner.invoke(app, ["tui", str(racy), "--root", str(tmp_path), "--root", "."])

    assert result.exit_code == 0, result.output
    assert [Path(p) for p in tui_app_args["roots"]] == [tmp_path, Path(".")]


def test_tui_with_a_bad_suppress_file_is_a_clean_error(racy: Path, tmp_path: Path) -> None:
    """A suppression file that is not TOML ends `tracelens tui` with one line and exit 2."""
    rules = tmp_path / "bad.toml"
    rules.write_text("this is [not toml")
    _assert_clean_error(runner.invoke(app, ["tui", str(racy), "--suppress", str(rules)]))


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_version_and_exits_0(flag: str) -> None:
    """`tracelens --version` prints 'tracelens X.Y.Z' on stdout and exits 0."""
    import subprocess
    import sys

    import tracelens

    done = subprocess.run(
        [sys.executable, "-m", "tracelens", flag], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, f"tracelens {tracelens.__version__}\n")


def test_version_through_the_typer_app_too() -> None:
    """The typer app itself answers --version (for embedders calling cli.main)."""
    import tracelens

    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.output) == (0, f"tracelens {tracelens.__version__}\n")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_run_help_describes_its_options_and_exits_0(flag: str) -> None:
    """`tracelens run --help` lists -o, --stress, --instrument and --no-instrument, exit 0."""
    import contextlib
    import io

    from tracelens.record.runner import main as run_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = run_main([flag])
    assert status == 0
    assert all(
        o in out.getvalue() for o in ("--output", "--stress", "--instrument", "--no-instrument")
    )


def test_run_with_an_unknown_option_is_a_usage_error() -> None:
    """An unknown option before the script: usage on stderr and exit 2 (the twin of --help)."""
    import contextlib
    import io

    from tracelens.record.runner import main as run_main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = run_main(["--bogus", "x.py"])
    assert status == 2 and "tracelens run --help" in err.getvalue()


@pytest.mark.parametrize("command", ["report", "tui"])
def test_an_unknown_only_kind_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    """--only bogus is refused before anything opens (the TUI showed a toast instead)."""
    sample = Path(__file__).parents[2] / "sample_logs" / "lazy_init.jsonl.gz"
    result = CliRunner().invoke(app, [command, "--only", "bogus", str(sample)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "bogus" in result.output
