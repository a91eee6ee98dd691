"""Baselines: stable fingerprints, and failing CI only on findings that are new."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RACY = """\
import threading

counter = {"n": 0}


def bump():
    for _ in range(300):
        counter["n"] += 1


threads = [threading.Thread(target=bump) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""

OTHER_RACE = """

totals = {"m": 0}


def add():
    for _ in range(300):
        totals["m"] = totals["m"] + 2


more = [threading.Thread(target=add) for _ in range(4)]
for t in more:
    t.start()
for t in more:
    t.join()
"""


def _tracelens(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracelens", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _record(tmp: Path, source: str, name: str) -> Path:
    (tmp / "app.py").write_text(source)
    done = _tracelens("run", "--stress", "-o", name, "app.py", cwd=tmp)
    assert done.returncode == 0, done.stderr
    return tmp / name


def _prints(tmp: Path, trace: Path) -> list[str]:
    """The stable fingerprints of the trace's data races (present in every run)."""
    done = _tracelens("report", "--no-cache", "-f", "json", str(trace), cwd=tmp)
    assert done.returncode in (0, 1), done.stderr
    found = json.loads(done.stdout)["findings"]
    return sorted(f["stable_fingerprint"] for f in found if f["kind"] == "data_race")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    return tmp_path


def test_two_runs_of_the_same_program_have_the_same_fingerprints(project: Path) -> None:
    """The stable fingerprints of a re-run are identical (no seq, ts, pid or address)."""
    first = _prints(project, _record(project, RACY, "a.jsonl"))
    second = _prints(project, _record(project, RACY, "b.jsonl"))
    assert first and first == second


def test_fingerprints_survive_an_unrelated_edit_above_the_race(project: Path) -> None:
    """Lines added at the top of the file move the race but keep its fingerprint."""
    before = _prints(project, _record(project, RACY, "a.jsonl"))
    moved = "# a comment\n# and another\nimport os\n" + RACY
    assert _prints(project, _record(project, moved, "b.jsonl")) == before


def test_a_changed_racing_line_gets_a_new_fingerprint(project: Path) -> None:
    """Editing the racing statement itself makes a different fingerprint (the twin)."""
    before = _prints(project, _record(project, RACY, "a.jsonl"))
    edited = RACY.replace('counter["n"] += 1', 'counter["n"] += 2')
    assert set(_prints(project, _record(project, edited, "b.jsonl"))).isdisjoint(before)


def test_a_baselined_finding_passes_and_a_new_one_fails(project: Path) -> None:
    """With --baseline, the known race exits 0; a second race added later exits 1."""
    base = project / "baseline.json"
    trace = _record(project, RACY, "a.jsonl")
    assert (
        _tracelens(
            "report", "--no-cache", "-q", str(trace), "--write-baseline", str(base), cwd=project
        ).returncode
        == 1
    )

    known = _tracelens(
        "report", "--no-cache", "-q", str(trace), "--baseline", str(base), cwd=project
    )
    assert known.returncode == 0 and "known finding" in known.stderr

    grown = _record(project, RACY + OTHER_RACE, "b.jsonl")
    new = _tracelens("report", "--no-cache", "-q", str(grown), "--baseline", str(base), cwd=project)
    assert new.returncode == 1


def test_a_file_that_is_not_a_baseline_is_one_line_and_exit_2(project: Path) -> None:
    """--baseline with a file of another shape: exit 2 and one stderr line."""
    trace = _record(project, RACY, "a.jsonl")
    (project / "bad.json").write_text('{"fingerprints": [42]}')
    done = _tracelens("report", "--no-cache", str(trace), "--baseline", "bad.json", cwd=project)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_fingerprints_of_many_findings_check_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stable_fingerprints`` equals each ``stable_fingerprint``, checking each file once."""
    from tests.report import factories
    from tracelens.report import baseline

    src = tmp_path / "app.py"
    src.write_text("".join(f"x{i} = {i}\n" for i in range(60)))
    findings = [factories.lost_update(var=f"v{i % 3}", file=str(src)) for i in range(5)] + [
        factories.atomicity(file=str(src)),
        factories.lost_update(file="/elsewhere.py"),
    ]
    expected = [baseline.stable_fingerprint(f, tmp_path) for f in findings]
    reads: list[str] = []
    real = baseline.source_files

    def counting(file: str, **kw: object) -> object:
        reads.append(file)
        return real(file, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(baseline, "source_files", counting)
    assert baseline.stable_fingerprints(findings, tmp_path) == expected
    assert sorted(reads) == sorted([str(src), "/elsewhere.py"])
    assert len(set(expected)) == 3  # lost update here, atomicity here, lost update elsewhere
