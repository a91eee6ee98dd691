"""``pytest --tracelens``: a race fails its test, clean tests pass, per-test control works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

APP = """\
import threading

counter = {"n": 0}
lock = threading.Lock()
hits = {"n": 0}


def bump_racy(n):
    for _ in range(n):
        counter["n"] += 1


def bump_locked(n):
    for _ in range(n):
        with lock:
            counter["n"] += 1


def hit():
    hits["n"] += 1
"""

TESTS = """\
import threading

import pytest

import app


def _in_threads(f):
    threads = [threading.Thread(target=f, args=(200,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_racy():
    _in_threads(app.bump_racy)


def test_clean():
    _in_threads(app.bump_locked)


def test_racy_only_in_parallel():
    for _ in range(50):
        app.hit()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a racy, a clean and a racy-only-in-parallel test."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "test_app.py").write_text(TESTS)
    return tmp_path


def _pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
         "-rA", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


def _outcomes(out: str) -> dict[str, str]:
    """test name -> PASSED/FAILED/ERROR from pytest's -rA short summary."""
    found = {}
    for line in out.splitlines():
        for word in ("PASSED", "FAILED", "ERROR"):
            if line.startswith(word) or line.startswith("PARALLEL " + word):
                name = line.split("::")[-1].split(" ")[0]
                found[name] = "PASSED" if word == "PASSED" else "FAILED"
    return found


def test_only_the_racy_test_fails_with_the_race_in_its_output(project: Path) -> None:
    """The racy test fails showing both sites' variable and the fix; the clean ones pass."""
    done = _pytest(project, "--tracelens")
    assert _outcomes(done.stdout) == {
        "test_racy": "FAILED",
        "test_clean": "PASSED",
        "test_racy_only_in_parallel": "PASSED",
    }
    assert "data_race" in done.stdout and "counter['n']" in done.stdout
    assert "app.py:10" in done.stdout and "fix:" in done.stdout


def test_the_session_ends_with_a_summary_line_and_keeps_the_traces(project: Path) -> None:
    """The summary counts the traced tests and findings; each test's trace is in the directory."""
    done = _pytest(project, "--tracelens", "--tracelens-dir", "traces")
    assert "tracelens: 3 tests traced, 1 failed on races; data_race 1" in done.stdout
    assert (project / "traces" / "test_app.py_test_racy.jsonl").is_file()


def test_without_the_option_nothing_is_recorded(project: Path) -> None:
    """Plain pytest: every test passes and no trace directory appears (off by default)."""
    done = _pytest(project)
    assert done.returncode == 0 and not (project / ".tracelens").exists()


def test_a_test_racy_only_in_parallel_fails_under_pytest_run_parallel(project: Path) -> None:
    """With --parallel-threads 4 the parallel-only race fails too; the clean test passes."""
    done = _pytest(project, "--tracelens", "--parallel-threads", "4")
    assert _outcomes(done.stdout) == {
        "test_racy": "FAILED",
        "test_clean": "PASSED",
        "test_racy_only_in_parallel": "FAILED",
    }


def test_the_same_under_pytest_xdist(project: Path) -> None:
    """With -n 2 each worker records its own tests: the racy one fails, the others pass."""
    done = _pytest(project, "--tracelens", "-n", "2")
    assert _outcomes(done.stdout) == {
        "test_racy": "FAILED",
        "test_clean": "PASSED",
        "test_racy_only_in_parallel": "PASSED",
    }
    assert "tracelens: 3 tests traced, 1 failed on races" in done.stdout


def test_a_marker_can_let_a_racy_test_pass_and_still_show_the_report(project: Path) -> None:
    """@pytest.mark.tracelens(fail_on='never'): the racy test passes, the report is a section."""
    source = (project / "test_app.py").read_text()
    source = source.replace(
        "def test_racy():", '@pytest.mark.tracelens(fail_on="never")\ndef test_racy():'
    )
    (project / "test_app.py").write_text(source)
    done = _pytest(project, "--tracelens")
    assert done.returncode == 0 and "tracelens" in done.stdout


def test_a_baseline_lets_a_known_race_pass(project: Path) -> None:
    """A baseline written from the racy test's trace makes it pass; without it, it fails."""
    _pytest(project, "--tracelens")
    trace = project / ".tracelens" / "pytest" / "test_app.py_test_racy.jsonl"
    subprocess.run(
        [sys.executable, "-m", "tracelens", "report", "--no-cache", "-q", str(trace),
         "--write-baseline", "baseline.json"],
        cwd=project, capture_output=True, timeout=120,
    )  # fmt: skip
    assert json.loads((project / "baseline.json").read_text())["fingerprints"]
    done = _pytest(project, "--tracelens", "--tracelens-baseline", "baseline.json")
    assert done.returncode == 0, done.stdout


def test_the_fixture_gives_a_test_its_findings(project: Path) -> None:
    """tracelens_trace.findings() inside a test sees the race the test made so far."""
    (project / "test_fixture.py").write_text(
        "from test_app import _in_threads\nimport app\n\n\n"
        "@__import__('pytest').mark.tracelens(fail_on='never')\n"
        "def test_sees(tracelens_trace):\n"
        "    _in_threads(app.bump_racy)\n"
        "    kinds = {f.kind for f in tracelens_trace.findings()}\n"
        "    assert 'data_race' in kinds\n"
    )
    done = _pytest(project, "--tracelens", "test_fixture.py")
    assert done.returncode == 0, done.stdout


def test_the_stress_recipe_fails_the_racy_tests_and_passes_the_clean_one(project: Path) -> None:
    """--tracelens-stress with --parallel-threads and --iterations (docs/pytest.md's recipe)."""
    done = _pytest(
        project, "--tracelens", "--tracelens-stress", "--parallel-threads", "4", "--iterations", "3"
    )
    assert _outcomes(done.stdout) == {
        "test_racy": "FAILED",
        "test_clean": "PASSED",
        "test_racy_only_in_parallel": "FAILED",
    }
