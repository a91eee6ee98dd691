"""Shared fixtures; helpers that read traces back live in tests/helpers.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tracelens


@pytest.fixture(autouse=True)
def _no_recording_left_behind() -> Iterator[None]:
    """Every test starts and ends with the recorder off and the stdlib unpatched."""
    tracelens.shutdown()
    yield
    tracelens.shutdown()


@pytest.fixture(name="recording")
def _recording(tmp_path: Path) -> Callable[..., Path]:
    """Start recording into a fresh file and return its path (``shutdown()`` flushes it)."""

    def start(**options: Any) -> Path:
        path = tmp_path / "trace.jsonl"
        tracelens.configure(path, **options)
        return path

    return start
