"""Shared fixtures. Test helpers that build traces live in tests/strategies.py and tests/tracegen.py."""

from __future__ import annotations

import pytest

import tracelens


@pytest.fixture(autouse=True)
def _no_recording_left_behind():
    """Every test starts and ends with the recorder off and the stdlib unpatched."""
    tracelens.shutdown()
    yield
    tracelens.shutdown()
