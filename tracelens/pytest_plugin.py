"""The pytest plugin: ``pytest --tracelens`` records each test and fails it on a race.

Registered through the ``pytest11`` entry point and off unless ``--tracelens`` is given
(then this module imports only the recorder until a test ends; the analyzer, and with
it polars, is imported to analyse the first trace).

With ``--tracelens``:

* recording starts when pytest is configured, before the test modules are collected,
  so the locks the project's modules make at import are recorded, and the project's
  own modules (under the rootdir, as ``tracelens run`` chooses them, plus
  ``--tracelens-instrument`` patterns and ``[tool.tracelens] instrument``) are
  rewritten to record their shared-state accesses. Test modules stay pytest's (its
  assertion rewriting): shared state in them needs ``tracelens.watch()``;
* each test gets its own trace, ``<dir>/<test id>.jsonl``, from its setup to the end of
  its call (``--tracelens-dir``, default ``.tracelens/pytest`` under the rootdir; with
  pytest-xdist each worker writes its own files);
* when the test's call ends, its trace is analysed, and findings at or above
  ``--tracelens-fail-on`` (default ``error``; ``[tool.tracelens] fail_on``) fail the
  test with the report in pytest's failure output; findings below it, and those of a
  test that failed anyway, are added as a report section;
* ``@pytest.mark.tracelens(fail_on=..., only=[...], suppress=[...], enabled=False)``
  changes that for one test, and the ``tracelens_trace`` fixture gives the test its
  trace (``findings()`` analyses what it has recorded so far);
* ``--tracelens-baseline FILE`` (``tracelens report --write-baseline FILE`` writes one)
  lets findings whose fingerprint it lists pass;
* ``--tracelens-stress`` shrinks the thread switch interval (``configure(stress=True)``).

A summary line at the end counts the tests traced and their findings by kind.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["TestTrace"]

_SEVERITIES = ("error", "warning", "note", "never")
_KEY = "tracelens_findings"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--tracelens`` options."""
    group = parser.getgroup("tracelens", "race detection with tracelens")
    group.addoption(
        "--tracelens",
        action="store_true",
        default=False,
        help="Record each test with tracelens and fail it on the races found.",
    )
    group.addoption(
        "--tracelens-fail-on",
        choices=_SEVERITIES,
        default=None,
        help="Fail a test on findings at or above this severity (default: error).",
    )
    group.addoption(
        "--tracelens-dir",
        default=None,
        help="Keep the per-test traces here (default: .tracelens/pytest under the rootdir).",
    )
    group.addoption(
        "--tracelens-baseline",
        default=None,
        help="Findings whose fingerprint this baseline file lists do not fail a test.",
    )
    group.addoption(
        "--tracelens-stress",
        action="store_true",
        default=False,
        help="Shrink the thread switch interval so that rare interleavings show up.",
    )
    group.addoption(
        "--tracelens-instrument",
        action="append",
        default=[],
        metavar="PATTERN",
        help="Also record the shared-state accesses of these modules (botocore.*).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; with ``--tracelens``, start recording (not in an xdist controller)."""
    config.addinivalue_line(
        "markers",
        "tracelens(fail_on=None, only=None, suppress=None, enabled=True): tracelens' "
        "settings for this test",
    )
    if not config.getoption("tracelens"):
        return
    controller = bool(getattr(config.option, "numprocesses", None)) and not hasattr(
        config, "workerinput"
    )
    config.pluginmanager.register(_Plugin(config, record=not controller), "tracelens-recorder")


def _file_name(nodeid: str) -> str:
    """A test id as a file name: readable, and no separators or odd characters."""
    name = re.sub(r"[^A-Za-z0-9_.\-\[\]]+", "_", nodeid).strip("_.") or "test"
    if len(name) > 150:
        import hashlib

        name = name[:130] + "-" + hashlib.sha256(nodeid.encode()).hexdigest()[:12]
    return name


class TestTrace:
    """What the ``tracelens_trace`` fixture gives a test: its trace, and its findings so far.

    Attributes:
        path: The test's trace file.
        fail_on: The severity from which findings fail the test (``never``: none);
            a test may change it.
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(self, path: Path, fail_on: str, only: Sequence[str] | None) -> None:
        self.path = path
        self.fail_on = fail_on
        self.only = only
        self.suppressions: list[Any] = []

    def findings(self, *, only: Sequence[str] | None = None) -> list[Any]:
        """Analyse what the test has recorded so far and return its findings.

        Args:
            only: Finding kinds or analyses (default: the marker's, else all).
        """
        import tracelens
        from tracelens import testing

        tracelens.flush()  # what the threads have buffered goes to the file first
        return testing.findings(
            self.path, only=only if only is not None else self.only, suppress=self.suppressions
        )

    def suppress(
        self,
        *,
        kind: str | None = None,
        var: str | None = None,
        site: str | None = None,
        reason: str,
    ) -> None:
        """Accept findings that match this rule in this test (``docs/analysis.md``)."""
        from tracelens.analyze.suppress import Suppression

        self.suppressions.append(
            Suppression(kind=kind, var=var, site=site, reason=reason, source="tracelens_trace")
        )


@pytest.fixture
def tracelens_trace(request: pytest.FixtureRequest) -> TestTrace:
    """The running test's trace (needs ``pytest --tracelens``)."""
    trace: TestTrace | None = request.node.stash.get(_TRACE, None)
    if trace is None:
        pytest.skip("tracelens_trace needs pytest --tracelens")
    return trace


_TRACE = pytest.StashKey[TestTrace]()


class _Plugin:
    def __init__(self, config: pytest.Config, *, record: bool) -> None:
        self.config = config
        self.record = record
        root = Path(config.rootpath)
        from tracelens.record.runner import project_settings

        self.settings = project_settings(root)  # fail_on here; the runner reads instrument
        fail_on = config.getoption("tracelens_fail_on") or self.settings.get("fail_on", "error")
        self.fail_on = fail_on if fail_on in _SEVERITIES else "error"
        given = config.getoption("tracelens_dir")
        self.dir = Path(given) if given else root / ".tracelens" / "pytest"
        # This session's own xdist worker id: PYTEST_XDIST_WORKER would also be inherited by a
        # pytest that a worker's test starts as a subprocess.
        workerinput = getattr(config, "workerinput", None)
        self.worker = str(workerinput.get("workerid", "")) if workerinput else ""
        self.baseline_path = config.getoption("tracelens_baseline")
        self.baseline: frozenset[str] | None = None
        self.traced = 0
        self.kinds: Counter[str] = Counter()
        self.failed_tests = 0
        self.rules: list[Any] | None = None
        if record:
            self._start(root)

    # -- recording ---------------------------------------------------------------------
    def _start(self, root: Path) -> None:
        from tracelens.record import runner

        self.dir.mkdir(parents=True, exist_ok=True)
        suffix = f"-{self.worker}" if self.worker else ""
        self.idle = self.dir / f"_between-tests{suffix}.jsonl"
        runner.start_recording(
            self.idle,
            stress=self.config.getoption("tracelens_stress"),
            patterns=self.config.getoption("tracelens_instrument"),
            root=root,
        )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.record:
            from tracelens.record import runner

            runner.stop_recording()

    def _marker(self, item: pytest.Item) -> dict[str, Any]:
        m = item.get_closest_marker("tracelens")
        return dict(m.kwargs) if m is not None else {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if not self.record:
            return
        mark = self._marker(item)
        if mark.get("enabled", True) is False:
            return
        from tracelens.record import runner

        suffix = f"-{self.worker}" if self.worker else ""
        path = self.dir / f"{_file_name(item.nodeid)}{suffix}.jsonl"
        if runner.switch_trace(path):
            fail_on = mark.get("fail_on") or self.fail_on
            item.stash[_TRACE] = TestTrace(path, fail_on, mark.get("only"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        failed = False
        try:
            return (yield)
        except BaseException:
            failed = True
            raise
        finally:
            self._after_call(item, failed)

    def _after_call(self, item: pytest.Item, failed: bool) -> None:
        trace = item.stash.get(_TRACE, None)
        if trace is None:
            return
        from tracelens.record import runner

        runner.switch_trace(self.idle)  # what the test recorded is in its file now
        report = self._analyze(item, trace)
        self.traced += 1
        item.user_properties.append((_KEY, dict(Counter(f.kind for f in report.findings))))
        if not report.findings:
            return
        from tracelens.analyze.findings import severity_rank
        from tracelens.report import RenderOptions, text

        rendered = text.render(report, RenderOptions(root=Path(self.config.rootpath), width=100))
        limit = severity_rank(trace.fail_on) if trace.fail_on != "never" else -1
        blocking = [f for f in report.findings if severity_rank(f.severity) <= limit]
        if blocking and not failed:
            pytest.fail(
                f"tracelens: races found in this test (trace: {trace.path})\n\n{rendered}",
                pytrace=False,
            )
        item.add_report_section("call", "tracelens", f"trace: {trace.path}\n{rendered}")

    def _analyze(self, item: pytest.Item, trace: TestTrace) -> Any:
        from tracelens import testing

        mark = self._marker(item)
        rules = [*self._rules(), *trace.suppressions, *self._marker_rules(mark)]
        report = testing.analyze_trace(trace.path, only=trace.only, suppress=rules)
        baseline = self._baseline()
        if baseline:
            from tracelens.report.baseline import without_known

            report = without_known(report, baseline, root=Path(self.config.rootpath))
        return report

    def _rules(self) -> list[Any]:
        if self.rules is None:
            from tracelens.analyze.suppress import find_pyproject_suppressions

            self.rules = list(find_pyproject_suppressions(Path(self.config.rootpath)))
        return self.rules

    def _marker_rules(self, mark: dict[str, Any]) -> list[Any]:
        from tracelens.analyze.suppress import Suppression, parse_suppressions

        given = mark.get("suppress") or []
        rules = [r for r in given if isinstance(r, Suppression)]
        tables = [r for r in given if isinstance(r, dict)]
        return rules + (parse_suppressions(tables, source="marker") if tables else [])

    def _baseline(self) -> frozenset[str] | None:
        if self.baseline_path and self.baseline is None:
            from tracelens.report.baseline import read_baseline

            self.baseline = read_baseline(self.baseline_path)
        return self.baseline

    # -- summary (also in an xdist controller, from the workers' reports) ---------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == _KEY and isinstance(value, dict):
                if not self.record:  # the workers' tests, counted where they are shown
                    self.traced += 1
                self.kinds.update(value)
                if value and report.failed:
                    self.failed_tests += 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())) or "no findings"
        terminalreporter.write_line(
            f"tracelens: {self.traced} tests traced, {self.failed_tests} failed on races; "
            f"{kinds}; traces in {self.dir}"
        )
