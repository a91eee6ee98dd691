"""The command line on odd paths and failing output: one line, exit 2, never a traceback.

These run ``python -m tracelens`` in a subprocess: a FIFO, ``/dev/full`` and a closed
pipe need a real process and real file descriptors.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.test_cli import lost_update_lines
from tracelens.cli import app

T = 60
needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


def _tracelens(*args: str | Path, cwd: Path, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACELENS_NO_CACHE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tracelens", *map(str, args)],
        cwd=cwd,
        capture_output="stdout" not in kw,
        stderr=subprocess.PIPE if "stdout" in kw else None,
        text=True,
        timeout=T,
        env=env,
        **kw,
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("tracelens: error: "), result.stderr
    return lines[0]


@pytest.fixture
def racy(tmp_path: Path) -> Path:
    path = tmp_path / "racy.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in lost_update_lines()))
    return path


@pytest.mark.parametrize("command", ["report", "stats", "export", "tui"])
def test_a_fifo_is_refused_by_every_command(tmp_path: Path, command: str):
    """A FIFO given as a trace ends each command at once with one line, not a hang."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = _one_error_line(_tracelens(command, fifo, cwd=tmp_path))
    assert line.endswith("pipe is a FIFO, not a regular trace file")


@needs_dev_full
@pytest.mark.parametrize("args", [["report"], ["report", "-f", "json"], ["stats"]])
def test_a_failed_stdout_write_is_one_line_and_exit_2(racy: Path, tmp_path: Path, args):
    """Output to a full device (`> /dev/full`) is one error line and exit 2."""
    with open("/dev/full", "w") as full:
        result = _tracelens(*args, racy, cwd=tmp_path, stdout=full)
    assert (
        _one_error_line(result)
        == "tracelens: error: cannot write to stdout: No space left on device"
    )


def test_a_closed_pipe_ends_the_report_quietly(racy: Path, tmp_path: Path):
    """A reader that has gone (`| head`) ends the report with no message, status 141."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        result = _tracelens("report", "-f", "json", racy, cwd=tmp_path, stdout=write)
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (141, "")


@needs_dev_full
@pytest.mark.parametrize("command", ["report", "export"])
def test_output_file_on_a_full_disk_is_one_line_and_no_success(
    racy: Path, tmp_path: Path, command: str
):
    """`-o /dev/full` is one line naming the file and exit 2, with no "wrote" line."""
    line = _one_error_line(_tracelens(command, racy, "-o", "/dev/full", cwd=tmp_path))
    assert line == "tracelens: error: cannot write /dev/full: No space left on device"


# --- names from the command line and the file system --------------------------------

EVIL = "ev\x1b[31mil\u202e\x1b]0;pwned\x07"
EVIL_SHOWN = "ev\\x1b[31mil\\u202e\\x1b]0;pwned\\x07"
runner = CliRunner()


def _invoke(*args: str | Path):
    """Run the CLI in-process with colour kept, so click strips no escape sequence."""
    return runner.invoke(app, [str(a) for a in args], color=True)


def _shown_escaped(text: str) -> None:
    assert EVIL_SHOWN in text, text
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text


def test_a_missing_file_name_is_escaped_in_the_error_line(tmp_path: Path, monkeypatch):
    """A trace name with escape sequences and U+202E shows them escaped in the error."""
    monkeypatch.chdir(tmp_path)
    result = _invoke("report", f"{EVIL}.jsonl")
    assert result.exit_code == 2
    _shown_escaped(result.stderr)


def test_a_malformed_example_names_its_file_escaped(racy: Path, tmp_path: Path, monkeypatch):
    """`stats` shows a malformed line's file name with its control characters escaped."""
    monkeypatch.chdir(tmp_path)
    # No "[" in this name: the loader's fast path globs the name (a separate bug).
    evil = tmp_path / "ev\x1b]0;pwned\x07il\u202e.jsonl"
    evil.write_text(racy.read_text() + "not json\n")
    result = _invoke("stats", "--no-cache", evil)
    assert result.exit_code == 0, result.output
    unwrapped = "".join(result.stdout.split())  # rich wraps the long path
    assert "ev\\x1b]0;pwned\\x07il\\u202e.jsonl:6:notaJSONobject" in unwrapped
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout


def test_a_suppression_file_name_is_escaped_in_its_error(racy: Path, tmp_path: Path, monkeypatch):
    """A bad suppression file's name is escaped in the one error line."""
    monkeypatch.chdir(tmp_path)
    rules = tmp_path / f"{EVIL}.toml"
    rules.write_text("this is [not toml")
    result = _invoke("report", "--no-cache", racy, "--suppress", rules)
    assert result.exit_code == 2
    _shown_escaped(result.stderr)


def test_the_export_output_name_is_escaped_in_its_success_line(
    racy: Path, tmp_path: Path, monkeypatch
):
    """`export -o NAME` says where it wrote with NAME's control characters escaped."""
    monkeypatch.chdir(tmp_path)
    result = _invoke("export", "--no-cache", racy, "-o", f"{EVIL}.json")
    assert result.exit_code == 0, result.output
    _shown_escaped(result.stderr)


STD = Path(__file__).resolve().parents[1] / "data" / "std" / "races.std"


def test_import_std_writes_into_a_fifo_and_leaves_it_a_fifo(tmp_path: Path):
    """`import-std -o FIFO` streams the trace into the FIFO, never replacing it by a file."""
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = _tracelens("import-std", STD, "-o", fifo, cwd=tmp_path)
    reader.join(T)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].count(b"\n") == 32


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_import_std_into_a_full_device_is_one_line_and_keeps_the_device(tmp_path: Path):
    """`import-std -o FULL` (a private /dev/full) is one line, exit 2, and the device stays."""
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    line = _one_error_line(_tracelens("import-std", STD, "-o", full, cwd=tmp_path))
    assert "No space left on device" in line
    assert stat.S_ISCHR(os.stat(full).st_mode)
