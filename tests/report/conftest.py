"""Fixtures: hand-made reports (see tests/report/factories.py)."""

from __future__ import annotations

import pytest

from tests.report import factories


@pytest.fixture
def report() -> factories.FakeReport:
    """A report with one error, one warning and one suppressed finding."""
    return factories.report()


@pytest.fixture
def empty_report() -> factories.FakeReport:
    """A report without findings."""
    return factories.empty_report()


@pytest.fixture
def evil_report() -> factories.FakeReport:
    """A report whose trace strings try to inject markup."""
    return factories.evil_report()
